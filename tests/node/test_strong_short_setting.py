"""The forty-second round's gate rule as the node's default (``blur_gate.strong_fit_blurred_*``):
a strong, specific fit counts as blurred from 0.8 mm — config → policy, the correction's identity,
the gate's decision on a frame moved 0.9 mm, and that frame corrected sharper
(docs/models.md, "A strong fit a little short of 1 mm")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from skimage.metrics import peak_signal_noise_ratio

from models.blur import linear_kernel, simulate_motion_blur
from node.app import load_models
from node.config import ConfigError, load_settings
from node.pipeline.blur_gate import assess
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    DETECTOR_DRAWN_RL_MEAN_VERSION,
    DRAWN_RL_MEAN_VERSION,
    NOISE_PENALTY_RL_MEAN_VERSION,
    SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION,
    Corrector,
)
from tests.support.settings import WHOLE_FRAME
from tests.support.synthetic import make_cr, power_law_field


def test_the_rule_is_the_default_and_the_setting_reaches_policy_and_identity(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ=WHOLE_FRAME)
    gate = default.blur_gate
    assert (gate.strong_fit_blurred_from_mm, gate.strong_fit_blurred_confidence) == (0.8, 0.7)
    assert gate.strong_fit_blurred_specificity == 0.15
    pol = policy_of(gate)
    assert (pol.strong_short_from_mm, pol.strong_short_min_confidence) == (0.8, 0.7)
    assert pol.strong_short_min_specificity == 0.15
    assert load_models(default).deblur.info.version == SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION
    # the versions of the step at 0.6 mm: the native-pixel network (on since 0.34.0) off
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    shipped = load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info
    assert shipped.version == DRAWN_RL_MEAN_VERSION == "0.31.0"
    cfg.write_text(
        "models:\n  kernel_shape_detector: off\nblur_gate:\n  strong_fit_blurred_from_mm: null\n"
    )
    before = load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info
    assert before.version == NOISE_PENALTY_RL_MEAN_VERSION == "0.25.0"
    assert before.device_uid != shipped.device_uid
    env = {"SHARPRAY_BLUR_GATE__STRONG_FIT_BLURRED_CONFIDENCE": "0.75"}
    cfg.write_text("models: {}\n")
    assert policy_of(load_settings(cfg, environ=env).blur_gate).strong_short_min_confidence == 0.75
    cfg.write_text(
        "models:\n  kernel_shape_detector: kernel-magnitude\nblur_gate:\n"
        "  shape_detector_min_quanta: null\n  shape_detector_max_specificity: null\n"
    )
    detector = load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info
    assert detector.version == DETECTOR_DRAWN_RL_MEAN_VERSION == "0.32.0"
    cfg.write_text("blur_gate:\n  blurred_from_mm: 0.7\n")
    with pytest.raises(ConfigError, match="strong_fit_blurred_from_mm"):
        load_settings(cfg, environ=WHOLE_FRAME)


def test_a_frame_moved_0_9_mm_with_a_strong_fit_is_flagged_and_corrected(tmp_path: Path) -> None:
    """A power-law field at 0.2 mm/px moved 4.5 px (0.9 mm) in a straight line: the gate's
    estimate is 0.9 mm with a strong, specific fit — "sharp" without the rule, "blurred" with
    it — and the node's correction with that estimate is more than 1 dB sharper than its input."""
    sharp = power_law_field(512, 0, 1.5, 0.2, 0.8)
    moved = simulate_motion_blur(sharp, linear_kernel(4.5, 70.0), np.random.default_rng(0))
    path = tmp_path / "moved.dcm"
    make_cr(path, 512, 512)
    ds = pydicom.dcmread(path)
    ds.PixelData = np.rint(np.clip(moved, 0, 1) * 4095).astype(np.uint16).tobytes()
    ds.ImagerPixelSpacing = [0.2, 0.2]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    on = load_settings(cfg, environ=WHOLE_FRAME).blur_gate
    cfg.write_text("blur_gate:\n  strong_fit_blurred_from_mm: null\n")
    off = load_settings(cfg, environ=WHOLE_FRAME).blur_gate
    flagged, left = assess(ds, on), assess(ds, off)
    assert left.decision == "sharp" and flagged.decision == "blurred"
    assert 0.8 <= flagged.score < 1.0
    assert flagged.motion.estimate.confidence >= 0.7
    assert flagged.motion.estimate.specificity >= 0.15
    unit = np.rint(np.clip(moved, 0, 1) * 4095) / 4095
    corrected = Corrector(policy_of(on))(unit.astype(np.float32), flagged.motion)
    before = peak_signal_noise_ratio(sharp, unit, data_range=1.0)
    after = peak_signal_noise_ratio(sharp, corrected.image, data_range=1.0)
    assert after > before + 1.0
