"""The fifty-sixth round's estimate as a node setting (``blur_gate.
estimate_clear_of_shadows_from_mm`` and ``..._finer_than_mm``, the default since
sharpray-blind-wiener 0.42.0; 0.44.0 with the fifty-seventh round): config and environment → policy and the correction's identity;
and through the node's gate, a small frame whose collimation stayed sharp while the anatomy moved
3 mm is found blurred, where the windows nearest the centre (0.40.0) miss it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur import assess_motion
from models.tune_deconvolution import collimate
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    ACROSS_DETECTOR_RL_MEAN_VERSION,
    ACROSS_RL_MEAN_VERSION,
    CLEAR_DETECTOR_RL_MEAN_VERSION,
    SHADOW_DETECTOR_RL_MEAN_VERSION,
)
from tests.support.synthetic import power_law_field

NAME = "estimate_clear_of_shadows_from_mm"
CORNERS = "SHARPRAY_BLUR_GATE__SHADOWS_WHOLE_CORNERS"
#: the kernel's length as the estimate's, as up to 0.44.0
ACROSS = "SHARPRAY_BLUR_GATE__KERNEL_LENGTH_ACROSS_UP_TO_PX"
FINER = "estimate_clear_of_shadows_finer_than_mm"
#: the estimate's windows as up to 0.40.0, the shadows found as up to 0.42.0
OFF = {f"SHARPRAY_BLUR_GATE__{NAME.upper()}": "null", CORNERS: "false", ACROSS: "null"}


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    assert (getattr(default.blur_gate, NAME), getattr(default.blur_gate, FINER)) == (2.0, 0.4)
    p = policy_of(default.blur_gate)
    assert p.estimate_avoids_shadows
    assert (p.clear_windows_from_mm, p.clear_windows_finer_than_mm) == (2.0, 0.4)
    built = load_settings(cfg, environ=OFF)
    assert getattr(built.blur_gate, NAME) is None
    assert not policy_of(built.blur_gate).estimate_avoids_shadows
    shipped = load_models(default).deblur.info
    before = load_models(built).deblur.info
    assert shipped.version == ACROSS_DETECTOR_RL_MEAN_VERSION == "0.46.0"
    square = load_settings(cfg, environ={CORNERS: "false", ACROSS: "null"})
    assert load_models(square).deblur.info.version == CLEAR_DETECTOR_RL_MEAN_VERSION == "0.42.0"
    assert before.version == SHADOW_DETECTOR_RL_MEAN_VERSION == "0.40.0"
    assert shipped.device_uid != before.device_uid
    # other limits say theirs
    other = load_settings(
        cfg,
        environ={f"SHARPRAY_BLUR_GATE__{NAME.upper()}": "1.5", CORNERS: "false", ACROSS: "null"},
    )
    assert load_models(other).deblur.info.version == "0.40.0+clear-1.5mm-finer-0.4mm"
    cfg.write_text(
        f"blur_gate:\n  {FINER}: null\n  shadows_whole_corners: false\n"
        "  kernel_length_across_up_to_px: null\n"
    )
    everywhere = load_settings(cfg, environ={})
    assert policy_of(everywhere.blur_gate).clear_windows_finer_than_mm is None
    assert load_models(everywhere).deblur.info.version == "0.40.0+clear-2mm"
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    plain = load_models(load_settings(cfg, environ={})).deblur.info
    assert plain.version == ACROSS_RL_MEAN_VERSION == "0.45.0"


def test_a_small_frame_behind_sharp_collimation_is_found_blurred(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    on = policy_of(load_settings(cfg, environ={}).blur_gate)
    built = policy_of(load_settings(cfg, environ=OFF).blur_gate)
    open_frame = power_law_field(672, 3, 1.3, 0.2, 0.8).astype(np.float32)
    moved = simulate_motion_blur(open_frame, linear_kernel(15.0, 30.0), noise=NoiseSpec(None))
    blurred = collimate(moved)  # the collimator and the marker did not move
    assert not assess_motion(blurred, 0.2, built).blurred
    seen = assess_motion(blurred, 0.2, on)
    assert seen.blurred and 2.0 <= seen.motion_mm < 4.0
    # the sharp frame stays sharp either way
    assert not assess_motion(collimate(open_frame), 0.2, on).blurred
