"""Small synthetic radiographs generated in the test run (no patient, no download)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CRImageStorage = "1.2.840.10008.5.1.4.1.1.1"

PATIENT_NAME = "SYNTHETIC^PATIENT"
PATIENT_ID = "SYN-0001"


def power_law_field(n: int, seed: int, exponent: float, lo: float, hi: float) -> np.ndarray:
    """A radiograph-like n² field: white noise shaped to a 1/f^exponent spectrum, grey lo..hi."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = 1.0
    img = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) / f**exponent))
    out: np.ndarray = lo + (hi - lo) * (img - img.min()) / (img.max() - img.min())
    return out


def chest_like(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A smooth chest-like picture in [0, 1] (two dark lungs, bright mediastinum, ribs)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    y /= rows
    x /= cols
    img = 0.75 - 0.15 * y
    for cx in (0.3, 0.7):
        lung = np.exp(-(((x - cx) / 0.15) ** 2 + ((y - 0.5) / 0.28) ** 2))
        img -= 0.45 * lung
    img += 0.08 * (np.sin(y * 60) > 0.7) * (np.abs(x - 0.5) > 0.1)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def make_cr(
    path: Path,
    rows: int = 256,
    cols: int = 224,
    *,
    bits: int = 12,
    photometric: str = "MONOCHROME2",
    seed: int = 0,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Dataset:
    img = chest_like(rows, cols, seed)
    if photometric == "MONOCHROME1":
        img = 1.0 - img
    pixels = np.rint(img * (2**bits - 1)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CRImageStorage
    sop = generate_uid()
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CRImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    today = dt.date.today().strftime("%Y%m%d")
    ds.StudyDate = ds.ContentDate = today
    ds.StudyTime = ds.ContentTime = "120000"
    ds.AccessionNumber = "ACC0001"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.Modality = "CR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.Manufacturer = "SharpRay test"
    ds.ImagerPixelSpacing = [0.15, 0.15]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = 2 ** (bits - 1)
    ds.WindowWidth = 2**bits
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds
