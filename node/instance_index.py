"""Who sent an instance, and the Instance row's search columns: shared by ingest, the worker,
routing and the DICOMweb index without importing any of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from storage.tables import Instance

__all__ = [
    "INDEXED_INTEGERS",
    "INDEXED_STRINGS",
    "INDEX_TAGS",
    "INDEX_VERSION",
    "Received",
    "apply_index",
    "index_attributes",
]


@dataclass(frozen=True)
class Received:
    """Who sent it, how."""

    source: str  # "dimse" | "dicomweb" | "local"
    calling_ae: str | None = None
    called_ae: str | None = None
    peer_host: str | None = None


# -- the index QIDO-RS searches (Instance columns, migration 0002) ------------------------------
# Bump INDEX_VERSION when the set changes: rows with an older version are re-read at start.
INDEX_VERSION = 1
# keyword -> (Instance column, longest value kept); DA/TM/CS/LO/SH/PN values as strings
INDEXED_STRINGS: dict[str, tuple[str, int]] = {
    "SpecificCharacterSet": ("specific_character_set", 64),
    "PatientName": ("patient_name", 324),
    "PatientID": ("patient_id", 64),
    "PatientBirthDate": ("patient_birth_date", 16),
    "PatientSex": ("patient_sex", 16),
    "StudyDate": ("study_date", 16),
    "StudyTime": ("study_time", 32),
    "AccessionNumber": ("accession_number", 64),
    "StudyID": ("study_id", 64),
    "StudyDescription": ("study_description", 128),
    "ReferringPhysicianName": ("referring_physician_name", 324),
    "Modality": ("modality", 16),
    "SeriesDescription": ("series_description", 128),
    "PerformedProcedureStepStartDate": ("performed_procedure_step_start_date", 16),
    "PerformedProcedureStepStartTime": ("performed_procedure_step_start_time", 32),
}
# keyword -> Instance column; IS/US values as integers
INDEXED_INTEGERS: dict[str, str] = {
    "SeriesNumber": "series_number",
    "InstanceNumber": "instance_number",
    "Rows": "rows",
    "Columns": "columns",
    "BitsAllocated": "bits_allocated",
    "NumberOfFrames": "number_of_frames",
}
INDEX_TAGS = [*INDEXED_STRINGS, *INDEXED_INTEGERS]


def _text(value: object) -> str:
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def index_attributes(ds: Dataset) -> dict[str, str | int | None]:
    """The QIDO-RS index columns of one dataset (a malformed optional value indexes as None).

    The one function that fills these columns: ingest (received instances), the worker (the
    results it writes) and the start-up backfill all use it.
    """
    out: dict[str, str | int | None] = {}
    for keyword, (column, limit) in INDEXED_STRINGS.items():
        value: str | None = None
        try:
            raw = ds.get(keyword)
            if raw is not None and raw != "":
                text = _text(raw).strip().rstrip("\x00")
                if keyword.endswith("Date"):
                    text = text.replace(".", "")  # ACR-NEMA style 1970.01.01
                elif keyword.endswith("Time"):
                    text = text.replace(":", "")  # ACR-NEMA style 12:00:00
                value = text[:limit] or None
        except Exception:  # undecodable or malformed: not indexed, still stored
            value = None
        out[column] = value
    for keyword, column in INDEXED_INTEGERS.items():
        number: int | None = None
        try:
            raw = ds.get(keyword)
            if raw is not None and raw != "":
                number = int(raw)
                if not -(2**31) <= number < 2**31:
                    number = None
        except Exception:
            number = None
        out[column] = number
    return out


def apply_index(inst: Instance, attributes: Mapping[str, str | int | None]) -> None:
    """Set the QIDO-RS index columns of an Instance row (from ``index_attributes``)."""
    for column, value in attributes.items():
        setattr(inst, column, value)
    inst.index_version = INDEX_VERSION
