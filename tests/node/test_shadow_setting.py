"""The fifty-fourth round's correction as a node setting (``blur_gate.fallback_leaves_shadows``,
the default since sharpray-blind-wiener 0.40.0): config and environment → policy, the
correction's identity, and a frame whose collimation stayed sharp while the anatomy moved,
through the node's corrector: the shadows come back as received and the SR's method says they
were left out."""

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
    ACROSS_DETECTOR_RL_MEAN_VERSION,
    SHADOW_DETECTOR_RL_MEAN_VERSION,
    SHADOW_RL_MEAN_VERSION,
    SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION,
)
from tests.support.settings import gate_setting
from tests.support.synthetic import power_law_field

#: the motion estimate's windows as built up to 0.40.0 (the fifty-sixth round's setting off;
#: the kernel's length the estimate's, as up to 0.44.0)
BUILT_WINDOWS = (
    "blur_gate:\n  estimate_clear_of_shadows_from_mm: null\n  shadows_whole_corners: false\n"
    "  kernel_length_across_up_to_px: null\n"
)
OFF = BUILT_WINDOWS + "  fallback_leaves_shadows: false\n"


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    assert default.blur_gate.fallback_leaves_shadows is True
    # on the fifty-seventh round's default (0.44.0) and on the chain it sits on (0.40.0)
    assert load_models(default).deblur.info.version == ACROSS_DETECTOR_RL_MEAN_VERSION
    cfg.write_text(f"models: {{}}\n{BUILT_WINDOWS}")
    shipped = load_models(load_settings(cfg, environ={})).deblur.info
    assert shipped.version == SHADOW_DETECTOR_RL_MEAN_VERSION == "0.40.0"
    off = gate_setting(cfg, OFF, "fallback_leaves_shadows", False, True)
    info = load_models(off).deblur.info
    assert info.version == SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION == "0.34.0"
    assert info.device_uid != shipped.device_uid
    cfg.write_text(f"models:\n  kernel_shape_detector: off\n{BUILT_WINDOWS}")
    assert load_models(load_settings(cfg, environ={})).deblur.info.version == (
        SHADOW_RL_MEAN_VERSION
    )


def test_sharp_shadows_come_back_as_received_and_the_sr_says_so(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")  # the default
    deblur = load_models(load_settings(cfg, environ={})).deblur
    open_frame = power_law_field(1024, 3, 1.3, 0.2, 0.8).astype(np.float32)
    moved = simulate_motion_blur(open_frame, linear_kernel(16.0, 30.0), noise=NoiseSpec(None))
    blurred = collimate(moved)  # the collimator and the marker did not move
    motion = assess_motion(blurred, 0.2, deblur.policy)
    assert motion.blurred
    out = deblur(blurred, motion)
    assert out.applied and out.method.startswith("Richardson-Lucy deconvolution (")
    assert "of the frame (shadows that need not have moved" in out.method
    assert out.method.endswith("left out of the fit and returned unchanged")
    shadows = find_shadows(blurred)
    assert shadows.any() and np.array_equal(out.image[shadows], blurred[shadows])
