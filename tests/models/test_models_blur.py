from __future__ import annotations

import numpy as np
import pytest

from models.blur import (
    NoiseSpec,
    add_quantum_noise,
    blur_length_px,
    from_exposure,
    linear_kernel,
    motion_kernel,
    motion_mm,
    random_kernel,
    shake_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)


@pytest.mark.parametrize("length", [1, 3, 5, 7, 9, 15, 21])
def test_linear_kernel_sums_to_one_and_has_length(length: int) -> None:
    for angle in (0.0, 90.0):
        k = linear_kernel(length, angle)
        assert k.sum() == pytest.approx(1.0, abs=1e-12)
        assert (k > 0).sum() == length  # exactly L equal taps along an axis
        nz = k[k > 0]
        assert np.allclose(nz, 1.0 / length)
    horiz = linear_kernel(length, 0.0)
    assert np.count_nonzero(horiz.sum(axis=0)) == length
    assert np.count_nonzero(horiz.sum(axis=1)) == 1


@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 63.0, 120.0])
def test_linear_kernel_extent_along_direction(angle: float) -> None:
    length = 12.0
    k = linear_kernel(length, angle)
    assert k.sum() == pytest.approx(1.0)
    ys, xs = np.nonzero(k)
    c = k.shape[0] // 2
    a = np.radians(angle)
    proj = (xs - c) * np.cos(a) - (ys - c) * np.sin(a)
    extent = proj.max() - proj.min() + 1
    assert abs(extent - length) <= 2.0  # pixel-grid rounding at both ends
    # Centred: first moment at the centre pixel.
    assert abs(float((k * (np.arange(k.shape[1]) - c)[None, :]).sum())) < 0.6


def test_sub_pixel_length_is_identity() -> None:
    assert np.array_equal(linear_kernel(0.5, 30.0), np.ones((1, 1)))
    assert np.array_equal(trajectory_kernel(0.0, np.random.default_rng(0)), np.ones((1, 1)))


def test_trajectory_kernel_seeded_normalised_and_bounded() -> None:
    k1 = trajectory_kernel(15.0, np.random.default_rng(7))
    k2 = trajectory_kernel(15.0, np.random.default_rng(7))
    k3 = trajectory_kernel(15.0, np.random.default_rng(8))
    assert np.array_equal(k1, k2)
    assert not (k1.shape == k3.shape and np.array_equal(k1, k3))
    assert k1.sum() == pytest.approx(1.0)
    assert k1.min() >= 0
    # The path has arc length 15 px: it cannot span more than 15 px (+ rounding).
    ys, xs = np.nonzero(k1)
    assert max(np.ptp(ys), np.ptp(xs)) <= 16
    # A straight trajectory (no curvature) of length L spans about L px.
    ks = trajectory_kernel(15.0, np.random.default_rng(1), curvature=0.0, speed_variation=0.0)
    ys, xs = np.nonzero(ks)
    assert np.hypot(np.ptp(ys), np.ptp(xs)) == pytest.approx(14.0, abs=1.5)


def test_random_kernel() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = random_kernel(rng, 2.0, 8.0)
        assert k.sum() == pytest.approx(1.0)
        assert k.shape[0] % 2 == 1 and k.shape[0] <= 9


def test_length_helpers() -> None:
    assert blur_length_px(1.5, 0.15) == pytest.approx(10.0)
    assert blur_length_px(1.0, 0.2, magnification=1.2) == pytest.approx(6.0)
    assert motion_mm(50.0, 20.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        blur_length_px(1.0, 0.0)


def test_exposure_round_trip() -> None:
    v = np.linspace(0, 1, 11)
    assert np.allclose(from_exposure(to_exposure(v, 3.0), 3.0), v)


def test_simulate_blur_preserves_flat_and_mean_and_blurs() -> None:
    flat = np.full((32, 32), 0.4, dtype=np.float32)
    out = simulate_motion_blur(flat, linear_kernel(7, 30))
    assert out.dtype == np.float32 and out.shape == flat.shape
    assert np.allclose(out, 0.4, atol=1e-6)
    rng = np.random.default_rng(0)
    img = (rng.random((64, 64)) > 0.5).astype(np.float32)
    b = simulate_motion_blur(img, linear_kernel(9, 0))
    assert b.std() < img.std()
    # Horizontal blur smooths along rows only.
    assert np.abs(np.diff(b, axis=1)).mean() < np.abs(np.diff(b, axis=0)).mean()
    # Blur in exposure, not grey values: a dark (low-attenuation) side dominates the mix.
    edge = np.zeros((8, 16), dtype=np.float32)
    edge[:, 8:] = 1.0
    mixed = simulate_motion_blur(edge, linear_kernel(15, 0))[4, 8]
    assert mixed < 0.45  # a grey-value blur would give about 0.5


def test_quantum_noise_statistics_and_seed() -> None:
    e = np.full((200, 200), 0.5)
    n1 = add_quantum_noise(e, np.random.default_rng(3), photons=1000.0)
    n2 = add_quantum_noise(e, np.random.default_rng(3), photons=1000.0)
    assert np.array_equal(n1, n2)
    assert n1.mean() == pytest.approx(0.5, abs=0.005)
    # Poisson: variance of counts/N = E/N.
    assert n1.var() == pytest.approx(0.5 / 1000.0, rel=0.1)
    g = add_quantum_noise(e, np.random.default_rng(3), photons=None, read_noise=0.01)
    assert g.std() == pytest.approx(0.01, rel=0.1)
    out = simulate_motion_blur(
        np.full((16, 16), 0.3, dtype=np.float32),
        linear_kernel(3),
        np.random.default_rng(0),
        noise=NoiseSpec(photons=500.0),
    )
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.std() > 0
    with pytest.raises(ValueError):
        simulate_motion_blur(np.zeros((4, 4)), linear_kernel(3), None, noise=NoiseSpec(100.0))


def test_motion_kernel_draws_the_two_kinds_as_the_evaluations_always_did() -> None:
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert np.array_equal(
        motion_kernel("straight", 8.0, a), linear_kernel(8.0, float(b.uniform(0.0, 180.0)))
    )
    assert np.array_equal(motion_kernel("curved", 8.0, a), trajectory_kernel(8.0, b))
    assert np.array_equal(motion_kernel("shake", 8.0, a), shake_kernel(8.0, b))
    with pytest.raises(ValueError, match="straight', 'curved' or 'shake"):
        motion_kernel("sideways", 8.0, a)


def test_shake_kernel_is_another_models_path_of_the_asked_length() -> None:
    """The outside evaluator's kind of path: seeded, normalised, spanning the asked length,
    bilinear (no tap is the nearest-pixel share of a sample), and a scribble — far more path than
    the line it spans, unlike the smooth trajectories."""
    k1, k2 = (
        shake_kernel(24.0, np.random.default_rng(3)),
        shake_kernel(24.0, np.random.default_rng(3)),
    )
    assert np.array_equal(k1, k2)
    assert k1.sum() == pytest.approx(1.0) and k1.min() >= 0
    spans, taps = [], []
    for seed in range(20):
        k = shake_kernel(24.0, np.random.default_rng(seed))
        at = np.argwhere(k > 1e-9).astype(float)
        spans.append(np.sqrt(((at[:, None] - at[None]) ** 2).sum(-1).max()))
        taps.append(len(at))
    # the diameter is 24 px; the bilinear weights add up to a pixel at each end
    assert 23.0 <= min(spans) and max(spans) <= 24.0 + 2 * np.sqrt(2.0) + 1e-9
    # a line spanning 24 px covers about 24 pixels (48 with bilinear weights); a scribble far more
    assert min(taps) > 2 * np.count_nonzero(linear_kernel(24.0, 30.0)) + 24
    assert np.array_equal(shake_kernel(0.5, np.random.default_rng(0)), np.ones((1, 1)))
    with pytest.raises(ValueError):
        shake_kernel(-1.0, np.random.default_rng(0))
