"""The thirty-fourth round's check as a node setting (``blur_gate.kernel_consistency_min``):
config → policy, the correction's identity (version and Device UID) and what the SR says when
the check raised the regulariser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from models.blur import simulate_motion_blur, trajectory_kernel
from models.deblur import assess_motion
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    CONSISTENCY_RL_MEAN_VERSION,
    DRAWN_RL_MEAN_VERSION,
    NOISELESS_CONSISTENCY_RL_MEAN_VERSION,
    Corrector,
    wiener_info,
)
from tests.support.synthetic import power_law_field

#: the native-pixel network off (on by default since 0.34.0)
NO_DETECTOR = "models:\n  kernel_shape_detector: off\n"
#: ... and the fallback fitting the whole frame, as every version up to 0.36.0 did (the
#: kernel's length the estimate's, as up to 0.44.0)
WHOLE = (
    "  fallback_leaves_shadows: false\n  estimate_clear_of_shadows_from_mm: null\n"
    "  kernel_length_across_up_to_px: null\n"
)


def test_the_setting_reaches_the_policy_the_identity_and_the_sr_words(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    # the versions of the step at 0.6 mm: the native-pixel network (on since 0.34.0) off
    cfg.write_text(NO_DETECTOR + "blur_gate:\n" + WHOLE)
    default = load_settings(cfg, environ={})
    assert default.blur_gate.kernel_consistency_min is None  # off: see docs/models.md
    cfg.write_text(NO_DETECTOR + "blur_gate:\n" + WHOLE + "  kernel_consistency_min: 0.7\n")
    on = load_settings(cfg, environ={})
    policy = policy_of(on.blur_gate)
    assert policy.kernel_consistency_min == 0.7
    assert policy_of(default.blur_gate).kernel_consistency_min is None

    # the shipped models with the check: their own version and Device UID
    shipped, checked = load_models(default).deblur.info, load_models(on).deblur.info
    assert shipped.version == DRAWN_RL_MEAN_VERSION
    assert checked.version == CONSISTENCY_RL_MEAN_VERSION == "0.22.0"
    assert checked.device_uid != shipped.device_uid
    # without the shape step the version stays the plain Wiener one, the identity differs
    plain = wiener_info(policy_of(default.blur_gate))
    assert wiener_info(policy).version == plain.version
    assert wiener_info(policy).device_uid != plain.device_uid
    other_floor = dataclasses.replace(policy, kernel_consistency_balance=0.2)
    assert wiener_info(other_floor).device_uid != wiener_info(policy).device_uid

    # a quiet detector-scale frame blurred along a curve: the SR says why λ is larger
    sharp = power_law_field(512, 3, 1.3, 0.2, 0.8).astype(np.float32)
    blurred = simulate_motion_blur(sharp, trajectory_kernel(16.0, np.random.default_rng(5)))
    motion = assess_motion(blurred, 0.2, policy)
    said = Corrector(policy)(blurred, motion).method
    assert "regularisation 0.1 for a frame" in said or "regularisation 0.1 for the noise" in said
    assert "raised: the frame's spectrum follows the estimated kernel's poorly" in said
    unchecked = Corrector(policy_of(default.blur_gate))(blurred, motion).method
    assert "raised" not in unchecked and "regularisation 0.01" in unchecked


def test_the_check_for_frames_without_noise_as_a_setting(tmp_path: Path) -> None:
    """``blur_gate.kernel_consistency_min_quanta`` (the forty-fourth round): the check only where
    the measured noise is at least that many quanta per pixel; its own version and Device UID."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        NO_DETECTOR
        + "blur_gate:\n"
        + WHOLE
        + "  kernel_consistency_min: 0.7\n  kernel_consistency_min_quanta: 1.0e6\n"
    )
    settings = load_settings(cfg, environ={})
    policy = policy_of(settings.blur_gate)
    assert policy.kernel_consistency_min_quanta == 1e6
    info = load_models(settings).deblur.info
    assert info.version == NOISELESS_CONSISTENCY_RL_MEAN_VERSION == "0.29.0"
    everywhere = dataclasses.replace(policy, kernel_consistency_min_quanta=None)
    assert wiener_info(policy).device_uid != wiener_info(everywhere).device_uid
    # a frame without noise still gets the floor; the environment reaches the setting too
    sharp = power_law_field(512, 3, 1.3, 0.2, 0.8).astype(np.float32)
    blurred = simulate_motion_blur(sharp, trajectory_kernel(16.0, np.random.default_rng(5)))
    said = Corrector(policy)(blurred, assess_motion(blurred, 0.2, policy)).method
    assert "raised: the frame's spectrum follows the estimated kernel's poorly" in said
    env = {"SHARPRAY_BLUR_GATE__KERNEL_CONSISTENCY_MIN_QUANTA": "2e6"}
    assert load_settings(cfg, environ=env).blur_gate.kernel_consistency_min_quanta == 2e6
