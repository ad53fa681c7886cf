"""models.shrinkage: the sixth round's noise removal after the Wiener filter, and how
``models.deblur.deconvolve`` runs it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import pywt

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur, to_exposure
from models.blur_estimate import MotionEstimate
from models.deblur import MotionAssessment, MotionPolicy, deconvolve
from models.deconvolve import wiener_exposure
from models.noise_level import white_noise_variance
from models.shrinkage import WAVELET, shrink, subband_noise
from tests.support.synthetic import power_law_field

KERNEL = linear_kernel(8.0, 30.0)


def _sharp() -> np.ndarray:
    """A smooth radiograph-like field (1/f²): what the Wiener filter restores of it is mostly
    noise at fine scales (on rougher fields the unrestored texture dominates the error)."""
    return power_law_field(256, 3, 2.0, 0.2, 0.8).astype(np.float32)


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_the_subbands_noise_is_that_of_white_noise_through_the_same_filter() -> None:
    sigmas = subband_noise(KERNEL, 0.05, 1.0, 4e-4)
    assert len(sigmas) == 4
    # an independent noise field through the same filter shows the same σ per subband
    n = np.random.default_rng(5).normal(0.0, 0.02, (512, 512))
    filtered = wiener_exposure(n + 1.0, KERNEL, 0.05, 1.0) - 1.0
    coeffs = pywt.swt2(filtered, WAVELET, level=4, trim_approx=True)
    for expected, details in zip(sigmas, coeffs[1:], strict=True):
        for s, d in zip(expected, details, strict=True):
            assert float(np.std(d)) == pytest.approx(s, rel=0.05)
    # σ grows with the noise's standard deviation (four times the variance: twice the σ)
    doubled = subband_noise(KERNEL, 0.05, 1.0, 16e-4)
    assert doubled[-1][0] == pytest.approx(2 * sigmas[-1][0], rel=1e-6)


def test_shrinkage_removes_noise_the_wiener_filter_brought_back() -> None:
    sharp = _sharp()
    truth = to_exposure(sharp.astype(np.float64), 3.0)
    blurred = simulate_motion_blur(sharp, KERNEL, np.random.default_rng(1), noise=NoiseSpec(1e4))
    e = to_exposure(blurred.astype(np.float64), 3.0)
    inner = (slice(16, -16), slice(16, -16))
    variance = white_noise_variance(e)
    for balance in (0.1, 0.01):  # the node's λ at this noise, and a tenth of it
        w = wiener_exposure(e, KERNEL, balance, 1.0)
        shrunk = shrink(w, e, subband_noise(KERNEL, balance, 1.0, variance))
        assert _rmse(shrunk[inner], truth[inner]) < 0.8 * _rmse(w[inner], truth[inner])


def test_without_noise_the_shrinkage_leaves_the_result_almost_unchanged() -> None:
    sharp = _sharp()
    blurred = simulate_motion_blur(sharp, KERNEL, np.random.default_rng(1), noise=NoiseSpec(None))
    e = to_exposure(blurred.astype(np.float64), 3.0)
    w = wiener_exposure(e, KERNEL, 0.01, 1.0)
    shrunk = shrink(w, e, subband_noise(KERNEL, 0.01, 1.0, 1e-12))
    assert _rmse(shrunk, w) < 1e-4 * float(np.std(w))


def _assessment() -> MotionAssessment:
    # the true motion, as the estimate would give it: deconvolve's own behaviour is under test
    return MotionAssessment(MotionEstimate(8.0, 30.0, 0.9, specificity=0.5), 0.6, "blurred")


def test_deconvolve_shrinks_the_noise_only_where_the_policy_asks_and_the_wiener_filter_ran() -> (
    None
):
    sharp = _sharp()
    blurred = simulate_motion_blur(sharp, KERNEL, np.random.default_rng(1), noise=NoiseSpec(1e4))
    policy = replace(MotionPolicy(), ringing_limit=None)
    built = deconvolve(blurred, _assessment(), policy)
    assert built.method == "wiener" and not built.shrunk
    shrunk = deconvolve(blurred, _assessment(), replace(policy, shrinkage=True))
    assert shrunk.shrunk and shrunk.balance == built.balance
    assert _rmse(shrunk.image, sharp) < _rmse(built.image, sharp)
    halved = deconvolve(blurred, _assessment(), replace(policy, wiener_balance_factor=0.5))
    assert built.balance is not None and halved.balance == pytest.approx(0.5 * built.balance)
    # after the Richardson-Lucy fallback (every Wiener result "rings" at a limit of 0) none
    rl = deconvolve(blurred, _assessment(), replace(policy, shrinkage=True, ringing_limit=0.0))
    assert rl.method == "richardson-lucy" and not rl.shrunk
    # a sharp image comes back unchanged
    sharp_call = replace(_assessment(), decision="sharp")
    untouched = deconvolve(sharp, sharp_call, replace(policy, shrinkage=True))
    assert untouched.method == "none" and not untouched.shrunk
    assert np.array_equal(untouched.image, sharp)
