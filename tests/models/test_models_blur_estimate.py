"""Blind motion estimate, decision and deconvolution on a generated radiograph-like image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.blur_estimate import estimate_motion
from models.deblur import MotionPolicy, assess_motion, correct
from models.deconvolve import wiener


def phantom(size: int = 384, seed: int = 3) -> np.ndarray:
    """Smooth anatomy-like background with sharp, randomly oriented edges and fine texture."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.standard_normal((size, size)), 24) * 6
    yy, xx = np.mgrid[:size, :size]
    for _ in range(40):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(6, 40)
        img += rng.uniform(-0.15, 0.15) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    img += gaussian_filter(rng.standard_normal((size, size)), 1.0) * 0.08
    img -= img.min()
    return (0.1 + 0.8 * img / img.max()).astype(np.float32)


@pytest.mark.parametrize(("length", "angle"), [(7.0, 30.0), (12.0, 120.0)])
def test_estimate_recovers_straight_motion(length: float, angle: float) -> None:
    sharp = phantom()
    rng = np.random.default_rng(0)
    blurred = simulate_motion_blur(sharp, linear_kernel(length, angle), rng, noise=NoiseSpec(2e4))
    est = estimate_motion(blurred, max_length=20)
    assert est.length_px == pytest.approx(length, abs=1.5)
    assert abs((est.angle_deg - angle + 90) % 180 - 90) < 6
    assert est.specificity > MotionPolicy().min_specificity


def test_sharp_image_is_left_unchanged_and_blurred_one_is_corrected() -> None:
    sharp = phantom()
    policy = MotionPolicy()
    a_sharp = assess_motion(sharp, 0.2, policy)
    assert a_sharp.decision == "sharp"
    assert np.array_equal(correct(sharp, a_sharp, policy), sharp)

    rng = np.random.default_rng(1)
    blurred = simulate_motion_blur(sharp, linear_kernel(10.0, 75.0), rng, noise=NoiseSpec(2e4))
    a = assess_motion(blurred, 0.2, policy)  # 10 px at 0.2 mm: 2 mm of motion
    assert a.decision == "blurred"
    assert a.motion_mm == pytest.approx(2.0, abs=0.3)
    before = peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
    after = peak_signal_noise_ratio(sharp, correct(blurred, a, policy), data_range=1.0)
    assert after > before + 1.0


def test_wiener_with_the_true_kernel_restores() -> None:
    sharp = phantom(256)
    k = linear_kernel(9.0, 0.0)
    blurred = simulate_motion_blur(sharp, k, np.random.default_rng(2), noise=NoiseSpec(5e4))
    before = peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
    after = peak_signal_noise_ratio(sharp, wiener(blurred, k), data_range=1.0)
    assert after > before + 1.0
    # The identity kernel is a no-op.
    assert np.array_equal(wiener(sharp, np.ones((1, 1))), sharp)
