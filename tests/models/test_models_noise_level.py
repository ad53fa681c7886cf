"""The noise measured in a blurred radiograph (models.noise_level) and the Wiener regulariser that
follows it (models.deblur.wiener_balance): a frame blurred without added noise is deconvolved with
far less regularisation, and restored far better, than with the one λ tuned for 10⁴ quanta/px."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur, to_exposure
from models.deblur import (
    BALANCE_REFERENCE_QUANTA,
    MotionPolicy,
    assess_motion,
    deconvolve,
    wiener_balance,
)
from models.noise_level import (
    frame_spectrum,
    power_law_across,
    quanta_per_pixel,
    spectral_slope_across,
    white_noise_variance,
)
from tests.support.synthetic import power_law_field


def _radiograph(n: int, seed: int) -> np.ndarray:
    """A radiograph-like field: 1/f^1.3 anatomy with fine texture, grey values 0.2-0.8."""
    return power_law_field(n, seed, 1.3, 0.2, 0.8).astype(np.float32)


@pytest.mark.parametrize("quanta", [3e3, 1e4, 1e5])
def test_poisson_noise_on_a_flat_exposure_is_read_as_its_quanta(quanta: float) -> None:
    rng = np.random.default_rng(0)
    e = rng.poisson(np.full((384, 384), 0.4) * quanta) / quanta
    assert quanta_per_pixel(e) == pytest.approx(quanta, rel=0.15)


@pytest.mark.parametrize("quanta", [1e4, 1e5])
def test_the_noise_after_a_motion_blur_is_read_in_the_motions_quiet_direction(
    quanta: float,
) -> None:
    # Across the motion the anatomy's texture stays; along it only the added noise is left.
    rng = np.random.default_rng(1)
    sharp = _radiograph(384, 2)
    blurred = simulate_motion_blur(sharp, linear_kernel(8.0, 30.0), rng, noise=NoiseSpec(quanta))
    measured = quanta_per_pixel(to_exposure(blurred.astype(np.float64), 3.0))
    assert quanta / 1.5 < measured < quanta * 1.5


def test_the_regulariser_follows_the_noise_within_its_range() -> None:
    policy = MotionPolicy()
    rng = np.random.default_rng(3)
    sharp = _radiograph(384, 4)
    k = linear_kernel(8.0, 120.0)
    balances = {}
    for quanta in (None, 1e5, 1e4, 3e3):
        b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
        lam, measured = wiener_balance(to_exposure(b.astype(np.float64), 3.0), policy)
        assert measured is not None
        lo, hi = policy.balance_range
        assert lo <= lam <= hi
        balances[quanta] = lam
    assert balances[None] < balances[1e5] < balances[1e4] < balances[3e3]
    assert balances[1e4] == pytest.approx(policy.balance, rel=0.35)  # the reference level
    fixed = dataclasses.replace(policy, balance_follows_noise=False)
    assert wiener_balance(np.full((64, 64), 0.5), fixed) == (policy.balance, None)


def test_a_frame_without_measurable_noise_gets_the_least_regularisation() -> None:
    policy = MotionPolicy()
    lam, measured = wiener_balance(np.full((128, 128), 0.5), policy)
    assert measured == math.inf and lam == policy.balance_range[0]
    # too small to measure: the fixed value
    assert wiener_balance(np.full((8, 8), 0.5), policy) == (policy.balance, None)
    assert BALANCE_REFERENCE_QUANTA == 1e4


def test_noiseless_blur_is_restored_better_with_the_noise_following_regulariser() -> None:
    sharp = _radiograph(384, 5)
    blurred = simulate_motion_blur(sharp, linear_kernel(10.0, 60.0))
    policy = MotionPolicy()
    a = assess_motion(blurred, 0.2, policy)
    assert a.blurred
    follows = deconvolve(blurred, a, policy)
    fixed = deconvolve(blurred, a, dataclasses.replace(policy, balance_follows_noise=False))
    assert follows.balance is not None and follows.balance < 0.05 and follows.noise_quanta
    assert fixed.balance == policy.balance and fixed.noise_quanta is None

    def gain(out: np.ndarray) -> float:
        return float(
            peak_signal_noise_ratio(sharp, out, data_range=1.0)
            - peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
        )

    assert gain(follows.image) > gain(fixed.image) + 1.0


def test_the_node_says_which_regulariser_the_measured_noise_gave() -> None:
    from node.pipeline.correct import Corrector, wiener_info

    rng = np.random.default_rng(6)
    blurred = simulate_motion_blur(
        _radiograph(384, 7), linear_kernel(10.0, 45.0), rng, noise=NoiseSpec(3e4)
    )
    policy = MotionPolicy()
    done = Corrector(policy)(blurred, assess_motion(blurred, 0.2, policy))
    assert done.applied and done.method.startswith("Wiener deconvolution of")
    assert "; regularisation 0.0" in done.method and "quanta per pixel)" in done.method
    # the identity changes with the setting (another Device UID) and says what it does
    fixed = dataclasses.replace(policy, balance_follows_noise=False)
    assert wiener_info(policy).device_uid != wiener_info(fixed).device_uid
    assert "regularised by the measured noise" in (wiener_info(policy).description or "")
    assert "regularised by the measured noise" not in (wiener_info(fixed).description or "")
    coarse = "Richardson-Lucy, 10 steps, 10-40 by the measured noise at pixels of 0.4 mm and more,"
    assert coarse in (wiener_info(policy).description or "")  # the default since 0.18.0
    ten = dataclasses.replace(policy, rl_fallback_follows_noise_from_mm=None)
    assert "Richardson-Lucy, 10 steps, where it rings" in (wiener_info(ten).description or "")
    assert wiener_info(ten).device_uid != wiener_info(policy).device_uid
    follows = dataclasses.replace(policy, rl_fallback_follows_noise=True)
    assert "Richardson-Lucy, 10-40 steps by the measured noise" in (
        wiener_info(follows).description or ""
    )
    # the law for every frame is another correction (at detector scale too): its own Device UID,
    # and the pixel size from which the narrower law would hold no longer counts
    assert wiener_info(follows).device_uid != wiener_info(policy).device_uid
    anywhere = dataclasses.replace(follows, rl_fallback_follows_noise_from_mm=None)
    assert wiener_info(anywhere).device_uid == wiener_info(follows).device_uid


def test_the_richardson_lucy_fallback_takes_more_steps_in_a_quieter_frame() -> None:
    from models.deblur import rl_fallback_iterations

    # the default (on real frames at 1e4 more steps harmed, docs/models.md), with the cap of 40
    # for every frame as up to 0.18.0 (the thirty-second round's budget apart)
    fixed = MotionPolicy(rl_fallback_budget_max_iterations=None)
    follows = dataclasses.replace(fixed, rl_fallback_follows_noise=True)
    assert rl_fallback_iterations(1e6, fixed) == fixed.rl_fallback_iterations == 10
    assert rl_fallback_iterations(None, follows) == 10
    assert rl_fallback_iterations(1e3, follows) == 10  # never fewer than the base count
    assert rl_fallback_iterations(6e3, follows) == 10
    assert rl_fallback_iterations(2e4, follows) == 21
    assert rl_fallback_iterations(math.inf, follows) == follows.rl_fallback_max_iterations == 40

    # a collimated frame (an unexposed band: the Wiener filter rings there) blurred without noise
    sharp = _radiograph(320, 8)
    sharp[:, :50] = 0.0
    blurred = simulate_motion_blur(sharp, linear_kernel(10.0, 20.0))
    a = assess_motion(blurred, 0.2, follows)
    assert a.blurred
    few, many = deconvolve(blurred, a, fixed), deconvolve(blurred, a, follows)
    assert few.method == many.method == "richardson-lucy"
    assert few.rl_iterations == 10 and many.rl_iterations == 40

    def psnr(out: np.ndarray) -> float:
        return float(peak_signal_noise_ratio(sharp, out, data_range=1.0))

    assert psnr(many.image) > psnr(few.image) + 0.5


def test_only_a_retrieved_kernel_s_fallback_follows_the_noise_where_the_shape_policy_says_so() -> (
    None
):
    """The twenty-ninth round's candidate (``shape_rl_follows_noise``): the fallback's steps
    follow the noise where the shape step's retrieved kernel took it, not where the straight
    kernel did."""
    from models.kernel_shape import KernelShape

    sharp = _radiograph(320, 8)
    sharp[:, :50] = 0.0
    k = linear_kernel(10.0, 20.0)
    blurred = simulate_motion_blur(sharp, k)
    # as 0.16.0 (the straight kernel's steps by the noise, 0.18.0, apart)
    candidate = MotionPolicy(
        rl_fallback_follows_noise_from_mm=None, rl_fallback_budget_max_iterations=None
    )
    built = dataclasses.replace(candidate, shape_rl_follows_noise=False)  # 0.14.0
    a = assess_motion(blurred, 0.6, built)
    assert a.blurred
    retrieved = KernelShape(k, True, 0.5, 0.25, 1, "")
    straight = KernelShape(a.estimate.kernel(), False, 0.1, 0.25, 1, "magnitude fits")
    for shape, steps in ((retrieved, 40), (straight, 10)):
        done = deconvolve(blurred, a, candidate, shape=shape)
        assert done.method == "richardson-lucy" and done.rl_iterations == steps
        assert deconvolve(blurred, a, built, shape=shape).rl_iterations == 10


def test_at_coarse_pixels_every_kernel_s_fallback_follows_the_noise_where_the_policy_says_so() -> (
    None
):
    """The thirtieth round's setting (``rl_fallback_follows_noise_from_mm``): at pixels of at
    least that size the straight kernel's fallback follows the noise too (and gains without
    noise); at finer pixels (detector scale, where the general law harmed a real frame) it
    keeps ten steps."""
    sharp = _radiograph(320, 8)
    sharp[:, :50] = 0.0  # a collimated band: the Wiener result rings at its edge
    blurred = simulate_motion_blur(sharp, linear_kernel(10.0, 20.0))
    candidate = MotionPolicy(rl_fallback_budget_max_iterations=None)  # 0.18.0
    assert candidate.rl_fallback_follows_noise_from_mm == 0.4
    # 0.16.0: only a retrieved kernel's fallback follows the noise
    built = dataclasses.replace(candidate, rl_fallback_follows_noise_from_mm=None)

    def psnr(out: np.ndarray) -> float:
        return float(peak_signal_noise_ratio(sharp, out, data_range=1.0))

    coarse = assess_motion(blurred, 0.6, built)
    assert coarse.blurred
    few, many = deconvolve(blurred, coarse, built), deconvolve(blurred, coarse, candidate)
    assert few.method == many.method == "richardson-lucy"
    assert few.rl_iterations == 10 and many.rl_iterations == 40
    assert psnr(many.image) > psnr(few.image) + 0.5
    # just under the setting's size: as built
    below = dataclasses.replace(coarse, pixel_spacing_mm=0.39)
    assert deconvolve(blurred, below, candidate).rl_iterations == 10
    fine = assess_motion(blurred, 0.2, built)
    assert fine.blurred
    done = deconvolve(blurred, fine, candidate)
    assert done.method == "richardson-lucy" and done.rl_iterations == 10
    # with noise the law gives fewer steps (10 at 6e3 quanta per pixel and below)
    noisy = simulate_motion_blur(
        sharp, linear_kernel(10.0, 20.0), np.random.default_rng(1), noise=NoiseSpec(3e3)
    )
    a = assess_motion(noisy, 0.6, built)
    assert a.blurred
    d = deconvolve(noisy, a, candidate)
    assert d.noise_quanta is not None and d.noise_quanta < 6e3
    assert d.method == "richardson-lucy" and d.rl_iterations == 10


def test_a_long_poorly_fitting_motion_sets_a_floor_under_the_regulariser() -> None:
    from models.blur_estimate import MotionEstimate
    from models.deblur import mismatch_floor

    policy = dataclasses.replace(MotionPolicy(), balance_mismatch_floor=0.01)
    curved = MotionEstimate(20.0, 30.0, 0.7, specificity=0.15)
    straight = MotionEstimate(20.0, 30.0, 0.9, specificity=0.2)
    assert mismatch_floor(curved, policy) == pytest.approx(0.01 * 4 * 1.5**3)
    assert mismatch_floor(straight, policy) == pytest.approx(0.01 * 4 * 0.5**3)
    assert mismatch_floor(MotionEstimate(80.0, 0.0, 0.2), policy) == policy.balance_range[1]
    assert mismatch_floor(curved, dataclasses.replace(policy, balance_mismatch_floor=None)) == 0

    # through deconvolve: a noiseless frame gets the floor instead of the noise's least λ
    sharp = _radiograph(256, 9)
    blurred = simulate_motion_blur(sharp, linear_kernel(12.0, 70.0))
    a = assess_motion(blurred, 0.2, policy)
    assert a.blurred
    floor = mismatch_floor(a.estimate, policy)
    assert floor > policy.balance_range[0]
    assert deconvolve(blurred, a, policy).balance == pytest.approx(floor)


@pytest.mark.parametrize("angle", [0.0, 30.0, 120.0])
def test_the_anatomy_across_the_motion_keeps_its_power(angle: float) -> None:
    from models.blur import convolve
    from models.noise_level import signal_power_across

    rng = np.random.default_rng(10)
    texture = rng.standard_normal((384, 384)) + 10.0  # white "anatomy", power 1 per bin
    blurred = convolve(texture, linear_kernel(15.0, angle))
    across = signal_power_across(blurred, angle)
    along = signal_power_across(blurred, angle + 90.0)  # the perpendicular of the wrong angle
    assert across > 0.6 and along < 0.3 * across


def _dense_centre_frame(n: int) -> np.ndarray:
    """A large frame's exposure: bright all round, a dense (little-exposed) band down its centre
    like a chest's mediastinum and spine."""
    x = np.abs(np.arange(n) - n / 2) / (n / 2)
    return np.tile(np.where(x < 0.35, 0.08, 0.6), (n, 1))


def test_on_a_large_frame_the_noise_is_measured_against_the_exposure_where_it_is_read() -> None:
    # Poisson noise of 10⁴ quanta/px on a 1536² frame: its variance is read in the 256 windows
    # nearest the centre (the dense band), so the whole frame's mean over it overstates N.
    from models.noise_level import mean_where_read

    rng = np.random.default_rng(11)
    e = _dense_centre_frame(1536)
    noisy = rng.poisson(e * 1e4) / 1e4
    assert mean_where_read(noisy) < 0.5 * float(noisy.mean())
    assert quanta_per_pixel(noisy, where_read=True) == pytest.approx(1e4, rel=0.2)
    assert quanta_per_pixel(noisy) > 2.5e4  # as the node is built (0.10.0)
    # a frame small enough for every window to be read: both measures agree
    small = noisy[:, 500:1036][:384]
    assert quanta_per_pixel(small) == pytest.approx(
        quanta_per_pixel(small, where_read=True), rel=1e-3
    )


def test_the_policy_chooses_the_noise_measure_of_the_regulariser() -> None:
    rng = np.random.default_rng(12)
    noisy = rng.poisson(_dense_centre_frame(1536) * 1e4) / 1e4
    old = dataclasses.replace(MotionPolicy(), noise_mean_where_read=False)
    new = dataclasses.replace(MotionPolicy(), noise_mean_where_read=True)
    lam_old, n_old = wiener_balance(noisy, old)
    lam_new, n_new = wiener_balance(noisy, new)
    assert n_new == pytest.approx(1e4, rel=0.2) and n_old is not None and n_old > 2.5e4
    assert lam_new == pytest.approx(old.balance, rel=0.15) and lam_old < 0.6 * lam_new


def test_the_noise_measure_and_the_length_factor_are_settings_in_the_identity(
    tmp_path: Path,
) -> None:
    from node.config import load_settings
    from node.pipeline.blur_gate import policy as policy_of
    from node.pipeline.correct import wiener_info

    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: {}\n")
    default = policy_of(load_settings(cfg, environ={}).blur_gate)
    cfg.write_text(
        "blur_gate:\n  noise_measured_where_read: true\n  wiener_balance_length_exponent: 0.5\n"
    )
    other = policy_of(load_settings(cfg, environ={}).blur_gate)
    assert other.noise_mean_where_read != default.noise_mean_where_read
    assert other.balance_length_exponent == 0.5 != default.balance_length_exponent
    assert wiener_info(other).device_uid != wiener_info(default).device_uid
    # through the environment, as the evaluation commands compare them
    env = {"SHARPRAY_BLUR_GATE__WIENER_BALANCE_LENGTH_EXPONENT": "0.25"}
    cfg.write_text("models: {}\n")
    assert policy_of(load_settings(cfg, environ=env).blur_gate).balance_length_exponent == 0.25


@pytest.mark.parametrize(("amplitude_exponent", "beta"), [(1.0, 2.0), (2.0, 4.0)])
def test_the_anatomy_s_power_law_is_read_across_the_motion(
    amplitude_exponent: float, beta: float
) -> None:
    """A field whose power falls as f^−β, blurred by 10 px of straight motion with Poisson noise:
    across the motion its β is read back (the noise taken out); along the motion the blur makes
    the spectrum far steeper (the twenty-eighth session's penalty look, docs/models.md)."""
    field = power_law_field(512, 4, amplitude_exponent, 0.2, 0.8)
    rng = np.random.default_rng(0)
    blurred = simulate_motion_blur(field, linear_kernel(10.0, 30.0), rng, noise=NoiseSpec(1e5))
    e = to_exposure(blurred.astype(np.float64), 3.0)
    across = spectral_slope_across(e, 30.0)
    along = spectral_slope_across(e, 120.0)  # the perpendicular of the perpendicular
    assert across == pytest.approx(beta, abs=0.5)
    assert along > across + 1.0


def test_a_frame_the_noise_covers_has_no_power_law() -> None:
    rng = np.random.default_rng(1)
    noise_only = 0.5 + 0.01 * rng.standard_normal((256, 256))
    assert math.isnan(spectral_slope_across(noise_only, 0.0))


def test_the_power_law_and_the_noise_are_read_in_the_same_units() -> None:
    """:func:`power_law_across` gives A, β and σ² such that σ² / (A·f^−β) is the noise-to-signal
    ratio: white noise of a known variance added after 10 px of motion blur is read back as σ²,
    the blurred field's own power across the motion at a band frequency as A·f^−β, and scaling
    the frame by 2 scales A and σ² by 4 and leaves β (the thirty-ninth round's penalty floor,
    docs/models.md)."""
    rng = np.random.default_rng(2)
    field = simulate_motion_blur(power_law_field(512, 4, 1.5, 0.2, 0.8), linear_kernel(10.0, 30.0))
    clean = field.astype(np.float64)
    noise_sd = 3e-3
    e = clean + noise_sd * rng.standard_normal(clean.shape)
    amplitude, beta, noise = power_law_across(e, 30.0)
    assert noise == pytest.approx(noise_sd**2, rel=0.25)
    assert noise == white_noise_variance(e)
    assert beta == pytest.approx(3.0, abs=0.5)
    # the noise-free frame's power law, as Welch reads it, at 0.1 cycles/px
    clean_a, clean_beta, _ = power_law_across(clean, 30.0)
    at = 0.1
    assert amplitude * at**-beta == pytest.approx(clean_a * at**-clean_beta, rel=0.3)
    a2, b2, n2 = power_law_across(2.0 * e, 30.0)
    assert a2 == pytest.approx(4.0 * amplitude, rel=1e-6)
    assert b2 == pytest.approx(beta, abs=1e-9)
    assert n2 == pytest.approx(4.0 * noise, rel=1e-9)
    only_noise = 0.5 + 0.01 * rng.standard_normal((256, 256))
    a, b, n = power_law_across(only_noise, 0.0)
    assert math.isnan(a) and math.isnan(b) and n == pytest.approx(1e-4, rel=0.25)


def test_a_frame_s_spectrum_is_read_once_and_gives_what_the_frame_gives() -> None:
    """The node reads a frame's Welch spectrum once (:func:`frame_spectrum`) for the noise that
    sets λ and for the penalty's floor: handed to each measurement it gives exactly what that
    measurement reads on the frame itself, and a spectrum of another frame is refused."""
    rng = np.random.default_rng(5)
    field = simulate_motion_blur(power_law_field(256, 6, 1.5, 0.2, 0.8), linear_kernel(8.0, 60.0))
    e = field.astype(np.float64) + 2e-3 * rng.standard_normal(field.shape)
    spectrum = frame_spectrum(e)
    assert white_noise_variance(e, spectrum=spectrum) == white_noise_variance(e)
    assert quanta_per_pixel(e, spectrum=spectrum) == quanta_per_pixel(e)
    assert power_law_across(e, 60.0, spectrum=spectrum) == power_law_across(e, 60.0)
    with pytest.raises(ValueError, match="spectrum was read on a"):
        white_noise_variance(e[:200, :200], spectrum=spectrum)
    with pytest.raises(ValueError, match="px windows"):
        white_noise_variance(e, 32, spectrum=spectrum)


def test_a_noise_read_clear_of_flat_shadows_reads_the_anatomy_s_quanta() -> None:
    """A candidate for a next round (MotionPolicy.noise_clear_of_shadows_from_mm): a quarter
    of flat, noiseless direct exposure (a shadow drawn after the noise) raises the whole frame's mean exposure and leaves the
    variance's windows quieter, so N̂ comes out too high; read clear of it, N̂ is the
    anatomy's. And where the policy asks for it (pixels ≥ 0.4 mm), the correction is set by
    that N̂: a larger λ and fewer fallback steps than the frame's whole-frame reading."""
    quanta = 1e4
    rng = np.random.default_rng(3)
    e = rng.poisson(to_exposure(_radiograph(512, 3), 3.0) * quanta) / quanta
    without = quanta_per_pixel(e)  # the frame's reading without a shadow (its texture in it)
    shadow = np.zeros(e.shape, dtype=bool)
    shadow[:, :160] = True
    e[shadow] = 1.0  # flat: no quantum noise in it
    whole = quanta_per_pixel(e)
    clear = quanta_per_pixel(e, spectrum=frame_spectrum(e, avoid=shadow))
    assert whole > 2 * without
    assert clear == pytest.approx(without, rel=0.1)
    moved = simulate_motion_blur(
        _radiograph(512, 3), linear_kernel(8.0, 30.0), rng, noise=NoiseSpec(quanta)
    )
    moved[shadow] = 0.0  # direct exposure, drawn after the noise
    built = MotionPolicy()
    candidate = dataclasses.replace(built, noise_clear_of_shadows_from_mm=0.4)
    a = assess_motion(moved, 0.6, built)
    assert a.blurred
    as_built, read_clear = deconvolve(moved, a, built), deconvolve(moved, a, candidate)
    assert as_built.noise_quanta is not None and read_clear.noise_quanta is not None
    assert read_clear.noise_quanta < as_built.noise_quanta
    assert read_clear.balance is not None and as_built.balance is not None
    assert read_clear.balance > as_built.balance
    # finer pixels than the candidate's limit: as built
    a_fine = assess_motion(moved, 0.2, built)
    assert a_fine.blurred
    assert np.array_equal(
        deconvolve(moved, a_fine, candidate).image, deconvolve(moved, a_fine, built).image
    )
