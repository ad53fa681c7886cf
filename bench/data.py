"""Synthetic radiographs for the benchmarks: made in the run, no patient, no download."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from tests.support.synthetic import make_cr


@dataclass(frozen=True)
class DataSet:
    name: str
    folder: Path
    files: list[Path]
    rows: int
    cols: int

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "files": len(self.files),
            "rows": self.rows,
            "cols": self.cols,
            "bits": 16,
            "mb": round(self.bytes / 1e6, 1),
        }


def make_set(folder: Path, name: str, n: int, px: int, seed: int = 0) -> DataSet:
    """``n`` CR images of ``px`` x ``px`` x 16 bit (explicit VR little endian), each with its own
    SOP Instance UID, one study and series per set; pixel content from one synthetic chest."""
    folder.mkdir(parents=True, exist_ok=True)
    template = make_cr(folder / "template.dcm", px, px, bits=16, seed=seed)
    (folder / "template.dcm").unlink()
    files = []
    study, series = generate_uid(), generate_uid()
    for i in range(n):
        ds = copy.copy(template)  # shallow: the pixel bytes are shared, only UIDs change
        ds.file_meta = copy.deepcopy(template.file_meta)
        uid = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.InstanceNumber = i + 1
        path = folder / f"{name}{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return DataSet(name, folder, files, px, px)


def sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
