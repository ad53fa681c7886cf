"""Motion blur as it happens in projection radiography, and its quantum noise (numpy/scipy only).

Physics in brief
----------------
A radiograph integrates the X-ray fluence reaching the detector during the exposure. If the patient
moves during the exposure, the image is the time average of shifted images: the sharp *detector
exposure* convolved with a point-spread function (PSF) that is the path of the motion, weighted by
the time spent at each point. The blur therefore acts on **linear exposure**, not on the displayed
grey values, which in processed CR/DX images are roughly logarithmic in exposure (raw detector signals
are log-amplified, then tone-mapped). Quantum (Poisson) noise is added to the exposure after the
blur, plus a little Gaussian electronic noise (the Poisson-Gaussian model of digital detectors).

Grey values here are float arrays in [0, 1] with bright = dense (MONOCHROME2, like the node's input).
They are mapped to relative exposure ``E = exp(-log_range * v)``: ``log_range`` is the natural log of
the exposure ratio between the darkest and brightest grey value (3.0 ≈ a 20:1 range, typical of the
lung-to-mediastinum range of a chest radiograph). ``log_range=None`` blurs the grey values directly.

Kernel length
-------------
The blur length in pixels is the motion at the detector plane divided by the pixel spacing:
``length_px = motion_mm * magnification / pixel_spacing_mm`` (see :func:`blur_length_px`). Patient
motion during a chest exposure (5–20 ms for a PA chest, up to 100 ms or more at the bedside) is
typically 0.5–5 mm; at 0.15 mm detector pixels that is 3–35 px, at the 0.6 mm spacing of a 640 px
wide downscaled chest radiograph 1–9 px.

Everything random takes a :class:`numpy.random.Generator`, so every result is reproducible from a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import fftconvolve
from scipy.spatial import ConvexHull, QhullError

FloatArray = NDArray[np.float64]
F32Array = NDArray[np.float32]

#: Points sampled per pixel of path length when rasterising a kernel.
SAMPLES_PER_PX = 16


def blur_length_px(motion_mm: float, pixel_spacing_mm: float, magnification: float = 1.0) -> float:
    """Blur length in detector pixels for a patient motion of ``motion_mm`` during the exposure.

    ``pixel_spacing_mm`` is the detector pixel spacing (DICOM Imager Pixel Spacing, or Pixel Spacing
    of the image being simulated if it was resampled). ``magnification`` is the geometric
    magnification of the moving anatomy (source-to-image distance / source-to-object distance,
    about 1.1 for a PA chest at 180 cm, 1.2–1.3 at the bedside): motion at the object plane appears
    magnified at the detector.
    """
    if pixel_spacing_mm <= 0:
        raise ValueError("pixel_spacing_mm must be positive")
    if motion_mm < 0 or magnification <= 0:
        raise ValueError("motion_mm must be >= 0 and magnification > 0")
    return motion_mm * magnification / pixel_spacing_mm


def motion_mm(speed_mm_per_s: float, exposure_ms: float) -> float:
    """Distance moved at constant speed during an exposure (e.g. 50 mm/s for 20 ms = 1 mm)."""
    return speed_mm_per_s * exposure_ms / 1000.0


def _rasterise(points: FloatArray) -> FloatArray:
    """Time-uniform samples of a path (x, y in px, shape [n, 2]) -> normalised PSF on a square grid.

    Each sample falls into the pixel that contains it (a box-integrated path): for a horizontal
    line of odd integer length L centred on a pixel this gives exactly L equal taps.
    """
    centre = points.mean(axis=0)
    pts = points - centre
    ij = np.floor(pts + 0.5).astype(np.int64)
    half = int(np.abs(ij).max()) if ij.size else 0
    size = 2 * half + 1
    k = np.zeros((size, size), dtype=np.float64)
    # Row index is y, column index is x.
    np.add.at(k, (ij[:, 1] + half, ij[:, 0] + half), 1.0)
    k /= k.sum()
    return k


def linear_kernel(length_px: float, angle_deg: float = 0.0) -> FloatArray:
    """Uniform linear motion PSF: a line of ``length_px`` pixels at ``angle_deg``.

    The angle is counter-clockwise from the +x (column) axis as seen with row 0 at the top, i.e.
    ``angle_deg=90`` is vertical motion. The kernel is square, odd-sized, centred, sums to 1, and its
    support along the motion direction spans ``length_px`` pixels (rounded to the pixel grid; e.g.
    exactly L taps for a horizontal or vertical line of odd integer length L). ``length_px < 1``
    returns the identity kernel ``[[1.0]]``.
    """
    if length_px < 0:
        raise ValueError("length_px must be >= 0")
    if length_px < 1.0:
        return np.ones((1, 1), dtype=np.float64)
    n = max(2, int(math.ceil(length_px * SAMPLES_PER_PX)))
    t = ((np.arange(n) + 0.5) / n - 0.5) * length_px
    a = math.radians(angle_deg)
    # Image rows grow downwards, so counter-clockwise on screen is -y.
    pts = np.stack([t * math.cos(a), -t * math.sin(a)], axis=1)
    # Keep the line centred on a pixel centre (do not re-centre on the sample mean, which is 0).
    ij = np.floor(pts + 0.5).astype(np.int64)
    half = int(np.abs(ij).max())
    k = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float64)
    np.add.at(k, (ij[:, 1] + half, ij[:, 0] + half), 1.0)
    out: FloatArray = k / k.sum()
    return out


#: How a straight path may be drawn on the pixel grid (:func:`drawn_linear_kernel`).
LINE_DRAWINGS = ("nearest", "bilinear", "lanczos")
#: Points per pixel of path length for the interpolated drawings; the Lanczos kernel's lobes.
DRAWN_SAMPLES_PER_PX = 32
LANCZOS_LOBES = 3


def _drawing_weights(d: FloatArray, drawing: str) -> tuple[NDArray[np.int64], FloatArray]:
    """Integer offsets and the weights a point at fractional offsets ``d`` (in [0, 1)) gives its
    neighbouring pixels along one axis: bilinear (two) or Lanczos (2·lobes, each row sums to 1)."""
    if drawing == "bilinear":
        return np.array([0, 1], dtype=np.int64), np.stack([1 - d, d], axis=1)
    offsets = np.arange(-LANCZOS_LOBES + 1, LANCZOS_LOBES + 1, dtype=np.int64)
    x = offsets[None, :] - d[:, None]
    w = np.sinc(x) * np.sinc(x / LANCZOS_LOBES)
    out: FloatArray = w / w.sum(axis=1, keepdims=True)
    return offsets, out


def drawn_linear_kernel(length_px: float, angle_deg: float, drawing: str = "nearest") -> FloatArray:
    """A straight path of ``length_px`` at ``angle_deg`` (as :func:`linear_kernel`) drawn on the
    pixel grid one of :data:`LINE_DRAWINGS` ways; square, odd-sized, centred, sums to 1.

    ``nearest``: :func:`linear_kernel` (each point of the path on its nearest pixel, the blur of
    :func:`simulate_motion_blur`'s callers). ``bilinear``: each point spread over its four
    neighbouring pixels, as an interpolated or anti-aliased line is drawn. ``lanczos``: each point
    a Lanczos-3 kernel, close to the band-limited line (continuous motion, sampled), transfer
    ≈ sinc(L·f); it has small negative lobes. The same motion drawn otherwise differs near the
    Nyquist frequency, where an inverse filter built on the wrong drawing loses 0.2–0.6 dB
    (docs/models.md, the rendering look). ``length_px < 1``: the identity kernel.
    """
    if drawing not in LINE_DRAWINGS:
        raise ValueError(f"drawing must be one of {LINE_DRAWINGS}, not {drawing!r}")
    if drawing == "nearest" or length_px < 1.0:
        return linear_kernel(length_px, angle_deg)
    n = max(2, math.ceil(length_px * DRAWN_SAMPLES_PER_PX))
    t = ((np.arange(n) + 0.5) / n - 0.5) * length_px
    a = math.radians(angle_deg)
    x, y = t * math.cos(a), -t * math.sin(a)  # rows grow downwards
    half = math.ceil(length_px / 2) + LANCZOS_LOBES + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float64)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    ox, wx = _drawing_weights(x - x0, drawing)
    oy, wy = _drawing_weights(y - y0, drawing)
    for i, dy in enumerate(oy):
        for j, dx in enumerate(ox):
            np.add.at(k, (y0 + dy + half, x0 + dx + half), wy[:, i] * wx[:, j])
    r = int(np.max(np.abs(np.argwhere(np.abs(k) > 1e-9) - half)))
    out: FloatArray = k[half - r : half + r + 1, half - r : half + r + 1]
    out /= out.sum()
    return out


def trajectory_kernel(
    length_px: float,
    rng: np.random.Generator,
    *,
    curvature: float = 0.6,
    speed_variation: float = 0.5,
    n_steps: int = 64,
) -> FloatArray:
    """A random, smooth motion path of total length ``length_px`` pixels, as a PSF.

    Models the irregular motion of a patient (breathing, a start or a tremor) during the exposure:
    the direction starts uniformly at random and turns by a smooth random process whose strength is
    ``curvature`` (0 = a straight line; 1 ≈ up to about a quarter turn over the exposure); the speed
    along the path varies smoothly by a relative amount ``speed_variation`` (0 = constant speed), so
    the PSF weights the path by the time spent at each point (slower = brighter). The path is
    rescaled so that its arc length is ``length_px``; ``n_steps`` is the number of time steps of
    the random process (the path is then sampled at ``SAMPLES_PER_PX`` points per pixel).
    """
    if length_px < 0:
        raise ValueError("length_px must be >= 0")
    if length_px < 1.0:
        return np.ones((1, 1), dtype=np.float64)

    def smooth_noise(scale: float) -> FloatArray:
        # Random walk, then a moving average: a smooth zero-mean process over the exposure.
        w = np.cumsum(rng.standard_normal(n_steps)) / math.sqrt(n_steps)
        w -= w.mean()
        return scale * w

    heading = rng.uniform(0.0, 2.0 * math.pi) + smooth_noise(curvature * math.pi / 2.0)
    speed = np.exp(smooth_noise(speed_variation))
    steps = np.stack([np.cos(heading), np.sin(heading)], axis=1) * speed[:, None]
    arc = float(np.sum(speed))
    steps *= length_px / arc  # total arc length = length_px
    path = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)], axis=0)
    # Resample in time at SAMPLES_PER_PX points per pixel of arc length.
    n = max(2, int(math.ceil(length_px * SAMPLES_PER_PX)))
    tq = (np.arange(n) + 0.5) / n * n_steps
    tp = np.arange(n_steps + 1, dtype=np.float64)
    pts = np.stack([np.interp(tq, tp, path[:, 0]), np.interp(tq, tp, path[:, 1])], axis=1)
    return _rasterise(pts)


def _diameter(points: NDArray[np.complex128]) -> float:
    """The largest distance between two of ``points`` (complex x + iy), over their convex hull."""
    xy = np.stack([points.real, points.imag], axis=1)
    try:
        hull = xy[ConvexHull(xy).vertices]
    except QhullError:  # all on one line: its ends
        hull = xy
    d = hull[:, None, :] - hull[None, :, :]
    return float(np.sqrt(np.max(np.sum(d * d, axis=-1))))


#: The length (px) of the canvas :func:`shake_kernel`'s random process runs on (the paper's 60).
SHAKE_CANVAS_PX = 60.0


def shake_kernel(
    length_px: float,
    rng: np.random.Generator,
    *,
    n_steps: int = 2000,
    anxiety: float = 0.005,
) -> FloatArray:
    """A jittery random path that spans ``length_px`` (its diameter: the largest distance between
    two of its points, as a straight line of that length spans it), rasterised with bilinear
    weights: a blur model *other* than :func:`trajectory_kernel`, for measuring the correction as
    an outside evaluator with a model of its own would (nothing here is trained or fitted on it).

    The path is the camera-shake random process of Boracchi and Foi ("Modeling the performance of
    image restoration from motion blur", IEEE TIP 21(8), 2012), written here from the paper's
    description: a unit-speed particle whose velocity is perturbed at each of ``n_steps`` time
    steps by Gaussian noise of a random strength, pulled back towards its start by a random
    centripetal term, and now and then turned abruptly ("big shakes"); ``anxiety`` scales the
    perturbations. Unlike the smooth paths of :func:`trajectory_kernel` it changes direction
    abruptly and can double back; unlike every kernel here it is rasterised with bilinear (not
    nearest-pixel) weights, as many outside tools do.
    """
    if length_px < 0:
        raise ValueError("length_px must be >= 0")
    if length_px < 1.0:
        return np.ones((1, 1), dtype=np.float64)
    centripetal = 0.7 * rng.random()
    gaussian = 10.0 * rng.random()
    big_shakes = 0.2 * rng.random()
    # The process runs on the paper's canvas (a path of at most SHAKE_CANVAS_PX), where the
    # centripetal pull (proportional to the distance from the start, in px) and the Gaussian
    # push have the sizes the paper gives them; the path is rescaled to ``length_px`` after.
    step = SHAKE_CANVAS_PX / (n_steps - 1)
    x = np.zeros(n_steps, dtype=np.complex128)
    v = anxiety * np.exp(1j * rng.uniform(0.0, 2.0 * math.pi))
    for t in range(n_steps - 1):
        turn = 0.0j
        if rng.random() < big_shakes * anxiety:
            turn = 2.0 * v * np.exp(1j * (math.pi + rng.random() - 0.5))
        noise = complex(rng.standard_normal(), rng.standard_normal())
        v = v + turn + anxiety * (gaussian * noise - centripetal * x[t]) * step
        v = v / abs(v) * step
        x[t + 1] = x[t] + v
    x *= length_px / _diameter(x)
    x -= x.mean()
    half = int(math.ceil(np.max(np.abs(np.r_[x.real, x.imag])))) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float64)
    col, row = x.real + half, x.imag + half
    c0, r0 = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    fc, fr = col - c0, row - r0
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        np.add.at(k, (r0 + dr, c0 + dc), w)
    out: FloatArray = k / k.sum()
    return out


def motion_kernel(kind: str, length_px: float, rng: np.random.Generator) -> FloatArray:
    """A ``"straight"`` kernel in a random direction or a ``"curved"`` random trajectory, of
    ``length_px``: the two kinds of motion every evaluation and validation here draws; and
    ``"shake"`` (:func:`shake_kernel`), the outside model only evaluations of robustness draw."""
    if kind == "straight":
        return linear_kernel(length_px, float(rng.uniform(0.0, 180.0)))
    if kind == "curved":
        return trajectory_kernel(length_px, rng)
    if kind == "shake":
        return shake_kernel(length_px, rng)
    raise ValueError(f"motion kind must be 'straight', 'curved' or 'shake', not {kind!r}")


def random_kernel(
    rng: np.random.Generator,
    min_length_px: float,
    max_length_px: float,
    p_linear: float = 0.5,
) -> FloatArray:
    """A linear (probability ``p_linear``) or random-trajectory kernel, length uniform in the range."""
    length = float(rng.uniform(min_length_px, max_length_px))
    return motion_kernel("straight" if rng.random() < p_linear else "curved", length, rng)


def to_exposure(image01: FloatArray | F32Array, log_range: float) -> FloatArray:
    """Grey values in [0, 1] (bright = dense) -> relative detector exposure in (0, 1]."""
    return np.exp(-log_range * np.asarray(image01, dtype=np.float64))


def from_exposure(exposure: FloatArray, log_range: float) -> FloatArray:
    """Inverse of :func:`to_exposure` (exposure clipped to a tiny positive floor first)."""
    return -np.log(np.maximum(exposure, 1e-12)) / log_range


def convolve(image: FloatArray, kernel: FloatArray) -> FloatArray:
    """2-D convolution with reflect padding, same size as ``image`` (FFT based)."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    if ph == 0 and pw == 0:
        return np.asarray(image, dtype=np.float64) * float(kernel[0, 0])
    padded = np.pad(np.asarray(image, dtype=np.float64), ((ph, ph), (pw, pw)), mode="reflect")
    return np.asarray(fftconvolve(padded, kernel, mode="valid"), dtype=np.float64)


def add_quantum_noise(
    exposure: FloatArray,
    rng: np.random.Generator,
    photons: float | None,
    read_noise: float = 0.0,
) -> FloatArray:
    """Poisson-Gaussian detector noise on relative exposure.

    ``photons`` is the mean number of detected quanta per pixel at exposure 1 (the brightest,
    least attenuated point): a few hundred gives a visibly noisy low-dose image, 10^4 almost none.
    ``None`` adds no quantum noise. ``read_noise`` is the standard deviation of the additive
    Gaussian electronic noise, in units of exposure 1.
    """
    out = np.asarray(exposure, dtype=np.float64)
    if photons is not None:
        if photons <= 0:
            raise ValueError("photons must be positive")
        out = rng.poisson(np.maximum(out, 0.0) * photons).astype(np.float64) / photons
    if read_noise > 0:
        out = out + rng.normal(0.0, read_noise, size=out.shape)
    return out


@dataclass(frozen=True)
class NoiseSpec:
    """Noise after the blur: see :func:`add_quantum_noise`."""

    photons: float | None = None
    read_noise: float = 0.0


def simulate_motion_blur(
    image01: FloatArray | F32Array,
    kernel: FloatArray,
    rng: np.random.Generator | None = None,
    *,
    log_range: float | None = 3.0,
    noise: NoiseSpec | None = None,
) -> F32Array:
    """Blur a radiograph (grey values in [0, 1], bright = dense) by ``kernel`` in linear exposure.

    Steps: grey -> exposure (``log_range``, see module doc; ``None`` = blur grey values as they are),
    convolve with ``kernel`` (reflect padding), optional Poisson-Gaussian noise (``noise``, needs
    ``rng``), back to grey values, clip to [0, 1]. Returns float32 of the input's shape.
    """
    img = np.asarray(image01, dtype=np.float64)
    signal = to_exposure(img, log_range) if log_range is not None else img
    blurred = convolve(signal, kernel)
    if noise is not None and (noise.photons is not None or noise.read_noise > 0):
        if rng is None:
            raise ValueError("noise needs an rng")
        blurred = add_quantum_noise(blurred, rng, noise.photons, noise.read_noise)
    out = from_exposure(blurred, log_range) if log_range is not None else blurred
    return np.clip(out, 0.0, 1.0).astype(np.float32)
