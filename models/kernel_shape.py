"""A motion kernel's shape from its magnitude: phase retrieval and the mirror image (numpy only).

The straight-motion estimate (:mod:`models.blur_estimate`) cannot follow a curved path, and what a
curved path needs is the kernel's *phase*: its magnitude |K| alone restores nothing, and its mirror
image k(−x), which has the same magnitude, restores worse than the straight estimate
(docs/models.md, "Curved motion: magnitude, phase and the mirror image"). Given a magnitude (from
a learned estimate of the blurred image's spectrum; the experiment is
``docs/experiments/kernel_magnitude_net.py``), this module

1. :func:`retrieve_kernel` — recovers a non-negative kernel inside a disc by Fienup's hybrid
   input–output from several random starts at once, the start whose magnitude fits best kept; a
   kernel is fixed by its magnitude up to translation (undone by centring on its centroid) and
   the point reflection;
2. :func:`choose_orientation` — settles the point reflection: the orientation whose Wiener
   restoration has the lower total variation (the true kernel over its mirror image in 19 of 19
   training cases, noiseless and at Poisson 10⁴);
3. :func:`shape_threshold` / :func:`magnitude_distance` — the rule validated on training images
   (second round): use the retrieved kernel instead of the straight one only where the magnitude
   is further than τ from the straight kernel's, τ = 0.25 for a quiet frame (N̂ ≥ 5·10⁴
   quanta/px) and 0.4 otherwise.

**Not used by the node yet** (see docs/models.md for what is missing: the network in ONNX,
detector-scale frames, the node's own validation and the test split).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import shift

from models.blur import from_exposure
from models.deconvolve import wiener_exposure

F64 = NDArray[np.float64]

#: Grid of the magnitude and of the retrieval (the learned estimate's Welch patch).
GRID = 64
#: τ for a quiet frame, for a noisy one, and the measured noise that separates them.
QUIET_THRESHOLD = 0.25
NOISY_THRESHOLD = 0.4
QUIET_FROM_QUANTA = 5e4


def magnitude_of(kernel: F64, grid: int = GRID) -> F64:
    """|K| of a kernel on a ``grid``² DFT grid (origin at index 0, unshifted)."""
    big = np.zeros((grid, grid))
    kh, kw = kernel.shape
    if kh > grid or kw > grid:
        raise ValueError(f"kernel {kernel.shape} does not fit a {grid}² grid")
    big[:kh, :kw] = kernel
    out: F64 = np.abs(np.fft.fft2(big))
    return out


def magnitude_distance(magnitude: F64, kernel: F64) -> float:
    """Relative L2 distance between ``magnitude`` and the kernel's own magnitude."""
    ref = np.asarray(magnitude, dtype=np.float64)
    return float(np.linalg.norm(magnitude_of(kernel, ref.shape[0]) - ref) / np.linalg.norm(ref))


def shape_threshold(measured_quanta: float | None) -> float:
    """τ of the validated rule: 0.25 for a quiet frame (or noise too low to measure), else 0.4."""
    if measured_quanta is None or measured_quanta >= QUIET_FROM_QUANTA:
        return QUIET_THRESHOLD
    return NOISY_THRESHOLD


def centre_on_centroid(k: F64) -> F64:
    """The kernel moved so that its centroid sits on the centre pixel of an odd square, ≥ 0, sum 1."""
    k = np.clip(np.asarray(k, dtype=np.float64), 0.0, None)
    total = float(k.sum())
    if total <= 0:
        raise ValueError("kernel has no positive mass")
    k = k / total
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    cy, cx = float((k * yy).sum()), float((k * xx).sum())
    ys, xs = np.nonzero(k > 1e-6)
    half = int(np.ceil(max(np.abs(ys - cy).max(), np.abs(xs - cx).max()))) + 1
    size = 2 * half + 1
    canvas = np.zeros((max(k.shape[0], size) + size, max(k.shape[1], size) + size))
    c = canvas.shape[0] // 2, canvas.shape[1] // 2
    canvas[: k.shape[0], : k.shape[1]] = k
    moved = shift(canvas, (c[0] - cy, c[1] - cx), order=1)
    sub = np.clip(moved[c[0] - half : c[0] + half + 1, c[1] - half : c[1] + half + 1], 0.0, None)
    out: F64 = sub / sub.sum()
    return out


def retrieve_kernel(
    magnitude: F64,
    radius: float,
    rng: np.random.Generator,
    *,
    starts: int = 8,
    hio_steps: int = 350,
    er_steps: int = 50,
    beta: float = 0.9,
) -> tuple[F64, float]:
    """A non-negative kernel inside a disc of ``radius`` px whose magnitude fits ``magnitude``.

    Hybrid input–output (Fienup 1982) for ``hio_steps`` steps, then ``er_steps`` of error
    reduction, from ``starts`` random starts run together; the best fit is returned, centred on
    its centroid, with its relative magnitude error. Up to the point reflection: see
    :func:`choose_orientation`.
    """
    mag = np.asarray(magnitude, dtype=np.float64)
    n = mag.shape[0]
    if mag.shape != (n, n):
        raise ValueError("magnitude must be square")
    if not 1.0 <= radius < n / 2:
        raise ValueError(f"radius {radius} outside 1 … {n / 2}")
    yy, xx = np.mgrid[:n, :n]
    support = (yy - n // 2) ** 2 + (xx - n // 2) ** 2 <= radius**2
    x = rng.random((starts, n, n)) * support
    for step in range(hio_steps + er_steps):
        spectrum = np.fft.fft2(x)
        xp = np.real(np.fft.ifft2(mag * np.exp(1j * np.angle(spectrum))))
        ok = support & (xp >= 0)
        x = np.where(ok, xp, x - beta * xp) if step < hio_steps else np.where(ok, xp, 0.0)
    fit = np.abs(np.fft.fft2(x))
    errors = np.linalg.norm((fit - mag).reshape(starts, -1), axis=1) / np.linalg.norm(mag)
    best = int(np.argmin(errors))
    return centre_on_centroid(x[best]), float(errors[best])


def total_variation(image: F64, margin: int = 8) -> float:
    """Mean gradient magnitude, ``margin`` px from the borders left out."""
    gy, gx = np.gradient(np.asarray(image, dtype=np.float64))
    g = np.hypot(gx, gy)
    if margin:
        g = g[margin:-margin, margin:-margin]
    return float(g.mean())


def choose_orientation(
    exposure: F64, kernel: F64, balance: float, log_range: float, power: float = 1.0
) -> F64:
    """``kernel`` or its point reflection, whichever restores ``exposure`` (Wiener in linear
    exposure) to grey values with the lower total variation."""
    mirrored = np.ascontiguousarray(kernel[::-1, ::-1])

    def tv(psf: F64) -> float:
        w = wiener_exposure(exposure, psf, balance, power)
        return total_variation(np.clip(from_exposure(w, log_range), 0.0, 1.0))

    return kernel if tv(kernel) <= tv(mirrored) else mirrored
