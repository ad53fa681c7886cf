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


# -- hot regions -------------------------------------------------------------------------------


def test_hot_regions_are_closed_outlines_of_the_thresholded_areas() -> None:
    from skimage.measure import points_in_poly

    from node.pipeline.results.regions import hot_regions

    from .conftest import standin_heatmap

    heat = standin_heatmap(200, 300)
    regions = hot_regions(heat, 0.5)
    assert len(regions) == 2
    assert regions[0].area_px > regions[1].area_px  # largest first
    assert regions[0].peak == pytest.approx(1.0, abs=1e-3)
    assert 0.79 < regions[1].peak < 0.81
    yy, xx = np.mgrid[0:200, 0:300]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    from skimage.measure import label

    labels = label(heat >= 0.5)
    for region in regions:
        pts = region.outline
        assert np.array_equal(pts[0], pts[-1]) and len(pts) >= 4
        assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= 300
        assert pts[:, 1].min() >= 0 and pts[:, 1].max() <= 200
        inside = points_in_poly(centres, pts).reshape(heat.shape)
        cy, cx = int(region.centroid[1]), int(region.centroid[0])
        mask = labels == labels[cy, cx]
        iou = (inside & mask).sum() / (inside | mask).sum()
        assert iou > 0.9, iou


def test_hot_regions_at_the_border_are_closed_and_inside_the_image() -> None:
    from node.pipeline.results.regions import hot_regions

    heat = np.zeros((50, 60), np.float32)
    heat[:20, 45:] = 1.0  # touches the top and right edges
    (region,) = hot_regions(heat, 0.5, tolerance=0.1)
    x, y = region.outline[:, 0], region.outline[:, 1]
    assert np.array_equal(region.outline[0], region.outline[-1])
    assert x.max() <= 60 and y.min() >= 0
    assert x.max() > 59 and y.min() < 1  # reaches the edges
    assert region.area_px == 20 * 15


def test_hot_regions_of_a_cold_or_bad_heatmap() -> None:
    from node.pipeline.results.regions import hot_regions

    assert hot_regions(np.zeros((32, 32), np.float32)) == []
    speck = np.zeros((100, 100), np.float32)
    speck[50, 50] = 1.0  # smaller than the minimum area
    assert hot_regions(speck) == []
    with pytest.raises(ValueError, match="2-D"):
        hot_regions(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        hot_regions(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="threshold"):
        hot_regions(np.zeros((8, 8)), 0.0)


# -- selection and build_results -----------------------------------------------------------------


def test_result_selection_from_kinds_and_settings() -> None:
    from node.config import ResultSettings
    from node.result_selection import RESULT_KINDS, ResultSelection

    assert ResultSelection().kinds() == list(RESULT_KINDS) == ["sc", "overlay", "gsps", "seg", "sr"]
    sel = ResultSelection.from_kinds(["sr", "sc"])
    assert sel.kinds() == ["sc", "sr"] and not sel.seg
    assert sel.union(ResultSelection.from_kinds(["seg"])).kinds() == ["sc", "seg", "sr"]
    with pytest.raises(ValueError, match="unknown result kind"):
        ResultSelection.from_kinds(["sc", "pdf"])
    settings = ResultSettings(seg=False)
    assert settings.selection() == ResultSelection(seg=False)
    with pytest.raises(ValueError):
        ResultSettings(region_threshold=1.5)


def _full_analysis(src: pydicom.Dataset, heat: np.ndarray | None) -> Analysis:
    return _analysis(
        src,
        heatmap=heat,
        findings=[Finding("pneumonia", PNEUMONIA, 0.25, True)],
        sharpness_before=0.5,
        sharpness_after=0.25,
    )


def test_build_results_uids_are_stable_and_follow_the_selection(source: pydicom.Dataset) -> None:
    from node.config import ResultSettings
    from node.pipeline.outputs import build_results

    from .conftest import standin_heatmap

    a = _full_analysis(source, standin_heatmap(int(source.Rows), int(source.Columns)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = dict(build_results(a, ResultSettings(), Producer()))
        again = dict(build_results(a, ResultSettings(), Producer()))
        no_seg = dict(build_results(a, ResultSettings(), Producer(), ["sc", "gsps", "sr"]))
        default_off = dict(
            build_results(a, ResultSettings(seg=False, overlay_sc=False), Producer())
        )
    assert list(first) == ["sc", "overlay", "gsps", "seg", "sr"]
    for kind, ds in first.items():
        assert again[kind].SOPInstanceUID == ds.SOPInstanceUID, kind
        assert again[kind].SeriesInstanceUID == ds.SeriesInstanceUID, kind
    assert list(no_seg) == ["sc", "gsps", "sr"] and list(default_off) == ["sc", "gsps", "sr"]
    # the SC and GSPS do not depend on the SEG; the SR does (it references it)
    assert no_seg["sc"].SOPInstanceUID == first["sc"].SOPInstanceUID
    assert no_seg["gsps"].SOPInstanceUID == first["gsps"].SOPInstanceUID
    assert no_seg["sr"].SOPInstanceUID != first["sr"].SOPInstanceUID
    assert no_seg["sr"].SeriesInstanceUID == first["sr"].SeriesInstanceUID
    # a re-run writes the same SR content identifiers (tracking UIDs)
    uids = [e.value for e in first["sr"].iterall() if e.keyword == "UID"]
    assert uids and uids == [e.value for e in again["sr"].iterall() if e.keyword == "UID"]


def test_build_results_without_heatmap_leaves_out_the_heatmap_objects(
    source: pydicom.Dataset,
) -> None:
    from node.config import ResultSettings
    from node.pipeline.outputs import build_results

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kinds = [
            k for k, _ in build_results(_full_analysis(source, None), ResultSettings(), Producer())
        ]
    assert kinds == ["sc", "sr"]


def test_cold_heatmap_gives_valid_objects_without_regions(
    source: pydicom.Dataset, tmp_path: Path
) -> None:
    from node.config import ResultSettings
    from node.pipeline.outputs import build_results

    from .conftest import dciodvfy_errors

    a = _full_analysis(source, np.zeros((int(source.Rows), int(source.Columns)), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = dict(build_results(a, ResultSettings(), Producer()))
    for kind, ds in results.items():
        path = tmp_path / f"{kind}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert not dciodvfy_errors(path), (kind, dciodvfy_errors(path))
    pr = results["gsps"]
    assert [a.GraphicLayer for a in pr.GraphicAnnotationSequence] == ["AI_TEXT"]
    texts = {str(e.value) for e in results["sr"].iterall() if e.keyword == "TextValue"}
    assert not any("evidence region" in t for t in texts)  # no hot region, no region group
    seg = results["seg"]
    assert seg.NumberOfFrames == 1 and not any(seg.PixelData)
    overlay = results["overlay"]
    rgb = overlay.pixel_array.astype(int)
    below = rgb[-12:]  # under the banner (which covers most of this 64-row image)
    assert (below.max(axis=2) == below.min(axis=2)).all()  # grey everywhere


def test_overlay_rendering_colours_only_the_hot_part() -> None:
    from node.pipeline.results.overlay import COLOUR_FROM, jet, render_overlay

    assert np.allclose(jet(np.array([0.0]))[0], [0, 0, 0.5])
    assert np.allclose(jet(np.array([1.0]))[0], [0.5, 0, 0])
    grey = np.tile(np.linspace(0, 1, 120, dtype=np.float32), (100, 1))
    heat = np.zeros_like(grey)
    heat[60:, 60:] = 1.0
    rgb = render_overlay(grey, heat, ["line one", "line two"]).astype(int)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    assert (chroma[60:, :60] == 0).all()
    assert (chroma[60:, 60:] > 50).all()
    assert (rgb[60:, :60, 0] == np.rint(grey[60:, :60] * 255)).all()
    assert heat[heat < COLOUR_FROM].size > 0
    with pytest.raises(ValueError, match="shape"):
        render_overlay(grey, heat[:10], [])


def test_overlay_banner_says_whether_the_image_under_the_heatmap_was_corrected(
    source: pydicom.Dataset,
) -> None:
    from node.pipeline.results.overlay import banner_lines

    producer = Producer()
    corrected = _analysis(source, classified="corrected", correction="Wiener deconvolution")
    line = banner_lines(corrected, producer)[2]
    assert line.startswith("Image: motion-corrected by") and DEBLUR.name in line
    # the gate found no motion: the image is the original and the banner must say so
    as_acquired = _analysis(
        source, classified="original", correction="not corrected: no relevant motion found"
    )
    assert banner_lines(as_acquired, producer)[2] == "Image: as acquired (not motion-corrected)"


def test_what_was_done_to_the_image_comes_before_the_model_s_general_description(
    source: pydicom.Dataset,
) -> None:
    """A long correction text (a mean of two corrections describes both) keeps all of what was
    done; the model's general description follows only where both fit the attribute."""
    method = "mean of two corrections: " + "; ".join(["Wiener deconvolution of 6 mm"] * 12)
    long_model = dataclasses.replace(DEBLUR, description="general words " * 40)
    a = _analysis(source, deblur_model=long_model, correction=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sc = build_corrected_sc(a, Producer(), generate_uid(), 1)
    assert f": {method}." in sc.DerivationDescription
    assert "general words" not in sc.DerivationDescription
    assert len(sc.DerivationDescription) <= 1024
    assert sc.DerivationDescription.endswith(NOT_FOR_DIAGNOSTIC_USE)
    short = _analysis(source, correction="Wiener deconvolution of 6 mm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sc = build_corrected_sc(short, Producer(), generate_uid(), 1)
    assert DEBLUR.description is not None and DEBLUR.description in sc.DerivationDescription
