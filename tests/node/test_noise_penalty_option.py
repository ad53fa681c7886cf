"""The thirty-ninth round's penalty floor (``MotionPolicy.penalty_noise_over_signal``, off in the
node) through the node's corrector: its identity and what the SR says, and what it does to a
noisy frame whose anatomy falls steeply (docs/models.md, "The Wiener penalty as noise over
anatomy")."""

from __future__ import annotations

import dataclasses

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.blur_estimate import MotionEstimate
from models.deblur import MotionAssessment, MotionPolicy
from node.pipeline.correct import Corrector, wiener_info
from tests.support.synthetic import power_law_field


def test_a_noisy_steep_frame_comes_back_sharper_and_the_sr_says_why() -> None:
    """A detector-scale field whose power falls as about f^−5, blurred by 8 px of straight motion
    with Poisson noise of 10⁵ quanta, corrected with the true motion: with the floor it gains over its input by more than 1 dB
    and over the node without it by more than 1 dB, and the SR's method text names the floor
    and the anatomy's slope; the correction's identity says the option."""
    off = MotionPolicy()
    on = dataclasses.replace(off, penalty_noise_over_signal=1.0)
    sharp = power_law_field(768, 4, 2.5, 0.2, 0.8).astype(np.float32)
    rng = np.random.default_rng(1)
    blurred = simulate_motion_blur(sharp, linear_kernel(8.0, 20.0), rng, noise=NoiseSpec(1e5))
    # the motion as it was (the gate's estimate on such a field is another test's matter)
    motion = MotionAssessment(MotionEstimate(8.0, 20.0, 0.6, 1, 0.2), 0.2, "blurred")
    before = peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
    with_floor = Corrector(on)(blurred, motion)
    without = Corrector(off)(blurred, motion)
    gain_on = peak_signal_noise_ratio(sharp, with_floor.image, data_range=1.0) - before
    gain_off = peak_signal_noise_ratio(sharp, without.image, data_range=1.0) - before
    assert gain_on > 1.0 and gain_on > gain_off + 1.0
    words = "at least the measured noise over the anatomy's power spectrum"
    assert f"{words} (falling as f^-" in with_floor.method
    assert "anatomy's power" not in without.method
    assert words in (wiener_info(on).description or "")
    assert wiener_info(on).device_uid != wiener_info(off).device_uid
