"""A blind estimate of the motion that blurred *this* radiograph, from the image alone (numpy only).

Straight motion of length ``L`` pixels in direction ``θ`` multiplies the image's spectrum by
``sinc(L · f·u_θ)``: the log power spectrum is attenuated along ``u_θ`` and has dips every ``1/L``
there, while the image itself has no such direction-locked pattern. The estimate matches that
pattern (Gennery 1973; Cannon 1976; the cepstral dip at lag ``L`` is the same information):

1. Welch's power spectrum in relative linear exposure (where the blur happens, see
   :mod:`models.blur`): overlapping ``patch``² Hann windows, mean removed, averaged. A frame whose
   longest searched motion is long (detector pixels) is searched on a block-averaged copy and the
   length scaled back.
2. The log spectrum on a polar grid, each ring's mean removed (the image's own fall with frequency),
   rings weighted by how far their power stands above the noise floor.
3. Normalised correlation with the template ``log(sinc²(L·f·u_θ) + η)`` (ring means removed) for
   every length (0.25 px steps) and angle (0.5°): one circular FFT correlation per length. The best
   match gives length, angle and a ``confidence`` (the correlation).

Tried and dropped (docs/models.md): the cepstrum's most negative point alone. It finds 6–10 px
motion as well, but misses 3 px motion, which sits near the cepstrum's origin.

The result is a :class:`MotionEstimate`: length and angle (the angle convention of
:func:`models.blur.linear_kernel`), the kernel and the confidence. Curved paths and varying
speed give a straight estimate of the dominant extent; the refiner network takes up the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import map_coordinates

from models.blur import drawn_linear_kernel, to_exposure

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
#: The highest per-ring dip floor of ``estimate_motion(eta_follows_noise=True)``: a ring whose
#: anatomy lies under the noise expects no dip at all.
ETA_MAX = 10.0

#: Default log exposure range assumed for displayed grey values (see models.blur).
LOG_RANGE = 3.0
#: :func:`welch_windows` with pixels to avoid: a window may hold at most this share of them
#: (0: none; a sharp edge in a window is enough to hide the motion's dips) ...
AVOID_SHARE = 0.0
#: ... unless fewer windows than this would remain (then every window counts)
MIN_CLEAR_WINDOWS = 8


@dataclass(frozen=True)
class MotionEstimate:
    """Straight-motion estimate in the pixels of the image it was computed on."""

    length_px: float
    angle_deg: float
    confidence: float  # correlation of the best straight-motion template (-1..1)
    scale: int = 1  # block-averaging factor the search ran at
    # How much better the best length fits than 0.6x and 1.5x that length at the same angle: the
    # dips of a real motion sit at multiples of 1/L, a mere anisotropy of the anatomy fits any L.
    specificity: float = 0.0
    # How the path is drawn on the pixel grid (models.blur.LINE_DRAWINGS): the node's nearest
    # pixels unless the frame's spectrum chose another (models.deblur.chosen_drawing)
    drawing: str = "nearest"

    def kernel(self) -> F64:
        """The estimated PSF, drawn as :attr:`drawing` says (identity when the length is under
        one pixel)."""
        return drawn_linear_kernel(self.length_px, self.angle_deg, self.drawing)

    def length_mm(self, pixel_spacing_mm: float) -> float:
        return self.length_px * pixel_spacing_mm


def _block_mean(a: F64, f: int) -> F64:
    if f <= 1:
        return a
    h, w = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    out: F64 = a[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    return out


def welch_windows(
    shape: tuple[int, ...],
    patch: int,
    step: int | None = None,
    max_patches: int = 64,
    avoid: NDArray[np.bool_] | None = None,
) -> list[tuple[int, int]]:
    """Top-left corners of the ``patch``² windows :func:`welch_power` averages over ``shape``:
    half-overlapping, and only the ``max_patches`` nearest the centre when there are more.

    ``avoid``: pixels no window should take in (shadows that need not have moved with the
    patient, :func:`models.shadows.find_shadows`): windows with more than
    :data:`AVOID_SHARE` of them are left out, unless fewer than :data:`MIN_CLEAR_WINDOWS` would
    remain (then every window, as without ``avoid``)."""
    step = step or patch // 2
    h, w = shape[0], shape[1]
    if h < patch or w < patch:
        raise ValueError(f"image {h}x{w} smaller than the {patch} px analysis window")
    ys = list(range(0, h - patch + 1, step))
    xs = list(range(0, w - patch + 1, step))
    # Keep the patches of the central part when there are too many (collimation, labels at edges).
    pairs = [(y, x) for y in ys for x in xs]
    if avoid is not None:
        if avoid.shape != (h, w):
            raise ValueError(f"mask {avoid.shape} and image {(h, w)} differ")
        clear = [
            (y, x) for y, x in pairs if avoid[y : y + patch, x : x + patch].mean() <= AVOID_SHARE
        ]
        if len(clear) >= MIN_CLEAR_WINDOWS:
            pairs = clear
    if len(pairs) > max_patches:
        cy, cx = (h - patch) / 2, (w - patch) / 2
        pairs.sort(key=lambda p: (p[0] - cy) ** 2 + (p[1] - cx) ** 2)
        pairs = pairs[:max_patches]
    return pairs


def welch_power(
    a: F64,
    patch: int,
    step: int | None = None,
    max_patches: int = 64,
    avoid: NDArray[np.bool_] | None = None,
) -> F64:
    """Mean power spectrum of Hann-windowed, mean-removed ``patch``² windows of ``a``
    (:func:`welch_windows`, ``avoid`` as there)."""
    pairs = welch_windows(a.shape, patch, step, max_patches, avoid)
    win = np.outer(np.hanning(patch), np.hanning(patch))
    acc = np.zeros((patch, patch), dtype=np.float64)
    for y, x in pairs:
        p = a[y : y + patch, x : x + patch]
        p = (p - p.mean()) * win
        acc += np.abs(np.fft.fft2(p)) ** 2
    out: F64 = acc / len(pairs)
    return out


def _polar_log_spectrum(
    power: F64, n_r: int, n_phi: int, r_min: float, r_max: float
) -> tuple[F64, F64, F64, F64, F64]:
    """Log power on a polar grid (half plane), its ring means removed, and per-ring weights.

    Returns (radii in cycles/px, angles in rad, residual [n_r, n_phi], weights [n_r], each
    ring's mean power over the noise floor [n_r]). A ring's
    weight grows with its power over the noise floor (the median power beyond 0.45 cycles/px,
    where a radiograph holds little but quantum noise): 0 at the floor, 1 at 10× above it.
    """
    n = power.shape[0]
    ps = np.fft.fftshift(power)
    logp = np.log(ps + ps.mean() * 1e-9)
    f = np.fft.fftshift(np.fft.fftfreq(n))
    rr = np.hypot(f[None, :], f[:, None])
    noise = float(np.median(ps[rr > 0.45])) + 1e-30
    r = np.linspace(r_min, r_max, n_r)
    phi = np.radians(np.arange(n_phi) * 180.0 / n_phi)
    xx = n // 2 + r[:, None] * n * np.cos(phi)[None, :]
    yy = n // 2 - r[:, None] * n * np.sin(phi)[None, :]
    coords = [yy.ravel(), xx.ravel()]
    lp = map_coordinates(logp, coords, order=1).reshape(xx.shape)
    pp = map_coordinates(ps, coords, order=1).reshape(xx.shape)
    snr = pp.mean(axis=1) / noise
    weights = np.clip(np.log10(np.maximum(snr, 1.0)), 0.0, 1.0)
    resid = lp - lp.mean(axis=1, keepdims=True)
    return r, phi, resid, weights, snr


def _match_scores(
    r: F64,
    phi: F64,
    resid: F64,
    weights: F64,
    lengths: F64,
    eta: float | F64,
    noise_over_power: F64 | None = None,
) -> F64:
    """Normalised correlation of the residual log spectrum with each straight-motion template.

    The template of motion (L, θ) is ``log(sinc²(L·f·u_θ) + eta)`` less its ring means (``eta``
    one number, or one per ring [n_r, 1]); it depends on φ − θ only, so all angles of one length
    come from one circular correlation (FFT). ``noise_over_power`` (per ring, the noise over the
    ring's power above it): the dip floor is instead the noise over the anatomy that motion L
    would have blurred into that power, ``mean_φ sinc²(L·f·cos φ) · noise_over_power``, clipped
    to [``eta``, :data:`ETA_MAX`].
    Returns scores [len(lengths), len(phi)] in [-1, 1].
    """
    w = weights[:, None]
    n_phi = len(phi)
    fres = np.fft.rfft(resid * w, axis=1)
    norm_res = math.sqrt(float((resid**2 * w).sum())) + 1e-12
    out = np.zeros((len(lengths), n_phi))
    cosphi = np.cos(phi)[None, :]
    for i, length in enumerate(lengths):
        s2 = np.sinc(length * r[:, None] * cosphi) ** 2
        floor = eta
        if noise_over_power is not None:
            kept = s2.mean(axis=1, keepdims=True)
            floor = np.clip(kept * noise_over_power[:, None], eta, ETA_MAX)
        t = np.log(s2 + floor)
        t -= t.mean(axis=1, keepdims=True)
        ft = np.fft.rfft(t * w, axis=1)
        corr = np.fft.irfft(fres * np.conj(ft), n=n_phi, axis=1).sum(axis=0)
        out[i] = corr / (norm_res * (math.sqrt(float((t**2 * w).sum())) + 1e-12))
    return out


def _estimate_at(
    sig: F64,
    scale: int,
    max_length: float,
    patch: int,
    eta: float,
    floor_quanta: float | None,
    noise_variance: float | None = None,
    eta_follows_noise: bool = False,
    eta_follows_motion: bool = False,
    avoid: NDArray[np.bool_] | None = None,
) -> MotionEstimate:
    small = _block_mean(sig, scale)
    pch = min(patch, *small.shape)
    pch -= pch % 2
    # a block that holds any pixel to avoid is avoided
    small_avoid = None if avoid is None else _block_mean(avoid.astype(np.float64), scale) > 0
    power = welch_power(small, pch, avoid=small_avoid)
    if noise_variance:
        # The white noise the frame carries (variance per native pixel; a block mean of scale²
        # pixels has 1/scale² of it) is taken out, so that the motion's dips are weighed as in the
        # noise-free frame; the floor below is then all the noise the estimate assumes.
        white = noise_variance / (scale * scale) * float((np.hanning(pch) ** 2).sum() ** 2)
        power = np.maximum(power - white, 0.0)
    if floor_quanta:
        # The white power of quantum noise at floor_quanta per pixel (exposure 1), as the block
        # mean of scale² pixels sees it: a frame without noise is weighed as if it had that much.
        win = np.hanning(pch)
        power = power + float(small.mean()) / (floor_quanta * scale * scale) * float(
            (win**2).sum() ** 2
        )
    r, phi, resid, weights, snr = _polar_log_spectrum(power, 48, 360, 0.04, 0.48)
    lengths = np.arange(1.0, max(max_length / scale, 1.0) + 1e-9, 0.25)
    dip_floor: float | F64 = eta
    noise_over_power = None
    if eta_follows_noise:
        # where the noise fills the dips: power = anatomy·sinc² + noise, so the dip's floor on
        # each ring is noise / anatomy (the ring's power over the floor, less the floor's own)
        noise_over_power = 1.0 / np.maximum(snr - 1.0, 1e-3)
        dip_floor = np.clip(noise_over_power, eta, ETA_MAX)[:, None]
    by_length = noise_over_power if eta_follows_motion else None

    def match(candidates: F64) -> F64:
        if by_length is not None:
            return _match_scores(r, phi, resid, weights, candidates, eta, by_length)
        return _match_scores(r, phi, resid, weights, candidates, dip_floor)

    scores = match(lengths)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    best = float(scores[i, j])
    others = []
    for f in (0.6, 1.5):
        lf = lengths[i] * f
        if lengths[0] <= lf <= lengths[-1]:
            others.append(float(scores[int(np.argmin(np.abs(lengths - lf))), j]))
        else:
            ext = match(np.array([max(lf, 0.5)]))
            others.append(float(ext[0, j]))
    return MotionEstimate(
        length_px=float(lengths[i]) * scale,
        angle_deg=float(np.degrees(phi[j])),
        confidence=best,
        scale=scale,
        specificity=best - max(others),
    )


def estimate_motion(
    image01: NDArray[np.floating],
    *,
    max_length: float = 16.0,
    patch: int = 128,
    log_range: float | None = LOG_RANGE,
    search_max_px: float = 20.0,
    eta: float = 0.02,
    noise_floor_quanta: float | None = None,
    noise_variance: float | None = None,
    eta_follows_noise: bool = False,
    eta_follows_motion: bool = False,
    avoid: NDArray[np.bool_] | None = None,
) -> MotionEstimate:
    """Estimate straight motion blur (length px, angle °) of a grey image (bright = dense, [0, 1]).

    Lengths from 1 to ``max_length`` pixels of ``image01`` are searched: up to ``search_max_px`` at
    native scale and, where ``max_length`` is longer, also on a block-averaged copy (factor
    ``ceil(max_length / search_max_px)``), lengths scaled back; the estimate whose fit is more
    specific to its length wins. ``confidence`` is the best template's normalised correlation with
    the image's anisotropic log spectrum, ``specificity`` how much better it fits than 0.6× and
    1.5× its length (sharp radiographs: below about 0.06; straight motion of 6 px or more:
    0.1–0.2).

    ``noise_floor_quanta``: add to the spectrum the white power of quantum noise at that many
    quanta per pixel (at exposure 1). The rings are weighted by their power over the noise floor
    read beyond 0.45 cycles/px; in a frame without noise that "floor" is the blurred anatomy
    itself and the weights go wrong (long curved motion was found in 6 of 18 noiseless frames,
    15 of 18 with noise). A real detector always has at least this floor.

    ``noise_variance``: the white noise variance per pixel measured in the frame's linear exposure
    (:func:`models.noise_level.white_noise_variance`); its power is subtracted from the spectrum
    first (spectral subtraction, floored at 0), so that short motion, whose first dip lies where a
    noisy frame's spectrum is mostly noise, is found as in a frame without noise (the eighth round,
    docs/models.md). ``None``: nothing subtracted.

    ``eta_follows_noise``: the template's dip floor ``eta`` per ring is the noise over the
    anatomy's power there (at least ``eta``, at most :data:`ETA_MAX`) instead of one number: a
    dip that lies where the noise fills it is expected shallow, so a longer motion whose first
    dip lies where the anatomy still stands above the noise does not win by default (a look,
    docs/models.md, twenty-seventh session). ``eta_follows_motion`` (with ``eta_follows_noise``):
    the anatomy on each ring is the one each candidate motion would have blurred into the ring's
    power (the ring's power over the floor divided by the motion's mean ``sinc²`` there), not the
    ring's power itself: what the blur took out of a ring is no longer counted as noise.

    ``avoid``: pixels the spectrum's windows keep clear of (:func:`welch_windows`).
    """
    a = np.asarray(image01, dtype=np.float64)
    sig = to_exposure(a, log_range) if log_range is not None else a
    coarse = max(1, math.ceil(max_length / search_max_px))
    while coarse > 1 and min(a.shape) // coarse < patch:
        coarse -= 1
    floor, noise = noise_floor_quanta, noise_variance
    native = min(max_length, search_max_px)
    modes = (eta_follows_noise, eta_follows_noise and eta_follows_motion)
    found = [_estimate_at(sig, 1, native, patch, eta, floor, noise, *modes, avoid)]
    if coarse > 1:
        found.append(_estimate_at(sig, coarse, max_length, patch, eta, floor, noise, *modes, avoid))
    return max(found, key=lambda e: e.specificity)


#: :func:`length_from_directions`: a ring counts where the power across the motion stands at
#: least this many times above the noise ...
DIRECTIONS_ABOVE_NOISE = 10.0
#: ... the power along and across is averaged over this many degrees either side ...
DIRECTIONS_BAND_DEG = 6.0
#: ... and the transfer it is matched to is ``log(sinc² + this)``
DIRECTIONS_DIP_FLOOR = 1e-3


@dataclass(frozen=True)
class FramePower:
    """A frame's Welch power in relative linear exposure at native scale, as
    :func:`length_from_directions` and :func:`template_scores` read it (one computation for
    both): the power, the white power of the assumed quantum-noise floor in it (0 without) and
    the factor that turns a white variance per pixel into that power (the windows' energy,
    squared)."""

    power: F64
    floor: float
    window_power: float


def frame_power(
    image01: NDArray[np.floating],
    *,
    log_range: float | None = LOG_RANGE,
    patch: int = 128,
    noise_floor_quanta: float | None = None,
    avoid: NDArray[np.bool_] | None = None,
) -> FramePower:
    """:class:`FramePower` of a grey image (``patch``² windows, no larger than the frame; the
    floor of ``noise_floor_quanta`` quanta per pixel at exposure 1; ``avoid`` as in
    :func:`welch_windows`)."""
    a = np.asarray(image01, dtype=np.float64)
    sig = to_exposure(a, log_range) if log_range is not None else a
    pch = min(patch, *sig.shape)
    pch -= pch % 2
    power = welch_power(sig, pch, avoid=avoid)
    window_power = float((np.hanning(pch) ** 2).sum() ** 2)
    floor = float(sig.mean()) / noise_floor_quanta * window_power if noise_floor_quanta else 0.0
    return FramePower(power, floor, window_power)


def directional_powers(
    power: F64, angle_deg: float, n_r: int = 48, r_min: float = 0.04, r_max: float = 0.48
) -> tuple[F64, F64, F64]:
    """A power spectrum (unshifted, square) along the motion's direction ``angle_deg`` (the
    template's convention, :func:`_polar_log_spectrum`) and across it, each the mean over
    ±:data:`DIRECTIONS_BAND_DEG`: (radii in cycles/px, along, across)."""
    n = power.shape[0]
    ps = np.fft.fftshift(power)
    r = np.linspace(r_min, r_max, n_r)
    out = []
    for base in (angle_deg, angle_deg + 90.0):
        phis = np.radians(base + np.linspace(-DIRECTIONS_BAND_DEG, DIRECTIONS_BAND_DEG, 7))
        xx = n // 2 + r[:, None] * n * np.cos(phis)[None, :]
        yy = n // 2 - r[:, None] * n * np.sin(phis)[None, :]
        v = map_coordinates(ps, [yy.ravel(), xx.ravel()], order=1).reshape(xx.shape)
        out.append(v.mean(axis=1))
    return r, out[0], out[1]


@dataclass(frozen=True)
class DirectionsRead:
    """What :func:`length_from_directions` read: the length (px) and the highest ring (cycles/px)
    it was read on (beyond it the power across the motion is too close to the noise)."""

    length_px: float
    highest_ring: float
    #: RMS of the log ratio's residual against the read length's transfer, and against the
    #: estimate's length's (how much better the read length explains the ratio: their difference)
    misfit: float = float("nan")
    estimate_misfit: float = float("nan")

    @property
    def fits_better_by(self) -> float:
        """How much better the read length fits the ratio than the estimate's (RMS, log power)."""
        return self.estimate_misfit - self.misfit

    def sees_first_dip_of(self, length_px: float) -> bool:
        """Whether the first dip of straight motion ``length_px`` long (``1 / length_px``
        cycles/px) lies on the rings read: there the template of :func:`estimate_motion` read the
        dip itself, not only the main lobe's fall."""
        return length_px > 0 and 1.0 / length_px <= self.highest_ring


def length_from_directions(
    spectrum: FramePower, estimate: MotionEstimate, noise_variance: float | None = None
) -> DirectionsRead | None:
    """The length (px) of a straight motion at ``estimate``'s angle read from the power along the
    motion over the power across it (docs/models.md, "The length read across the motion").

    Straight motion multiplies the spectrum along its direction by ``sinc²(L·f)`` and leaves it
    across; whatever low-pass acts alike in every direction (a detector's MTF, a resampling, a
    display filter) cancels in the ratio, where the template of :func:`estimate_motion` (ring
    means removed, a fixed dip floor) takes the fall of such a soft frame's fine scale under the
    noise for the dips of a longer motion. The noise (``noise_variance`` measured per pixel, and
    ``spectrum``'s floor) is taken out of both; only rings where the
    power across stands :data:`DIRECTIONS_ABOVE_NOISE`× above it count, and the length is the
    least-squares fit of ``log(sinc²(L·f) + η)`` to the log ratio, L from 0.5 px to twice the
    estimate's (at least 3 px) in 0.05 px steps. Native scale only (``estimate.scale`` 1);
    ``None`` where it is not, or fewer than four rings count."""
    if estimate.scale != 1:
        return None
    noise = (noise_variance or 0.0) * spectrum.window_power + spectrum.floor
    r, along, across = directional_powers(spectrum.power, estimate.angle_deg)
    ok = (across > DIRECTIONS_ABOVE_NOISE * noise) & (along > noise)
    if int(ok.sum()) < 4:
        return None
    ratio = np.log((along[ok] - noise) / (across[ok] - noise))
    rr = r[ok]
    lengths = np.arange(0.5, max(2.0 * estimate.length_px, 3.0), 0.05)

    def misfit(length: float) -> float:
        model = np.log(np.sinc(length * rr) ** 2 + DIRECTIONS_DIP_FLOOR)
        return math.sqrt(float(np.mean((ratio - model) ** 2)))

    errors = [misfit(float(length)) for length in lengths]
    best = int(np.argmin(errors))
    return DirectionsRead(
        float(lengths[best]), float(rr.max()), errors[best], misfit(estimate.length_px)
    )


def template_scores(
    spectrum: FramePower, lengths_px: list[float], angle_deg: float, eta: float = 0.02
) -> list[float]:
    """The straight template's normalised correlation (:func:`estimate_motion`'s ``confidence``,
    at native scale, no noise taken out, ``spectrum``'s floor added, the fixed dip floor
    ``eta``) for motion of each of
    ``lengths_px`` at ``angle_deg``: how much worse one length fits the frame's dips than
    another at the same angle."""
    power = spectrum.power + spectrum.floor
    r, phi, resid, weights, _ = _polar_log_spectrum(power, 48, 360, 0.04, 0.48)
    scores = _match_scores(r, phi, resid, weights, np.asarray(lengths_px, dtype=np.float64), eta)
    j = int(np.argmin(np.abs((np.degrees(phi) - angle_deg + 90.0) % 180.0 - 90.0)))
    return [float(v) for v in scores[:, j]]
