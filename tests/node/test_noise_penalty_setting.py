"""The fortieth round's penalty floor as the node's default
(``blur_gate.wiener_penalty_noise_over_signal`` at pixels finer than
``wiener_penalty_noise_finer_than_mm``): config → policy, the correction's identity (version and
Device UID), what the SR says, and what it does to a noisy frame whose anatomy falls steeply,
at detector scale and at 0.6 mm (docs/models.md, "The noise floor at detector scale only")."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.blur_estimate import MotionEstimate
from models.deblur import MotionAssessment
from node.app import load_models
from node.config import load_settings
from node.pipeline.blur_gate import policy as policy_of
from node.pipeline.correct import (
    ALL_RL_MEAN_VERSION,
    DETECTOR_DRAWN_RL_MEAN_VERSION,
    DETECTOR_NOISE_PENALTY_RL_MEAN_VERSION,
    DRAWN_RL_MEAN_VERSION,
    NOISE_PENALTY_RL_MEAN_VERSION,
    SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION,
    Corrector,
    wiener_info,
)
from tests.support.settings import WHOLE_FRAME
from tests.support.synthetic import power_law_field

#: the native-pixel network off (on by default since 0.34.0): the versions of the step at 0.6 mm
NO_DETECTOR = "models:\n  kernel_shape_detector: off\n"


def test_the_floor_is_the_default_and_the_setting_reaches_policy_and_identity(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = load_settings(cfg, environ=WHOLE_FRAME)
    assert default.blur_gate.wiener_penalty_noise_over_signal == 1.0
    assert default.blur_gate.wiener_penalty_noise_finer_than_mm == 0.4
    assert policy_of(default.blur_gate).penalty_noise_over_signal == 1.0
    assert policy_of(default.blur_gate).penalty_noise_finer_than_mm == 0.4
    shipped = load_models(default).deblur.info
    # the default since 0.25.0 (0.31.0 with the forty-second round's gate rule and the
    # forty-fifth to forty-seventh rounds' drawing on too, 0.34.0 with the forty-ninth round's
    # native-pixel network); 0.25.0 without the gate rule
    assert shipped.version == SPECIFIC_DETECTOR_DRAWN_RL_MEAN_VERSION == "0.34.0"
    cfg.write_text(NO_DETECTOR)
    assert load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info.version == (
        DRAWN_RL_MEAN_VERSION
    )
    said = "at least the measured noise over the anatomy's power spectrum at pixels finer than 0.4"
    assert said in (shipped.description or "")
    cfg.write_text(NO_DETECTOR + "blur_gate:\n  wiener_penalty_noise_over_signal: null\n")
    off = load_settings(cfg, environ=WHOLE_FRAME)
    assert policy_of(off.blur_gate).penalty_noise_over_signal is None
    before = load_models(off).deblur.info
    assert before.version == ALL_RL_MEAN_VERSION == "0.18.0"
    cfg.write_text(NO_DETECTOR)
    assert (
        before.device_uid
        != load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info.device_uid
    )
    assert "anatomy's power" not in (before.description or "")
    env = {"SHARPRAY_BLUR_GATE__WIENER_PENALTY_NOISE_OVER_SIGNAL": "2"}
    cfg.write_text("models: {}\n")
    doubled = policy_of(load_settings(cfg, environ=env).blur_gate)
    assert doubled.penalty_noise_over_signal == 2.0
    assert wiener_info(doubled).device_uid != wiener_info(policy_of(default.blur_gate)).device_uid
    cfg.write_text(
        "models:\n  kernel_shape_detector: kernel-magnitude\nblur_gate:\n"
        "  shape_detector_min_quanta: null\n  shape_detector_max_specificity: null\n"
    )
    detector = load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info
    assert detector.version == DETECTOR_DRAWN_RL_MEAN_VERSION == "0.32.0"
    cfg.write_text(NO_DETECTOR + "blur_gate:\n  strong_fit_blurred_from_mm: null\n")
    floor_alone = load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info
    assert floor_alone.version == NOISE_PENALTY_RL_MEAN_VERSION == "0.25.0"
    cfg.write_text(
        "blur_gate:\n  strong_fit_blurred_from_mm: null\n"
        "models:\n  kernel_shape_detector: kernel-magnitude\n"
    )
    detector_floor = load_models(load_settings(cfg, environ=WHOLE_FRAME)).deblur.info
    assert detector_floor.version == DETECTOR_NOISE_PENALTY_RL_MEAN_VERSION == "0.26.0"


def test_a_noisy_steep_frame_at_detector_scale_comes_back_sharper_and_the_sr_says_why(
    tmp_path: Path,
) -> None:
    """A field whose power falls as about f^−5, blurred by 8 px of straight motion with Poisson
    noise of 10⁵ quanta, through the node's corrector as configured (the true motion): at 0.2 mm
    it gains over its input by more than 1 dB and over the node without the floor by more than
    1 dB, and the SR's method text names the floor and the anatomy's slope; at 0.6 mm it is
    corrected as without the floor, to the pixel."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    on = policy_of(load_settings(cfg, environ=WHOLE_FRAME).blur_gate)
    cfg.write_text("blur_gate:\n  wiener_penalty_noise_over_signal: null\n")
    off = policy_of(load_settings(cfg, environ=WHOLE_FRAME).blur_gate)
    sharp = power_law_field(768, 4, 2.5, 0.2, 0.8).astype(np.float32)
    rng = np.random.default_rng(1)
    blurred = simulate_motion_blur(sharp, linear_kernel(8.0, 20.0), rng, noise=NoiseSpec(1e5))
    before = peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
    fine = MotionAssessment(MotionEstimate(8.0, 20.0, 0.6, 1, 0.2), 0.2, "blurred")
    with_floor = Corrector(on)(blurred, fine)
    without = Corrector(off)(blurred, fine)
    gain_on = peak_signal_noise_ratio(sharp, with_floor.image, data_range=1.0) - before
    gain_off = peak_signal_noise_ratio(sharp, without.image, data_range=1.0) - before
    assert gain_on > 1.0 and gain_on > gain_off + 1.0
    assert "at least the measured noise over the anatomy's power spectrum (falling as f^-" in (
        with_floor.method
    )
    assert "anatomy's power" not in without.method
    coarse = dataclasses.replace(fine, pixel_spacing_mm=0.6)
    a, b = Corrector(on)(blurred, coarse), Corrector(off)(blurred, coarse)
    assert np.array_equal(a.image, b.image) and "anatomy's power" not in a.method
