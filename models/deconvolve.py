"""Deconvolution in linear exposure, where motion blur happens (numpy only).

:func:`wiener` inverts a known PSF with a regularised (Tikhonov–Wiener) filter
``conj(K) / (|K|² + λ·|2πf|^p)``: ``p = 0`` is the classical constant noise-to-signal Wiener
filter, ``p = 2`` penalises gradients, which matches the ~1/f² power spectrum of radiographs and
rings less at the frequencies where the motion PSF has its zeros. The FFT is circular, and the
regularised inverse of a motion PSF reaches far beyond the PSF's own support, so the image is
padded by reflection by **twice the PSF's size** plus a margin and the padding fades to the
image's mean with a raised cosine (:func:`pad_for_fft`): no jump where the borders wrap around.
Half the PSF without the fade, as until sharpray-blind-wiener 0.3.0, left ringing from the
borders that cost whole radiographs 0.7–2.9 dB at 24–40 px of motion (docs/models.md).

Optionally, Richardson–Lucy steps follow (:func:`richardson_lucy_steps`): multiplicative, positive,
the Poisson maximum-likelihood update, they remove much of the ringing the linear filter leaves at
hard edges (collimation, markers) and soften the rest (docs/models.md; off by default).

Grey values (bright = dense, [0, 1]) are mapped to relative exposure ``exp(-log_range·v)``, as in
:mod:`models.blur`, deconvolved there and mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from models.blur import from_exposure, to_exposure

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Regulariser defaults, chosen on the training patients of cxr-radiographs-mhh (docs/models.md).
DEFAULT_BALANCE = 0.1
DEFAULT_POWER = 1.0
#: Richardson–Lucy steps after the Wiener filter: none by default (on training patients they
#: help at hard edges and cost more elsewhere, docs/models.md).
DEFAULT_RL_ITERATIONS = 0


def psf_to_otf(psf: F64, shape: tuple[int, int]) -> NDArray[np.complex128]:
    """The PSF's transfer function on a ``shape`` grid (PSF centre moved to the origin)."""
    big = np.zeros(shape, dtype=np.float64)
    kh, kw = psf.shape
    big[:kh, :kw] = psf
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.rfft2(big)


@dataclass(frozen=True)
class PenaltyFloor:
    """A least Wiener penalty ``coefficient · |f|^exponent`` (f in cycles/px): the noise over a
    power-law anatomy, σ² / (A·|f|^−β), the minimum-mean-square-error Wiener filter's own ratio
    (:func:`models.noise_level.power_law_across`)."""

    coefficient: float
    exponent: float

    def __post_init__(self) -> None:
        if not (self.coefficient >= 0.0 and np.isfinite(self.coefficient)):
            raise ValueError(f"penalty floor coefficient {self.coefficient} not finite and ≥ 0")
        if not (self.exponent >= 0.0 and np.isfinite(self.exponent)):
            raise ValueError(f"penalty floor exponent {self.exponent} not finite and ≥ 0")


def _penalty(
    h: int, w: int, balance: float, power: float, floor: PenaltyFloor | None = None
) -> F64 | float:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f2 = fx**2 + fy**2
    out: F64 | float = balance if not power else balance * ((2 * np.pi) ** 2 * f2) ** (power / 2)
    if floor is not None:
        least: F64 = floor.coefficient * f2 ** (floor.exponent / 2)
        out = np.maximum(out, least)
    return out


def pad_for_fft(exposure: F64, psf: F64) -> tuple[F64, int]:
    """``exposure`` padded for circular (FFT) deconvolution with ``psf``, and the padding width
    before the image (the image is ``out[pad : pad + h, pad : pad + w]``).

    Reflect padding by ``2 · max(psf.shape) + 8`` pixels, faded towards the image's mean with a
    raised cosine (1 at the image's border, 0 at the padding's outer edge), so the periodic
    extension the FFT implies is smooth and the inverse filter's long tails find no edge there.
    After the image each side gets the few pixels more that make its length one the FFT is fast
    for (:func:`scipy.fft.next_fast_len`: no prime factor over 5; a length with a large prime
    factor takes two to three times as long).
    """
    e = np.asarray(exposure, dtype=np.float64)
    pad = 2 * max(psf.shape) + 8
    shape = tuple(sfft.next_fast_len(n + 2 * pad, real=True) for n in e.shape)
    ep = padded_as(e, shape, pad)
    after = [n - pad - m for n, m in zip(shape, e.shape, strict=True)]

    def fade(n: int) -> F64:
        out: F64 = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)  # 0 at the outer edge -> 1
        return out

    def profile(n: int, tail: int) -> F64:
        w = np.ones(n + pad + tail)
        w[:pad], w[n + pad :] = fade(pad), fade(tail)[::-1]
        return w

    mean = float(e.mean())
    weights = np.outer(profile(e.shape[0], after[0]), profile(e.shape[1], after[1]))
    out: F64 = mean + (ep - mean) * weights
    return out, pad


def padded_as(a: NDArray[Any], shape: tuple[int, ...], pad: int) -> NDArray[Any]:
    """``a`` (an image's mask or start, the image's shape) reflect-padded as :func:`pad_for_fft`
    padded the image: ``pad`` before, to ``shape`` after (without the fade)."""
    after = [n - pad - m for n, m in zip(shape, a.shape, strict=True)]
    return np.pad(a, ((pad, after[0]), (pad, after[1])), mode="reflect")


def _wiener_padded(
    ep: F64, psf: F64, balance: float, power: float, floor: PenaltyFloor | None = None
) -> F64:
    h, w = ep.shape
    k = psf_to_otf(psf, (h, w))
    mean = float(ep.mean())
    spec = np.fft.rfft2(ep - mean)
    reg = _penalty(h, w, balance, power, floor)
    out: F64 = np.fft.irfft2(np.conj(k) * spec / (np.abs(k) ** 2 + reg), s=(h, w)) + mean
    return out


def richardson_lucy_steps(
    blurred: F64,
    start: F64,
    psf: F64,
    iterations: int,
    accelerated: bool = False,
    data: NDArray[np.bool_] | None = None,
) -> F64:
    """``iterations`` Richardson–Lucy updates ``u ← u · Kᵀ(b / Ku)`` from ``start`` (exposure).

    The multiplicative update is the maximum-likelihood step for Poisson (quantum) noise and keeps
    the exposure positive. Started from the Wiener result, a few steps remove the ringing the
    linear filter leaves around strong edges (collimation, skin–air, markers), where an additive
    error in exposure becomes a large error in the dense, low-exposure parts of the image.

    ``accelerated``: each update starts from the last estimate moved on along its last change
    (Biggs & Andrews, Applied Optics 36(8), 1997, as MATLAB's ``deconvlucy``): ``y = u + a·(u −
    u_prev)``, ``a`` the correlation of the last two updates' changes, within 0…1 (0 for the first
    two) — as far in fewer steps, at the same cost per step.

    ``data``: only these pixels count in the data term, ``u ← u · Kᵀ(M·b/Ku) / Kᵀ(M)`` (the
    boundary form of Bertero & Boccacci, A&A 437, 2005): the pixels left out (shadows that did
    not move with the patient, :mod:`models.shadows`) are not explained by the motion; pixels no
    counted datum reaches (``Kᵀ(M)`` under 0.05) keep their start. ``None``: every pixel counts.
    """
    floor = max(float(blurred.min()), 1e-6) * 0.5
    # float32 (half the time of float64, far below the quantum noise); circular convolution by
    # the transfer function computed once (the callers pad by reflection)
    u = np.maximum(start, floor).astype(np.float32)
    b = blurred.astype(np.float32)
    h, w = u.shape
    k = psf_to_otf(psf, (h, w)).astype(np.complex64)
    kc = np.conj(k)

    def conv(a: NDArray[Any], otf: NDArray[np.complex64]) -> NDArray[np.float32]:
        spec = sfft.rfft2(a, workers=-1) * otf
        return np.asarray(sfft.irfft2(spec, s=(h, w), workers=-1), dtype=np.float32)

    weight: NDArray[np.float32] | None = None
    reach: NDArray[np.float32] | None = None
    if data is not None:
        if data.shape != u.shape:
            raise ValueError(f"mask {data.shape} and image {u.shape} differ")
        weight = data.astype(np.float32)
        b = b * weight
        reach = conv(weight, kc)
        seen = reach > np.float32(0.05)
        reach = np.where(seen, reach, np.float32(1.0))
    previous = u
    change: NDArray[np.float32] | None = None
    a = 0.0
    for _ in range(iterations):
        y = np.maximum(u + np.float32(a) * (u - previous), floor) if a > 0 else u
        ratio = b / np.maximum(conv(y, k), np.float32(1e-6))
        step = y * conv(ratio, kc)
        if reach is not None:
            step = np.where(seen, step / reach, y)
        previous, u = u, step
        if accelerated:
            new_change = u - y
            if change is not None:
                num = float(np.vdot(new_change, change))
                a = min(max(num / (float(np.vdot(change, change)) + 1e-30), 0.0), 1.0)
            change = new_change
    out: F64 = u.astype(np.float64)
    return out


def wiener_exposure(
    exposure: F64,
    psf: F64,
    balance: float = DEFAULT_BALANCE,
    power: float = DEFAULT_POWER,
    rl_iterations: int = 0,
    floor: PenaltyFloor | None = None,
) -> F64:
    """Regularised inverse of ``psf`` on a linear-exposure image (reflect-padded), optionally
    followed by ``rl_iterations`` Richardson–Lucy steps (:func:`richardson_lucy_steps`);
    ``floor``: the penalty is at least that (:class:`PenaltyFloor`)."""
    e = np.asarray(exposure, dtype=np.float64)
    ep, pad = pad_for_fft(e, psf)
    out = _wiener_padded(ep, psf, balance, power, floor)
    if rl_iterations > 0:
        out = richardson_lucy_steps(ep, out, psf, rl_iterations)
    res: F64 = out[pad : pad + e.shape[0], pad : pad + e.shape[1]]
    return res


#: The sparse prior's continuation (:func:`sparse_exposure`): the splitting weight β starts at 1
#: and grows by this factor until it passes ``SPARSE_BETA_TOP`` times the data weight μ.
SPARSE_BETA_GROWTH = 2.0 * np.sqrt(2.0)
SPARSE_BETA_TOP = 0.3


def _generalised_shrink(v: F64, t: float, alpha: float) -> F64:
    """argmin_w ``½ (w − v)² + t |w|^α`` element-wise: soft thresholding for α = 1, the
    generalised shrinkage of Zuo et al. (ICCV 2013, three fixed-point steps) for 0 < α < 1."""
    a = np.abs(v)
    if alpha >= 1.0:
        shrunk: F64 = np.sign(v) * np.maximum(a - t, 0.0)
        return shrunk
    c = 2.0 * t * (1.0 - alpha)
    threshold = c ** (1.0 / (2.0 - alpha)) + t * alpha * c ** ((alpha - 1.0) / (2.0 - alpha))
    w = a.copy()
    for _ in range(3):
        w = a - t * alpha * np.maximum(w, 1e-12) ** (alpha - 1.0)
    out: F64 = np.where(a > threshold, np.sign(v) * np.maximum(w, 0.0), 0.0)
    return out


def sparse_exposure(exposure: F64, psf: F64, weight: float, alpha: float = 0.8) -> F64:
    """Deconvolution of a linear-exposure image with a sparse (hyper-Laplacian) gradient prior.

    Minimises ``(μ/2)·‖k∗x − y‖² + Σ |∇x|^α`` over the exposure relative to its mean (``y``, so
    μ = ``weight`` means the same for a bright and a dark frame) by half-quadratic splitting
    (Krishnan & Fergus, NIPS 2009): the gradients are split off as ``w``, each round solves for
    ``w`` element-wise (:func:`_generalised_shrink`) and for ``x`` in closed form by FFT, and the
    splitting weight β grows from 1 by :data:`SPARSE_BETA_GROWTH` until it passes
    :data:`SPARSE_BETA_TOP`·μ. Unlike the Wiener filter's quadratic penalty, the prior lets
    large gradients (edges) through and flattens small ones (noise). Padded as
    :func:`wiener_exposure`.
    """
    e = np.asarray(exposure, dtype=np.float64)
    ep, pad = pad_for_fft(e, psf)
    mean = float(ep.mean())
    y = ep / mean
    h, w = y.shape
    k = psf_to_otf(psf, (h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    # |DFT|² of the forward differences x[i, j+1] − x[i, j] and x[i+1, j] − x[i, j]
    d2 = (2.0 - 2.0 * np.cos(2 * np.pi * fx)) + (2.0 - 2.0 * np.cos(2 * np.pi * fy))
    data = weight * np.conj(k) * sfft.rfft2(y, workers=-1)
    k2 = weight * np.abs(k) ** 2
    x = y
    beta = 1.0
    while True:  # at least one round, however small μ
        wx = _generalised_shrink(np.roll(x, -1, axis=1) - x, 1.0 / beta, alpha)
        wy = _generalised_shrink(np.roll(x, -1, axis=0) - x, 1.0 / beta, alpha)
        # the differences' adjoints applied to w
        div = (np.roll(wx, 1, axis=1) - wx) + (np.roll(wy, 1, axis=0) - wy)
        x = sfft.irfft2(
            (data + beta * sfft.rfft2(div, workers=-1)) / (k2 + beta * d2), s=(h, w), workers=-1
        )
        beta *= SPARSE_BETA_GROWTH
        if beta > SPARSE_BETA_TOP * weight:
            break
    out: F64 = x[pad : pad + e.shape[0], pad : pad + e.shape[1]] * mean
    return out


def overshoot_fraction(deconvolved: F64, blurred: F64) -> float:
    """Share of pixels the deconvolution puts outside the blurred exposure's own range.

    Blur averages, so the sharp exposure spans at least the blurred one's range, but a linear
    filter's excursions far past it in large areas are ringing: flat regions at the range's ends
    (collimation, direct beam, markers) next to hard edges. Open anatomy stays near 0.0002, frames
    with such edges at 0.03–0.07 (training images, docs/models.md).
    """
    lo, hi = float(blurred.min()), float(blurred.max())
    return float(np.mean((deconvolved < lo) | (deconvolved > hi)))


def richardson_lucy(
    exposure: F64,
    psf: F64,
    iterations: int,
    accelerated: bool = False,
    data: NDArray[np.bool_] | None = None,
) -> F64:
    """Richardson–Lucy deconvolution of a linear-exposure image from a flat start (reflect-padded;
    ``accelerated``: :func:`richardson_lucy_steps`' extrapolation; ``data``: the pixels its data
    term counts, the start then their mean)."""
    e = np.asarray(exposure, dtype=np.float64)
    if data is not None:
        if data.shape != e.shape:
            raise ValueError(f"mask {data.shape} and image {e.shape} differ")
        if not data.any():
            raise ValueError("no pixel left to fit")
    ep, pad = pad_for_fft(e, psf)
    mask = None if data is None else padded_as(data, ep.shape, pad)
    level = float(ep.mean()) if mask is None else float(ep[mask].mean())
    out = richardson_lucy_steps(ep, np.full_like(ep, level), psf, iterations, accelerated, mask)
    res: F64 = out[pad : pad + e.shape[0], pad : pad + e.shape[1]]
    return res


def wiener(
    image01: NDArray[np.floating],
    psf: F64,
    balance: float = DEFAULT_BALANCE,
    power: float = DEFAULT_POWER,
    log_range: float = 3.0,
    rl_iterations: int = 0,
) -> F32:
    """Deconvolve grey values (bright = dense, [0, 1]) by ``psf`` in linear exposure."""
    if psf.size == 1:
        return np.asarray(image01, dtype=np.float32)
    e = to_exposure(np.asarray(image01, dtype=np.float64), log_range)
    r = wiener_exposure(e, psf, balance, power, rl_iterations)
    return np.clip(from_exposure(r, log_range), 0.0, 1.0).astype(np.float32)
