"""Real radiographs (MHH test split) as CR DICOM files, sharp or with synthetic motion blur."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from models.blur import linear_kernel, simulate_motion_blur
from models.deblur_data import load_gray, split_by_patient
from tests.support.paths import SHARED_DATA
from tests.support.synthetic import make_cr

MHH = SHARED_DATA / "cxr-radiographs-mhh"


def mhh_test_images(n: int) -> list[np.ndarray]:
    """The first ``n`` images of the MHH patient-level test split, grey values in [0, 1]."""
    if not (MHH / "metadata.csv").exists():
        pytest.skip(f"real radiographs not available: {MHH} is absent")
    paths = split_by_patient(MHH).test[:n]
    return [load_gray(MHH / p).astype(np.float32) / 255.0 for p in paths]


def blurred(img: np.ndarray, length_px: float, angle: float = 30.0) -> np.ndarray:
    return simulate_motion_blur(img, linear_kernel(length_px, angle)) if length_px else img


def write_cr(
    path: Path,
    img01: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    study_uid: str | None = None,
) -> Dataset:
    """A 12-bit CR file holding ``img01`` (bright = dense), MONOCHROME1 stored inverted."""
    rows, cols = img01.shape
    ds = make_cr(path, rows, cols, photometric=photometric, study_uid=study_uid)
    shown = 1.0 - img01 if photometric == "MONOCHROME1" else img01
    ds.PixelData = np.rint(np.clip(shown, 0, 1) * 4095).astype(np.uint16).tobytes()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return ds
