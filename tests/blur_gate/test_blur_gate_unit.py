"""The blur gate on real radiographs: score, decision, robustness, policy, the notice SR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from node.config import BlurGateSettings, ConfigError, load_settings
from node.pipeline.blur_gate import (
    BANNER_RGB,
    BlurAssessment,
    assess,
    build_notice_sc,
    build_notice_sr,
    decide,
    score_image,
    should_correct,
)
from node.pipeline.preprocess import UnsupportedImage
from node.pipeline.results.inputs import Producer
from tests.blur_gate.radiographs import blurred, mhh_test_images, write_cr
from tests.results.conftest import dciodvfy_errors

GATE = BlurGateSettings()


def test_sharp_real_radiographs_pass_and_blurred_ones_are_flagged() -> None:
    for img in mhh_test_images(6):
        sharp = score_image(img, GATE)
        assert decide(sharp, GATE) == "sharp", sharp
        five = score_image(blurred(img, 5), GATE)
        twelve = score_image(blurred(img, 12), GATE)
        assert sharp < five < twelve
        assert decide(twelve, GATE) in ("blurred", "severe")


def test_monochrome1_scores_like_monochrome2(tmp_path: Path) -> None:
    img = mhh_test_images(1)[0]
    write_cr(tmp_path / "m2.dcm", img)
    write_cr(tmp_path / "m1.dcm", img, photometric="MONOCHROME1")
    m2 = assess(pydicom.dcmread(tmp_path / "m2.dcm"), GATE)
    m1 = assess(pydicom.dcmread(tmp_path / "m1.dcm"), GATE)
    assert m1.score == pytest.approx(m2.score, abs=0.01)
    assert m1.decision == m2.decision == "sharp"


def test_collimation_border_and_small_crop_do_not_make_blur() -> None:
    img = mhh_test_images(1)[0]
    framed = img.copy()
    h, w = framed.shape
    framed[: h // 8], framed[-h // 8 :], framed[:, : w // 8], framed[:, -w // 8 :] = 1, 1, 1, 1
    assert decide(score_image(framed, GATE), GATE) == "sharp"
    crop = img[h // 3 : h // 3 + 160, w // 3 : w // 3 + 160]
    assert decide(score_image(crop, GATE), GATE) == "sharp"
    assert decide(score_image(blurred(framed, 12), GATE), GATE) != "sharp"


def test_thresholds_and_policies() -> None:
    g = BlurGateSettings(blurred_from=0.4, severe_from=0.6)
    assert [decide(v, g) for v in (0.3, 0.4, 0.59, 0.6)] == [
        "sharp",
        "blurred",
        "blurred",
        "severe",
    ]
    assert decide(float("nan"), g) == "blurred"
    sharp, blur = BlurAssessment(0.3, "sharp", 0.1), BlurAssessment(0.5, "blurred", 0.1)
    assert should_correct("always", sharp) and should_correct("always", blur)
    assert not should_correct("never", blur)
    assert not should_correct("when_blurred", sharp) and should_correct("when_blurred", blur)
    assert should_correct("when_blurred", None)  # gate off: correct


def test_config_checks_thresholds_and_notice_destinations(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("blur_gate: {blurred_from: 0.5, severe_from: 0.4}\n")
    with pytest.raises(ConfigError, match="severe_from"):
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
    text = str(notice)
    assert "Motion blur assessment" in text and "SR-BLUR-SCORE" in text
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


def test_too_small_to_judge_is_refused_with_a_reason() -> None:
    with pytest.raises(UnsupportedImage, match="too small for a blur assessment"):
        score_image(np.zeros((8, 300), dtype=np.float32), GATE)
