"""A motion kernel's shape from its magnitude: phase retrieval and the mirror image (numpy; the
learned magnitude through ONNX Runtime).

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
   quanta/px) and 0.3 otherwise (0.4 until the twelfth round chose 0.3 for the third network).

4. :func:`shape_kernel` — the whole step for one frame at any pixel size: the frame is
   block-averaged towards the network's 0.6 mm scale (and so that the motion is at most 14 px
   there; frames with pixels finer than 0.4 mm, or under 384 px there, keep the straight kernel
   by default: on training images the step lost at detector scale and on small frames), the
   magnitude estimated (a :data:`MagnitudeEstimator`: the ONNX model
   ``models/weights/kernel-magnitude`` in the node, :mod:`models.kernel_magnitude_net` in
   training), compared with the straight kernel's, and where the rule says so the retrieved
   kernel is oriented and scaled back to the frame's pixels (thinned to a one-pixel path).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import shift, zoom
from skimage.morphology import skeletonize

from models.blur import from_exposure, linear_kernel
from models.blur_estimate import welch_power
from models.deconvolve import wiener_exposure
from models.noise_level import quanta_per_pixel

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
#: The learned magnitude: :func:`spectrum_input` (64², float32) → |K| on the same grid, centred
#: (``fftshift``), as the network returns it.
MagnitudeEstimator = Callable[[F32], NDArray[np.floating]]

#: Grid of the magnitude and of the retrieval (the learned estimate's Welch patch).
GRID = 64
#: τ for a quiet frame, for a noisy one, and the measured noise that separates them (0.4 for a
#: noisy frame until the third network: the twelfth round, docs/models.md, chose 0.3 for it).
QUIET_THRESHOLD = 0.25
NOISY_THRESHOLD = 0.3
QUIET_FROM_QUANTA = 5e4
#: The network's scale: a frame is block-averaged towards this pixel size, and further until the
#: motion is at most MAX_NET_LENGTH_PX there (its training: 0.6 mm crops, 3-14 px of motion).
NET_SPACING_MM = 0.6
MAX_NET_LENGTH_PX = 14.0
#: Shorter motion at the network's scale keeps the straight kernel (a path of under 3 px has
#: no shape to find).
MIN_NET_LENGTH_PX = 3.0
#: Frames with finer pixels keep the straight kernel: at detector scale (block-averaged to the
#: network's scale) the step lost on training images (docs/models.md).
FINEST_SPACING_MM = 0.4
#: Frames whose shorter side at the network's scale is under this keep the straight kernel: the
#: Welch spectrum of a small frame averages few patches (a 224 px frame 36 of 64², a 384 px one
#: 121), and on fitting images 224² and 288² crops lost where 384² did not (docs/models.md).
SMALLEST_FRAME_PX = 384
#: The native-pixel (detector) network's reach: frames with pixels finer than FINEST_SPACING_MM
#: are block-averaged only until the motion is at most DETECTOR_MAX_LENGTH_PX (its training: 0.2 /
#: 0.3 mm scenes, 4-32 px of motion; the retrieval's disc, radius L/2 + 2, stays inside half the
#: 64² grid). Not towards a pixel size: a kernel found on coarser pixels and scaled back loses
#: most of what it would give (docs/experiments/detector_shape_bound.py).
DETECTOR_MAX_LENGTH_PX = 32.0
#: τ of the step at detector scale for a quiet and a noisy frame (the sixteenth round's choice on
#: fitting images, docs/models.md).
DETECTOR_THRESHOLDS = (0.25, 0.25)
#: τ (quiet, noisy) of the shape step with the second network, whose correction the node averages
#: with the first's (the twenty-seventh round's choice on fitting images, docs/models.md).
SECOND_THRESHOLDS = (0.15, 0.25)
#: Seed of the phase retrieval's random starts: the node gives the same answer every time.
RETRIEVAL_SEED = 0


def spectrum_input(exposure: NDArray[np.floating], avoid: NDArray[np.bool_] | None = None) -> F32:
    """The network's input: the Welch log power spectrum (64² patches) of the mean-removed
    linear exposure, centred (``fftshift``) and standardised; ``avoid``: pixels its windows keep
    clear of (:func:`models.blur_estimate.welch_windows`)."""
    e = np.asarray(exposure, dtype=np.float64)
    lp = np.log(np.fft.fftshift(welch_power(e - e.mean(), GRID, avoid=avoid)) + 1e-12)
    out: F32 = ((lp - lp.mean()) / (lp.std() + 1e-9)).astype(np.float32)
    return out


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


def kernel_error(estimate: NDArray[np.floating], truth: NDArray[np.floating]) -> float:
    """How far an estimated kernel is from the true one, whatever their placement: 1 − the
    largest normalised cross-correlation over all shifts (0: the same shape; a mirror image of a
    curved path, a wrong length or direction score above 0; 1: no overlap at any shift)."""
    a = np.clip(np.asarray(estimate, dtype=np.float64), 0.0, None)
    b = np.clip(np.asarray(truth, dtype=np.float64), 0.0, None)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na <= 0 or nb <= 0:
        raise ValueError("a kernel has no positive mass")
    h, w = a.shape[0] + b.shape[0], a.shape[1] + b.shape[1]
    corr = np.fft.irfft2(np.fft.rfft2(a, (h, w)) * np.conj(np.fft.rfft2(b, (h, w))), (h, w))
    return float(1.0 - min(1.0, float(corr.max()) / (na * nb)))


def effective_thresholds(thresholds: tuple[float, float] | None) -> tuple[float, float]:
    """(τ quiet, τ noisy): ``thresholds`` where given, else the validated rule's."""
    return thresholds or (QUIET_THRESHOLD, NOISY_THRESHOLD)


def shape_threshold(
    measured_quanta: float | None, thresholds: tuple[float, float] | None = None
) -> float:
    """τ of the validated rule: 0.25 for a quiet frame (or noise too low to measure), else 0.3;
    ``thresholds`` (quiet, noisy) in their place where given."""
    quiet, noisy = effective_thresholds(thresholds)
    if measured_quanta is None or measured_quanta >= QUIET_FROM_QUANTA:
        return quiet
    return noisy


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
    # the kernel placed with a margin: scipy's shift drops input at the array's edge, and a
    # kernel cropped tightly to its path has mass there
    m = 2
    canvas = np.zeros((max(k.shape[0], size) + size + 2 * m, max(k.shape[1], size) + size + 2 * m))
    c = canvas.shape[0] // 2, canvas.shape[1] // 2
    canvas[m : m + k.shape[0], m : m + k.shape[1]] = k
    moved = shift(canvas, (c[0] - cy - m, c[1] - cx - m), order=1)
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


def total_variation(image: F64, margin: int = 8, avoid: NDArray[np.bool_] | None = None) -> float:
    """Mean gradient magnitude, ``margin`` px from the borders left out, and the ``avoid``
    pixels too (None, or nothing left: all of them)."""
    gy, gx = np.gradient(np.asarray(image, dtype=np.float64))
    g = np.hypot(gx, gy)
    keep = None if avoid is None else ~np.asarray(avoid, dtype=bool)
    if margin:
        g = g[margin:-margin, margin:-margin]
        keep = None if keep is None else keep[margin:-margin, margin:-margin]
    if keep is not None and keep.any():
        return float(g[keep].mean())
    return float(g.mean())


def restored_variation(
    exposure: F64,
    kernel: F64,
    balance: float,
    log_range: float,
    power: float = 1.0,
    avoid: NDArray[np.bool_] | None = None,
) -> float:
    """Total variation of ``exposure`` restored with ``kernel`` (Wiener in linear exposure), in
    grey values, outside the ``avoid`` pixels."""
    w = wiener_exposure(exposure, kernel, balance, power)
    return total_variation(np.clip(from_exposure(w, log_range), 0.0, 1.0), avoid=avoid)


def choose_orientation(
    exposure: F64,
    kernel: F64,
    balance: float,
    log_range: float,
    power: float = 1.0,
    avoid: NDArray[np.bool_] | None = None,
) -> F64:
    """``kernel`` or its point reflection, whichever restores ``exposure`` (Wiener in linear
    exposure) to grey values with the lower total variation (outside the ``avoid`` pixels: a
    sharp shadow's ringing is not the anatomy's)."""
    mirrored = np.ascontiguousarray(kernel[::-1, ::-1])
    tv_kept = restored_variation(exposure, kernel, balance, log_range, power, avoid)
    tv_mirrored = restored_variation(exposure, mirrored, balance, log_range, power, avoid)
    return kernel if tv_kept <= tv_mirrored else mirrored


def magnitude_from_session(session: Any) -> MagnitudeEstimator:
    """The estimator of an ONNX Runtime session of a ``kernel_magnitude`` model (input
    [N, 1, 64, 64] spectrum, first output [N, 1, 64, 64] centred magnitude)."""
    name = session.get_inputs()[0].name

    def estimate(spectrum: F32) -> NDArray[np.floating]:
        x = np.asarray(spectrum, dtype=np.float32)[None, None]
        out: F64 = np.asarray(session.run(None, {name: x})[0], dtype=np.float64)[0, 0]
        return out

    return estimate


def load_magnitude_model(folder: Path) -> MagnitudeEstimator:
    """The bundled (or any) ``kernel_magnitude`` model folder run on the CPU by ONNX Runtime
    (training and evaluation; the node loads it through ``node.pipeline.infer``)."""
    import onnxruntime as ort

    from models.manifest import load_manifest

    manifest, path = load_manifest(folder)
    if manifest.task != "kernel_magnitude":
        raise ValueError(f"{manifest.display_name} is a {manifest.task} model")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return magnitude_from_session(
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    )


def reduction_factor(length_px: float, pixel_spacing_mm: float) -> int:
    """Block size that brings a frame to about the network's 0.6 mm and the motion to ≤ 14 px."""
    if pixel_spacing_mm <= 0 or not math.isfinite(length_px):
        raise ValueError("pixel spacing must be positive and the length finite")
    f = max(1, round(NET_SPACING_MM / pixel_spacing_mm))
    return max(f, math.ceil(length_px / MAX_NET_LENGTH_PX))


def detector_reduction_factor(length_px: float, pixel_spacing_mm: float) -> int:
    """Block size for the native-pixel network: 1 (the frame's own pixels) unless the motion is
    longer than 32 px, then the least that brings it to ≤ 32 px."""
    if pixel_spacing_mm <= 0 or not math.isfinite(length_px):
        raise ValueError("pixel spacing must be positive and the length finite")
    return max(1, math.ceil(length_px / DETECTOR_MAX_LENGTH_PX))


def block_mean(a: NDArray[np.floating], f: int) -> F64:
    """Mean over ``f``×``f`` blocks (the last partial row/column of blocks dropped)."""
    x = np.asarray(a, dtype=np.float64)
    if f <= 1:
        return x
    h, w = (x.shape[0] // f) * f, (x.shape[1] // f) * f
    out: F64 = x[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    return out


def block_any(mask: NDArray[np.bool_], f: int) -> NDArray[np.bool_]:
    """True for each ``f``×``f`` block (as :func:`block_mean` takes them) holding any True."""
    m = np.asarray(mask, dtype=bool)
    if f <= 1:
        return m
    h, w = (m.shape[0] // f) * f, (m.shape[1] // f) * f
    out = np.asarray(m[:h, :w].reshape(h // f, f, w // f, f).any(axis=(1, 3)), dtype=bool)
    return out


def upscale_kernel(kernel: F64, f: int) -> F64:
    """A kernel found on ``f``-times coarser pixels, on the frame's own: enlarged (linear
    interpolation), then thinned to its one-pixel skeleton (a motion path is a curve, not a band
    ``f`` px wide: the band would make the deconvolution over-sharpen), weighted by the enlarged
    values; centred, sum 1."""
    if f <= 1:
        return centre_on_centroid(kernel)
    big = np.clip(zoom(np.pad(kernel, 1), f, order=1), 0.0, None)
    support = big > 0.2 * float(big.max())
    thin = skeletonize(support)
    path = big * thin if thin.any() and float((big * thin).sum()) > 0 else big
    return centre_on_centroid(path)


@dataclass(frozen=True)
class KernelShape:
    """What the shape step found for one frame."""

    kernel: F64  # the kernel to deconvolve with, on the frame's pixels
    replaced: bool  # True: the retrieved kernel; False: the straight estimate
    distance: float  # predicted magnitude's distance from the straight kernel's (nan: not run)
    threshold: float  # τ it was compared with (nan: not run)
    factor: int  # block size of the network's scale
    reason: str  # why the straight kernel was kept, or "" when replaced
    # the retrieved kernel's relative magnitude error against the learned magnitude (nan: none
    # retrieved); the straight kernel's is ``distance``
    fit: float = float("nan")

    @property
    def checked(self) -> bool:
        """Whether the learned magnitude was read for this frame: its kernel is then either the
        straight estimate confirmed or one retrieved from the magnitude."""
        return math.isfinite(self.distance)


def shape_kernel(
    exposure: NDArray[np.floating],
    length_px: float,
    angle_deg: float,
    pixel_spacing_mm: float,
    magnitude: MagnitudeEstimator,
    balance_for: Callable[[F64], float],
    log_range: float,
    power: float = 1.0,
    *,
    finest_spacing_mm: float | None = FINEST_SPACING_MM,
    smallest_frame_px: int = SMALLEST_FRAME_PX,
    arbitrate: bool = False,
    thresholds: tuple[float, float] | None = None,
    noise_where_read: bool = False,
    detector_magnitude: MagnitudeEstimator | None = None,
    detector_thresholds: tuple[float, float] | None = None,
    detector_least_px: float = 0.0,
    straight: F64 | None = None,
    avoid: NDArray[np.bool_] | None = None,
) -> KernelShape:
    """The kernel of a frame whose straight estimate is ``length_px`` at ``angle_deg``: the
    straight one, or the one retrieved from the learned magnitude where the validated rule
    (:func:`shape_threshold`) says the motion was not straight.

    ``balance_for`` gives the Wiener regulariser for an exposure image (the orientation is
    chosen by restoring the frame at the network's scale with it). Frames with pixels finer than
    ``finest_spacing_mm`` keep the straight kernel (None: every frame, block-averaged to the
    network's scale; an experiment that lost at detector scale), and so do frames whose shorter
    side there is under ``smallest_frame_px`` (never under two of the spectrum's patches, 128 px).
    ``arbitrate`` (an experiment): the retrieved kernel is used only where its restoration also
    has a lower total variation than the straight kernel's. ``thresholds``: τ for a quiet and a
    noisy frame instead of the validated rule's (:func:`shape_threshold`). ``noise_where_read``:
    the frame's noise measured against the exposure where it is read
    (:func:`models.noise_level.quanta_per_pixel`). ``detector_magnitude``: the native-pixel
    network for frames with pixels finer than ``finest_spacing_mm`` (at their own pixels, or
    block-averaged by :func:`detector_reduction_factor` for long motion); without it they keep
    the straight kernel; there τ is ``detector_thresholds`` (quiet, noisy; None:
    :data:`DETECTOR_THRESHOLDS`), and motion estimated shorter than ``detector_least_px``
    keeps the straight kernel unread. ``straight``: the straight kernel as the estimate draws
    it (None: :func:`models.blur.linear_kernel`, nearest pixels), kept where the step keeps it;
    the network's magnitude is compared with the nearest drawing either way. ``avoid``: pixels of
    the frame (shadows that need not have moved with the patient) the network's spectrum keeps
    clear of and the orientation's total variation leaves out (None: the windows nearest the
    centre and the whole frame, whatever they hold).
    """
    if straight is None:
        straight = linear_kernel(length_px, angle_deg)
    f = reduction_factor(length_px, pixel_spacing_mm)
    nan = float("nan")
    if finest_spacing_mm is not None and pixel_spacing_mm < finest_spacing_mm:
        if detector_magnitude is None:
            return KernelShape(straight, False, nan, nan, f, "pixels finer than the shape step's")
        if length_px < detector_least_px:
            return KernelShape(straight, False, nan, nan, 1, "motion too short for a shape")
        magnitude = detector_magnitude
        f = detector_reduction_factor(length_px, pixel_spacing_mm)
        thresholds = detector_thresholds or DETECTOR_THRESHOLDS
    small = block_mean(exposure, f)
    length = length_px / f
    if length < MIN_NET_LENGTH_PX:
        return KernelShape(straight, False, nan, nan, f, "motion too short for a shape")
    if min(small.shape) < max(smallest_frame_px, 2 * GRID):
        return KernelShape(straight, False, nan, nan, f, "frame too small for the spectrum")
    try:
        quanta: float | None = quanta_per_pixel(small, where_read=noise_where_read)
    except ValueError:
        quanta = None
    clear = None if avoid is None else block_any(avoid, f)
    mag = np.fft.ifftshift(np.asarray(magnitude(spectrum_input(small, clear)), dtype=np.float64))
    if mag.shape != (GRID, GRID) or not np.all(np.isfinite(mag)) or float(mag.max()) <= 0:
        return KernelShape(straight, False, nan, nan, f, "no usable magnitude")
    distance = magnitude_distance(mag, linear_kernel(length, angle_deg))
    tau = shape_threshold(quanta, thresholds)
    if not distance > tau:
        return KernelShape(straight, False, distance, tau, f, "magnitude fits straight motion")
    found, fit = retrieve_kernel(mag, length / 2 + 2, np.random.default_rng(RETRIEVAL_SEED))
    lam = balance_for(small)
    oriented = choose_orientation(small, found, lam, log_range, power, clear)
    if arbitrate:
        line = linear_kernel(length, angle_deg)
        if restored_variation(small, line, lam, log_range, power) <= restored_variation(
            small, oriented, lam, log_range, power
        ):
            return KernelShape(
                straight, False, distance, tau, f, "straight kernel restores smoother", fit
            )
    return KernelShape(upscale_kernel(oriented, f), True, distance, tau, f, "", fit)
