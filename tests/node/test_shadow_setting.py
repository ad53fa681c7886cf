"""The fifty-third round's candidate as a node setting (``blur_gate.fallback_leaves_shadows``):
config and environment → policy, the correction's identity, and a frame whose collimation
stayed sharp while the anatomy moved, through the node's corrector: the shadows come back as
received and the SR's method says they were left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur import assess_motion
from models.shadows import find_shadows
from models.tune_deconvolution import collimate
from node.app import load_models
from node.config import load_settings
from node.pipeline.correct import (
    SHADOW_DETECTOR_RL_MEAN_VERSION,
    SHADOW_RL_MEAN_VERSION,
    SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION,
)
from tests.support.settings import gate_setting
from tests.support.synthetic import power_law_field

ON = "blur_gate:\n  fallback_leaves_shadows: true\n"


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    assert default.blur_gate.fallback_leaves_shadows is False
    shipped = load_models(default).deblur.info
    assert shipped.version == SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION
    on = gate_setting(cfg, ON, "fallback_leaves_shadows", True, False)
    info = load_models(on).deblur.info
    assert info.version == SHADOW_DETECTOR_RL_MEAN_VERSION == "0.40.0"
    assert info.device_uid != shipped.device_uid
    cfg.write_text(ON + "models:\n  kernel_shape_detector: off\n")
    assert load_models(load_settings(cfg, environ={})).deblur.info.version == (
        SHADOW_RL_MEAN_VERSION
    )


def test_sharp_shadows_come_back_as_received_and_the_sr_says_so(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(ON)
    deblur = load_models(load_settings(cfg, environ={})).deblur
    open_frame = power_law_field(1024, 3, 1.3, 0.2, 0.8).astype(np.float32)
    moved = simulate_motion_blur(open_frame, linear_kernel(16.0, 30.0), noise=NoiseSpec(None))
    blurred = collimate(moved)  # the collimator and the marker did not move
    motion = assess_motion(blurred, 0.2, deblur.policy)
    assert motion.blurred
    out = deblur(blurred, motion)
    assert out.applied and "left out of the fit as shadows" in out.method
    shadows = find_shadows(blurred)
    assert shadows.any() and np.array_equal(out.image[shadows], blurred[shadows])
