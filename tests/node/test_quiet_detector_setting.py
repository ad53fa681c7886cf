"""The forty-eighth round's candidate as a node setting (``blur_gate.shape_detector_min_quanta``):
config and environment → policy, the correction's identity, and a quiet and a noisy detector
frame through the node's corrector with the bundled native-pixel network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from models.blur import NoiseSpec, simulate_motion_blur, trajectory_kernel
from models.deblur import assess_motion, deconvolve
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    ACROSS_DETECTOR_RL_MEAN_VERSION,
    ACROSS_RL_MEAN_VERSION,
    DETECTOR_DRAWN_RL_MEAN_VERSION,
    FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION,
    FITTING_FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION,
    QUIET_DETECTOR_DRAWN_RL_MEAN_VERSION,
    wiener_info,
)
from tests.support.settings import gate_setting
from tests.support.synthetic import power_law_field

DETECTOR_ON = "models:\n  kernel_shape_detector: kernel-magnitude-detector\n"
#: what the defaults since 0.46.0 add to an earlier version (the fifty-fourth, fifty-sixth,
#: fifty-seventh and sixty-first rounds)
ON_TOP = "+shadows+clear+corners+across"
#: the native-pixel step as the eighteenth round had it (every frame, no limit, λ halved)
EVERY = (
    "blur_gate:\n  shape_detector_min_quanta: null\n  shape_detector_max_specificity: null\n"
    "  shape_detector_kept_halved: true\n"
)


def test_the_setting_reaches_the_policy_and_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    # the default since sharpray-blind-wiener 0.34.0 (the forty-ninth round): the native-pixel
    # network on, in frames reading 5·10⁵ quanta or more, its kernel only where the straight
    # fit's specificity is under 0.177, λ as unread where it keeps the straight kernel
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ={})
    gate = default.blur_gate
    assert default.models.kernel_shape_detector is not None
    assert (gate.shape_detector_min_quanta, gate.shape_detector_max_specificity) == (5e5, 0.177)
    assert gate.shape_detector_kept_halved is False
    assert gate.shape_detector_max_consistency is None
    shipped = load_models(default).deblur.info
    # ... and since 0.40.0 the fallback leaves the shadows out (the fifty-fourth round), since
    # 0.42.0 the estimate too (the fifty-sixth), since 0.44.0 a marker's corners too (the
    # fifty-seventh): the earlier rounds' candidates below carry
    # "+shadows+clear+corners" on their versions
    assert shipped.version == ACROSS_DETECTOR_RL_MEAN_VERSION == "0.46.0"
    assert "at pixels finer than 0.4 mm" in (shipped.description or "")
    # the eighteenth round's step on 0.31.0: every frame, no limit, λ halved where read
    cfg.write_text(DETECTOR_ON + EVERY)
    every = load_settings(cfg, environ={})
    assert every.blur_gate.shape_detector_min_quanta is None
    cfg.write_text(DETECTOR_ON + EVERY.replace("min_quanta: null", "min_quanta: 1.0e6"))
    quiet = load_settings(cfg, environ={})
    policy = policy_of(quiet.blur_gate)
    assert policy.shape_detector_min_quanta == 1e6
    env = {"SHARPRAY_BLUR_GATE__SHAPE_DETECTOR_MIN_QUANTA": "2e6"}
    assert load_settings(cfg, environ=env).blur_gate.shape_detector_min_quanta == 2e6
    on_every, on_quiet = load_models(every).deblur.info, load_models(quiet).deblur.info
    assert on_every.version == DETECTOR_DRAWN_RL_MEAN_VERSION + ON_TOP
    assert (
        on_quiet.version
        == QUIET_DETECTOR_DRAWN_RL_MEAN_VERSION + ON_TOP
        == "0.33.0+shadows+clear+corners+across"
    )
    assert len({on_quiet.device_uid, on_every.device_uid, shipped.device_uid}) == 3
    for name, value, by_env in (
        ("shape_detector_max_consistency", 0.65, 0.6),
        ("shape_detector_max_specificity", 0.2, 0.25),
    ):
        cfg.write_text(DETECTOR_ON + f"blur_gate:\n  {name}: {value}\n")
        limited = load_settings(cfg, environ={})
        assert getattr(policy_of(limited.blur_gate), name) == value
        env = {f"SHARPRAY_BLUR_GATE__{name.upper()}": str(by_env)}
        assert getattr(load_settings(cfg, environ=env).blur_gate, name) == by_env
        assert load_models(limited).deblur.info.device_uid != shipped.device_uid
    cfg.write_text(DETECTOR_ON + "blur_gate:\n  shape_detector_kept_halved: true\n")
    halved = load_settings(cfg, environ={})
    assert policy_of(halved.blur_gate).shape_detector_kept_halved is True
    assert load_models(halved).deblur.info.device_uid != shipped.device_uid
    # the fiftieth round's candidate: the fallback with the retrieved kernel at detector scale
    assert default.blur_gate.shape_detector_fallback_unshaped is True
    unshaped = "shape_detector_fallback_unshaped"
    retrieved = gate_setting(
        cfg, DETECTOR_ON + f"blur_gate:\n  {unshaped}: false\n", unshaped, False, True
    )
    in_fallback = load_models(retrieved).deblur.info
    assert in_fallback.version == FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION + ON_TOP
    assert in_fallback.device_uid != shipped.device_uid
    # the fifty-first round's candidate: the retrieved kernel in the fallback where it fits
    assert default.blur_gate.shape_detector_fallback_max_fit is None
    max_fit = "shape_detector_fallback_max_fit"
    fitting = gate_setting(
        cfg, DETECTOR_ON + f"blur_gate:\n  {max_fit}: 0.058\n", max_fit, 0.058, 0.07
    )
    where_fits = load_models(fitting).deblur.info
    assert where_fits.version == FITTING_FALLBACK_DETECTOR_DRAWN_RL_MEAN_VERSION + ON_TOP
    assert len({where_fits.device_uid, in_fallback.device_uid, shipped.device_uid}) == 3
    # without the detector network the settings mean nothing: the identity stays 0.43.0's
    cfg.write_text("models:\n  kernel_shape_detector: off\n")
    off = load_models(load_settings(cfg, environ={})).deblur.info
    assert off.version == ACROSS_RL_MEAN_VERSION == "0.45.0"
    plain = dataclasses.replace(
        policy, shape_detector_min_quanta=None, shape_detector_max_specificity=None
    )
    assert wiener_info(policy).device_uid == wiener_info(plain).device_uid


def test_the_node_reads_a_quiet_detector_frame_and_leaves_a_noisy_one_unread(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.yaml"
    # this synthetic field's own fine texture reads 8·10⁵ quanta per pixel without added noise
    # the kernel's length as the estimate's (the sixty-first round reads the noisy frame's
    # 5 px estimate as under a pixel and leaves it uncorrected: nothing for the step to read)
    cfg.write_text(
        DETECTOR_ON
        + "blur_gate:\n  shape_detector_min_quanta: 5.0e5\n  kernel_length_across_up_to_px: null\n"
    )
    deblur = load_models(load_settings(cfg, environ={})).deblur
    sharp = power_law_field(512, 3, 1.3, 0.2, 0.8).astype(np.float32)
    path = trajectory_kernel(16.0, np.random.default_rng(5), curvature=1.0)
    quiet = simulate_motion_blur(sharp, path, np.random.default_rng(6), noise=NoiseSpec(None))
    noisy = simulate_motion_blur(sharp, path, np.random.default_rng(6), noise=NoiseSpec(1e4))
    for blurred, reads in ((quiet, True), (noisy, False)):
        motion = assess_motion(blurred, 0.2, deblur.policy)
        assert motion.blurred
        out = deblur(blurred, motion)
        done = deconvolve(
            blurred,
            motion,
            deblur.policy,
            magnitude=deblur.magnitude,
            detector_magnitude=deblur.detector_magnitude,
        )
        assert np.array_equal(out.image, done.image)  # the corrector is deconvolve
        assert done.shape is not None and done.shape.checked is reads
