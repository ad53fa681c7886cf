"""Detector-like scenes from 640 px radiographs: upsampled, with their own power law continued.

The shared data's only detector-scale frames (``cxr-dicom``) are the test split's, so what is
fitted or validated at detector scale uses MHH frames (≈0.6 mm/px) upsampled ×3 to 0.2 mm (or ×2
to 0.3 mm). Upsampling leaves the band above the 640 px frame's Nyquist frequency empty, where a
real detector frame still holds anatomy; :func:`continued` fills it with a Gaussian field whose
radial power follows the frame's own fit ``P(f) ∝ f^−β`` (0.05–0.45 cycles/px), moved to the finer
grid and kept only above the upsampled content's cut-off, added in linear exposure.
(``docs/experiments/detector_proxy.py`` showed such scenes reproduce the real frames' loss on long
curved motion without noise; docs/models.md.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import zoom

from models.blur import from_exposure, to_exposure

F32 = NDArray[np.float32]
#: Linear exposure of the scenes: the log range every tuning and validation here uses.
LOG_RANGE = 3.0


def power_law(img: NDArray[np.floating]) -> tuple[float, float]:
    """(β, log c) of the power spectral density ``c · f^−β`` of ``img``'s exposure (per pixel,
    f in cycles/px; fitted on a Hann-windowed periodogram over 0.05–0.45 cycles/px)."""
    e = to_exposure(np.asarray(img, dtype=np.float64), LOG_RANGE)
    e = e - e.mean()
    n = min(e.shape) - min(e.shape) % 2
    window = np.outer(np.hanning(n), np.hanning(n))
    p = np.abs(np.fft.fft2(e[:n, :n] * window)) ** 2
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    sel = (f > 0.05) & (f < 0.45)
    slope, icpt = np.polyfit(np.log(f[sel]), np.log(p[sel]), 1)
    return float(-slope), float(icpt) - float(np.log(float((window**2).sum())))


def continued(base: NDArray[np.floating], side: int, seed: int, up: int = 3) -> F32:
    """``base`` ×``up`` upsampled (its centred ``side``² square, capped at the upsampled sides)
    with its power law continued above the upsampled content's cut-off (1/(2·up) cycles/px)."""
    if up < 1:
        raise ValueError("up must be at least 1")
    beta, icpt = power_law(base)
    big = np.clip(zoom(np.asarray(base, dtype=np.float32), float(up), order=3), 0.0, 1.0)
    h, w = big.shape
    side = min(side, h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    e = to_exposure(big[y0 : y0 + side, x0 : x0 + side].astype(np.float64), LOG_RANGE)
    f = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.fftfreq(side)[None, :])
    f0 = f * up  # the same spatial frequency in cycles per pixel of the base frame
    f0[0, 0] = 1.0
    # the density at f0 in the finer grid's units (up² · S(up f)), only where upsampling left
    # nothing; white noise of unit variance per pixel shaped by its square root
    amp = np.sqrt(up**2 * np.exp(icpt) * f0 ** (-beta)) * (f > 1.0 / (2 * up))
    white = np.fft.fft2(np.random.default_rng(seed).standard_normal((side, side)))
    field = np.real(np.fft.ifft2(white * amp))
    out = from_exposure(np.clip(e + field, 1e-6, None), LOG_RANGE)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
