"""The fifty-sixth round's estimate as a node setting (``blur_gate.
estimate_clear_of_shadows_from_mm``): config and environment → policy and the correction's
identity; and through the node's gate, a small frame whose collimation stayed sharp while the
anatomy moved 3 mm is found blurred, where the windows nearest the centre miss it."""

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
    CLEAR_DETECTOR_RL_MEAN_VERSION,
    CLEAR_RL_MEAN_VERSION,
    SHADOW_DETECTOR_RL_MEAN_VERSION,
)
from tests.support.synthetic import power_law_field

NAME = "estimate_clear_of_shadows_from_mm"


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    built = load_settings(cfg, environ={})
    env = {f"SHARPRAY_BLUR_GATE__{NAME.upper()}": "2.0"}
    clear = load_settings(cfg, environ=env)
    assert getattr(clear.blur_gate, NAME) == 2.0
    p = policy_of(clear.blur_gate)
    assert p.estimate_avoids_shadows and p.clear_windows_from_mm == 2.0
    off = policy_of(built.blur_gate)
    assert not off.estimate_avoids_shadows and off.clear_windows_from_mm is None
    shipped = load_models(built).deblur.info
    on = load_models(clear).deblur.info
    assert shipped.version == SHADOW_DETECTOR_RL_MEAN_VERSION
    assert on.version == CLEAR_DETECTOR_RL_MEAN_VERSION == "0.42.0"
    assert on.device_uid != shipped.device_uid
    other = load_settings(cfg, environ={f"SHARPRAY_BLUR_GATE__{NAME.upper()}": "1.5"})
    assert load_models(other).deblur.info.version == "0.40.0+clear-1.5mm"
    cfg.write_text(f"models:\n  kernel_shape_detector: off\nblur_gate:\n  {NAME}: 2.0\n")
    plain = load_models(load_settings(cfg, environ={})).deblur.info
    assert plain.version == CLEAR_RL_MEAN_VERSION == "0.41.0"


def test_a_small_frame_behind_sharp_collimation_is_found_blurred(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"blur_gate:\n  {NAME}: 2.0\n")
    on = policy_of(load_settings(cfg, environ={}).blur_gate)
    cfg.write_text("models: {}\n")
    built = policy_of(load_settings(cfg, environ={}).blur_gate)
    open_frame = power_law_field(672, 3, 1.3, 0.2, 0.8).astype(np.float32)
    moved = simulate_motion_blur(open_frame, linear_kernel(15.0, 30.0), noise=NoiseSpec(None))
    blurred = collimate(moved)  # the collimator and the marker did not move
    assert not assess_motion(blurred, 0.2, built).blurred
    seen = assess_motion(blurred, 0.2, on)
    assert seen.blurred and 2.0 <= seen.motion_mm < 4.0
    # the sharp frame stays sharp either way
    assert not assess_motion(collimate(open_frame), 0.2, on).blurred
