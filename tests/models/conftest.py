"""Shared fixtures for the model tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: The project's shared data folder, a sibling of the repository (``../shared/data``).
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
MHH = SHARED_DATA / "cxr-radiographs-mhh"
LABELED = SHARED_DATA / "cxr-labeled"
KERMANY = SHARED_DATA / "kermany-full"


@pytest.fixture(scope="session")
def test_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from models.make_test_models import make_test_models

    return make_test_models(tmp_path_factory.mktemp("test-models"))


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - the serving install has no torch
        return
    torch.set_num_threads(2)
