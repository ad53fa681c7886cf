"""Noise removal after the deconvolution: local Wiener shrinkage in an undecimated wavelet domain.

The Wiener filter alone must trade noise against sharpness with one regulariser λ for the whole
frame: every frequency it restores brings back the quantum noise there too. A nonlinear second
step can keep what stands clearly above the noise (edges, vessels) and quieten the rest, so the
filter before it can regularise less (Neelamani, Choi & Baraniuk's ForWaRD, 2004; the sixth
round in docs/models.md):

1. the Wiener result (linear exposure) is divided by the local scale of its noise — quantum noise
   has variance ∝ exposure, so ``sqrt(smoothed exposure / mean exposure)`` — which makes its noise
   about equally strong everywhere;
2. its undecimated (stationary) wavelet transform (:data:`WAVELET`, :data:`LEVELS` levels;
   PyWavelets) is taken, and every detail coefficient d is multiplied by ``v / (v + σ²)``, where
   σ is that subband's noise (the image's measured white noise passed through the *same* Wiener
   filter, :func:`subband_noise`) and v the coefficients' local energy above it (a
   ``window``² mean of d² less σ², at least 0) — the Wiener filter again, now local;
3. the inverse transform, scaled back.

numpy, scipy and PyWavelets (the train extra: an experiment, off in the node).
"""

from __future__ import annotations

import numpy as np
import pywt
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter, uniform_filter

from models.deconvolve import wiener_exposure

F64 = NDArray[np.float64]

#: The wavelet and the number of levels of the undecimated transform.
WAVELET = "sym4"
LEVELS = 4
#: Side (px) of the window over which a coefficient's local energy is read.
WINDOW = 7
#: Side (px) of the white noise field the subbands' noise is measured on (stationary noise: a
#: field of this size gives each subband's σ to about 1 %), and its fixed seed (same frame, same
#: output).
NOISE_FIELD_PX = 512
NOISE_SEED = 20261204
#: Smoothing (px) of the exposure that sets the local noise scale.
SCALE_SIGMA_PX = 3.0


def _padded(x: F64, levels: int) -> tuple[F64, tuple[int, int]]:
    """``x`` reflect-padded to a multiple of 2**levels on both axes (the transform needs it)."""
    m = 2**levels
    h, w = x.shape
    out: F64 = np.pad(x, ((0, (-h) % m), (0, (-w) % m)), mode="reflect")
    return out, (h, w)


def subband_noise(
    psf: F64, balance: float, power: float, variance: float, levels: int = LEVELS
) -> list[tuple[float, float, float]]:
    """Per level (coarsest first) the noise σ of the three detail subbands after the Wiener
    filter (``psf``, ``balance``, ``power``) of white noise of ``variance``."""
    rng = np.random.default_rng(NOISE_SEED)
    n = rng.normal(0.0, float(np.sqrt(max(variance, 0.0))), (NOISE_FIELD_PX, NOISE_FIELD_PX))
    # the filter acts on the deviation from the mean: any positive level gives the same result
    filtered = wiener_exposure(n + 1.0, psf, balance, power) - 1.0
    coeffs = pywt.swt2(filtered, WAVELET, level=levels, trim_approx=True)
    return [(float(np.std(c[0])), float(np.std(c[1])), float(np.std(c[2]))) for c in coeffs[1:]]


def shrink(
    deconvolved: F64,
    blurred: F64,
    sigmas: list[tuple[float, float, float]],
    window: int = WINDOW,
) -> F64:
    """The deconvolved exposure with its noise shrunk (steps 1–3 of the module's description);
    ``blurred`` sets the local noise scale, ``sigmas`` come from :func:`subband_noise`."""
    e = np.asarray(blurred, dtype=np.float64)
    scale = np.sqrt(
        np.maximum(gaussian_filter(e, SCALE_SIGMA_PX), 1e-9) / max(float(e.mean()), 1e-9)
    )
    mean = float(np.mean(deconvolved))
    z, (h, w) = _padded((np.asarray(deconvolved, dtype=np.float64) - mean) / scale, len(sigmas))
    coeffs = pywt.swt2(z, WAVELET, level=len(sigmas), trim_approx=True)
    out: list[object] = [coeffs[0]]
    for details, noise in zip(coeffs[1:], sigmas, strict=True):
        kept = []
        for d, s in zip(details, noise, strict=True):
            s2 = s * s
            v = np.maximum(uniform_filter(d * d, window) - s2, 0.0)
            kept.append(d * v / np.maximum(v + s2, 1e-30))
        out.append(tuple(kept))
    r: F64 = np.asarray(pywt.iswt2(out, WAVELET), dtype=np.float64)[:h, :w]
    res: F64 = mean + r * scale
    return res
