"""Two inverses beside the Wiener filter (models.deconvolve): accelerated Richardson–Lucy (the
thirty-first round's fallback where the frame is quiet) and the sparse gradient prior (a look,
not the node's default; docs/models.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from models.blur import (
    NoiseSpec,
    from_exposure,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
)
from models.blur_estimate import MotionEstimate
from models.deblur import MotionAssessment, MotionPolicy, assess_motion, deconvolve
from models.deconvolve import (
    PenaltyFloor,
    pad_for_fft,
    psf_to_otf,
    richardson_lucy,
    richardson_lucy_steps,
    sparse_exposure,
)
from node.pipeline.correct import wiener_info
from tests.support.synthetic import power_law_field


def _psnr(sharp: np.ndarray, exposure: np.ndarray) -> float:
    out = np.clip(from_exposure(exposure, 3.0), 0.0, 1.0)
    return float(peak_signal_noise_ratio(sharp, out, data_range=1.0))


def _scene(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sharp = power_law_field(192, seed, 1.4, 0.2, 0.8)
    k = linear_kernel(9.0, 30.0)
    blurred = simulate_motion_blur(sharp, k)
    return sharp, to_exposure(blurred.astype(np.float64), 3.0), k


def test_plain_richardson_lucy_is_the_textbook_update() -> None:
    _, e, k = _scene()
    ep, _ = pad_for_fft(e, k)
    start = np.full_like(ep, float(ep.mean()))
    u = start.copy()
    otf = psf_to_otf(k, ep.shape)
    for _ in range(5):
        reblurred = np.fft.irfft2(np.fft.rfft2(u) * otf, s=ep.shape)
        u = u * np.fft.irfft2(np.fft.rfft2(ep / reblurred) * np.conj(otf), s=ep.shape)
    ours = richardson_lucy_steps(ep, start, k, 5)
    assert np.allclose(ours, u, rtol=1e-4, atol=1e-6)


def test_accelerated_steps_go_as_far_as_four_times_as_many_plain_ones() -> None:
    # a collimated frame, where the node falls back to Richardson-Lucy
    sharp, blurred = _collimated(8, None)
    k = linear_kernel(10.0, 20.0)
    e = to_exposure(blurred.astype(np.float64), 3.0)
    plain20, plain80 = (_psnr(sharp, richardson_lucy(e, k, n)) for n in (20, 80))
    fast20 = _psnr(sharp, richardson_lucy(e, k, 20, accelerated=True))
    assert plain80 > plain20 + 1.0
    assert abs(fast20 - plain80) < 0.2 * (plain80 - plain20)
    # it stays a Richardson-Lucy estimate: positive exposure
    assert float(richardson_lucy(e, k, 20, accelerated=True).min()) > 0.0


def test_the_sparse_prior_deconvolves_and_leaves_a_flat_frame_flat() -> None:
    sharp, e, k = _scene()
    assert _psnr(sharp, sparse_exposure(e, k, 300.0)) > _psnr(sharp, e) + 1.0
    assert _psnr(sharp, sparse_exposure(e, k, 300.0, alpha=1.0)) > _psnr(sharp, e) + 1.0
    flat = np.full((64, 64), 0.3)
    assert np.allclose(sparse_exposure(flat, k, 100.0), 0.3)
    # a small data weight smooths more than a large one
    smooth, sharper = sparse_exposure(e, k, 30.0), sparse_exposure(e, k, 3000.0)
    assert np.abs(np.diff(smooth, axis=1)).mean() < np.abs(np.diff(sharper, axis=1)).mean()


def _collimated(seed: int, quanta: float | None) -> tuple[np.ndarray, np.ndarray]:
    sharp = power_law_field(320, seed, 1.4, 0.15, 0.85)
    sharp[:, :50] = 0.0  # a collimated band: the Wiener result rings at its edge
    rng = np.random.default_rng(seed)
    return sharp, simulate_motion_blur(
        sharp, linear_kernel(10.0, 20.0), rng, noise=NoiseSpec(quanta)
    )


def test_the_fallback_is_accelerated_only_where_its_steps_reach_the_cap() -> None:
    built = MotionPolicy(rl_fallback_budget_max_iterations=None)  # 0.18.0: the cap of 40
    quick = dataclasses.replace(built, rl_fallback_quiet_accelerated=20)
    sharp, quiet = _collimated(8, None)
    a = assess_motion(quiet, 0.6, built)
    assert a.blurred
    before, after = deconvolve(quiet, a, built), deconvolve(quiet, a, quick)
    assert before.method == after.method == "richardson-lucy"
    assert before.rl_iterations == 40 and not before.rl_accelerated
    assert after.rl_iterations == 20 and after.rl_accelerated

    def psnr(img: np.ndarray) -> float:
        return float(peak_signal_noise_ratio(sharp, img, data_range=1.0))

    assert psnr(after.image) > psnr(before.image)
    # a noisy frame's law stays under the cap: its plain steps, as built
    _, noisy = _collimated(8, 3e3)
    b = assess_motion(noisy, 0.6, built)
    assert b.blurred
    d = deconvolve(noisy, b, quick)
    assert d.method == "richardson-lucy" and not d.rl_accelerated
    assert d.rl_iterations == deconvolve(noisy, b, built).rl_iterations < 40
    # finer pixels than the law's (detector scale): ten plain steps, as built
    fine = dataclasses.replace(a, pixel_spacing_mm=0.2)
    f = deconvolve(quiet, fine, quick)
    assert f.rl_iterations == 10 and not f.rl_accelerated


def test_a_frame_with_steeply_falling_anatomy_gets_a_steeper_wiener_penalty() -> None:
    """Noise over anatomy falls as f^−β, so the Wiener penalty should rise as steeply: on a
    field whose power falls as about f^−5 (5 px of motion, Poisson 10⁵, the true kernel) the
    node's λ·|2πf| brings back the noise where there is no anatomy and the frame comes back worse
    than its input; with ``penalty_steep_beta`` the penalty is λ'·|2πf|³ and the frame gains. A
    field with radiograph-like β ≈ 2 is left exactly as the node corrects it (the thirty-eighth
    round's option, docs/models.md)."""
    node = dataclasses.replace(MotionPolicy(), penalty_noise_over_signal=None)  # 0.18.0
    steep = dataclasses.replace(node, penalty_steep_beta=5.0)
    follow = dataclasses.replace(node, penalty_steep_beta=0.0, penalty_slope_offset=2.0)
    true = MotionAssessment(MotionEstimate(5.0, 30.0, 0.6, 1, 0.2), 0.2, "blurred")

    def gains(amplitude_exponent: float) -> list[tuple[float, float | None]]:
        sharp = power_law_field(512, 4, amplitude_exponent, 0.2, 0.8).astype(np.float32)
        rng = np.random.default_rng(0)
        b = simulate_motion_blur(sharp, linear_kernel(5.0, 30.0), rng, noise=NoiseSpec(1e5))
        before = peak_signal_noise_ratio(sharp, b, data_range=1.0)
        out = []
        for policy in (node, steep, follow):
            d = deconvolve(b, true, policy)
            out.append(
                (peak_signal_noise_ratio(sharp, d.image, data_range=1.0) - before, d.penalty_power)
            )
        return out

    (n, n_power), (s, s_power), (f, f_power) = gains(2.5)
    assert n < -1.0 and n_power is None
    assert s > 2.0 and s_power == 3.0
    assert f > 2.0 and f_power == 3.0
    (n, _), (s, s_power), (f, f_power) = gains(1.0)  # β ≈ 2: the node's power stays
    assert s == n and f == n and s_power is None and f_power is None
    # the correction's identity names the option
    assert wiener_info(steep).device_uid != wiener_info(node).device_uid
    assert wiener_info(follow).device_uid != wiener_info(steep).device_uid


def test_the_wiener_penalty_is_at_least_the_measured_noise_over_the_anatomy() -> None:
    """With ``penalty_noise_over_signal`` the penalty is at least c·σ²·|f|^β / A, read on the
    blurred frame (the MMSE Wiener filter's own ratio; the thirty-ninth round's option,
    docs/models.md): a field whose power falls as about f^−5 with Poisson noise of 10⁵ (5 px of
    motion, the true kernel), which the node's λ·|2πf| brings back worse than its input, gains
    several dB; the same field blurred without noise is corrected as the node corrects it to
    0.01 dB (the floor lies below the node's penalty but at the highest frequencies), and within
    0.1 dB so is a radiograph-like β ≈ 2 field with noise."""
    node = dataclasses.replace(MotionPolicy(), penalty_noise_over_signal=None)  # 0.18.0
    floored = dataclasses.replace(node, penalty_noise_over_signal=1.0)
    true = MotionAssessment(MotionEstimate(5.0, 30.0, 0.6, 1, 0.2), 0.2, "blurred")

    def corrected(amplitude_exponent: float, quanta: float | None) -> list[tuple[float, object]]:
        sharp = power_law_field(512, 4, amplitude_exponent, 0.2, 0.8).astype(np.float32)
        rng = np.random.default_rng(0)
        noise = NoiseSpec(quanta) if quanta is not None else None
        b = simulate_motion_blur(sharp, linear_kernel(5.0, 30.0), rng, noise=noise)
        before = peak_signal_noise_ratio(sharp, b, data_range=1.0)
        out: list[tuple[float, object]] = []
        for policy in (node, floored):
            d = deconvolve(b, true, policy)
            gain = peak_signal_noise_ratio(sharp, d.image, data_range=1.0) - before
            out.append((gain, d.penalty_floor))
        return out

    (n, n_floor), (f, f_floor) = corrected(2.5, 1e5)
    assert n < -1.0 and n_floor is None
    assert f > n + 5.0 and f > 5.0
    assert isinstance(f_floor, PenaltyFloor) and f_floor.exponent > 4.0
    (n, _), (f, f_floor) = corrected(2.5, None)
    assert abs(f - n) < 0.01 and isinstance(f_floor, PenaltyFloor)
    (n, _), (f, _) = corrected(1.0, 1e5)
    assert abs(f - n) < 0.1
    assert wiener_info(floored).device_uid != wiener_info(node).device_uid


def test_the_penalty_floor_can_be_kept_to_fine_pixels() -> None:
    """``penalty_noise_finer_than_mm`` (the fortieth round's candidate): the same noisy frame
    gets the floor where its pixels are finer than the bound and the node's penalty, to the
    pixel, where they are not."""
    node = dataclasses.replace(MotionPolicy(), penalty_noise_over_signal=None)  # 0.18.0
    fine_only = dataclasses.replace(
        node, penalty_noise_over_signal=1.0, penalty_noise_finer_than_mm=0.4
    )
    sharp = power_law_field(256, 4, 2.5, 0.2, 0.8).astype(np.float32)
    b = simulate_motion_blur(
        sharp, linear_kernel(5.0, 30.0), np.random.default_rng(0), noise=NoiseSpec(1e5)
    )
    for spacing, floored in ((0.2, True), (0.4, False), (0.6, False)):
        a = MotionAssessment(MotionEstimate(5.0, 30.0, 0.6, 1, 0.2), spacing, "blurred")
        d = deconvolve(b, a, fine_only)
        assert (d.penalty_floor is not None) == floored
        if not floored:
            assert np.array_equal(d.image, deconvolve(b, a, node).image)
    assert (
        wiener_info(fine_only).device_uid
        != wiener_info(dataclasses.replace(fine_only, penalty_noise_finer_than_mm=None)).device_uid
    )


def test_a_penalty_floor_must_be_finite_and_not_negative() -> None:
    for coefficient, exponent in ((-1.0, 2.0), (float("nan"), 2.0), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="penalty floor"):
            PenaltyFloor(coefficient, exponent)
