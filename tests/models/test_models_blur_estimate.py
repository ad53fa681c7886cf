"""Blind motion estimate, decision and deconvolution on a generated radiograph-like image."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.blur_estimate import MIN_CLEAR_WINDOWS, MotionEstimate, estimate_motion, welch_windows
from models.deblur import MotionPolicy, assess_motion, correct, deconvolve
from models.deconvolve import wiener
from node.pipeline.correct import wiener_info


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


def test_richardson_lucy_steps_fit_the_data_better_and_stay_positive() -> None:
    """After the Wiener filter, each Richardson-Lucy step brings the re-blurred estimate closer to
    the blurred exposure (its Poisson likelihood rises) and never makes an exposure negative."""
    from scipy.signal import oaconvolve

    from models.blur import to_exposure
    from models.deconvolve import richardson_lucy_steps, wiener_exposure

    sharp = phantom(192)
    sharp[:, :30] = 0.0  # an unexposed band: a hard edge in exposure
    k = linear_kernel(11.0, 30.0)
    blurred = simulate_motion_blur(sharp, k, np.random.default_rng(4), noise=NoiseSpec(5e4))
    e = to_exposure(blurred.astype(np.float64), 3.0)
    start = wiener_exposure(e, k)
    assert start.min() < 0 or start.max() > 1.0  # the linear filter rings past the data

    def misfit(u: np.ndarray) -> float:
        return float(np.mean((oaconvolve(u, k, mode="same") - e)[20:-20, 20:-20] ** 2))

    one, three = (richardson_lucy_steps(e, start, k, n) for n in (1, 3))
    assert min(one.min(), three.min()) > 0
    assert misfit(three) < misfit(one) < misfit(np.maximum(start, e.min() * 0.5))
    # rl_iterations=0 is the Wiener filter alone; more steps change it
    assert np.array_equal(wiener_exposure(e, k, rl_iterations=0), start)
    assert not np.allclose(wiener_exposure(e, k, rl_iterations=2), start)


def test_tuning_cases_and_methods_run_on_a_phantom() -> None:
    """models.tune_deconvolution's methods, gated as the node gates, on one collimated case."""
    from models.tune_deconvolution import collimate as tune_collimate
    from models.tune_deconvolution import methods

    # its Wiener methods regularise as the node did before the penalty floor (0.18.0)
    policy = dataclasses.replace(MotionPolicy(), penalty_noise_over_signal=None)
    sharp = tune_collimate(phantom(256))
    assert sharp[:, :10].max() == 0.0 and sharp.max() == 1.0
    blurred = simulate_motion_blur(
        sharp, linear_kernel(12.0, 60.0), np.random.default_rng(5), noise=NoiseSpec(2e4)
    )
    a = assess_motion(blurred, 0.2, policy)
    outs = {name: fn(blurred, a, policy) for name, fn in methods(policy).items()}
    assert set(outs) == {
        *("wiener_rl0", "wiener_rl2", "wiener_rl3", "wiener_rl5", "rl10_alone", "node")
    }
    assert a.blurred
    assert np.array_equal(outs["node"], correct(blurred, a, policy))
    alone = deconvolve(blurred, a, policy, allow_fallback=False)
    assert alone.method == "wiener" and np.array_equal(outs["wiener_rl0"], alone.image)
    for o in outs.values():
        assert o.shape == sharp.shape and o.dtype == np.float32
        assert 0.0 <= o.min() and o.max() <= 1.0
    # a sharp image is returned unchanged by every method (the node's gate)
    a_sharp = assess_motion(phantom(256), 0.2, policy)
    assert all(
        np.array_equal(fn(phantom(256), a_sharp, policy), phantom(256))
        for fn in methods(policy).values()
    )


def test_richardson_lucy_replaces_a_wiener_result_that_rings_at_hard_edges() -> None:
    """The node's deconvolution: open anatomy gets the Wiener filter; the same image with an
    unexposed band and a marker (hard edges at the data's range) makes the Wiener result overshoot
    that range, so Richardson-Lucy is used, and it is closer to the sharp image there (fitting
    the whole frame, as up to 0.34.0; the node's default leaves the shadows it finds out of the
    fit and returns them as received, still blurred here, and is checked against the input)."""
    from dataclasses import replace

    from models.tune_deconvolution import collimate

    policy = replace(MotionPolicy(), fallback_leaves_shadows=False)
    k = linear_kernel(14.0, 20.0)
    results = {}
    for scene, sharp in (("open", phantom(320)), ("collimated", collimate(phantom(320)))):
        blurred = simulate_motion_blur(sharp, k, np.random.default_rng(6), noise=NoiseSpec(1e4))
        a = assess_motion(blurred, 0.2, policy)
        assert a.blurred, scene
        done = deconvolve(blurred, a, policy)
        wiener_only = deconvolve(blurred, a, replace(policy, ringing_limit=None))
        results[scene] = done.method
        psnr = {
            name: peak_signal_noise_ratio(sharp, img, data_range=1.0)
            for name, img in (("node", done.image), ("wiener", wiener_only.image))
        }
        if scene == "open":
            assert done.method == "wiener" and done.overshoot < policy.ringing_limit
            assert np.array_equal(done.image, wiener_only.image)
        else:
            assert done.method == "richardson-lucy" and done.overshoot > policy.ringing_limit
            # +0.42 dB here since 0.6.0 (λ by the measured noise), +0.5 or more before
            assert psnr["node"] > psnr["wiener"] + 0.3
            default = deconvolve(blurred, a, MotionPolicy())
            assert default.method == "richardson-lucy" and default.shadow_share > 0
            gained = peak_signal_noise_ratio(sharp, default.image, data_range=1.0)
            assert gained > peak_signal_noise_ratio(sharp, blurred, data_range=1.0) + 1.0
        assert psnr["node"] > peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
    assert results == {"open": "wiener", "collimated": "richardson-lucy"}


def _against_08(mode: str) -> tuple[np.ndarray, MotionPolicy, MotionPolicy, np.random.Generator]:
    """The phantom, sharpray-blind-wiener 0.8.0's estimate (no noise subtraction) and ``mode``."""
    built = MotionPolicy(estimate_noise_subtraction="never")
    return (
        phantom(),
        built,
        dataclasses.replace(built, estimate_noise_subtraction=mode),
        np.random.default_rng(0),
    )


def _noisy(sharp: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """Straight motion at 30° with Poisson noise of 3·10³ quanta/px (none for length 0)."""
    k = linear_kernel(length, 30.0) if length else np.ones((1, 1))
    return simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(3e3))


def test_subtracting_the_measured_noise_finds_short_motion_in_a_noisy_frame() -> None:
    """3 px of motion at 3·10³ quanta/px: its first dip (0.33 cycles/px) lies where the spectrum
    is mostly noise; with the measured noise taken out the length and direction are found, a
    sharp frame with the same noise stays sharp (the eighth round, docs/models.md)."""
    sharp, built, subtracting, rng = _against_08("always")
    blurred = _noisy(sharp, 3.0, rng)
    plain, sub = assess_motion(blurred, 0.6, built), assess_motion(blurred, 0.6, subtracting)
    assert abs(plain.estimate.length_px - 3.0) > 1.5  # the noise stretches the plain estimate
    assert sub.estimate.length_px == pytest.approx(3.0, abs=0.8)
    assert abs((sub.estimate.angle_deg - 30.0 + 90) % 180 - 90) < 6
    assert sub.decision == "blurred"
    assert assess_motion(_noisy(sharp, 0.0, rng), 0.6, subtracting).decision == "sharp"
    # a frame without noise: next to nothing is subtracted, the estimate stays where it was
    quiet = simulate_motion_blur(sharp, linear_kernel(7.0, 30.0), rng)
    a, b = (assess_motion(quiet, 0.6, p).estimate for p in (built, subtracting))
    assert a.length_px == pytest.approx(7.0, abs=1.0)
    assert b.length_px == pytest.approx(a.length_px, abs=0.5)


def test_the_second_look_subtracts_the_noise_only_where_the_plain_estimate_finds_nothing() -> None:
    """The ninth round: motion the plain estimate finds keeps its estimate (to the digit); short
    motion it misses in the noise is looked at again with the noise taken out."""
    sharp, built, looking, rng = _against_08("second_look")
    long = _noisy(sharp, 7.0, rng)
    a, b = assess_motion(long, 0.6, built), assess_motion(long, 0.6, looking)
    assert a.blurred and a == b
    short = _noisy(sharp, 3.0, rng)
    a, b = assess_motion(short, 0.6, built), assess_motion(short, 0.6, looking)
    assert a.decision == "sharp" and b.decision == "blurred"
    assert b.estimate.length_px == pytest.approx(3.0, abs=0.8)
    assert assess_motion(_noisy(sharp, 0.0, rng), 0.6, looking).decision == "sharp"


def test_ringing_judged_at_the_reference_balance_where_a_quiet_frame_has_a_smaller_one() -> None:
    """The nineteenth round's candidate: a noiseless frame's λ (the floor, 0.01) overshoots more
    than λ 0.1 on the same anatomy; with ``ringing_reference_balance`` the fallback is decided on
    the Wiener result at 0.1, so a limit between the two keeps the frame's own Wiener result,
    while hard edges still ring at the reference and a noisy frame's larger λ changes nothing."""
    from dataclasses import replace

    from models.blur import to_exposure
    from models.deconvolve import overshoot_fraction, wiener_exposure
    from models.tune_deconvolution import collimate

    k = linear_kernel(14.0, 20.0)
    sharp = phantom(320)
    quiet = simulate_motion_blur(sharp, k, np.random.default_rng(6))
    built = MotionPolicy()
    a = assess_motion(quiet, 0.2, built)
    assert a.blurred
    own = deconvolve(quiet, a, replace(built, ringing_limit=None))
    assert own.balance is not None and own.balance < 0.1
    e = to_exposure(quiet.astype(np.float64), built.log_range)
    at_reference = overshoot_fraction(wiener_exposure(e, a.estimate.kernel(), 0.1), e)
    assert at_reference < own.overshoot  # the smaller λ overshoots more
    limit = float(np.sqrt(max(at_reference, 1e-9) * own.overshoot))  # between the two
    policy = replace(built, ringing_limit=limit)
    candidate = replace(policy, ringing_reference_balance=0.1)
    assert deconvolve(quiet, a, policy).method == "richardson-lucy"
    kept = deconvolve(quiet, a, candidate)
    assert kept.method == "wiener" and kept.overshoot == pytest.approx(at_reference)
    assert np.array_equal(kept.image, own.image)
    # hard edges ring at the reference λ as well: the fallback stays
    edges = simulate_motion_blur(collimate(sharp), k, np.random.default_rng(6), noise=None)
    a_edges = assess_motion(edges, 0.2, built)
    assert a_edges.blurred
    assert deconvolve(edges, a_edges, replace(built, ringing_reference_balance=0.1)).method == (
        "richardson-lucy"
    )
    # a noisy frame's λ is at least the reference: judged on its own result, as built
    noisy = simulate_motion_blur(sharp, k, np.random.default_rng(7), noise=NoiseSpec(3e3))
    a_noisy = assess_motion(noisy, 0.2, built)
    d_built = deconvolve(noisy, a_noisy, built)
    assert d_built.balance is not None and d_built.balance >= 0.1
    d_candidate = deconvolve(noisy, a_noisy, replace(built, ringing_reference_balance=0.1))
    assert np.array_equal(d_built.image, d_candidate.image)


def test_a_noise_aware_template_finds_short_motion_in_a_smooth_noisy_frame() -> None:
    """A smooth frame (the phantom low-passed: a steep spectrum, as the Kermany scenes') with 5 px
    of motion and Poisson noise of 2·10⁴: the first dip lies where the noise fills it, and the
    fixed template takes a longer motion; the template whose dip floor follows each ring's noise
    over its anatomy finds the length (the twenty-seventh session's look, docs/models.md)."""
    sharp = gaussian_filter(phantom(), 1.5)
    rng = np.random.default_rng(0)
    blurred = simulate_motion_blur(sharp, linear_kernel(5.0, 30.0), rng, noise=NoiseSpec(2e4))
    plain = estimate_motion(blurred, max_length=20, noise_floor_quanta=1e5)
    aware = estimate_motion(blurred, max_length=20, noise_floor_quanta=1e5, eta_follows_noise=True)
    assert plain.length_px > 6.5
    assert aware.length_px == pytest.approx(5.0, abs=0.5)
    assert abs((aware.angle_deg - 30.0 + 90) % 180 - 90) < 6
    # the policy's switch reaches the node's estimate (at 0.2 mm/px: its floor, its search)
    policy = dataclasses.replace(MotionPolicy(), estimate_eta_follows_noise=True)
    assert assess_motion(blurred, 0.2, MotionPolicy()).estimate.length_px > 6.5
    assert assess_motion(blurred, 0.2, policy).estimate.length_px == pytest.approx(5.0, abs=0.75)
    # ... and the correction's identity says so
    assert wiener_info(policy).device_uid != wiener_info(MotionPolicy()).device_uid


def test_a_dip_floor_from_the_anatomy_each_motion_leaves_does_not_shorten_longer_motion() -> None:
    """The noise-aware template takes a ring's blurred power for its anatomy, so for a longer
    motion it expects the dips too shallow and comes out short (8 px in the smooth phantom at
    2·10⁴: 7.25 px); with the floor from the anatomy each candidate motion would have blurred
    into the ring the length comes back (the thirty-seventh round, docs/models.md)."""
    sharp = gaussian_filter(phantom(), 1.5)
    rng = np.random.default_rng(0)
    blurred = simulate_motion_blur(sharp, linear_kernel(8.0, 30.0), rng, noise=NoiseSpec(2e4))

    def estimate(noise: bool, motion: bool) -> MotionEstimate:
        return estimate_motion(
            blurred,
            max_length=20,
            noise_floor_quanta=1e5,
            eta_follows_noise=noise,
            eta_follows_motion=motion,
        )

    aware, by_motion = estimate(True, False), estimate(True, True)
    assert aware.length_px <= 7.5
    assert by_motion.length_px == pytest.approx(8.0, abs=0.3)
    assert abs((by_motion.angle_deg - 30.0 + 90) % 180 - 90) < 6
    # without the noise-aware template the option does nothing
    assert estimate(False, True) == estimate(False, False)
    # the policy's switch reaches the node's estimate and the correction's identity
    aware_policy = dataclasses.replace(MotionPolicy(), estimate_eta_follows_noise=True)
    policy = dataclasses.replace(aware_policy, estimate_eta_follows_motion=True)
    assert assess_motion(blurred, 0.2, policy).estimate.length_px == pytest.approx(8.0, abs=0.5)
    assert wiener_info(policy).device_uid != wiener_info(aware_policy).device_uid


def test_welch_windows_keep_clear_of_pixels_to_avoid() -> None:
    shape = (672, 672)
    band = np.zeros(shape, dtype=bool)
    band[:160] = True  # a collimator's band across the top
    built = welch_windows(shape, 128)
    clear = welch_windows(shape, 128, avoid=band)
    assert any(band[y : y + 128, x : x + 128].any() for y, x in built)
    assert len(clear) >= MIN_CLEAR_WINDOWS
    assert not any(band[y : y + 128, x : x + 128].any() for y, x in clear)
    # nearly everything to avoid: too few windows would remain, so every window counts
    assert welch_windows(shape, 128, avoid=np.ones(shape, dtype=bool)) == built
    with pytest.raises(ValueError, match="differ"):
        welch_windows(shape, 128, avoid=band[:10])
