"""The sixty-sixth round's candidate as a node setting (``blur_gate.
rl_fallback_quiet_from_quanta``): the fallback's steps by the measured noise in quiet frames with
fine pixels, config and environment → policy, the cap by the frame's area, the correction's
identity, and a collimated detector frame that takes the fallback, quiet and noisy, through the
node's corrector with the bundled networks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bench.correction import frame
from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur import (
    RL_QUIET_BUDGET_PIXELS,
    MotionPolicy,
    assess_motion,
    deconvolve,
    quiet_enough,
    quiet_fallback_cap,
)
from models.tune_deconvolution import collimate
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    ACROSS_DETECTOR_RL_MEAN_VERSION,
    ACROSS_RL_MEAN_VERSION,
    QUIET_DETECTOR_RL_MEAN_VERSION,
    QUIET_RL_MEAN_VERSION,
    Corrector,
)
from tests.support.settings import gate_setting

KEY = "rl_fallback_quiet_from_quanta"


def test_the_quiet_cap_falls_with_the_frames_area() -> None:
    policy = MotionPolicy(rl_fallback_quiet_from_quanta=5e5)
    assert RL_QUIET_BUDGET_PIXELS == 2048 * 1024
    assert quiet_fallback_cap((672, 672), policy) == 40
    assert quiet_fallback_cap((1024, 2048), policy) == 40
    assert quiet_fallback_cap((2048, 2048), policy) == 20
    assert quiet_fallback_cap((2500, 3000), policy) == 11
    # never fewer than the fixed steps the frame takes without the setting
    assert quiet_fallback_cap((4096, 4096), policy) == policy.rl_fallback_iterations == 10
    # the line: at least this many measured quanta per pixel; unmeasured is not quiet
    assert quiet_enough(5e5, policy) and quiet_enough(float("inf"), policy)
    assert not quiet_enough(4.9e5, policy) and not quiet_enough(None, policy)
    assert not quiet_enough(1e9, MotionPolicy())


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    assert getattr(default.blur_gate, KEY) is None
    shipped = load_models(default).deblur.info
    assert shipped.version == ACROSS_DETECTOR_RL_MEAN_VERSION
    on = gate_setting(cfg, f"blur_gate:\n  {KEY}: 5.0e+5\n", KEY, 5e5, 1e6)
    built = load_models(on).deblur.info
    assert built.version == QUIET_DETECTOR_RL_MEAN_VERSION == "0.50.0"
    assert built.device_uid != shipped.device_uid
    assert "at least 500000 quanta per pixel for motion of at least 8 px" in built.description
    # without the native-pixel network too: the fallback with the straight kernel is there
    cfg.write_text(f"models:\n  kernel_shape_detector: off\nblur_gate:\n  {KEY}: 5.0e+5\n")
    plain_on = load_models(load_settings(cfg, environ={})).deblur.info
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    plain = load_models(load_settings(cfg, environ={})).deblur.info
    assert plain.version == ACROSS_RL_MEAN_VERSION
    assert plain_on.version == QUIET_RL_MEAN_VERSION == "0.49.0"
    # another line says which; with the law for every frame the setting changes nothing
    cfg.write_text(f"blur_gate:\n  {KEY}: 1.0e+6\n")
    other = load_models(load_settings(cfg, environ={})).deblur.info.version
    assert other == f"{ACROSS_DETECTOR_RL_MEAN_VERSION}+quiet-steps-1e+06-from-8px"
    cfg.write_text(f"blur_gate:\n  {KEY}: 5.0e+5\n  rl_fallback_quiet_min_px: 0\n")
    every_length = load_models(load_settings(cfg, environ={})).deblur.info.version
    assert every_length == f"{ACROSS_DETECTOR_RL_MEAN_VERSION}+quiet-steps-500000-from-0px"
    cfg.write_text(f"blur_gate:\n  {KEY}: 5.0e+5\n  rl_fallback_follows_noise: true\n")
    every = load_models(load_settings(cfg, environ={})).deblur.info.version
    assert "quiet" not in every


def test_a_quiet_detector_frame_that_takes_the_fallback_takes_more_steps(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"blur_gate:\n  {KEY}: 5.0e+5\n")
    on = load_models(load_settings(cfg, environ={})).deblur
    cfg.write_text("models: {}\n")
    off = load_models(load_settings(cfg, environ={})).deblur
    assert isinstance(on, Corrector) and isinstance(off, Corrector)
    policy = on.policy
    assert policy.rl_fallback_quiet_from_quanta == 5e5
    assert policy_of(load_settings(cfg, environ={}).blur_gate) == dataclasses.replace(
        policy, rl_fallback_quiet_from_quanta=None
    )
    sharp = collimate(frame(384, 0))
    kernel = linear_kernel(14.0, 20.0)
    rng = np.random.default_rng(1)
    quiet = simulate_motion_blur(sharp, kernel, rng, noise=NoiseSpec(None))
    motion = assess_motion(quiet, 0.2, policy)
    assert motion.blurred
    before = deconvolve(quiet, motion, off.policy)
    assert before.method == "richardson-lucy" and before.rl_iterations == 10
    assert before.noise_quanta is not None and before.noise_quanta >= 5e5
    done = deconvolve(quiet, motion, policy)
    assert done.method == "richardson-lucy" and done.rl_iterations == 40
    # the same as the law for every frame on this small quiet frame: the steps are all it changes
    every = dataclasses.replace(off.policy, rl_fallback_follows_noise=True)
    assert np.array_equal(done.image, deconvolve(quiet, motion, every).image)

    # and sharper here: more steps restore more of the straight motion
    def error(x: np.ndarray) -> float:
        return float(np.mean((x.astype(np.float64) - sharp) ** 2))

    assert error(done.image) < error(before.image)
    # through the node's corrector: the SR's text says how many steps
    said = on(quiet, motion).method
    assert "40 steps" in said and "40 steps" not in off(quiet, motion).method
    # a noisy frame keeps the fixed steps: bit for bit the node without the setting
    noisy = simulate_motion_blur(sharp, kernel, rng, noise=NoiseSpec(2e4))
    loud = assess_motion(noisy, 0.2, policy)
    assert loud.blurred
    kept = deconvolve(noisy, loud, policy)
    assert kept.noise_quanta is not None and kept.noise_quanta < 5e5
    assert np.array_equal(kept.image, deconvolve(noisy, loud, off.policy).image)
    # a short estimate keeps the fixed steps too (its length known to a pixel): 6 px of motion
    short = simulate_motion_blur(sharp, linear_kernel(6.0, 20.0), rng, noise=NoiseSpec(None))
    brief = assess_motion(short, 0.2, policy)
    assert brief.blurred and brief.estimate.length_px < policy.rl_fallback_quiet_min_px == 8
    shortened = deconvolve(short, brief, policy)
    assert shortened.method == "richardson-lucy" and shortened.rl_iterations == 10
    assert shortened.noise_quanta is not None and shortened.noise_quanta >= 5e5
    assert np.array_equal(shortened.image, deconvolve(short, brief, off.policy).image)
    # at ≈0.6 mm the law held already: the setting changes nothing
    coarse = dataclasses.replace(motion, pixel_spacing_mm=0.6)
    assert np.array_equal(on(quiet, coarse).image, off(quiet, coarse).image)


@pytest.mark.parametrize("quanta", [0.0, -1.0])
def test_the_line_must_be_positive(tmp_path: Path, quanta: float) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"blur_gate:\n  {KEY}: {quanta}\n")
    with pytest.raises(ValueError, match=KEY):
        load_settings(cfg, environ={})
