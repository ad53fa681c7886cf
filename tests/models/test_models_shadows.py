"""models.shadows and the fallback that leaves them out of its fit (the fifty-third round's
candidate): shadows that stayed sharp while the anatomy moved are found, not explained by the
motion, and come back unchanged; the anatomy is corrected, not harmed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from models.blur import (
    NoiseSpec,
    from_exposure,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.deblur import MotionPolicy, assess_motion, deconvolve, find_shape
from models.deconvolve import richardson_lucy
from models.kernel_shape import magnitude_of
from models.shadows import find_shadows, shadows_of
from models.tune_deconvolution import collimate
from tests.support.synthetic import power_law_field


def _anatomy(n: int = 512) -> np.ndarray:
    return power_law_field(n, 3, 1.3, 0.2, 0.8).astype(np.float32)


def _exposed(shape: tuple[int, ...]) -> np.ndarray:
    mask = collimate(np.ones(shape, dtype=np.float32)) == 1.0
    h, w = shape
    mask[int(0.85 * h) : int(0.9 * h), int(0.6 * w) : int(0.7 * w)] = False  # the marker
    return mask


def test_the_finder_takes_the_collimation_and_the_marker_and_leaves_open_anatomy() -> None:
    open_frame = _anatomy()
    assert not find_shadows(open_frame).any()
    shadows = find_shadows(collimate(open_frame))
    anatomy = _exposed(open_frame.shape)
    # the band, the top and the marker: all but the marker's very corners (the widening is the
    # look's, a diamond)
    assert shadows[~anatomy].mean() > 0.999
    assert (shadows & anatomy).mean() < 0.02  # only the few pixels its widening takes
    with pytest.raises(ValueError, match="single-frame"):
        find_shadows(np.zeros((4, 4, 3)))


def test_richardson_lucy_with_a_data_mask_is_plain_where_every_pixel_counts() -> None:
    sharp = _anatomy(256)
    k = linear_kernel(9.0, 20.0)
    e = to_exposure(simulate_motion_blur(sharp, k).astype(np.float64), 3.0)
    everything = np.ones(e.shape, dtype=bool)
    for accelerated in (False, True):
        masked = richardson_lucy(e, k, 10, accelerated, data=everything)
        plain = richardson_lucy(e, k, 10, accelerated)
        assert np.allclose(masked, plain, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="no pixel"):
        richardson_lucy(e, k, 3, data=~everything)
    with pytest.raises(ValueError, match="differ"):
        richardson_lucy(e, k, 3, data=everything[:10])


def test_pixels_left_out_of_the_data_term_do_not_pull_the_fit() -> None:
    """A sharp bright bar pasted onto a blurred frame: the plain fit explains it as an even
    sharper one and rings beside it; left out of the data term, the anatomy next to it is
    restored as far as where no bar was ever drawn."""
    sharp = _anatomy(256)
    k = linear_kernel(9.0, 0.0)
    blurred = simulate_motion_blur(sharp, k, noise=NoiseSpec(None)).astype(np.float64)
    barred = blurred.copy()
    barred[:, 120:136] = 1.0  # sharp: drawn after the blur
    bar = np.zeros(blurred.shape, dtype=bool)
    bar[:, 118:138] = True
    near = np.zeros(blurred.shape, dtype=bool)
    near[:, 100:118] = True
    near[:, 138:156] = True

    def restored(image: np.ndarray, data: np.ndarray | None) -> np.ndarray:
        u = richardson_lucy(to_exposure(image, 3.0), k, 20, data=data)
        return np.clip(from_exposure(u, 3.0), 0.0, 1.0)

    clean = restored(blurred, None)  # the same frame without the bar, every pixel counted
    plain = restored(barred, None)
    masked = restored(barred, ~bar)

    def err(out: np.ndarray) -> float:
        return float(np.sqrt(np.mean((out[near] - sharp[near]) ** 2)))

    assert err(plain) > err(blurred)  # the bar's echoes: worse than not correcting
    assert err(masked) < 0.5 * err(plain) and err(masked) < err(blurred)
    assert err(masked) < err(clean) * 1.5


def _anatomy_gain(sharp: np.ndarray, blurred: np.ndarray, out: np.ndarray, m: np.ndarray) -> float:
    return float(
        peak_signal_noise_ratio(sharp[m], out[m], data_range=1.0)
        - peak_signal_noise_ratio(sharp[m], blurred[m], data_range=1.0)
    )


def test_the_fallback_leaves_sharp_shadows_out_and_corrects_the_anatomy() -> None:
    """A patient who moved under a fixed collimator: the anatomy blurred, the shadows sharp.
    Fitting the whole frame (0.34.0) harms the anatomy there; leaving the shadows out (the node
    since 0.39.0 / 0.40.0) corrects it, and they come back exactly as received."""
    open_frame = _anatomy(1024)
    kernel = linear_kernel(16.0, 30.0)  # 3.2 mm at 0.2 mm/px
    moved = simulate_motion_blur(open_frame, kernel, noise=NoiseSpec(None))
    blurred = collimate(moved)
    sharp = collimate(open_frame)
    candidate = MotionPolicy()
    assert candidate.fallback_leaves_shadows  # the default
    node = replace(candidate, fallback_leaves_shadows=False)
    a = assess_motion(blurred, 0.2, node)
    assert a.blurred
    built = deconvolve(blurred, a, node)
    assert built.method == "richardson-lucy" and built.shadow_share == 0.0
    done = deconvolve(blurred, a, candidate)
    assert done.method == "richardson-lucy" and done.rl_iterations == built.rl_iterations
    anatomy = _exposed(blurred.shape)
    shadows = find_shadows(blurred, square=candidate.shadows_whole_corners)
    assert done.shadow_share == pytest.approx(float(shadows.mean()))
    assert np.array_equal(done.image[shadows], blurred[shadows])  # given back unchanged
    ours = _anatomy_gain(sharp, blurred, done.image, anatomy)
    theirs = _anatomy_gain(sharp, blurred, built.image, anatomy)
    assert ours > 0.5 and ours > theirs + 0.5
    # a frame without shadows is corrected exactly as before; 0.6 mm frames alike
    open_blurred = simulate_motion_blur(open_frame, kernel, noise=NoiseSpec(None))
    for spacing in (0.2, 0.6):
        b = assess_motion(open_blurred, spacing, node)
        if b.blurred:
            same = deconvolve(open_blurred, b, candidate)
            assert np.array_equal(same.image, deconvolve(open_blurred, b, node).image)


def test_the_estimate_keeps_clear_of_shadows_only_where_there_are_some() -> None:
    """Without shadows in the frame the estimate with clear windows is the one as built."""
    blurred = simulate_motion_blur(_anatomy(768), linear_kernel(12.0, 20.0))
    assert not find_shadows(blurred).any()
    node = replace(MotionPolicy(), estimate_avoids_shadows=False)  # 0.40.0
    clear = replace(node, estimate_avoids_shadows=True, clear_windows_from_mm=None)
    assert assess_motion(blurred, 0.2, clear) == assess_motion(blurred, 0.2, node)


def test_the_clear_windows_are_taken_only_from_their_length_of_motion() -> None:
    """``clear_windows_from_mm`` (the fifty-sixth round): the estimate with clear windows where
    it flags at least that much motion, the windows as built otherwise; and only at pixels
    finer than ``clear_windows_finer_than_mm`` (the default: 2 mm, finer than 0.4 mm)."""
    open_frame = _anatomy(672)
    kernel = linear_kernel(15.0, 30.0)  # 3 mm at 0.2 mm/px
    blurred = collimate(simulate_motion_blur(open_frame, kernel, noise=NoiseSpec(None)))
    assert find_shadows(blurred).any()
    node = replace(MotionPolicy(), estimate_avoids_shadows=False)  # 0.40.0
    clear = replace(MotionPolicy(), clear_windows_from_mm=None)  # at every length
    assert assess_motion(blurred, 0.2, MotionPolicy()) == assess_motion(
        blurred, 0.2, replace(clear, clear_windows_from_mm=2.0)
    )
    built, seen = assess_motion(blurred, 0.2, node), assess_motion(blurred, 0.2, clear)
    assert seen.blurred and seen != built  # the clear windows see motion the built ones do not
    assert assess_motion(blurred, 0.2, replace(clear, clear_windows_from_mm=None)) == seen
    below = replace(clear, clear_windows_from_mm=seen.motion_mm - 0.1)
    above = replace(clear, clear_windows_from_mm=seen.motion_mm + 0.1)
    assert assess_motion(blurred, 0.2, below) == seen
    assert assess_motion(blurred, 0.2, above) == built
    # at pixels of 0.4 mm and more the windows as built (the frame read as if at 0.4 mm)
    coarse = replace(below, clear_windows_finer_than_mm=0.4)
    assert assess_motion(blurred, 0.4, coarse) == assess_motion(blurred, 0.4, node)
    assert assess_motion(blurred, 0.2, coarse) == seen
    # without shadows in the frame every form is the gate as built
    plain = simulate_motion_blur(open_frame, kernel, noise=NoiseSpec(None))
    assert assess_motion(plain, 0.2, below) == assess_motion(plain, 0.2, node)


def test_the_square_widening_takes_the_marker_s_corners_too() -> None:
    """``find_shadows(square=True)`` (the fifty-seventh round's candidate): the collimation and
    the marker whole, corners included, where the diamond leaves a few corner pixels in the fit."""
    frame = collimate(_anatomy(1024))
    anatomy = _exposed(frame.shape)
    diamond, square = find_shadows(frame), find_shadows(frame, square=True)
    assert (~anatomy & ~diamond).sum() > 0  # the marker's corners, left in the fit
    assert (~anatomy & ~square).sum() == 0
    assert (square & anatomy).mean() < 0.02
    assert (diamond & ~square).sum() == 0  # the square only adds


def _recording(kernel: np.ndarray, seen: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A magnitude estimator that knows the true magnitude and keeps the spectra it was given."""

    def estimate(spectrum: np.ndarray) -> np.ndarray:
        seen.append(spectrum)
        return np.fft.fftshift(magnitude_of(kernel))

    return estimate


def test_the_shape_step_reads_its_spectrum_clear_of_sharp_shadows_or_stops_there() -> None:
    """The fifty-eighth round's candidates: where the collimation stayed sharp while the anatomy
    moved along a curved path, the shape step's network reads a spectrum clear of the shadows
    (one like the open frame's) — or, the other candidate, the step does not run there; a
    frame without shadows is corrected as built by both."""
    sharp = _anatomy(384)
    true = trajectory_kernel(10.0, np.random.default_rng(1), curvature=1.0)
    moved = simulate_motion_blur(sharp, true, np.random.default_rng(2), noise=NoiseSpec(None))
    behind = collimate(moved)  # shadows drawn after the motion: sharp
    built = MotionPolicy(clear_windows_finer_than_mm=None)  # the candidates' gate, A and B
    clear = replace(built, shape_clear_of_shadows=True)
    skip = replace(built, shape_skips_shadows=True)

    def spectrum(frame: np.ndarray, policy: MotionPolicy) -> np.ndarray:
        seen: list[np.ndarray] = []
        motion = assess_motion(frame, 0.6, policy)
        assert motion.blurred
        found = find_shape(frame, motion, policy, _recording(true, seen))
        assert found is not None and found.checked and len(seen) == 1
        return seen[0]

    e_open = spectrum(moved, built)
    whole, windows = spectrum(behind, built), spectrum(behind, clear)
    assert np.abs(windows - e_open).mean() < 0.5 * np.abs(whole - e_open).mean()
    # the other candidate: no step beside the shadows, the straight kernel unread
    motion = assess_motion(behind, 0.6, skip)
    done = deconvolve(behind, motion, skip, magnitude=_recording(true, []))
    assert done.shape is not None and done.shape.reason == "shadows in the frame"
    assert not done.shape.checked and not done.curved
    # the straight kernel at the unread λ: as if the node had no magnitude network
    assert np.array_equal(done.image, deconvolve(behind, motion, skip).image)
    # a frame where no shadow is found: both corrected as built
    wide = simulate_motion_blur(_anatomy(512), true, noise=NoiseSpec(None))
    assert not find_shadows(wide, square=True).any()
    motion = assess_motion(wide, 0.6, built)
    assert motion.blurred
    as_built = deconvolve(wide, motion, built, magnitude=_recording(true, [])).image
    for policy in (clear, skip):
        again = deconvolve(wide, motion, policy, magnitude=_recording(true, [])).image
        assert np.array_equal(again, as_built)


def test_a_frame_s_shadows_are_found_once_and_kept_read_only() -> None:
    """The estimate, the shape step and the fallback ask for one frame's shadows: found once."""
    frame = collimate(_anatomy(256))
    first = shadows_of(frame, square=True)
    assert np.array_equal(first, find_shadows(frame, square=True)) and first.any()
    assert shadows_of(frame.copy(), square=True) is first  # the same pixels: not found again
    assert not first.flags.writeable
    assert not np.array_equal(shadows_of(frame, square=False), first)  # the diamond's own
    other = frame.copy()
    other[:, :40] = 0.5  # another frame: its own shadows
    assert not np.array_equal(shadows_of(other, square=True), first)
