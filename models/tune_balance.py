"""The Wiener regulariser against the noise, on **training** patients only (never the test split).

Two commands (docs/models.md, "The regulariser follows the noise"):

- ``grid``: the first ``--images`` training images of ``cxr-radiographs-mhh``; for every case the
  node's blind estimate and gate, then the Wiener filter alone at fixed λ on a grid, and the noise
  the image shows (:func:`models.noise_level.quanta_per_pixel`). What the noise-following λ was
  fitted on.
- ``rl``: the same images, collimated scenes only (where the node falls back to Richardson–Lucy),
  the fallback's gain after 5 … 80 steps.
- ``rl-validate``: the validation images' collimated scenes, the node's ``deconvolve`` with the
  fallback's fixed step count and with the noise-following one.
- ``floor-validate``: the validation images, open and collimated, the noise-following λ without
  and with the floor for a doubtful kernel (:func:`models.deblur.mismatch_floor`), as
  ``gain_fixed`` / ``gain_noise``.
- ``snr-validate``: the validation images, open and collimated, λ by the noise alone and by the
  noise-to-signal ratio (``balance_signal_aware``), as ``gain_fixed`` / ``gain_noise``.
- ``shape-validate``: the validation images, open and collimated, at 0.6 mm (the step does not
  run on finer pixels), the straight
  kernel (``gain_fixed``) against the kernel shape step with the bundled learned magnitude
  (``gain_noise``; :func:`models.kernel_shape.shape_kernel`); ``shape-fit`` the same on the
  fitting images.
- ``shape-filter-fit`` / ``shape-filter-validate``: the fitting / validation images as in
  ``shape-fit``; where the shape step replaced the kernel, every candidate of
  :data:`SHAPE_FILTERS` (how a retrieved kernel is inverted) on that same kernel, as
  ``gain_<candidate>``; ``filter-summary`` compares them with the as-built filter.
- ``shrink-fit`` / ``shrink-validate``: the fitting / validation images, the ``validate``
  design; for every flagged case the node's :func:`models.deblur.deconvolve` under every candidate
  of :data:`SHRINK_FILTERS` (a smaller λ, wavelet shrinkage of the noise after the Wiener filter)
  on the same kernel, as ``gain_<candidate>``; ``shrink-summary`` compares them with the node as
  built.
- ``shape-balance-fit`` / ``shape-balance-validate``: the seventh round; the ``shape-validate``
  design, the node as built (``gain_fixed``) against the same with λ times
  :data:`models.deblur.DEFAULT_CHECKED_BALANCE_FACTOR` wherever the shape step read the kernel's
  magnitude (``gain_noise``); ``shrink-summary --rows … --built fixed`` compares them.
- ``shape-net-fit`` / ``shape-net-validate``: the eleventh round; the ``shape-validate`` design,
  the node as built (sharpray-blind-wiener 0.9.0) with the bundled magnitude network
  (``gain_fixed``) against the same with the network of ``--magnitude`` (``gain_noise``);
  ``shrink-summary --rows … --built fixed`` compares them. ``--tau`` sets τ for both (default
  the eleventh round's 0.25 / 0.4; the twenty-second round: 0.25 / 0.3, as built since 0.10.0);
  ``--built-tau`` gives the bundled network its own (the twenty-seventh round).
- ``shape-mean-validate``: the twenty-eighth round; the ``shape-net-validate`` design, the node
  as built (``gain_fixed``) against the pixel-wise mean of its correction and the one with the
  network of ``--magnitude`` at ``--tau`` (``gain_noise``; that correction alone:
  ``gain_candidate``); ``shrink-summary --built fixed`` compares them.
- ``shape-third-validate``: the twenty-ninth round; the ``shape-net-validate`` design, the node
  as built since 0.14.0 (the mean of the bundled network's correction at ``--built-tau`` and the
  second network's, :data:`SECOND_MAGNITUDE` at :data:`models.kernel_shape.SECOND_THRESHOLDS`;
  ``gain_fixed``) against those two and a third, the network of ``--magnitude`` at ``--tau``,
  combined pixel by pixel as ``--combine`` says (``gain_noise``); the third alone:
  ``gain_candidate``, the other combination: ``gain_other``; ``shrink-summary --built fixed``
  compares them.
- ``shape-rl-validate``: the twenty-ninth round; the ``shape-net-validate`` design, the node as
  built since 0.14.0 (``gain_fixed``, as in ``shape-third-validate``) against the same where
  each reading's retrieved kernel that takes the Richardson–Lucy fallback takes as many steps
  as the measured noise gives (``shape_rl_follows_noise``, ``gain_noise``); ``fell_back``: the
  readings whose retrieved kernel took it.
- ``straight-rl-validate``: the thirtieth round; the same design, the node as built since 0.16.0
  (``gain_fixed``) against the same where every kernel that takes the fallback, the straight one
  too, takes as many steps as the measured noise gives at pixels of at least
  :data:`STRAIGHT_RL_FROM_MM` (``rl_fallback_follows_noise_from_mm``, ``gain_noise``);
  ``fell_back``: the readings whose straight kernel took it.
- ``accelerated-validate``: the thirty-first round (stopped on its fitting look, not run); the
  same design, the node as built since 0.18.0 (``gain_fixed``) against the same where each
  reading whose fallback's steps reach the cap takes ``--accelerated-steps`` accelerated steps
  instead (``MotionPolicy.rl_fallback_quiet_accelerated``, ``gain_noise``).
- ``cap-validate``: the thirty-second round; the same design, the node as built since 0.18.0
  (``gain_fixed``) against the same with the fallback's cap by the frame's size
  (``MotionPolicy.rl_fallback_budget_max_iterations`` =
  :data:`models.deblur.RL_BUDGET_CANDIDATE`, ``gain_noise``); ``changed``: how many readings
  took more steps.
- ``shape-tau-fit`` / ``shape-tau-validate``: the twelfth round; the ``shape-validate`` design,
  the node as built with the bundled magnitude network; fit: its kernel never replaced
  (``gain_fixed``) and always replaced (``gain_noise``), ``tau-summary`` then gives every
  candidate τ pair (:data:`TAU_QUIET` × :data:`TAU_NOISY`); validate: as built against the pair
  of ``--tau QUIET NOISY``, compared by ``shrink-summary --built fixed``.
- ``where-read-validate``: the thirteenth round; the validation images as *whole* frames (640 px
  at 0.6 mm/px, 6 / 10 px of motion, and ×3 upsampled with the faint texture at 0.2 mm/px, 1 / 2
  / 4 mm = 5 / 10 / 20 px, the size of a detector's frame), the node as built
  (sharpray-blind-wiener 0.10.0, ``gain_fixed``) against the same with the noise measured
  against the exposure where it is read (``noise_mean_where_read``, ``gain_noise``); each row
  has both noise measures. ``shrink-summary --built fixed`` compares them, ``noise-summary``
  gives the measures' ratio to the truth.
- ``length-fit`` / ``length-validate``: the fourteenth and fifteenth rounds; the
  ``where-read-validate`` design on the fitting (``--max-images``) / validation images; fit: the
  node as built (``gain_built``) and, on the same kernel, the measure where read with every λ
  length exponent of :data:`LENGTH_EXPONENTS` (``gain_w<γ>``; ``shrink-summary --built built``
  chooses); validate: as built against ``--length-exponent`` (``shrink-summary --built fixed``).
- ``ringing-fit`` / ``ringing-validate``: the nineteenth round; the ``validate`` design (open and
  collimated scenes) on the fitting / validation images, the node as built (0.10.0,
  ``gain_fixed``) against the same with the ringing judged at the reference λ
  (``ringing_reference_balance``, ``gain_noise``); ``shrink-summary --built fixed`` compares them.
  ``ringing-whole-fit`` / ``ringing-whole-validate``: the same on the ``where-read-validate``
  design (whole frames; ``--max-images`` the first images only).
- ``whole-grid``: the fitting images as whole frames (the thirteenth round's scenes), the
  ``grid`` design (the node's estimate and gate, the Wiener filter alone at every λ of
  :data:`GRID`); ``law-summary`` then scores every λ law of :func:`balance_law` on these rows
  (gains interpolated between the grid's λ) against the node's as built.
- ``validate``: training images of patients *not* among the grid's, open and collimated scenes;
  the node's whole :func:`models.deblur.deconvolve` (Richardson–Lucy fallback included) with the
  fixed λ and with the noise-following one.

Cases: 384² crops at 0.6 mm/px (``--crop`` another side; 6 / 10 px of motion) and ×3 upsampled 768² crops with a faint
detector texture at 0.2 mm/px (10 / 20 px), straight and curved, noise none / 10⁵ / 3·10⁴ / 10⁴ /
3·10³ quanta per pixel.

Usage: ``python -m models.tune_balance grid|validate --data ../shared/data/cxr-radiographs-mhh
--out FILE.json [--part I/K]``, then ``python -m models.tune_balance summary --rows FILE.json…``
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import zoom
from skimage.metrics import peak_signal_noise_ratio

from models.blur import (
    NoiseSpec,
    from_exposure,
    motion_kernel,
    simulate_motion_blur,
    to_exposure,
)
from models.deblur import (
    DEFAULT_CHECKED_BALANCE_FACTOR,
    RL_BUDGET_CANDIDATE,
    Deconvolution,
    MotionAssessment,
    MotionPolicy,
    assess_motion,
    deconvolve,
)
from models.deblur_data import load_gray, split_by_patient
from models.deconvolve import (
    DEFAULT_BALANCE,
    pad_for_fft,
    padded_as,
    richardson_lucy_steps,
    wiener_exposure,
)
from models.kernel_shape import SECOND_THRESHOLDS, load_magnitude_model
from models.noise_level import quanta_per_pixel, signal_power_across, white_noise_variance
from models.tune_deconvolution import centre_crop, collimate

F32 = NDArray[np.float32]

GRID = (0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
#: Richardson-Lucy step counts of the ``rl`` command.
RL_STEPS = (5, 10, 20, 40, 80)
NOISE: tuple[float | None, ...] = (None, 1e5, 3e4, 1e4, 3e3)
LENGTHS = {"0.6": (6.0, 10.0), "0.2": (10.0, 20.0)}
#: The fifth round's candidates for inverting a retrieved kernel (docs/models.md): label ->
#: (λ factor, Richardson-Lucy steps after the Wiener filter, Richardson-Lucy steps from a flat
#: start instead of it). ``c1_n0`` is the filter as built.
SHAPE_FILTERS: dict[str, tuple[float, int, int]] = {
    **{f"c{c:g}_n{n}": (c, n, 0) for c in (0.5, 0.7, 1.0, 1.4, 2.0) for n in (0, 3, 10)},
    "rl10": (1.0, 0, 10),
    "rl20": (1.0, 0, 20),
}
AS_BUILT_FILTER = "c1_n0"
#: The sixth round's candidates (docs/models.md, "Noise removal after the deconvolution"): label
#: -> (λ factor for every Wiener filter, wavelet shrinkage after it). ``f1_plain`` is as built.
SHRINK_FILTERS: dict[str, tuple[float, bool]] = {
    f"f{f:g}_{'shrink' if on else 'plain'}": (f, on)
    for f in (1.0, 0.7, 0.5, 0.35, 0.25)
    for on in (False, True)
}
AS_BUILT_SHRINK = "f1_plain"
#: Images the regulariser was fitted on (the first of the training list) and validation images.
#: The learned kernel magnitude of the shape step (``shape-validate``).
BUNDLED_MAGNITUDE = Path(__file__).resolve().parent / "weights" / "kernel-magnitude"
#: The second network the node averages with the bundled one since 0.14.0.
SECOND_MAGNITUDE = BUNDLED_MAGNITUDE.with_name("kernel-magnitude-second")
#: The fallback's settings as the node was built before the twenty-ninth round (0.14.0): ten
#: steps for every kernel at every pixel size.
BEFORE_RL_ROUNDS: dict[str, Any] = {
    "shape_rl_follows_noise": False,
    "rl_fallback_follows_noise_from_mm": None,
    "rl_fallback_budget_max_iterations": None,
}
#: ... and before the thirtieth (0.16.0): ten steps for the straight kernel.
BEFORE_STRAIGHT_RL: dict[str, Any] = {
    "rl_fallback_follows_noise_from_mm": None,
    "rl_fallback_budget_max_iterations": None,
}
#: ... and before the thirty-second (0.18.0): the cap of 40 on every frame.
BEFORE_BUDGET: dict[str, Any] = {"rl_fallback_budget_max_iterations": None}
#: The thirtieth round's candidate: the fallback's steps follow the noise for every kernel at
#: pixels of at least this size (mm; the shape step's own finest spacing).
STRAIGHT_RL_FROM_MM = 0.4
#: How ``shape-third-validate`` combines three corrections, pixel by pixel.
COMBINE: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "mean": lambda stack: np.mean(stack, axis=0),
    "median": lambda stack: np.median(stack, axis=0),
}
#: The commands whose node as built is the mean of two readings (0.14.0 on).
MEAN_OF_TWO_COMMANDS = (
    "shape-third-validate",
    "shape-rl-validate",
    "straight-rl-validate",
    "accelerated-validate",
    "cap-validate",
)
FIT_IMAGES = 20
#: Side of the centred crop of the 0.6 mm scenes.
CROP_PX = 384
VALIDATION_IMAGES = 24


#: The twelfth round's candidates: τ for a quiet frame and for a noisy one (0.25 / 0.4 was
#: the node as built then; 0.25 / 0.3, chosen and validated, is its default since).
TAU_QUIET = (0.15, 0.2, 0.25)
TAU_NOISY = (0.25, 0.3, 0.35, 0.4)
AS_BUILT_TAU = (0.25, 0.4)


def image_lists(data: Path) -> tuple[list[str], list[str]]:
    """(fitting images, validation images): validation from patients the fit never saw."""
    train = split_by_patient(data, 0.2, 0).train
    with (data / "metadata.csv").open(newline="", encoding="utf-8") as f:
        patient = {row["path"]: row["patient_id"] for row in csv.DictReader(f)}
    fit = train[:FIT_IMAGES]
    seen = {patient[n] for n in fit}
    rest = [n for n in train if patient[n] not in seen]
    return fit, rest[::2][:VALIDATION_IMAGES]


def scenes(
    base: F32, rng: np.random.Generator, collimated: bool, crop: int = CROP_PX
) -> Iterator[tuple[str, float, F32]]:
    """(scale, pixel spacing mm, sharp image) of one 640 px radiograph; at 0.6 mm its centred
    ``crop``² square."""
    up = centre_crop(np.clip(zoom(base, 3.0, order=3), 0.0, 1.0).astype(np.float32), 768)
    detector = np.clip(up + rng.normal(0.0, 0.004, up.shape), 0.0, 1.0).astype(np.float32)
    for scale, spacing, sharp in (("0.6", 0.6, centre_crop(base, crop)), ("0.2", 0.2, detector)):
        yield f"{scale}/open", spacing, sharp
        if collimated:
            yield f"{scale}/collimated", spacing, collimate(sharp)


#: The fourteenth round's candidates: the exponent of λ's length factor, with the noise measured
#: where it is read (``w0`` that measure alone; the node as built, 0.10.0, is ``built``).
LENGTH_EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)
LENGTH_FILTERS = {f"w{g:g}": g for g in LENGTH_EXPONENTS}
#: The thirteenth round's motion at 0.2 mm/px on whole frames (px: 1 / 2 / 4 mm).
WHOLE_LENGTHS_02 = (5.0, 10.0, 20.0)


def scene_lengths(scene: str) -> tuple[float, ...]:
    """The motion lengths (px) of a scene: :data:`LENGTHS` by its scale, and
    :data:`WHOLE_LENGTHS_02` for the thirteenth round's whole frames at 0.2 mm/px."""
    return WHOLE_LENGTHS_02 if scene == "0.2/whole" else LENGTHS[scene.split("/")[0]]


def whole_scenes(base: F32, rng: np.random.Generator) -> Iterator[tuple[str, float, F32]]:
    """The thirteenth round's scenes: the whole 640 px frame at 0.6 mm/px and the whole frame ×3
    upsampled with :func:`scenes`' faint texture at 0.2 mm/px (as large as a detector's)."""
    up = np.clip(zoom(base, 3.0, order=3), 0.0, 1.0)
    detector = np.clip(up + rng.normal(0.0, 0.004, up.shape), 0.0, 1.0).astype(np.float32)
    yield "0.6/whole", 0.6, base
    yield "0.2/whole", 0.2, detector


@dataclasses.dataclass(frozen=True)
class WholeCase:
    """One case of the thirteenth round's design: a whole frame, its motion and its blur."""

    scene: str
    spacing_mm: float
    sharp: F32
    kind: str
    px: float
    quanta: float | None
    blurred: F32


def whole_frame_cases(base: F32, rng: np.random.Generator) -> Iterator[WholeCase]:
    """Every case of the thirteenth round's design for one 640 px radiograph, in the order (and
    with the draws of ``rng``) its commands make them: :func:`whole_scenes`, straight and curved
    motion (6 / 10 px at 0.6 mm, :data:`WHOLE_LENGTHS_02` at 0.2 mm), every noise of
    :data:`NOISE`, blurred in linear exposure."""
    for scene, spacing, sharp in whole_scenes(base, rng):
        for kind in ("straight", "curved"):
            for px in scene_lengths(scene):
                k = motion_kernel(kind, px, rng)
                for q in NOISE:
                    b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                    yield WholeCase(scene, spacing, sharp, kind, px, q, b)


def shape_net_policies(
    thresholds: tuple[float, float] | None, built: tuple[float, float] | None
) -> dict[str, MotionPolicy]:
    """``shape-net-*``'s two sides: the node as built with the bundled network (``fixed``) at τ
    ``built``, the candidate network (``noise``) at ``thresholds``; without ``built`` both at
    ``thresholds`` (as the eleventh to twenty-sixth rounds ran; the twenty-seventh gives each
    its own), without either at :data:`AS_BUILT_TAU`."""
    candidate = MotionPolicy(shape_thresholds=thresholds or AS_BUILT_TAU)
    return {
        "fixed": MotionPolicy(shape_thresholds=built or thresholds or AS_BUILT_TAU),
        "noise": candidate,
    }


def _psnr(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def run(
    data: Path,
    command: str,
    part: tuple[int, int],
    out: Path,
    magnitude_folder: Path = BUNDLED_MAGNITUDE,
    arbitrate: bool = False,
    crop: int = CROP_PX,
    smallest_frame_px: int | None = None,
    blur_log_range: float | None = 3.0,
    thresholds: tuple[float, float] | None = None,
    length_exponent: float = 0.0,
    max_images: int | None = None,
    built_thresholds: tuple[float, float] | None = None,
    combine: str = "mean",
    accelerated_steps: int = 20,
) -> list[dict[str, Any]]:
    built_given = built_thresholds
    built_thresholds = built_thresholds or AS_BUILT_TAU
    fit, validation = image_lists(data)
    names = (validation if command.endswith("validate") else fit)[:max_images][part[0] :: part[1]]
    # every round here, the seventh's included, compared candidates with sharpray-blind-wiener
    # 0.7.0 (the λ not yet halved where the kernel was checked): its commands keep that base
    # and τ 0.25 / 0.4 (the twelfth round's as built; exact figures also need the network of
    # their time, models/checkpoints/kernel-magnitude-net-2.pt, as --magnitude)
    policy = MotionPolicy(
        checked_balance_factor=1.0,
        estimate_noise_subtraction="never",
        shape_thresholds=AS_BUILT_TAU,
    )
    compared = {
        "fixed": dataclasses.replace(policy, balance_follows_noise=False),
        "noise": policy,
    }
    if command == "floor-validate":
        compared = {
            "fixed": dataclasses.replace(policy, balance_mismatch_floor=None),
            "noise": dataclasses.replace(policy, balance_mismatch_floor=0.01),
        }
    if command == "snr-validate":
        compared = {
            "fixed": policy,
            "noise": dataclasses.replace(policy, balance_signal_aware=True),
        }
    magnitude = None
    candidate_magnitude = None
    second_magnitude = None
    if command in MEAN_OF_TWO_COMMANDS:
        second_magnitude = load_magnitude_model(SECOND_MAGNITUDE)
    if command in (
        "shape-net-fit",
        "shape-net-validate",
        "shape-mean-validate",
        *MEAN_OF_TWO_COMMANDS,
    ):
        # the eleventh round: the node as built (sharpray-blind-wiener 0.9.0) with the bundled
        # magnitude network against the same with another one (``--magnitude``); the
        # twenty-second round with τ as built since 0.10.0 (``--tau 0.25 0.3``)
        compared = shape_net_policies(thresholds, built_given)
        policy = compared["noise"]
        magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)
        candidate_magnitude = load_magnitude_model(magnitude_folder)
    if command == "shape-tau-fit":
        # the twelfth round's fitting rows: the node as built with the bundled (or --magnitude)
        # network, its kernel never replaced (``fixed``: the straight kernel, λ halved as where
        # the magnitude was read) and always replaced (``noise``); every τ follows from these
        policy = MotionPolicy(shape_thresholds=AS_BUILT_TAU)
        compared = {
            "fixed": dataclasses.replace(policy, shape_thresholds=(math.inf, math.inf)),
            "noise": dataclasses.replace(policy, shape_thresholds=(0.0, 0.0)),
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command == "shape-tau-validate":
        # the twelfth round against τ 0.25 / 0.4; the twenty-third against 0.25 / 0.3
        # (``--built-tau``)
        policy = MotionPolicy(shape_thresholds=built_thresholds)
        compared = {
            "fixed": policy,
            "noise": dataclasses.replace(policy, shape_thresholds=thresholds),
        }
        magnitude = load_magnitude_model(magnitude_folder)
    filters: dict[str, MotionPolicy] = {}
    if command.startswith("shape-filter"):  # every candidate but the as-built filter
        filters = {
            label: dataclasses.replace(
                policy, shape_balance_factor=c, shape_rl_iterations=n, shape_rl_only=flat
            )
            for label, (c, n, flat) in SHAPE_FILTERS.items()
            if label != AS_BUILT_FILTER
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command.startswith("shrink-"):  # every candidate but the node as built
        filters = {
            label: dataclasses.replace(policy, wiener_balance_factor=f, shrinkage=on)
            for label, (f, on) in SHRINK_FILTERS.items()
            if label != AS_BUILT_SHRINK
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command in ("shape-balance-fit", "shape-balance-validate"):  # seventh round, both shaped
        compared = {
            "fixed": policy,
            # the candidate, chosen on the sixth round's fitting rows, is 0.8.0's default since
            "noise": dataclasses.replace(
                policy, checked_balance_factor=DEFAULT_CHECKED_BALANCE_FACTOR
            ),
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command in ("shape-validate", "shape-fit"):  # the straight kernel against the shape step
        compared = {
            "fixed": policy,
            "noise": dataclasses.replace(
                policy,
                shape_arbitrate=arbitrate,
                shape_smallest_frame_px=smallest_frame_px or policy.shape_smallest_frame_px,
            ),
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command == "where-read-validate":
        # the thirteenth round: the node as built (0.10.0) against the same with the noise
        # measured against the exposure where it is read
        policy = MotionPolicy()
        compared = {
            "fixed": policy,
            "noise": dataclasses.replace(policy, noise_mean_where_read=True),
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command.startswith("ringing-"):
        # the nineteenth round: the node as built (0.10.0) against the same with the ringing
        # judged at the reference λ where the noise-following one is smaller
        policy = MotionPolicy()
        compared = {
            "fixed": policy,
            "noise": dataclasses.replace(policy, ringing_reference_balance=DEFAULT_BALANCE),
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command == "whole-grid":  # the node's estimate and gate as built (0.10.0)
        policy = MotionPolicy()
    if command == "length-fit":
        # the fourteenth round's fitting rows: the node as built (0.10.0) and every candidate
        # length exponent with the noise measured where it is read, on the same kernel
        policy = MotionPolicy()
        filters = {
            label: dataclasses.replace(
                policy, noise_mean_where_read=True, balance_length_exponent=g
            )
            for label, g in LENGTH_FILTERS.items()
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command == "length-validate":
        policy = MotionPolicy()
        compared = {
            "fixed": policy,
            "noise": dataclasses.replace(
                policy, noise_mean_where_read=True, balance_length_exponent=length_exponent
            ),
        }
        magnitude = load_magnitude_model(magnitude_folder)
    if command == "rl-validate":
        compared = {
            "fixed": dataclasses.replace(policy, rl_fallback_follows_noise=False),
            "noise": dataclasses.replace(policy, rl_fallback_follows_noise=True),
        }
    # the magnitude network each compared label's shape step reads (none: the straight kernel)
    magnitudes: dict[str, Any] = {"noise": magnitude} if magnitude is not None else {}
    if command.startswith(
        ("shape-balance", "shape-tau", "where-read", "length-validate", "ringing-")
    ):
        magnitudes["fixed"] = magnitude
    if candidate_magnitude is not None:
        magnitudes = {"fixed": magnitude, "noise": candidate_magnitude}
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for name in names:
        rng = np.random.default_rng(_seed(name, command))
        base = load_gray(data / name).astype(np.float32) / 255.0
        whole = command.startswith(("where-read", "length-", "whole-grid", "ringing-whole"))
        framed = whole_scenes(base, rng) if whole else scenes(base, rng, command != "grid", crop)
        for scene, spacing, sharp in framed:
            if command in ("rl", "rl-validate") and scene.endswith("/open"):
                continue
            # the shape step does not run on finer pixels (models.kernel_shape.FINEST_SPACING_MM)
            shape = command.startswith("shape-") or command in MEAN_OF_TWO_COMMANDS
            if shape and spacing < (policy.shape_finest_spacing_mm or 0):
                continue
            for kind in ("straight", "curved"):
                for px in scene_lengths(scene):
                    k = motion_kernel(kind, px, rng)
                    for q in NOISE:
                        b = simulate_motion_blur(
                            sharp, k, rng, log_range=blur_log_range, noise=NoiseSpec(q)
                        )
                        a = assess_motion(b, spacing, policy)
                        e = to_exposure(b.astype(np.float64), policy.log_range)
                        base_psnr = _psnr(sharp, b)
                        row: dict[str, Any] = {
                            "image": name,
                            "scene": scene,
                            "kind": kind,
                            "px": px,
                            "quanta": q,
                            "flagged": a.blurred,
                            "measured_quanta": quanta_per_pixel(e, where_read=False),
                            "measured_quanta_where_read": quanta_per_pixel(e, where_read=True),
                            "estimated_px": a.estimate.length_px,
                            "confidence": a.estimate.confidence,
                            "specificity": a.estimate.specificity,
                            "noise_variance": white_noise_variance(e),
                            "signal_across": signal_power_across(e, a.estimate.angle_deg),
                        }
                        if a.blurred and command in ("grid", "whole-grid"):
                            psf = a.estimate.kernel()
                            for lam in GRID:
                                w = wiener_exposure(e, psf, lam, policy.power)
                                o = np.clip(from_exposure(w, policy.log_range), 0.0, 1.0)
                                row[f"gain_{lam}"] = _psnr(sharp, o) - base_psnr
                        elif a.blurred and command == "rl":
                            row.update(rl_gains(sharp, b, a.estimate.kernel(), policy.log_range))
                        elif a.blurred and filters:  # a round's candidates on one kernel
                            # the fifth round's act on replaced kernels only, the sixth's on all
                            shrinking = command.startswith(("shrink-", "length-"))
                            built = AS_BUILT_FILTER
                            if shrinking:
                                built = "built" if whole else AS_BUILT_SHRINK
                            d = deconvolve(b, a, policy, magnitude=magnitude)
                            row["shape_replaced"] = d.shape is not None and d.shape.replaced
                            row[f"gain_{built}"] = _psnr(sharp, d.image) - base_psnr
                            row[f"method_{built}"] = d.method
                            if shrinking or row["shape_replaced"]:
                                for label, pol in filters.items():
                                    c = deconvolve(b, a, pol, shape=d.shape)
                                    row[f"gain_{label}"] = _psnr(sharp, c.image) - base_psnr
                                    row[f"method_{label}"] = c.method
                        elif a.blurred and command == "shape-mean-validate":
                            # the twenty-eighth round: the node as built against the mean of
                            # its correction and the candidate network's
                            own = deconvolve(b, a, compared["fixed"], magnitude=magnitude)
                            other = deconvolve(b, a, policy, magnitude=candidate_magnitude)
                            mean = (own.image.astype(np.float64) + other.image) / 2
                            row["gain_fixed"] = _psnr(sharp, own.image) - base_psnr
                            row["gain_candidate"] = _psnr(sharp, other.image) - base_psnr
                            row["gain_noise"] = _psnr(sharp, mean) - base_psnr
                        elif a.blurred and command in ("shape-rl-validate", "straight-rl-validate"):
                            # the twenty-ninth / thirtieth rounds: the node as built (the mean of
                            # two: 0.14.0 / 0.16.0) against the same with the fallback's steps by
                            # the noise for retrieved kernels / for every kernel
                            straight = command == "straight-rl-validate"
                            before = BEFORE_STRAIGHT_RL if straight else BEFORE_RL_ROUNDS
                            first = MotionPolicy(**before)
                            second = dataclasses.replace(first, shape_thresholds=SECOND_THRESHOLDS)
                            row.update(
                                rl_mean_gains(
                                    sharp,
                                    b,
                                    a,
                                    (first, magnitude),
                                    (second, second_magnitude),
                                    straight=straight,
                                )
                            )
                        elif a.blurred and command in ("accelerated-validate", "cap-validate"):
                            # the thirty-first / thirty-second rounds: the node as built (0.18.0,
                            # the mean of two) against the same with accelerated steps where the
                            # fallback's reach the cap / with the cap by the frame's size
                            changes: dict[str, Any] = (
                                {"rl_fallback_quiet_accelerated": accelerated_steps}
                                if command == "accelerated-validate"
                                else {"rl_fallback_budget_max_iterations": RL_BUDGET_CANDIDATE}
                            )
                            row.update(
                                changed_mean_gains(
                                    sharp,
                                    b,
                                    a,
                                    (MotionPolicy(**BEFORE_BUDGET), magnitude),
                                    (
                                        MotionPolicy(
                                            shape_thresholds=SECOND_THRESHOLDS, **BEFORE_BUDGET
                                        ),
                                        second_magnitude,
                                    ),
                                    changes=changes,
                                )
                            )
                        elif a.blurred and second_magnitude is not None:
                            # the twenty-ninth round: the node as built (the mean of two) against
                            # three corrections combined
                            row.update(
                                third_gains(
                                    sharp,
                                    b,
                                    a,
                                    (compared["fixed"], magnitude),
                                    (
                                        MotionPolicy(shape_thresholds=SECOND_THRESHOLDS),
                                        second_magnitude,
                                    ),
                                    (policy, candidate_magnitude),
                                    combine=combine,
                                )
                            )
                        elif a.blurred:
                            for label, pol in compared.items():
                                d = deconvolve(b, a, pol, magnitude=magnitudes.get(label))
                                row[f"gain_{label}"] = _psnr(sharp, d.image) - base_psnr
                                row[f"method_{label}"] = d.method
                                row[f"balance_{label}"] = d.balance
                                row[f"rl_steps_{label}"] = d.rl_iterations
                                if d.shape is not None:
                                    row["shape_replaced"] = d.shape.replaced
                                    row["shape_distance"] = d.shape.distance
                                    row["shape_factor"] = d.shape.factor
                        rows.append(row)
        print(f"{name}: {len(rows)} cases, {time.time() - t0:.0f} s", flush=True)
        out.write_text(json.dumps(rows))
    return rows


def third_gains(
    sharp: F32,
    blurred: F32,
    assessment: MotionAssessment,
    *readings: tuple[MotionPolicy, Any],
    combine: str = "mean",
) -> dict[str, float]:
    """``shape-third-validate``'s gains over ``blurred``: the first two readings' (policy,
    magnitude) corrections averaged (``fixed``), the three combined as ``combine`` says
    (``noise``) and the other way (``other``), the third alone (``candidate``)."""
    images = [
        deconvolve(blurred, assessment, pol, magnitude=m).image.astype(np.float64)
        for pol, m in readings
    ]
    base = _psnr(sharp, blurred)
    stack = np.stack(images)
    other = next(c for c in COMBINE if c != combine)
    return {
        "gain_fixed": _psnr(sharp, (images[0] + images[1]) / 2) - base,
        "gain_noise": _psnr(sharp, COMBINE[combine](stack)) - base,
        "gain_other": _psnr(sharp, COMBINE[other](stack)) - base,
        "gain_candidate": _psnr(sharp, images[2]) - base,
    }


def rl_mean_gains(
    sharp: F32,
    blurred: F32,
    assessment: MotionAssessment,
    *readings: tuple[MotionPolicy, Any],
    straight: bool = False,
) -> dict[str, float | int]:
    """``shape-rl-validate``'s gains over ``blurred``: the mean of the readings' (policy,
    magnitude) corrections as given (``fixed``) and with ``shape_rl_follows_noise`` (``noise``;
    each reading's shape step found once), and how many readings' retrieved kernels fell back.
    ``straight`` (``straight-rl-validate``): ``noise`` with ``rl_fallback_follows_noise_from_mm``
    at :data:`STRAIGHT_RL_FROM_MM` instead, and the readings whose *straight* kernel fell back."""
    changes: dict[str, Any] = (
        {"rl_fallback_follows_noise_from_mm": STRAIGHT_RL_FROM_MM}
        if straight
        else {"shape_rl_follows_noise": True}
    )

    def fell_back(d: Deconvolution) -> bool:
        replaced = d.shape is not None and d.shape.replaced
        return d.method == "richardson-lucy" and replaced != straight

    out = changed_mean_gains(
        sharp, blurred, assessment, *readings, changes=changes, counted=fell_back
    )
    return {
        "gain_fixed": out["gain_fixed"],
        "gain_noise": out["gain_noise"],
        "fell_back": out["changed"],
    }


def changed_mean_gains(
    sharp: F32,
    blurred: F32,
    assessment: MotionAssessment,
    *readings: tuple[MotionPolicy, Any],
    changes: dict[str, Any],
    counted: Callable[[Deconvolution], bool] | None = None,
) -> dict[str, float | int]:
    """The gains over ``blurred`` of the mean of the readings' (policy, magnitude) corrections as
    given (``fixed``) and with the policies' ``changes`` (``noise``; each reading's shape step
    found once), and how many readings the change changed (``changed``; with ``counted``: how
    many readings as given it holds for)."""
    built, changed, count = [], [], 0
    for pol, m in readings:
        d = deconvolve(blurred, assessment, pol, magnitude=m)
        c = deconvolve(blurred, assessment, dataclasses.replace(pol, **changes), shape=d.shape)
        count += counted(d) if counted is not None else not np.array_equal(c.image, d.image)
        built.append(d.image.astype(np.float64))
        changed.append(c.image.astype(np.float64))
    base = _psnr(sharp, blurred)
    return {
        "gain_fixed": _psnr(sharp, np.mean(built, axis=0)) - base,
        "gain_noise": _psnr(sharp, np.mean(changed, axis=0)) - base,
        "changed": count,
    }


def rl_gains(
    sharp: F32,
    blurred: F32,
    psf: NDArray[np.float64],
    log_range: float,
    steps: tuple[int, ...] = RL_STEPS,
    start: F32 | None = None,
    prefix: str = "gain_rl",
) -> dict[str, float]:
    """PSNR gain of Richardson-Lucy after each of ``steps`` steps (``prefix`` + the count), from
    a flat start or from ``start`` (a grey image, e.g. a Wiener result)."""
    e = to_exposure(blurred.astype(np.float64), log_range)
    ep, pad = pad_for_fft(e, psf)
    if start is None:
        u = np.full_like(ep, float(ep.mean()))
    else:
        u = padded_as(to_exposure(start.astype(np.float64), log_range), ep.shape, pad)
    done, out = 0, {}
    base = _psnr(sharp, blurred)
    for n in steps:
        u = richardson_lucy_steps(ep, u, psf, n - done)
        done = n
        r = u[pad : pad + e.shape[0], pad : pad + e.shape[1]]
        o = np.clip(from_exposure(r, log_range), 0.0, 1.0)
        out[f"{prefix}{n}"] = _psnr(sharp, o) - base
    return out


def _seed(name: str, command: str) -> int:
    return int(hashlib.sha1(f"{command}/{name}".encode()).hexdigest()[:8], 16)


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean gains of the flagged cases per scene and noise level (validate rows)."""
    out: dict[str, dict[str, float]] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["flagged"] and "gain_fixed" in r:
            groups.setdefault(f"{r['scene']} {r['quanta']}", []).append(r)
    for key, rs in sorted(groups.items()):
        out[key] = {
            "cases": len(rs),
            "fixed": round(float(np.mean([r["gain_fixed"] for r in rs])), 3),
            "noise": round(float(np.mean([r["gain_noise"] for r in rs])), 3),
            "rl_fixed": sum(r["method_fixed"] == "richardson-lucy" for r in rs),
            "rl_noise": sum(r["method_noise"] == "richardson-lucy" for r in rs),
        }
    return out


def summarise_filters(
    rows: list[dict[str, Any]],
    tolerance: float = 0.15,
    candidates: tuple[str, ...] = tuple(SHAPE_FILTERS),
    built: str = AS_BUILT_FILTER,
    replaced_only: bool = True,
) -> dict[str, Any]:
    """A round's comparison of ``candidates`` with the filter as ``built``, over the cases whose
    kernel was replaced (fifth round) or all flagged cases (``replaced_only=False``, sixth): per
    candidate the mean gain, its difference from as built, the largest group fall (scene × kind
    × length × noise) and whether that fall is within ``tolerance``; the best admissible one."""
    cases = [
        r for r in rows if f"gain_{built}" in r and (r.get("shape_replaced") or not replaced_only)
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in cases:
        groups.setdefault(f"{r['scene']} {r['kind']} {r['px']:g} {r['quanta']}", []).append(r)
    out: dict[str, Any] = {"cases": len(cases), "candidates": {}}
    for label in candidates:
        if not cases:
            break
        falls = {
            key: float(np.mean([r[f"gain_{label}"] - r[f"gain_{built}"] for r in rs]))
            for key, rs in groups.items()
        }
        worst = min(falls, key=lambda k: falls[k])
        out["candidates"][label] = {
            "mean": round(float(np.mean([r[f"gain_{label}"] for r in cases])), 3),
            "delta": round(
                float(np.mean([r[f"gain_{label}"] - r[f"gain_{built}"] for r in cases])), 3
            ),
            "worst_group": worst,
            "worst_fall": round(falls[worst], 3),
            "admissible": falls[worst] >= -tolerance,
        }
    admissible = {k: v for k, v in out["candidates"].items() if v["admissible"]}
    if admissible:
        out["best"] = max(admissible, key=lambda k: admissible[k]["mean"])
    return out


def summarise_noise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per scene and noise level (with noise added): the median ratio of the measured noise
    (quanta per pixel) to the truth, the frame's mean exposure (as up to 0.10.0) and the
    exposure where the noise is read (the thirteenth round's)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["quanta"] is not None and "measured_quanta_where_read" in r:
            groups.setdefault(f"{r['scene']} {r['quanta']:g}", []).append(r)
    return {
        key: {
            "cases": len(rs),
            "frame_mean": round(float(np.median([r["measured_quanta"] for r in rs])) / q, 3),
            "where_read": round(
                float(np.median([r["measured_quanta_where_read"] for r in rs])) / q, 3
            ),
        }
        for key, rs in sorted(groups.items())
        for q in [float(rs[0]["quanta"])]
    }


#: The λ laws ``law-summary`` searches: coefficient at 10⁴ quanta/px and 10 px, noise exponent,
#: length exponent, and the noise measure (``frame``: the whole frame's mean, as built).
LAW_COEFFICIENTS = (0.05, 0.07, 0.1, 0.14, 0.2)
LAW_NOISE_EXPONENTS = (0.5, 0.6, 0.7, 0.8)
LAW_LENGTH_EXPONENTS = (0.0, 0.25, 0.5, 0.75)
AS_BUILT_LAW = (0.1, 0.7, 0.0, "frame")


def balance_law(
    row: dict[str, Any], law: tuple[float, float, float, str], bounds: tuple[float, float]
) -> float:
    """λ for one ``whole-grid`` row under ``law`` = (coefficient, noise exponent, length
    exponent, measure): coefficient · (10⁴ / N̂) ** noise exponent · (L̂ / 10 px) ** −length
    exponent, within ``bounds`` (as :func:`models.deblur.wiener_balance` would set it)."""
    c, p, g, measure = law
    n = row["measured_quanta" if measure == "frame" else "measured_quanta_where_read"]
    if not math.isfinite(n) or n <= 0:
        return bounds[0]
    lam = c * (1e4 / n) ** p * (max(row["estimated_px"], 1.0) / 10.0) ** -g
    return float(min(max(lam, bounds[0]), bounds[1]))


def gain_at(row: dict[str, Any], lam: float) -> float:
    """A ``grid`` row's PSNR gain at ``lam``, linear in log λ between the grid's values."""
    xs = np.log(np.array(GRID))
    ys = np.array([row[f"gain_{g}"] for g in GRID])
    return float(np.interp(math.log(lam), xs, ys))


def summarise_laws(
    rows: list[dict[str, Any]], tolerance: float = 0.05, top: int = 8
) -> dict[str, Any]:
    """Every λ law of the search grid scored on ``whole-grid`` rows by :func:`summarise_filters`
    (each case's gain at the law's λ, against the law as built): mean gain over the flagged
    cases, its difference from the law as built and the worst group's (scene × kind × length ×
    noise) fall; the ``top`` best admissible ones (worst fall within ``tolerance``)."""
    bounds = (0.01, 0.4)
    laws = {
        f"{c:g}/{p:g}/{g:g}/{measure}": (c, p, g, measure)
        for c in LAW_COEFFICIENTS
        for p in LAW_NOISE_EXPONENTS
        for g in LAW_LENGTH_EXPONENTS
        for measure in ("frame", "where_read")
    }
    built = "as built"
    cases = []
    for r in rows:
        if r["flagged"] and f"gain_{GRID[0]}" in r:
            case = {k: r[k] for k in ("scene", "kind", "px", "quanta")}
            case[f"gain_{built}"] = gain_at(r, balance_law(r, AS_BUILT_LAW, bounds))
            for label, law in laws.items():
                case[f"gain_{label}"] = gain_at(r, balance_law(r, law, bounds))
            cases.append(case)
    out = summarise_filters(
        cases, tolerance, candidates=tuple(laws), built=built, replaced_only=False
    )
    fields = ("mean", "delta", "worst_group", "worst_fall")
    scored = [
        ({"law": list(laws[label]), **{k: v[k] for k in fields}}, v["admissible"])
        for label, v in out["candidates"].items()
    ]
    admissible = [x for x, ok in scored if ok]
    every = [x for x, _ in scored]
    return {
        "cases": len(cases),
        "built_mean": round(float(np.mean([c[f"gain_{built}"] for c in cases])), 3)
        if cases
        else None,
        "best_admissible": sorted(admissible, key=lambda x: -x["mean"])[:top],
        "best_any": sorted(every, key=lambda x: -x["mean"])[:3],
    }


def summarise_thresholds(
    rows: list[dict[str, Any]],
    tolerance: float = 0.1,
    built_pair: tuple[float, float] = AS_BUILT_TAU,
) -> dict[str, Any]:
    """The twelfth (and twenty-third) round's choice from ``shape-tau-fit`` rows: for every
    (τ quiet, τ noisy) of the grid, each flagged case takes its always-replaced gain where its
    magnitude distance exceeds the τ of its measured noise
    (:func:`models.kernel_shape.shape_threshold`), else its never-replaced gain; then
    :func:`summarise_filters` against ``built_pair`` (mean, Δ, the largest group fall, admissible
    within ``tolerance``; the pair as built listed first, so that a tie keeps it), with the number
    of kernels each pair replaces."""
    from models.kernel_shape import shape_threshold

    def label(pair: tuple[float, float]) -> str:
        return f"{pair[0]:g}/{pair[1]:g}"

    pairs = [built_pair] + [(q, n) for q in TAU_QUIET for n in TAU_NOISY if (q, n) != built_pair]
    cases = []
    replaced = dict.fromkeys(map(label, pairs), 0)
    for r in rows:
        if not (r["flagged"] and "gain_fixed" in r and "shape_distance" in r):
            continue
        case = dict(r)
        for pair in pairs:
            swapped = r["shape_distance"] > shape_threshold(r["measured_quanta"], pair)
            case[f"gain_{label(pair)}"] = r["gain_noise"] if swapped else r["gain_fixed"]
            replaced[label(pair)] += swapped
        cases.append(case)
    built = label(built_pair)
    out = summarise_filters(
        cases,
        tolerance,
        candidates=tuple(map(label, pairs)),
        built=built,
        replaced_only=False,
    )
    result: dict[str, Any] = {
        "cases": out["cases"],
        "pairs": {k: {**v, "replaced": replaced[k]} for k, v in out["candidates"].items()},
    }
    if "best" in out:
        result["best"] = out["best"]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "command",
        choices=(
            "grid",
            "rl",
            "validate",
            "rl-validate",
            "floor-validate",
            "snr-validate",
            "shape-validate",
            "shape-fit",
            "shape-filter-fit",
            "shape-filter-validate",
            "shrink-fit",
            "shrink-validate",
            "shape-balance-fit",
            "shape-balance-validate",
            "shape-net-fit",
            "shape-net-validate",
            "shape-mean-validate",
            "shape-third-validate",
            "shape-rl-validate",
            "straight-rl-validate",
            "accelerated-validate",
            "cap-validate",
            "shape-tau-fit",
            "shape-tau-validate",
            "where-read-validate",
            "length-fit",
            "length-validate",
            "ringing-fit",
            "ringing-validate",
            "ringing-whole-fit",
            "ringing-whole-validate",
            "whole-grid",
            "law-summary",
            "noise-summary",
            "tau-summary",
            "summary",
            "filter-summary",
            "shrink-summary",
        ),
    )
    ap.add_argument("--data", type=Path, default=Path("../shared/data/cxr-radiographs-mhh"))
    ap.add_argument("--out", type=Path, help="grid / validate: where the rows go (JSON)")
    ap.add_argument("--part", default="0/1", help="I/K: every K-th image from the I-th")
    ap.add_argument("--rows", nargs="*", type=Path, default=[], help="summary: validate rows")
    ap.add_argument(
        "--built",
        choices=(AS_BUILT_SHRINK, "fixed", "built"),
        default=AS_BUILT_SHRINK,
        help="shrink-summary: the rows' as-built label (fixed: a two-way comparison's rows; "
        "built: length-fit's)",
    )
    ap.add_argument(
        "--arbitrate",
        action="store_true",
        help="shape-validate/-fit: the retrieved kernel only where it also restores smoother",
    )
    ap.add_argument(
        "--magnitude",
        type=Path,
        default=BUNDLED_MAGNITUDE,
        help="shape-validate: the kernel_magnitude model folder (default: the bundled one); "
        "shape-net-*: the candidate network's",
    )
    ap.add_argument(
        "--crop", type=int, default=CROP_PX, help="side of the 0.6 mm scenes' centred crop (px)"
    )
    ap.add_argument(
        "--smallest-frame",
        type=int,
        help="shape-validate/-fit: the step's smallest frame side (px; default: the policy's)",
    )
    ap.add_argument(
        "--blur-log-range",
        default="3",
        help="decades of the blur model's grey-to-exposure mapping; 'none': blur the grey values "
        "themselves, as an evaluator with another blur model might",
    )
    for flag, default, text in (
        (
            "--tau",
            None,
            "shape-tau-validate: the candidate τ for a quiet and a noisy frame; shape-net-*: τ for "
            "both networks (default 0.25 / 0.4, the eleventh round's)",
        ),
        (
            "--built-tau",
            None,
            "tau-summary / shape-tau-validate: τ as built, the pair compared against (default the "
            "twelfth round's 0.25 / 0.4; the twenty-third: 0.25 / 0.3); shape-net-*: τ of the "
            "bundled network (default: --tau's)",
        ),
    ):
        ap.add_argument(
            flag, nargs=2, type=float, metavar=("QUIET", "NOISY"), default=default, help=text
        )
    ap.add_argument(
        "--length-exponent",
        type=float,
        default=0.0,
        help="length-validate: the candidate exponent of λ's length factor",
    )
    ap.add_argument(
        "--accelerated-steps",
        type=int,
        default=20,
        help="accelerated-validate: the candidate's accelerated steps where the fallback's reach "
        "the cap",
    )
    ap.add_argument("--max-images", type=int, help="only the first so many images of the set")
    ap.add_argument(
        "--combine",
        choices=tuple(COMBINE),
        default="mean",
        help="shape-third-validate: how the three corrections are combined (gain_noise)",
    )
    args = ap.parse_args(argv)
    built_given = tuple(args.built_tau) if args.built_tau else None
    built_tau: tuple[float, float] = (
        (args.built_tau[0], args.built_tau[1]) if args.built_tau else AS_BUILT_TAU
    )
    summaries = (
        "summary",
        "filter-summary",
        "shrink-summary",
        "tau-summary",
        "noise-summary",
        "law-summary",
    )
    if args.command in summaries:
        rows: list[dict[str, Any]] = []
        for f in args.rows:
            rows += json.loads(f.read_text())
        if args.command == "tau-summary":
            summary: dict[str, Any] = summarise_thresholds(rows, built_pair=built_tau)
        elif args.command == "noise-summary":
            summary = summarise_noise(rows)
        elif args.command == "law-summary":
            summary = summarise_laws(rows)
        elif args.command == "summary":
            summary = summarise(rows)
        elif args.command == "filter-summary":
            summary = summarise_filters(rows)
        elif args.built == "built":  # the fourteenth round's fitting rows
            summary = summarise_filters(
                rows,
                tolerance=0.05,
                candidates=("built", *LENGTH_FILTERS),
                built="built",
                replaced_only=False,
            )
        elif args.built == "fixed":  # a two-way comparison's rows (gain_fixed / gain_noise)
            summary = summarise_filters(
                rows, candidates=("fixed", "noise"), built="fixed", replaced_only=False
            )
        else:
            summary = summarise_filters(
                rows, candidates=tuple(SHRINK_FILTERS), built=AS_BUILT_SHRINK, replaced_only=False
            )
        print(json.dumps(summary, indent=1))
        return 0
    if args.out is None:
        ap.error("--out is needed")
    i, k = (int(v) for v in args.part.split("/"))
    run(
        args.data,
        args.command,
        (i, k),
        args.out,
        args.magnitude,
        args.arbitrate,
        args.crop,
        args.smallest_frame,
        None if args.blur_log_range == "none" else float(args.blur_log_range),
        tuple(args.tau) if args.tau else None,
        args.length_exponent,
        args.max_images,
        (built_tau[0], built_tau[1]) if built_given else None,
        args.combine,
        args.accelerated_steps,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
