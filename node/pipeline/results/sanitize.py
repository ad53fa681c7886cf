"""A safe copy of a source radiograph's header for the highdicom result builders.

Real modality headers carry values that make highdicom crash or that would copy an error into every
derived object (see ``shared/notes/result-objects.md``). :func:`sanitize_header` returns a *copy*
of the header (the source dataset is never modified, and its raw elements are not even converted)
with these repairs:

* Bulk data is left out: Pixel Data (group 7FE0) and overlay data (60xx,3000). Private elements are
  left out too (highdicom copies none of them, and some vendors' private groups cannot be decoded).
* DA / TM / DT values that do not follow PS3.5 are normalised when the intent is unambiguous
  (``1995.09.26`` -> ``19950926``, ``18:50:59`` -> ``185059``) and blanked otherwise: highdicom's
  ``from_ref_dataset`` and the SR constructors raise on an unparseable Patient's Birth Date (Canon
  writes a hash there).
* Patient's Age (AS) that is not ``nnnD|W|M|Y`` is removed (Type 3; ``62`` in the SIIM files).
* Patient's Sex outside M/F/O is blanked (Type 2; highdicom raises on other values).
* Pixel Spacing, Imager Pixel Spacing and Nominal Scanned Pixel Spacing are removed unless they
  hold two positive numbers (Philips writes ``0\\0``, an error in dciodvfy).
* Patient/study attributes of Type 2 that highdicom reads with attribute access (Patient ID,
  Patient's Name, Birth Date, Sex, Accession Number, Study ID, Study Date/Time, Referring
  Physician's Name) are added empty when absent.
* Elements that pydicom cannot decode at all are dropped.

* String values longer than their VR allows (a 56-character Accession Number in SH) are blanked
  when the attribute is Type 2 in the patient/study modules, and left out otherwise: every object
  the node writes must be valid DICOM. The study is still matched by its Study Instance UID.

The list of changes names attributes only, never their values (it is logged; values may be PHI).
"""

from __future__ import annotations

import copy
import datetime
import re
from dataclasses import dataclass, field

import pydicom
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

__all__ = ["SanitizedHeader", "sanitize_header", "valid_pixel_spacing"]

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TM = re.compile(r"^(\d{2})((\d{2})((\d{2})(\.\d{1,6})?)?)?$")
_DT = re.compile(
    r"^(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?"
    r"(?P<s>\d{2}(\.\d{1,6})?)?(?P<z>[+-]\d{4})?$"
)
_AS = re.compile(r"^\d{3}[DWMY]$")

_TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)

_SPACING_KEYWORDS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")


@dataclass
class SanitizedHeader:
    """The repaired copy and a human-readable list of what was changed (for the log)."""

    dataset: pydicom.Dataset
    changes: list[str] = field(default_factory=list)


def _valid_da(value: str) -> bool:
    m = _DA.match(value)
    if m is None:
        return False
    try:
        datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


def _valid_tm(value: str) -> bool:
    m = _TM.match(value)
    if m is None:
        return False
    hh = int(m.group(1))
    mm = int(m.group(3)) if m.group(3) else 0
    ss = int(m.group(5)) if m.group(5) else 0
    # PS3.5 allows 60 for a leap second
    return hh < 24 and mm < 60 and ss <= 60


def _valid_dt(value: str) -> bool:
    m = _DT.match(value)
    if m is None:
        return False
    parts = [m.group(k) for k in ("mo", "d", "h", "mi", "s")]
    # components may only be left off from the right
    if any(p is None and q is not None for p, q in zip(parts, parts[1:], strict=False)):
        return False
    try:
        month = int(parts[0] or 1)
        day = int(parts[1] or 1)
        datetime.date(int(m.group("y")), month, day)
    except ValueError:
        return False
    hh, mm = int(parts[2] or 0), int(parts[3] or 0)
    ss = float(parts[4] or 0)
    return hh < 24 and mm < 60 and ss < 61


def _repair_temporal(vr: str, value: str) -> str | None:
    """Return a valid value (possibly normalised), or None when it has to be blanked."""
    v = value.strip()
    if v == "":
        return ""
    if vr == "DA":
        if _valid_da(v):
            return v
        if re.fullmatch(r"\d{4}\.\d{2}\.\d{2}", v) and _valid_da(v.replace(".", "")):
            return v.replace(".", "")
        return None
    if vr == "TM":
        if _valid_tm(v):
            return v
        if re.fullmatch(r"\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?", v) and _valid_tm(v.replace(":", "")):
            return v.replace(":", "")
        return None
    return v if _valid_dt(v) else None


def valid_pixel_spacing(ds: pydicom.Dataset, keyword: str = "PixelSpacing") -> tuple[float, float]:
    """The two spacing values of ``keyword`` if both are finite and positive, else raise."""
    value = ds.get(keyword)
    if value is None or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{keyword} is absent or does not have two values")
    row, col = (float(v) for v in value)
    if not (0.0 < row < float("inf") and 0.0 < col < float("inf")):
        raise ValueError(f"{keyword} {row}\\{col} is not positive")
    return row, col


def _is_bulk(tag: BaseTag) -> bool:
    if tag.group == 0x7FE0:
        return True
    return 0x6000 <= tag.group <= 0x60FF and tag.element == 0x3000


def _sanitize_temporal(ds: pydicom.Dataset, changes: list[str], path: str) -> None:
    for elem in list(ds):
        name = f"{path}{elem.keyword or elem.tag}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                _sanitize_temporal(item, changes, f"{name}[{i}].")
            continue
        if elem.VR not in ("DA", "TM", "DT") or elem.is_empty:
            continue
        values = list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]
        repaired = [_repair_temporal(elem.VR, str(v)) for v in values]
        if any(r is None for r in repaired):
            changes.append(f"blanked unparseable {elem.VR} {name}")
            elem.value = ""
        elif [str(v) for v in values] != repaired:
            changes.append(f"normalised {elem.VR} {name}")
            elem.value = repaired if len(repaired) > 1 else repaired[0]


_MAX_LENGTH = {"SH": 16, "LO": 64, "CS": 16, "AE": 16, "DS": 16, "IS": 12, "ST": 1024, "LT": 10240}


def _sanitize_lengths(ds: pydicom.Dataset, changes: list[str]) -> None:
    """Blank (Type 2 patient/study attributes) or remove top-level values too long for their VR."""
    for elem in list(ds):
        limit = _MAX_LENGTH.get(elem.VR)
        if limit is None or elem.is_empty:
            continue
        values = list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]
        if all(len(str(v)) <= limit for v in values):
            continue
        name = elem.keyword or str(elem.tag)
        if name in _TYPE2_PATIENT_STUDY:
            elem.value = ""
            changes.append(f"blanked {name}: value longer than {limit} characters ({elem.VR})")
        else:
            del ds[elem.tag]
            changes.append(f"removed {name}: value longer than {limit} characters ({elem.VR})")


def sanitize_header(source: pydicom.Dataset) -> SanitizedHeader:
    """Return a repaired copy of ``source``'s header (no pixel data); ``source`` stays untouched.

    Raises ValueError if the source lacks the UIDs every result object must reference.
    """
    changes: list[str] = []
    out = pydicom.Dataset()
    for raw in source.elements():
        tag = BaseTag(raw.tag)
        if _is_bulk(tag) or tag.is_private:
            continue
        out[tag] = copy.deepcopy(raw)
    if hasattr(source, "file_meta"):
        out.file_meta = copy.deepcopy(source.file_meta)

    # Convert every element now, so that a value pydicom cannot decode is dropped here and not
    # raised later inside highdicom.
    for tag in list(out.keys()):
        try:
            out[tag]
        except Exception as exc:  # any decoding failure drops the element
            del out[tag]
            changes.append(f"dropped undecodable element {tag} ({type(exc).__name__})")

    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not out.get(keyword):
            raise ValueError(f"source dataset has no {keyword}")

    _sanitize_temporal(out, changes, "")

    age = out.get("PatientAge")
    if age is not None and age != "" and not _AS.match(str(age)):
        del out.PatientAge
        changes.append("removed invalid Patient's Age")

    sex = out.get("PatientSex")
    if sex is not None and sex not in ("", "M", "F", "O"):
        out.PatientSex = ""
        changes.append("blanked invalid Patient's Sex")

    for keyword in _SPACING_KEYWORDS:
        if keyword in out:
            try:
                valid_pixel_spacing(out, keyword)
            except (ValueError, TypeError) as exc:
                changes.append(f"removed {keyword}: {exc}")
                del out[keyword]

    _sanitize_lengths(out, changes)

    for keyword in _TYPE2_PATIENT_STUDY:
        if keyword not in out:
            setattr(out, keyword, None)
            changes.append(f"added empty {keyword}")

    return SanitizedHeader(out, changes)
