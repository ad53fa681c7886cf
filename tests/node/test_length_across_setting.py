"""The kernel's length read across the motion (the sixty-first round, the default since
sharpray-blind-wiener 0.46.0): config and environment → policy, the correction's identity and
what the SR says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur, trajectory_kernel
from models.deblur import assess_motion
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    ACROSS_DETECTOR_RL_MEAN_VERSION,
    ACROSS_RL_MEAN_VERSION,
    CORNERS_DETECTOR_RL_MEAN_VERSION,
    CORNERS_RL_MEAN_VERSION,
    Corrector,
)
from tests.models.test_models_blur_estimate import phantom
from tests.support.settings import gate_setting
from tests.support.synthetic import power_law_field

NAME = "kernel_length_across_up_to_px"


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    gate = default.blur_gate
    assert (
        gate.kernel_length_across_up_to_px,
        gate.kernel_length_across_min_fit_gain,
        gate.kernel_length_across_max_template_drop,
    ) == (5.5, 0.25, 0.15)
    shipped = load_models(default).deblur.info
    assert shipped.version == ACROSS_DETECTOR_RL_MEAN_VERSION == "0.46.0"
    assert "up to 5.5 px, its length read from the spectrum along" in (shipped.description or "")
    off = gate_setting(cfg, f"blur_gate:\n  {NAME}: null\n", NAME, None, 4.0)
    before = load_models(off).deblur.info
    assert before.version == CORNERS_DETECTOR_RL_MEAN_VERSION == "0.44.0"
    assert before.device_uid != shipped.device_uid
    cfg.write_text(f"models:\n  kernel_shape_detector: off\nblur_gate:\n  {NAME}: null\n")
    assert load_models(load_settings(cfg, environ={})).deblur.info.version == (
        CORNERS_RL_MEAN_VERSION
    )
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    assert load_models(load_settings(cfg, environ={})).deblur.info.version == (
        ACROSS_RL_MEAN_VERSION
    )
    # another limit, or without the two conditions, says so on the version
    cfg.write_text(f"blur_gate:\n  {NAME}: 12\n  kernel_length_across_min_fit_gain: null\n")
    other = load_settings(cfg, environ={})
    assert policy_of(other.blur_gate).kernel_length_across_min_fit_gain is None
    assert load_models(other).deblur.info.version == "0.44.0+across-12px-ungated"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Corrector:
    """The node's correction on its default settings."""
    cfg = tmp_path_factory.mktemp("shipped") / "c.yaml"
    cfg.write_text("models: {}\n")
    return load_models(load_settings(cfg, environ={})).deblur


def test_a_soft_frame_is_corrected_with_the_length_read_across_and_the_sr_says_so(
    shipped: Corrector,
) -> None:
    deblur = shipped
    sharp = gaussian_filter(phantom(size=512), 1.2)
    rng = np.random.default_rng(5)
    blurred = simulate_motion_blur(sharp, linear_kernel(3.0, 75.0), rng, noise=NoiseSpec(None))
    motion = assess_motion(blurred, 0.6, deblur.policy)
    assert motion.blurred and motion.template_length_px is not None
    assert motion.estimate.length_px < motion.template_length_px
    done = deblur(blurred, motion)
    assert done.applied
    assert "read from the spectrum along the motion over the spectrum across it" in done.method
    assert f"template read {motion.template_length_px * 0.6:.1f} mm" in done.method


def test_a_length_read_under_one_pixel_leaves_the_frame_uncorrected_and_says_why(
    shipped: Corrector,
) -> None:
    deblur = shipped
    # a field whose noisy, curved 16 px blur the estimate reads as 5 px straight motion, and the
    # spectrum along over across as none at that angle
    sharp = power_law_field(512, 3, 1.3, 0.2, 0.8).astype(np.float32)
    path = trajectory_kernel(16.0, np.random.default_rng(5), curvature=1.0)
    noisy = simulate_motion_blur(sharp, path, np.random.default_rng(6), noise=NoiseSpec(1e4))
    motion = assess_motion(noisy, 0.2, deblur.policy)
    assert motion.blurred and motion.estimate.kernel().size == 1
    done = deblur(noisy, motion)
    assert not done.applied
    assert np.array_equal(done.image, noisy)
    assert done.method.startswith("not corrected: the motion's length read")
