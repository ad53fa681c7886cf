"""QIDO-RS (PS3.18 10.6): query parameters -> SQL over the index -> DICOM JSON.

Matching follows PS3.4 C.2.2.2 as PS3.18 10.6.1.3 asks of an origin server:
- single value: exact (case-insensitive for PN, as most archives do; case-sensitive otherwise);
- wildcard: ``*`` and ``?`` in strings (not in UIDs, dates or numbers); a lone ``*`` or an empty
  value matches everything, an empty value only adds the attribute to the response;
- range: ``a-b``, ``-b`` and ``a-`` for DA and TM;
- UID list: values separated by ``,`` or ``\\``; other strings: ``\\`` separates alternatives;
- ``includefield`` (keywords, tags or ``all``), ``limit``/``offset``, ``fuzzymatching``
  (false, or true answered with a Warning that only literal matching was done).

A study matches when any of its instances does (results the node produced share the study).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from sqlalchemy import ColumnElement, and_, distinct, false, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.files import UID_RE
from storage.tables import Instance

Level = Literal["study", "series", "instance"]
LEVELS: tuple[Level, ...] = ("study", "series", "instance")


class QueryError(ValueError):
    """A query parameter cannot be used (HTTP 400); the message names it, never a value of PHI."""


@dataclass(frozen=True)
class Attr:
    keyword: str
    level: Level  # patient attributes are study level here
    column: str | None  # Instance column; None = computed
    matchable: bool = True

    @property
    def tag(self) -> int:
        t = tag_for_keyword(self.keyword)
        assert t is not None, self.keyword
        return int(t)

    @property
    def vr(self) -> str:
        return str(dictionary_VR(self.tag))


_ATTRS = [
    # patient and study
    Attr("PatientName", "study", "patient_name"),
    Attr("PatientID", "study", "patient_id"),
    Attr("PatientBirthDate", "study", "patient_birth_date"),
    Attr("PatientSex", "study", "patient_sex"),
    Attr("StudyInstanceUID", "study", "study_instance_uid"),
    Attr("StudyDate", "study", "study_date"),
    Attr("StudyTime", "study", "study_time"),
    Attr("AccessionNumber", "study", "accession_number"),
    Attr("StudyID", "study", "study_id"),
    Attr("StudyDescription", "study", "study_description"),
    Attr("ReferringPhysicianName", "study", "referring_physician_name"),
    Attr("ModalitiesInStudy", "study", None),
    Attr("NumberOfStudyRelatedSeries", "study", None, matchable=False),
    Attr("NumberOfStudyRelatedInstances", "study", None, matchable=False),
    # series
    Attr("SeriesInstanceUID", "series", "series_instance_uid"),
    Attr("Modality", "series", "modality"),
    Attr("SeriesNumber", "series", "series_number"),
    Attr("SeriesDescription", "series", "series_description"),
    Attr("PerformedProcedureStepStartDate", "series", "performed_procedure_step_start_date"),
    Attr("PerformedProcedureStepStartTime", "series", "performed_procedure_step_start_time"),
    Attr("NumberOfSeriesRelatedInstances", "series", None, matchable=False),
    # instance
    Attr("SOPClassUID", "instance", "sop_class_uid"),
    Attr("SOPInstanceUID", "instance", "sop_instance_uid"),
    Attr("InstanceNumber", "instance", "instance_number"),
    Attr("Rows", "instance", "rows"),
    Attr("Columns", "instance", "columns"),
    Attr("BitsAllocated", "instance", "bits_allocated"),
    Attr("NumberOfFrames", "instance", "number_of_frames"),
    Attr("AvailableTransferSyntaxUID", "instance", "transfer_syntax_uid", matchable=False),
]
ATTRIBUTES: dict[str, Attr] = {a.keyword: a for a in _ATTRS}

# Returned by default (PS3.18 Tables 10.6.3-3, -4, -5), besides the matching keys and RetrieveURL.
DEFAULTS: dict[Level, list[str]] = {
    "study": [
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "StudyDescription",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ],
    "series": [
        "StudyInstanceUID",
        "Modality",
        "SeriesDescription",
        "SeriesInstanceUID",
        "SeriesNumber",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "NumberOfSeriesRelatedInstances",
    ],
    "instance": [
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPClassUID",
        "SOPInstanceUID",
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
        "AvailableTransferSyntaxUID",
    ],
}
MAX_INT = 2**31 - 1
RESERVED = {"limit", "offset", "fuzzymatching", "includefield", "accept", "charset"}
DATE_RE = re.compile(r"^\d{8}$")
TIME_RE = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")


def level_rank(level: Level) -> int:
    return LEVELS.index(level)


@dataclass
class Query:
    level: Level  # what is returned
    scope: Level  # the deepest level whose keys may be matched (study-level: "study")
    include_levels: tuple[Level, ...]  # levels whose default attributes are returned
    filters: list[tuple[Attr, str]] = field(default_factory=list)
    include: list[str] = field(default_factory=list)  # indexed keywords to return
    include_all: bool = False
    extra_tags: list[int] = field(default_factory=list)  # other tags: read from the file
    limit: int | None = None
    offset: int = 0
    warnings: list[str] = field(default_factory=list)


def _resolve_key(key: str) -> tuple[str | None, int | None]:
    """A query key (keyword or 8 hex digits) -> (keyword, tag); (None, None) if unknown."""
    k = key.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{8}", k):
        tag = int(k, 16)
        kw = keyword_for_tag(tag)
        return (kw or None), tag
    found = tag_for_keyword(k)
    if found is None:
        return None, None
    return k, int(found)


def parse_query(
    params: Sequence[tuple[str, str]],
    level: Level,
    scope: Level,
    include_levels: tuple[Level, ...],
    max_results: int,
) -> Query:
    q = Query(level=level, scope=scope, include_levels=include_levels)
    for raw_key, value in params:
        key = raw_key.strip()
        low = key.lower()
        if low == "limit":
            q.limit = _non_negative(value, "limit", minimum=1)
        elif low == "offset":
            q.offset = _non_negative(value, "offset", minimum=0)
        elif low == "fuzzymatching":
            v = value.strip().lower()
            if v not in ("true", "false"):
                raise QueryError("fuzzymatching must be true or false")
            if v == "true":
                q.warnings.append(
                    "fuzzymatching is not supported; only literal matching has been performed"
                )
        elif low == "includefield":
            for item in value.split(","):
                _add_include(q, item)
        elif low in RESERVED:
            continue  # accept/charset as query parameters: the response is always JSON in UTF-8
        else:
            _add_filter(q, key, value)
    if q.limit is None or q.limit > max_results:
        if q.limit is not None:
            q.warnings.append(f"limit reduced to this server's maximum of {max_results}")
        q.limit = max_results
    return q


def _non_negative(value: str, name: str, minimum: int) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise QueryError(f"{name} must be an integer") from None
    if n < minimum or n > MAX_INT:
        raise QueryError(f"{name} must be between {minimum} and {MAX_INT}")
    return n


def _add_include(q: Query, item: str) -> None:
    item = item.strip()
    if not item:
        return
    if item.lower() == "all":
        q.include_all = True
        return
    if "." in item:
        q.warnings.append(f"includefield {item}: sequence paths are not supported; ignored")
        return
    kw, tag = _resolve_key(item)
    if tag is None:
        q.warnings.append(f"includefield {item[:64]}: not a DICOM keyword or tag; ignored")
        return
    if kw is not None and kw in ATTRIBUTES:
        if kw not in q.include:
            q.include.append(kw)
    elif tag not in q.extra_tags and (tag >> 16) not in (0x0000, 0x0002):
        q.extra_tags.append(tag)


def _add_filter(q: Query, key: str, value: str) -> None:
    if "." in key:
        q.warnings.append(f"{key}: matching on sequence attributes is not supported; ignored")
        return
    kw, tag = _resolve_key(key)
    if tag is None or kw is None:
        raise QueryError(f"{key!r} is not a DICOM keyword, a tag or a QIDO-RS parameter")
    attr = ATTRIBUTES.get(kw)
    if attr is None or not attr.matchable:
        q.warnings.append(f"{kw} is not supported as a matching key; ignored")
        if attr is None and tag not in q.extra_tags and (tag >> 16) not in (0x0000, 0x0002):
            q.extra_tags.append(tag)
        return
    if level_rank(attr.level) > level_rank(q.scope):
        q.warnings.append(f"{kw} is not a matching key at this level; ignored")
        return
    if kw not in q.include:
        q.include.append(kw)
    value = value.strip().strip("\x00").strip()  # padding is not significant
    if value in ("", "*"):
        return  # universal matching: returned, not filtered
    _validate(attr, value)
    q.filters.append((attr, value))


def _validate(attr: Attr, value: str) -> None:
    vr = attr.vr
    if vr == "UI":
        if not _uid_list(value):
            raise QueryError(f"{attr.keyword}: not a UID or a list of UIDs")
        for uid in _uid_list(value):
            if not UID_RE.match(uid):  # (one over 64 characters matches nothing)
                raise QueryError(f"{attr.keyword}: not a UID or a list of UIDs")
    elif vr in ("DA", "TM"):
        parts = value.split("-")
        pattern = DATE_RE if vr == "DA" else TIME_RE
        if len(parts) > 2 or not any(parts) or any(p and not pattern.match(p) for p in parts):
            raise QueryError(
                f"{attr.keyword}: expected {'YYYYMMDD' if vr == 'DA' else 'HHMMSS'} "
                "or a range of them (a-b, -b, a-)"
            )
    elif vr in ("IS", "US"):
        for v in value.split("\\"):
            try:
                int(v.strip())
            except ValueError:
                raise QueryError(f"{attr.keyword}: expected an integer") from None


def _uid_list(value: str) -> list[str]:
    return [u.strip() for u in re.split(r"[,\\]", value) if u.strip()]


# -- SQL -------------------------------------------------------------------------------------


def _wildcard(col: Any, pattern: str, dialect: str, ignore_case: bool) -> ColumnElement[bool]:
    if ignore_case:
        like = (
            pattern.lower()
            .replace("\\", "\\\\")
            .replace("%", "\\%")
            .replace("_", "\\_")
            .replace("*", "%")
            .replace("?", "_")
        )
        return func.lower(col).like(like, escape="\\")
    if dialect == "sqlite":
        # SQLite's LIKE ignores case; GLOB is case-sensitive and uses * and ? already
        glob = pattern.replace("[", "[[]")
        return col.op("GLOB")(glob)  # type: ignore[no-any-return]
    like = (
        pattern.replace("\\", "\\\\")
        .replace("%", "\\%")
        .replace("_", "\\_")
        .replace("*", "%")
        .replace("?", "_")
    )
    return col.like(like, escape="\\")  # type: ignore[no-any-return]


def _string_match(col: Any, value: str, dialect: str, ignore_case: bool) -> ColumnElement[bool]:
    alternatives = [value] if ignore_case else value.split("\\")
    conds: list[ColumnElement[bool]] = []
    for alt in alternatives:
        if "*" in alt or "?" in alt:
            conds.append(_wildcard(col, alt, dialect, ignore_case))
        elif ignore_case:
            conds.append(func.lower(col) == alt.lower())
        else:
            conds.append(col == alt)
    return or_(*conds) if len(conds) > 1 else conds[0]


def _range(col: Any, value: str, vr: str) -> ColumnElement[bool]:
    if "-" not in value:
        return col == value  # type: ignore[no-any-return]
    lo, hi = value.split("-", 1)
    conds = []
    if lo:
        conds.append(col >= lo)
    if hi:
        if vr == "TM":
            hi = hi + "999999.999999"[len(hi) :] if len(hi) < 13 else hi
        conds.append(col <= hi)
    return and_(*conds)


def condition(attr: Attr, value: str, dialect: str) -> ColumnElement[bool]:
    """The SQL condition for one matching key on Instance rows."""
    if attr.keyword == "ModalitiesInStudy":
        sub = select(Instance.study_instance_uid).where(
            _string_match(Instance.modality, value, dialect, False)
        )
        return Instance.study_instance_uid.in_(sub)
    assert attr.column is not None
    col: InstrumentedAttribute[Any] = getattr(Instance, attr.column)
    vr = attr.vr
    if vr == "UI":
        uids = _uid_list(value)
        return col.in_(uids) if len(uids) > 1 else col == uids[0]
    if vr in ("DA", "TM"):
        return _range(col, value, vr)
    if vr in ("IS", "US"):
        numbers = [int(v) for v in value.split("\\")]
        if any(not -(2**31) <= n < 2**31 for n in numbers):
            return false()
        return col.in_(numbers) if len(numbers) > 1 else col == numbers[0]
    return _string_match(col, value, dialect, ignore_case=(vr == "PN"))


@dataclass
class Match:
    """One result row: the representative instance and the computed attributes."""

    rep: Instance
    computed: dict[str, Any] = field(default_factory=dict)


def run(
    s: Session,
    q: Query,
    dialect: str,
    scope_filters: Mapping[str, str],
) -> tuple[list[Match], bool]:
    """Execute ``q`` (plus the path's UIDs in ``scope_filters``); (matches, more available)."""
    conds: list[ColumnElement[bool]] = [
        getattr(Instance, col) == uid for col, uid in scope_filters.items()
    ]
    conds += [condition(attr, value, dialect) for attr, value in q.filters]
    assert q.limit is not None
    if q.level == "instance":
        rows = list(
            s.scalars(
                select(Instance)
                .where(*conds)
                .order_by(Instance.id)
                .offset(q.offset)
                .limit(q.limit + 1)
            )
        )
        more = len(rows) > q.limit
        return [Match(r) for r in rows[: q.limit]], more

    key = Instance.study_instance_uid if q.level == "study" else Instance.series_instance_uid
    matched = select(key).where(*conds)
    agg = (
        select(
            key,
            func.min(Instance.id),
            func.count(Instance.id),
            func.count(distinct(Instance.series_instance_uid)),
        )
        .where(key.in_(matched))
        .group_by(key)
        .order_by(func.min(Instance.id))
        .offset(q.offset)
        .limit(q.limit + 1)
    )
    groups = list(s.execute(agg))
    more = len(groups) > q.limit
    groups = groups[: q.limit]
    if not groups:
        return [], more
    reps = {
        r.id: r for r in s.scalars(select(Instance).where(Instance.id.in_([g[1] for g in groups])))
    }
    modalities: dict[str, set[str]] = {}
    if q.level == "study" or "study" in q.include_levels:
        study_uids = {reps[g[1]].study_instance_uid for g in groups}
        for study_uid, modality in s.execute(
            select(Instance.study_instance_uid, Instance.modality)
            .where(Instance.study_instance_uid.in_(study_uids))
            .distinct()
        ):
            if modality:
                modalities.setdefault(study_uid, set()).add(modality)
    study_counts: dict[str, tuple[int, int]] = {}
    if q.level == "series" and "study" in q.include_levels:
        study_uids = {reps[g[1]].study_instance_uid for g in groups}
        for study_uid, n, n_series in s.execute(
            select(
                Instance.study_instance_uid,
                func.count(Instance.id),
                func.count(distinct(Instance.series_instance_uid)),
            )
            .where(Instance.study_instance_uid.in_(study_uids))
            .group_by(Instance.study_instance_uid)
        ):
            study_counts[study_uid] = (int(n), int(n_series))
    out = []
    for _, rep_id, n_instances, n_series in groups:
        rep = reps[rep_id]
        computed: dict[str, Any] = {}
        if q.level == "study" or "study" in q.include_levels:
            computed["ModalitiesInStudy"] = sorted(modalities.get(rep.study_instance_uid, set()))
        if q.level == "study":
            computed["NumberOfStudyRelatedInstances"] = int(n_instances)
            computed["NumberOfStudyRelatedSeries"] = int(n_series)
        else:
            computed["NumberOfSeriesRelatedInstances"] = int(n_instances)
            if rep.study_instance_uid in study_counts:
                n_i, n_s = study_counts[rep.study_instance_uid]
                computed["NumberOfStudyRelatedInstances"] = n_i
                computed["NumberOfStudyRelatedSeries"] = n_s
        out.append(Match(rep, computed))
    return out, more


# -- JSON ------------------------------------------------------------------------------------


def returned_keywords(q: Query) -> list[str]:
    """The indexed attributes each result carries, in tag order: the levels' defaults, all of
    theirs with ``includefield=all``, and every matching key and ``includefield`` named."""
    kws: list[str] = []
    for level in q.include_levels:
        kws += DEFAULTS[level]
    if q.include_all:
        kws += [a.keyword for a in _ATTRS if a.level in q.include_levels]
    kws += q.include
    return sorted(set(kws), key=lambda k: ATTRIBUTES[k].tag)


def _value(m: Match, attr: Attr) -> Any:
    if attr.column is None:
        return m.computed.get(attr.keyword)
    return getattr(m.rep, attr.column)


def _element(tag: int, vr: str, value: Any) -> DataElement:
    # values are as received; a non-conformant one is returned as is, without a warning each time
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


def to_dataset(m: Match, keywords: Iterable[str], retrieve_url: str) -> Dataset:
    ds = Dataset()
    for kw in keywords:
        attr = ATTRIBUTES[kw]
        if attr.column is None and kw not in m.computed:
            continue  # a computed attribute not computed at this level
        value = _value(m, attr)
        ds[attr.tag] = _element(attr.tag, attr.vr, None if value in (None, []) else value)
    ds[0x00080056] = _element(0x00080056, "CS", "ONLINE")  # Instance Availability
    ds[0x00081190] = _element(0x00081190, "UR", retrieve_url)  # Retrieve URL
    return ds
