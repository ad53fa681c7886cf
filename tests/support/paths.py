"""Where test inputs live: tests/data (in the repo) and ../shared/data (optional, skipped if absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
CXR_DICOM = SHARED_DATA / "cxr-dicom"


def shared_dicom_files() -> list[Path]:
    return sorted(CXR_DICOM.glob("*.dcm")) if CXR_DICOM.is_dir() else []


def require_shared_dicom() -> list[Path]:
    files = shared_dicom_files()
    if not files:
        pytest.skip(f"real radiographs not available: {CXR_DICOM} is absent")
    return files
