from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.orthanc import Orthanc, start_orthanc


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    o = start_orthanc(tmp_path / "orthanc")
    try:
        yield o
    finally:
        o.stop()
