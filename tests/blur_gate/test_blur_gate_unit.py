"""The blur gate on real radiographs: score, decision, robustness, policy, the notice SR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from models.blur_estimate import MotionEstimate
from models.deblur import MotionAssessment, MotionPolicy
from node.config import BlurGateSettings, ConfigError, load_settings
from node.pipeline.blur_gate import (
    BANNER_RGB,
    BlurAssessment,
    assess,
    assumed_spacing_mm,
    build_notice_sc,
    build_notice_sr,
    decision_text,
    pixel_spacing_mm,
    policy,
    should_correct,
)
from node.pipeline.preprocess import UnsupportedImage
from node.pipeline.results.inputs import Producer
from tests.blur_gate.radiographs import blurred, mhh_test_images, write_cr
from tests.results.conftest import dciodvfy_errors
from tests.support.sr_content import measurement_groups, ohif_ready, pixelmed_sr_errors

GATE = BlurGateSettings()
MHH_SPACING = 0.6  # the MHH PNGs: 640 px for a 35-43 cm field


def _assess(path: Path, img: np.ndarray, spacing: float = MHH_SPACING, **kw: str) -> BlurAssessment:
    write_cr(path, img, **kw)
    ds = pydicom.dcmread(path)
    ds.ImagerPixelSpacing = [spacing, spacing]
    return assess(ds, GATE)


def test_sharp_real_radiographs_pass_and_blurred_ones_are_flagged(tmp_path: Path) -> None:
    for i, img in enumerate(mhh_test_images(6)):
        sharp = _assess(tmp_path / f"s{i}.dcm", img)
        assert sharp.decision == "sharp", sharp.to_detail()
        assert sharp.score == 0.0
        # 10 px at 0.6 mm: 6 mm of motion
        moved = _assess(tmp_path / f"b{i}.dcm", blurred(img, 10, angle=20.0 * i))
        assert moved.decision == "severe", moved.to_detail()
        assert moved.score == pytest.approx(6.0, abs=1.0)
        angle_error = (moved.motion.estimate.angle_deg - 20.0 * i + 90) % 180 - 90
        assert abs(angle_error) < 8


def test_pixel_spacing_turns_pixels_into_mm(tmp_path: Path) -> None:
    img = blurred(mhh_test_images(1)[0], 8)
    at_06 = _assess(tmp_path / "a.dcm", img, 0.6)
    at_02 = _assess(tmp_path / "b.dcm", img, 0.2)
    assert at_06.score == pytest.approx(3 * at_02.score, rel=0.05)
    assert at_02.decision == "blurred" and at_06.decision == "severe"
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    del ds.ImagerPixelSpacing
    assert pixel_spacing_mm(ds) is None
    ds.PixelSpacing = [0.3, 0.3]
    assert pixel_spacing_mm(ds) == pytest.approx(0.3)
    ds.PixelSpacing = [0, 0]
    assert pixel_spacing_mm(ds) is None
    no_spacing = assess(ds, GATE)
    assert no_spacing.spacing_assumed
    # 430 mm over the 640 px side: the MHH images' own spacing, near enough
    assert no_spacing.motion.pixel_spacing_mm == pytest.approx(430 / max(img.shape))
    assert no_spacing.score == pytest.approx(at_06.score, rel=0.15)
    assert no_spacing.decision == "severe"
    assert "assumed pixel spacing 0.67 mm" in decision_text(no_spacing.report())


def test_assumed_spacing_comes_from_the_image_size_within_its_range() -> None:
    assert assumed_spacing_mm((2150, 1720), GATE) == pytest.approx(0.2)
    assert assumed_spacing_mm((599, 640), GATE) == pytest.approx(0.672, abs=0.001)
    assert assumed_spacing_mm((224, 224), GATE) == 0.7  # a thumbnail is not 2 mm pixels
    assert assumed_spacing_mm((8000, 8000), GATE) == 0.1
    fixed = BlurGateSettings(assumed_pixel_spacing_mm=0.15)
    assert assumed_spacing_mm((640, 640), fixed) == 0.15
    wide = BlurGateSettings(assumed_field_mm=215)
    assert assumed_spacing_mm((2150, 1720), wide) == pytest.approx(0.1)


def test_monochrome1_scores_like_monochrome2(tmp_path: Path) -> None:
    img = blurred(mhh_test_images(1)[0], 8)
    m2 = _assess(tmp_path / "m2.dcm", img)
    m1 = _assess(tmp_path / "m1.dcm", img, photometric="MONOCHROME1")
    assert m1.score == pytest.approx(m2.score, abs=0.2)
    assert m1.decision == m2.decision == "severe"


def test_collimation_border_and_small_crop_do_not_make_blur(tmp_path: Path) -> None:
    img = mhh_test_images(1)[0]
    framed = img.copy()
    h, w = framed.shape
    framed[: h // 8], framed[-h // 8 :], framed[:, : w // 8], framed[:, -w // 8 :] = 1, 1, 1, 1
    assert _assess(tmp_path / "f.dcm", framed).decision == "sharp"
    crop = img[h // 3 : h // 3 + 160, w // 3 : w // 3 + 160]
    assert _assess(tmp_path / "c.dcm", crop).decision == "sharp"
    assert _assess(tmp_path / "fb.dcm", blurred(framed, 12)).decision != "sharp"


def _assessment(mm: float, specificity: float) -> BlurAssessment:
    g = policy(GATE)
    from models.deblur import decide

    est = MotionEstimate(mm / 0.2, 0.0, 0.7, 1, specificity)
    return BlurAssessment(MotionAssessment(est, 0.2, decide(est, 0.2, g)), False, 0.1)


def test_thresholds_and_policies() -> None:
    assert [_assessment(mm, 0.2).decision for mm in (0.5, 1.0, 2.9, 3.0)] == [
        "sharp",
        "blurred",
        "blurred",
        "severe",
    ]
    assert _assessment(5.0, 0.01).decision == "sharp"  # not specific: no motion found
    assert _assessment(5.0, float("nan")).decision == "sharp"
    sharp, blur = _assessment(0.5, 0.2), _assessment(2.0, 0.2)
    assert should_correct("always", sharp) and should_correct("always", blur)
    assert not should_correct("never", blur)
    assert not should_correct("when_blurred", sharp) and should_correct("when_blurred", blur)
    assert should_correct("when_blurred", None)  # gate off: correct


def test_a_very_strong_fit_needs_less_specificity() -> None:
    from dataclasses import replace

    from models.deblur import decide

    g = policy(GATE)
    assert g.strong_fit_confidence == 0.65 and g.strong_fit_min_specificity == 0.05

    def decision(confidence: float, specificity: float, pol: MotionPolicy = g) -> str:
        return decide(MotionEstimate(10.0, 0.0, confidence, 1, specificity), 0.2, pol)

    assert decision(0.7, 0.07) == "blurred"  # the second way
    assert decision(0.6, 0.07) == "sharp"  # not strong enough for it, not specific for the first
    assert decision(0.7, 0.04) == "sharp"  # strong but not specific at all
    assert decision(0.5, 0.12) == "blurred"  # the first way
    assert decision(0.4, 0.12) == "sharp"
    off = replace(g, strong_fit_confidence=None)
    assert decision(0.9, 0.07, off) == "sharp"
    assert decision(float("nan"), 0.2) == "sharp"


def test_config_checks_thresholds_and_notice_destinations(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("blur_gate: {blurred_from_mm: 2, severe_from_mm: 1}\n")
    with pytest.raises(ConfigError, match="severe_from_mm"):
        load_settings(cfg, environ={})
    cfg.write_text("blur_gate: {notify_to: [qa]}\n")
    with pytest.raises(ConfigError, match="notify_to names destination 'qa'"):
        load_settings(cfg, environ={})
    cfg.write_text("blur_gate: {notify_to: [sender]}\npipelines: {full: {correct: when_blurred}}\n")
    s = load_settings(cfg, environ={})
    assert s.blur_gate.notify_to == ["sender"] and s.pipelines["full"].correct == "when_blurred"


def test_notice_sr_is_valid_and_says_the_decision(tmp_path: Path) -> None:
    img = mhh_test_images(1)[0]
    src = write_cr(tmp_path / "src.dcm", blurred(img, 10))
    ds = pydicom.dcmread(tmp_path / "src.dcm")
    blur = assess(ds, GATE)
    assert blur.decision != "sharp"
    notice = build_notice_sr(ds, blur, Producer())
    out = tmp_path / "notice.dcm"
    notice.save_as(out, enforce_file_format=True)
    assert not dciodvfy_errors(out)
    assert pixelmed_sr_errors(out) in ([], None)  # None: pixelmed-apps not installed
    assert ohif_ready(notice) == []  # the motion is inferred from the whole image: OHIF draws it
    (group,) = measurement_groups(notice)
    assert "Motion blur check: MOTION BLURRED" in group.comments[0]
    text = str(notice)
    assert "Motion blur assessment" in text and "SR-MOTION-MM" in text
    assert "not a diagnosis" in notice.SeriesDescription
    assert notice.StudyInstanceUID == src.StudyInstanceUID
    assert src.SOPInstanceUID in {
        str(r.ReferencedSOPInstanceUID)
        for s in notice.CurrentRequestedProcedureEvidenceSequence
        for se in s.ReferencedSeriesSequence
        for r in se.ReferencedSOPSequence
    }
    # same input, same notice UID (a retried job overwrites, never duplicates)
    assert build_notice_sr(ds, blur, Producer()).SOPInstanceUID == notice.SOPInstanceUID


def test_notice_sc_has_a_banner_in_the_decision_colour_and_is_valid(tmp_path: Path) -> None:
    img = mhh_test_images(1)[0]
    for name, length, colour in (("sharp", 0, BANNER_RGB["sharp"]), ("blur", 12, None)):
        write_cr(tmp_path / f"{name}.dcm", blurred(img, length), photometric="MONOCHROME1")
        ds = pydicom.dcmread(tmp_path / f"{name}.dcm")
        blur = assess(ds, GATE)
        sc = build_notice_sc(ds, blur, Producer())
        out = tmp_path / f"{name}-sc.dcm"
        sc.save_as(out, enforce_file_format=True)
        assert not dciodvfy_errors(out)
        assert sc.PhotometricInterpretation == "RGB" and sc.BurnedInAnnotation == "YES"
        assert "not a diagnosis" in sc.SeriesDescription
        assert (sc.Rows, sc.Columns) == img.shape
        pixels = sc.pixel_array
        assert tuple(int(v) for v in pixels[1, -2]) == BANNER_RGB[blur.decision]
        if colour is not None:
            assert blur.decision == "sharp"
        else:
            assert blur.decision != "sharp"
        # below the banner: the image in grey, shown bright = dense like the original
        body = pixels[pixels.shape[0] // 2 :]
        assert np.array_equal(body[..., 0], body[..., 1])
        shown = np.rint(np.clip(blurred(img, length), 0, 1) * 255)[img.shape[0] // 2 :]
        assert np.corrcoef(body[..., 0].ravel(), shown.ravel())[0, 1] > 0.95


def test_too_small_to_judge_is_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImage, match="too small"):
        _assess(tmp_path / "t.dcm", np.zeros((8, 300), dtype=np.float32))
