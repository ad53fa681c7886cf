"""Intended use, enforced: non-chest radiographs get no diagnosis and no heatmap, chests do.

Real radiographs: the repository's dog thorax (tests/data) always; the hand, hip and chest CR/DX of
``../shared/data/cxr-dicom`` where present, with their headers as sent and with the header hints
(Body Part Examined, View Position, descriptions) removed.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from node.app import load_models
from node.config import Settings
from node.pipeline.analyse import Models, analyse
from node.pipeline.outputs import build_results
from node.pipeline.results.inputs import Producer
from node.pipeline.scope import age_years
from tests.results.conftest import dciodvfy_errors
from tests.support.paths import CXR_DICOM

DATA = Path(__file__).resolve().parents[1] / "data"
HINTS = ("BodyPartExamined", "ViewPosition", "SeriesDescription", "StudyDescription")
NOT_CHEST = ("Kodak_CR500_hand_J2KR.dcm", "WG04_RG2_CR_Fuji_hip_EVRLE.dcm")
CHEST = ("WG04_RG1_CR_Philips_chest_EVRLE.dcm", "Canon_DX_chest_PA_J2KR.dcm")


@pytest.fixture(scope="module")
def models(tiny_models: dict[str, Path]) -> Models:
    settings = Settings.model_validate(
        {"models": {"deblur": None, "classify": str(tiny_models["classify"]), "providers": "cpu"}}
    )
    return load_models(settings)


def _stripped(ds: pydicom.Dataset) -> pydicom.Dataset:
    for keyword in HINTS:
        if keyword in ds:
            delattr(ds, keyword)
    return ds


def _shared(name: str) -> Path:
    path = CXR_DICOM / name
    if not path.is_file():
        pytest.skip(f"shared radiograph absent: {path}")
    return path


@pytest.mark.parametrize("strip", [False, True])
def test_dog_thorax_is_not_analysed(models: Models, strip: bool, tmp_path: Path) -> None:
    ds = pydicom.dcmread(DATA / "dx_canine_thorax.dcm")
    a = analyse(_stripped(ds) if strip else ds, models)
    assert a.scope is not None and not a.scope.in_scope
    assert not a.findings and a.heatmap is None
    codes = {c for c, _ in a.scope.reasons}
    assert "SR-SCOPE-IMAGE" in codes  # the pixels alone say it
    results = dict(build_results(a, Settings().results, Producer()))
    assert set(results) == {"sc", "sr"}  # no overlay, presentation state or SEG
    sr = results["sr"]
    text = str(sr)
    assert "SR-NOT-ANALYSED" in text and "SR-SCOPE-IMAGE" in text
    assert "Pneumonia" not in text
    out = tmp_path / "sr.dcm"
    sr.save_as(out, enforce_file_format=True)
    assert not dciodvfy_errors(out)


@pytest.mark.parametrize("name", NOT_CHEST)
@pytest.mark.parametrize("strip", [False, True])
def test_hand_and_hip_are_not_analysed(models: Models, name: str, strip: bool) -> None:
    ds = pydicom.dcmread(_shared(name))
    a = analyse(_stripped(ds) if strip else ds, models)
    assert a.scope is not None and not a.scope.in_scope, a.scope
    assert not a.findings and a.heatmap is None
    codes = {c for c, _ in a.scope.reasons}
    assert "SR-SCOPE-IMAGE" in codes
    if not strip:
        assert "SR-SCOPE-BODYPART" in codes


@pytest.mark.parametrize("name", CHEST)
@pytest.mark.parametrize("strip", [False, True])
def test_chest_radiographs_are_analysed(models: Models, name: str, strip: bool) -> None:
    ds = pydicom.dcmread(_shared(name))
    a = analyse(_stripped(ds) if strip else ds, models)
    assert a.scope is not None and a.scope.in_scope, a.scope
    assert a.findings


def test_header_checks_and_their_switches(models: Models, tiny_models: dict[str, Path]) -> None:
    ds = pydicom.dcmread(_shared(CHEST[0]))
    ds.ViewPosition = "LL"
    a = analyse(ds, models)
    assert a.scope is not None and [c for c, _ in a.scope.reasons] == ["SR-SCOPE-VIEW"]
    ds.ViewPosition = "PA"
    ds.PatientAge = "045Y"
    a = analyse(ds, models)
    assert a.scope is not None and [c for c, _ in a.scope.reasons] == ["SR-SCOPE-AGE"]
    assert "045" not in a.scope.summary()  # no patient values in what is logged
    relaxed = load_models(
        Settings.model_validate(
            {
                "models": {"deblur": None, "classify": str(tiny_models["classify"])},
                "scope": {"check_age": False},
            }
        )
    )
    assert analyse(ds, relaxed).findings


def test_age_strings() -> None:
    assert age_years("005Y") == 5 and age_years("018M") == 1.5
    assert age_years("62") == 62  # a bare number, as some exports write it: years
    assert age_years("") is None and age_years("abc") is None
