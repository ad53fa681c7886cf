"""The sixty-fifth round's candidate as a node setting (``blur_gate.
shape_detector_fallback_kernel_mean``): the mean of two kernels, config and environment →
policy, the correction's identity, and a collimated quiet detector frame whose retrieved kernel
rang, through the node's corrector with the bundled networks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bench.correction import frame
from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur, trajectory_kernel
from models.deblur import assess_motion, deconvolve, mean_kernel
from models.kernel_shape import KernelShape
from models.tune_deconvolution import collimate
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    ACROSS_DETECTOR_RL_MEAN_VERSION,
    ACROSS_RL_MEAN_VERSION,
    KERNEL_MEAN_DETECTOR_RL_MEAN_VERSION,
    Corrector,
)
from tests.support.settings import gate_setting

KEY = "shape_detector_fallback_kernel_mean"


def test_the_mean_of_two_kernels_is_centred_on_a_common_odd_square() -> None:
    straight = linear_kernel(9.0, 30.0)
    curved = trajectory_kernel(14.0, np.random.default_rng(3), curvature=1.0)
    m = mean_kernel(straight, curved)
    n = max(*straight.shape, *curved.shape)
    assert m.shape == (n + 1 - n % 2,) * 2
    assert m.sum() == pytest.approx(1.0) and m.min() >= 0
    # each kernel is normalised first, and the order does not matter
    assert np.allclose(mean_kernel(straight, 3 * curved), m)
    assert np.allclose(mean_kernel(curved, straight), m)
    # a kernel with itself is itself, centred on the odd square
    side = straight.shape[0]
    assert straight.shape == (side, side) and side % 2 == 1
    assert np.allclose(mean_kernel(straight, straight), straight / straight.sum())
    # a centred kernel stays centred: a symmetric pair's mean has its mass at the centre
    mirrored = mean_kernel(curved, curved[::-1, ::-1])
    yy, xx = np.indices(mirrored.shape)
    c = (mirrored.shape[0] - 1) / 2
    assert (mirrored * yy).sum() == pytest.approx(c, abs=0.51)
    assert (mirrored * xx).sum() == pytest.approx(c, abs=0.51)
    with pytest.raises(ValueError, match="no positive mass"):
        mean_kernel(straight, np.zeros((3, 3)))


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    assert getattr(default.blur_gate, KEY) is False
    shipped = load_models(default).deblur.info
    assert shipped.version == ACROSS_DETECTOR_RL_MEAN_VERSION
    on = gate_setting(cfg, f"blur_gate:\n  {KEY}: true\n", KEY, True, False)
    built = load_models(on).deblur.info
    assert built.version == KERNEL_MEAN_DETECTOR_RL_MEAN_VERSION == "0.48.0"
    assert built.device_uid != shipped.device_uid
    # without the native-pixel network the branch is never reached: version and UID stay
    cfg.write_text(f"models:\n  kernel_shape_detector: off\nblur_gate:\n  {KEY}: true\n")
    plain_on = load_models(load_settings(cfg, environ={})).deblur.info
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    plain = load_models(load_settings(cfg, environ={})).deblur.info
    assert plain_on.version == plain.version == ACROSS_RL_MEAN_VERSION
    assert plain_on.device_uid == plain.device_uid
    # with the retrieved kernel in the fallback (the fiftieth round's form) it means nothing
    cfg.write_text(f"blur_gate:\n  {KEY}: true\n  shape_detector_fallback_unshaped: false\n")
    assert "+kernel-mean" not in load_models(load_settings(cfg, environ={})).deblur.info.version


def test_a_collimated_frame_whose_retrieved_kernel_rang_takes_the_mean_kernel(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"blur_gate:\n  {KEY}: true\n")
    on = load_models(load_settings(cfg, environ={})).deblur
    cfg.write_text("models: {}\n")
    off = load_models(load_settings(cfg, environ={})).deblur
    assert isinstance(on, Corrector) and on.magnitude is not None
    assert on.detector_magnitude is not None
    policy = on.policy
    assert policy.shape_detector_fallback_kernel_mean
    assert policy_of(load_settings(cfg, environ={}).blur_gate) == dataclasses.replace(
        policy, shape_detector_fallback_kernel_mean=False
    )
    kernel = trajectory_kernel(16.0, np.random.default_rng(1), curvature=1.0)
    sharp = collimate(frame(384, 0))
    blurred = simulate_motion_blur(sharp, kernel, np.random.default_rng(1), noise=NoiseSpec(None))
    motion = assess_motion(blurred, 0.2, policy)
    assert motion.blurred
    before = deconvolve(
        blurred,
        motion,
        off.policy,
        magnitude=off.magnitude,
        detector_magnitude=off.detector_magnitude,
    )
    assert before.shape is not None and before.method == "richardson-lucy"
    assert before.shape.reason.startswith("the retrieved kernel's Wiener result rang")
    done = deconvolve(
        blurred, motion, policy, magnitude=on.magnitude, detector_magnitude=on.detector_magnitude
    )
    assert done.fallback_kernel_mean and done.method == "richardson-lucy"
    assert done.rl_iterations == before.rl_iterations  # the same steps: the same cost
    assert done.shape is not None and "mean of the two kernels" in done.shape.reason
    # the same as the fallback run by hand with the mean of the two kernels
    retrieved = deconvolve(
        blurred,
        motion,
        dataclasses.replace(policy, shape_detector_fallback_unshaped=False),
        magnitude=on.magnitude,
        detector_magnitude=on.detector_magnitude,
    ).shape
    assert retrieved is not None and retrieved.replaced
    unshaped = KernelShape(before.shape.kernel, False, np.nan, np.nan, 1, "")
    by_hand = deconvolve(
        blurred,
        motion,
        policy,
        shape=unshaped,
        fallback_kernel=mean_kernel(before.shape.kernel, retrieved.kernel),
    )
    assert np.array_equal(done.image, by_hand.image)
    assert not np.array_equal(done.image, before.image)
    # through the node's corrector: the SR's text says it
    said = on(blurred, motion).method
    assert "with the mean of the straight kernel and one retrieved from its magnitude" in said
    assert "mean of the straight kernel" not in off(blurred, motion).method
    # at ≈0.6 mm the setting changes nothing
    # (the same estimate, taken as 0.6 mm pixels: the ≈0.6 mm path corrects it)
    coarse = dataclasses.replace(motion, pixel_spacing_mm=0.6)
    assert coarse.blurred
    assert np.array_equal(on(blurred, coarse).image, off(blurred, coarse).image)
