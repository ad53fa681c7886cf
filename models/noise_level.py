"""How noisy is a motion-blurred radiograph? The white (quantum) noise level, from the image alone.

The Wiener filter's regulariser should follow the noise: a frame blurred without added noise is
best deconvolved with about a tenth of the regularisation that a frame with Poisson noise of 10⁴
quanta per pixel needs (docs/models.md, "The regulariser follows the noise"). This module
measures that noise in linear exposure, where quantum noise is white with variance
``exposure / N`` (``N`` quanta per pixel at exposure 1).

Motion blur helps the measurement: along the direction of motion it removes the anatomy's fine
detail, so there the power at high spatial frequencies is the noise added *after* the blur (the
detector's quanta), while across the motion the anatomy's own texture remains. The estimate
therefore takes, of the power at 0.3–0.48 cycles/px (Welch, Hann windows), the **lowest** of its
angular sectors' medians. A sharp image has no such quiet direction, and its estimate is then
the texture plus the noise: a noise level too high, which only errs towards more regularisation.
numpy only (the node imports it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.blur_estimate import welch_power, welch_windows

F64 = NDArray[np.float64]

#: Ring of spatial frequencies (cycles/px) where the noise is read.
RING = (0.3, 0.48)
#: Angular sectors over the half plane; the quietest one is taken.
SECTORS = 24
#: Analysis window (px).
PATCH = 64
#: At most this many windows, those nearest the frame's centre (:func:`welch_windows`).
MAX_WINDOWS = 256
#: The band (cycles/px) :func:`spectral_slope_across` fits the anatomy's power law in.
SLOPE_BAND = (0.03, 0.25)


def _window_side(shape: tuple[int, ...], patch: int) -> int:
    patch = min(patch, *shape)
    patch -= patch % 2
    if patch < 16:
        raise ValueError(f"image {shape} too small to measure its noise")
    return patch


@dataclass(frozen=True)
class FrameSpectrum:
    """A frame's Welch power (Hann windows), scaled so white noise of variance s² reads s² in
    every bin, with each bin's radius (cycles/px) and angle (0..180°, the FFT's rows running
    down): read once per frame (:func:`frame_spectrum`) and handed to every measurement here that
    reads it (``spectrum=``), which then give what they give on the frame itself."""

    power: F64
    r: F64
    ang: F64
    patch: int
    shape: tuple[int, ...]
    #: pixels its windows kept clear of (None: the windows nearest the centre); a spectrum read
    #: clear of some gives :func:`quanta_per_pixel` the mean exposure of its own windows
    avoid: NDArray[np.bool_] | None = None


def frame_spectrum(
    exposure: NDArray[np.floating], patch: int = PATCH, avoid: NDArray[np.bool_] | None = None
) -> FrameSpectrum:
    """The :class:`FrameSpectrum` of ``exposure`` (linear exposure); ValueError for a frame too
    small to measure. ``avoid``: pixels its windows keep clear of
    (:func:`models.blur_estimate.welch_windows`; shadows that hold no anatomy)."""
    e = np.asarray(exposure, dtype=np.float64)
    side = _window_side(e.shape, patch)
    power = welch_power(e, side, max_patches=MAX_WINDOWS, avoid=avoid)
    win = np.outer(np.hanning(side), np.hanning(side))
    power = power / float((win**2).sum())
    f = np.fft.fftfreq(side)
    fy, fx = f[:, None], f[None, :]
    r: F64 = np.hypot(fx, fy)
    ang: F64 = np.mod(np.degrees(np.arctan2(fy, fx)), 180.0)
    return FrameSpectrum(power, r, ang, patch, e.shape, avoid)


def _spectrum(
    e: NDArray[np.floating], patch: int, spectrum: FrameSpectrum | None = None
) -> tuple[F64, F64, F64]:
    """``spectrum`` (read with ``patch``) or the frame's own, as (power, radius, angle)."""
    if spectrum is None:
        spectrum = frame_spectrum(e, patch)
    elif spectrum.patch != patch or spectrum.shape != np.shape(e):
        raise ValueError(
            f"the spectrum was read on a {spectrum.shape} frame with {spectrum.patch} px windows,"
            f" not on this {np.shape(e)} one with {patch} px"
        )
    return spectrum.power, spectrum.r, spectrum.ang


def _quietest(power: F64, r: F64, ang: F64) -> float:
    ring = (r >= RING[0]) & (r <= RING[1])
    sector = np.minimum((ang / (180.0 / SECTORS)).astype(int), SECTORS - 1)
    medians = [
        float(np.median(power[ring & (sector == s)]))
        for s in range(SECTORS)
        if np.any(ring & (sector == s))
    ]
    return min(medians)


def white_noise_variance(
    exposure: NDArray[np.floating], patch: int = PATCH, *, spectrum: FrameSpectrum | None = None
) -> float:
    """Variance of the white noise in ``exposure`` (per pixel), read in its quietest direction
    (of ``spectrum`` where the frame's is already read)."""
    return _quietest(*_spectrum(exposure, patch, spectrum))


def signal_power_across(
    exposure: NDArray[np.floating],
    motion_angle_deg: float,
    band: tuple[float, float] = (0.06, 0.14),
    patch: int = PATCH,
) -> float:
    """Power of the anatomy per frequency bin across the motion (±15° of the perpendicular), in
    ``band`` cycles/px, less the white noise: motion blur leaves that direction untouched, so this
    is the sharp image's own spectrum there (an experiment's feature; docs/models.md)."""
    power, r, ang = _spectrum(exposure, patch)
    # (the kernel's angle counts with the image's y axis up; the FFT's rows run down)
    across = np.mod(90.0 - motion_angle_deg, 180.0)
    d = np.abs(((ang - across) + 90.0) % 180.0 - 90.0)
    sel = (r >= band[0]) & (r <= band[1]) & (d <= 15.0)
    return max(float(np.median(power[sel])) - _quietest(power, r, ang), 1e-30)


def power_law_across(
    exposure: NDArray[np.floating],
    motion_angle_deg: float,
    band: tuple[float, float] = SLOPE_BAND,
    patch: int = PATCH,
    *,
    spectrum: FrameSpectrum | None = None,
) -> tuple[float, float, float]:
    """The anatomy's power law ``A·f^−β`` across the motion (±15° of the perpendicular, where
    straight motion leaves the spectrum as it was), fitted in ``band`` cycles/px on the bins whose
    power is at least twice the white noise's, the noise taken out, and that noise: ``(A, β,
    σ²)`` in the units of :func:`white_noise_variance` (per pixel; white noise of variance σ²
    reads σ² in every bin), so ``σ² / (A·f^−β)`` is the Wiener filter's noise-to-signal ratio at
    ``f`` cycles/px. A and β NaN where fewer than four frequencies qualify (a frame the noise
    covers). ``spectrum``: the frame's, where already read."""
    power, r, ang = _spectrum(exposure, patch, spectrum)
    noise = _quietest(power, r, ang)
    across = np.mod(90.0 - motion_angle_deg, 180.0)
    d = np.abs(((ang - across) + 90.0) % 180.0 - 90.0)
    sel = (r >= band[0]) & (r <= band[1]) & (d <= 15.0) & (power >= 2.0 * noise)
    if len(np.unique(np.round(r[sel], 6))) < 4:
        return float("nan"), float("nan"), noise
    slope, intercept = np.polyfit(np.log(r[sel]), np.log(power[sel] - noise), 1)
    return float(np.exp(intercept)), float(-slope), noise


def spectral_slope_across(
    exposure: NDArray[np.floating],
    motion_angle_deg: float,
    band: tuple[float, float] = SLOPE_BAND,
    patch: int = PATCH,
) -> float:
    """β of :func:`power_law_across` (NaN where the noise covers the frame)."""
    return power_law_across(exposure, motion_angle_deg, band, patch)[1]


def mean_where_read(
    exposure: NDArray[np.floating], patch: int = PATCH, avoid: NDArray[np.bool_] | None = None
) -> float:
    """Mean exposure of the windows :func:`white_noise_variance` reads the noise in (on a frame
    larger than about 9 windows a side, its central part only; clear of ``avoid`` as
    :func:`frame_spectrum`)."""
    e = np.asarray(exposure, dtype=np.float64)
    side = _window_side(e.shape, patch)
    means = [
        float(e[y : y + side, x : x + side].mean())
        for y, x in welch_windows(e.shape, side, None, MAX_WINDOWS, avoid)
    ]
    return float(np.mean(means))


def quanta_per_pixel(
    exposure: NDArray[np.floating],
    patch: int = PATCH,
    *,
    where_read: bool = False,
    spectrum: FrameSpectrum | None = None,
) -> float:
    """Quanta per pixel at exposure 1 that explain the white noise of ``exposure`` (Poisson:
    variance = mean exposure / N); ``inf`` for a frame without measurable noise.

    As the node is built, the whole frame's mean exposure over the variance. ``where_read``:
    the mean exposure of the windows the variance was read in (:func:`mean_where_read`) instead.
    Poisson variance follows the local exposure, and on a large frame those windows are its
    centre (a chest's mediastinum and spine: dense, less exposure, less noise), so the whole
    frame's mean overstates N (by 1.3× on fitting frames of a detector's size; docs/models.md,
    "The noise measured where it is read": the truer measure, not adopted by its round).
    ``spectrum``: the frame's, where already read; one read clear of some pixels
    (:func:`frame_spectrum`'s ``avoid``) divides the mean exposure of its own windows.
    """
    e = np.asarray(exposure, dtype=np.float64)
    var = white_noise_variance(e, patch, spectrum=spectrum)
    if var <= 0.0 or not math.isfinite(var):
        return math.inf
    if spectrum is not None and spectrum.avoid is not None:
        return mean_where_read(e, patch, spectrum.avoid) / var
    mean = mean_where_read(e, patch) if where_read else float(np.mean(e))
    return mean / var
