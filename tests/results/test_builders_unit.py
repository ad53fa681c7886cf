"""Fast checks of the builders' input validation and of the header sanitiser (no shared data)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from models.manifest import CodedConcept
from node.pipeline.results.common import NOT_FOR_DIAGNOSTIC_USE, fit_text
from node.pipeline.results.inputs import Analysis, Finding, Producer
from node.pipeline.results.sanitize import sanitize_header
from node.pipeline.results.sc import build_corrected_sc
from node.pipeline.results.sr import build_report_sr

from .test_result_objects import CLASSIFIER, DEBLUR, corrected_from

PNEUMONIA = CodedConcept(value="233604007", scheme="SCT", meaning="Pneumonia")


@pytest.fixture
def source(tmp_path: Path) -> pydicom.Dataset:
    from tests.support.synthetic import make_cr

    path = tmp_path / "cr.dcm"
    make_cr(path, 64, 48, bits=10, photometric="MONOCHROME2", seed=1)
    return pydicom.dcmread(path)


def _analysis(src: pydicom.Dataset, **changes: object) -> Analysis:
    a = Analysis(
        source=src,
        corrected=corrected_from(src),
        deblur_model=DEBLUR,
        classifier_model=CLASSIFIER,
        findings=[Finding("pneumonia", PNEUMONIA, 0.25, True)],
    )
    return dataclasses.replace(a, **changes)  # type: ignore[arg-type]


def test_sanitize_repairs_copy_and_leaves_source_alone(source: pydicom.Dataset) -> None:
    source.PatientBirthDate = "d14a028c2a3a2bc9476102bb288234c4"
    source.StudyDate = "2004.08.26"
    source.StudyTime = "18:50:59"
    source.PatientAge = "62"
    source.PatientSex = "X"
    source.PixelSpacing = [0, 0]
    del source.StudyID
    before = {e.tag: e.value for e in source if e.tag != 0x7FE00010}

    out = sanitize_header(source)
    ds = out.dataset
    assert ds.PatientBirthDate == ""
    assert ds.StudyDate == "20040826"
    assert ds.StudyTime == "185059"
    assert "PatientAge" not in ds
    assert ds.PatientSex == ""
    assert "PixelSpacing" not in ds
    assert "StudyID" in ds and ds.StudyID in ("", None)
    assert "PixelData" not in ds
    assert len(out.changes) == 7
    assert {e.tag: e.value for e in source if e.tag != 0x7FE00010} == before
    assert "PixelData" in source


def test_sanitize_requires_uids(source: pydicom.Dataset) -> None:
    del source.StudyInstanceUID
    with pytest.raises(ValueError, match="StudyInstanceUID"):
        sanitize_header(source)


def test_sc_rejects_corrected_images_that_do_not_fit(source: pydicom.Dataset) -> None:
    producer = Producer()
    bad_shape = _analysis(source, corrected=np.zeros((10, 10), np.uint16))
    with pytest.raises(ValueError, match="shape"):
        build_corrected_sc(bad_shape, producer, generate_uid(), 1)
    floats = _analysis(source, corrected=source.pixel_array.astype(np.float32))
    with pytest.raises(TypeError, match="integer"):
        build_corrected_sc(floats, producer, generate_uid(), 1)
    too_big = _analysis(source, corrected=np.full(source.pixel_array.shape, 1 << 10, np.uint16))
    with pytest.raises(ValueError, match="bits stored"):
        build_corrected_sc(too_big, producer, generate_uid(), 1)
    bad_uid = _analysis(source, deblur_model=dataclasses.replace(DEBLUR, device_uid="1.2.abc"))
    with pytest.raises(ValueError, match="Device UID"):
        build_corrected_sc(bad_uid, producer, generate_uid(), 1)


def test_clinical_models_carry_no_demo_warning(source: pydicom.Dataset) -> None:
    clinical = dataclasses.replace(DEBLUR, demonstration_only=False)
    clf = dataclasses.replace(CLASSIFIER, demonstration_only=False)
    a = _analysis(source, deblur_model=clinical, classifier_model=clf)
    uid = generate_uid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sc = build_corrected_sc(a, Producer(), generate_uid(), 1, sop_instance_uid=uid)
        sr = build_report_sr(a, Producer(), sc, generate_uid(), 2)
    assert sc.SOPInstanceUID == uid
    assert NOT_FOR_DIAGNOSTIC_USE not in sc.SeriesDescription
    assert NOT_FOR_DIAGNOSTIC_USE not in sc.DerivationDescription
    assert NOT_FOR_DIAGNOSTIC_USE not in sr.SeriesDescription
    # the pneumonia probability 0.25 is below the threshold: "Absent"
    assert "272519000" in str(sr.ContentSequence)
    # no sharpness measured: no image-quality group
    assert "SR-BLUR-SRC" not in str(sr.ContentSequence)


def test_sr_refuses_an_sc_of_another_study(source: pydicom.Dataset) -> None:
    a = _analysis(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sc = build_corrected_sc(a, Producer(), generate_uid(), 1)
    sc.StudyInstanceUID = generate_uid()
    with pytest.raises(ValueError, match="another study"):
        build_report_sr(a, Producer(), sc, generate_uid(), 2)


def test_fit_text_keeps_the_warning() -> None:
    long = "x" * 100
    text = fit_text([long], 64, True)
    assert len(text) == 64 and text.endswith(NOT_FOR_DIAGNOSTIC_USE)
    assert fit_text(["a long one" * 10, "short"], 64, False) == "short"
