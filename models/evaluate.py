"""Evaluate motion correction and the classifier against baselines; write metrics.json.

Motion correction (``--radiographs`` and/or ``--dicoms``): two scales, straight and curved motion,
three strengths each (:func:`make_cases`), Poisson noise at 10⁴ quanta/pixel, blur in linear
exposure (:mod:`models.blur`):

* ≈0.6 mm/px: the held-out patients of ``cxr-radiographs-mhh`` (patient split of
  :func:`models.deblur_data.split_by_patient`, seed 0, 20 %), centred ``--crop`` crops, motion of
  3 / 6 / 10 px (1.8 / 3.6 / 6 mm);
* detector scale: each distinct image of ``cxr-dicom`` (CR/DX at 0.115–0.2 mm/px from its header),
  centred 1024² crops, motion of 1 / 2 / 4 mm.

Methods, scored by PSNR and SSIM gain over the blurred input (data range 1) and, for the blind
ones, the error of the estimated motion in mm:

* the blurred input; unsharp masking (radius 2, amount 1) — what a viewer does;
* Wiener and Richardson–Lucy (10 iterations) deconvolution **with the true kernel** (oracles: a
  real image comes without its kernel), in linear exposure, reflect-padded; their parameters are
  the ones of the earlier docs (balance 0.03), not tuned on these cases;
* ``blind_wiener_ungated``: the blind estimate (:mod:`models.blur_estimate`) + Wiener, always;
* ``blind_wiener_gated``: the same, only where the estimate calls the image blurred, else the
  input unchanged (the node until 2026-12-02);
* ``blind_wiener_node``: what the node does (:func:`models.deblur.deconvolve`): as gated, but
  Richardson–Lucy instead where the Wiener result rings at hard edges (``ringing_limit``);
* ``blind_wiener_refiner``: the node with its refiner (``--refiner``): the blind Wiener
  correction, then the RRDBNet refiner given the blurred image and that correction, only where
  the estimate calls the image blurred and the pixel size is in the refiner's range (manifest
  ``intended_use.pixel_spacing_mm``; elsewhere the Wiener correction alone, as in the node);
* ``blind_wiener_node_shape``: the node with the kernel shape step (``--kernel-shape``, a
  ``kernel_magnitude`` model; :func:`models.kernel_shape.shape_kernel`): a curved path's
  kernel retrieved from the learned magnitude where it differs from the straight estimate;
* ``blind_wiener_node_shrink``: the node with the sixth round's candidate
  (``--shrinkage-factor F``): the Wiener λ times F, then the noise shrunk in a wavelet domain
  (:mod:`models.shrinkage`);
* ``blind_wiener_node_checked``: the node with the seventh round's candidate
  (``--checked-balance-factor F``): the Wiener λ times F where the shape step read the kernel's
  magnitude;
* ``deblur_demo_generator``: the old ESRGAN generator (``--deblur``), tiled as the node ran it.

``--figures DIR`` writes 2× zooms of one severe case per scale and motion kind.

Classification (``--labels`` + ``--classify``): the rows of ``labels.csv`` in ``--split``
(default ``test``, the data set's own split) through :mod:`models.intensity` as the node feeds
the model: accuracy, AUC, sensitivity, specificity (at the manifest's operating threshold, with
95 % bootstrap intervals) and ECE, on the clean images, on motion-blurred copies (3–6 px at
224 px) and on those copies after the node's blind correction.

``--timing``: ONNX Runtime CPU time per 2048×2048 frame of the "light" and "esrgan" generator
configurations (untrained weights; timing does not depend on them), run tiled 512/32 as the node
does. The "esrgan" figure is extrapolated from one 512² tile × the number of tiles (it takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from skimage.filters import unsharp_mask
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import richardson_lucy, wiener

from models.blur import (
    NoiseSpec,
    from_exposure,
    motion_kernel,
    random_kernel,
    simulate_motion_blur,
    to_exposure,
)
from models.deblur_data import load_gray, split_by_patient
from models.deconvolve import pad_for_fft
from models.kernel_shape import kernel_error
from models.manifest import ModelManifest, load_manifest
from models.metrics import binary_metrics
from models.tiling import run_tiled, tile_starts

if TYPE_CHECKING:
    from models.deblur import NoiseSubtraction

F32 = NDArray[np.float32]
LOG_RANGE = 3.0
RL_ITERATIONS = 10
WIENER_BALANCE = 0.03


def session(path: Path, threads: int = 2) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxDeblur:
    def __init__(self, folder: Path) -> None:
        self.manifest, path = load_manifest(folder)
        self.sess = session(path)
        self.out = self.manifest.outputs.get("image", self.sess.get_outputs()[0].name)

    def __call__(self, image: F32, *rest: F32) -> F32:
        """``image`` alone for a generator; for a refiner its other inputs after it (the
        deconvolutions at other λ, then the node's correction: :func:`refiner_inputs`)."""
        m: ModelManifest = self.manifest
        if m.input.channels == 1:
            stack = image
        elif len(rest) != m.input.channels - 1:
            raise ValueError(f"{m.name} takes {m.input.channels} input channels: pass them")
        else:
            stack = np.stack([image, *rest])
        tile = m.tile.size if m.tile else 512
        overlap = m.tile.overlap if m.tile else 32

        def fn(b: F32) -> F32:
            x = ((b - m.input.mean) / m.input.std).astype(np.float32)
            (y,) = self.sess.run([self.out], {m.input.name: x})
            return (np.asarray(y, dtype=np.float32) * m.input.std + m.input.mean).astype(np.float32)

        out = run_tiled(stack, fn, tile, overlap, max(4, m.input.multiple_of))
        return np.clip(out, 0.0, 1.0).astype(np.float32)


def _unsharp(img: F32, _k: NDArray[np.float64]) -> F32:
    return np.asarray(unsharp_mask(img, radius=2, amount=1.0), dtype=np.float32)


# The oracles get the node's border treatment (models.deconvolve.pad_for_fft: reflect by twice
# the PSF, faded to the mean), so they are not handicapped at the frame's edges.


def rl_oracle(img: F32, k: NDArray[np.float64]) -> F32:
    """Richardson–Lucy (RL_ITERATIONS steps) with the true kernel, in exposure."""
    ep, pad = pad_for_fft(to_exposure(img, LOG_RANGE), k)
    h, w = img.shape
    r = np.asarray(richardson_lucy(ep, k, num_iter=RL_ITERATIONS, clip=False))[
        pad : pad + h, pad : pad + w
    ]
    return np.clip(from_exposure(r, LOG_RANGE), 0, 1).astype(np.float32)


def wiener_oracle(img: F32, k: NDArray[np.float64]) -> F32:
    """The Wiener filter (λ WIENER_BALANCE) with the true kernel, in exposure."""
    ep, pad = pad_for_fft(to_exposure(img, LOG_RANGE), k)
    h, w = img.shape
    r = np.asarray(wiener(ep, k, balance=WIENER_BALANCE, clip=False))[pad : pad + h, pad : pad + w]
    return np.clip(from_exposure(r, LOG_RANGE), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class Case:
    """One evaluation case: a sharp image, its blurred copy and the truth about the blur."""

    name: str
    scale: str  # "0.6mm" (downscaled chest PNGs) or "detector" (native CR/DX)
    kind: str  # "straight" or "curved"
    strength: str  # "mild" / "moderate" / "severe"
    motion_mm: float
    spacing_mm: float
    kernel: NDArray[np.float64]
    sharp: F32
    blurred: F32


#: Motion per strength: pixels at ≈0.6 mm/px (the issue's 3/6/10 px), mm at detector scale.
STRENGTHS_PX_06 = {"mild": 3.0, "moderate": 6.0, "severe": 10.0}
STRENGTHS_MM_DETECTOR = {"mild": 1.0, "moderate": 2.0, "severe": 4.0}
DETECTOR_CROP = 1024


def _crop(a: F32, c: int | None) -> F32:
    if c is None:
        return a
    h, w = a.shape
    c = min(c, h, w)
    c -= c % 4
    y, x = (h - c) // 2, (w - c) // 2
    return np.ascontiguousarray(a[y : y + c, x : x + c])


def make_cases(
    radiographs: Path | None,
    dicoms: Path | None,
    crop: int | None,
    max_images: int | None,
    seed: int = 2024,
    photons: float | None = 1e4,
) -> list[Case]:
    """The evaluation cases: held-out MHH patients at ≈0.6 mm/px and the shared CR/DX files
    (one per distinct image, centred ``DETECTOR_CROP`` crop) at their header's pixel spacing;
    straight and curved motion at three strengths each, Poisson noise at ``photons`` quanta/pixel
    (10⁴; ``None``: no noise added after the blur)."""
    rng = np.random.default_rng(seed)
    noise = NoiseSpec(photons)
    cases: list[Case] = []
    if radiographs is not None:
        split = split_by_patient(radiographs, 0.2, 0)
        names = split.test[:max_images] if max_images else split.test
        for name in names:
            a = _crop(load_gray(radiographs / name).astype(np.float32) / 255.0, crop)
            for kind in ("straight", "curved"):
                for strength, px in STRENGTHS_PX_06.items():
                    k = motion_kernel(kind, px, rng)
                    b = simulate_motion_blur(a, k, rng, noise=noise)
                    cases.append(Case(name, "0.6mm", kind, strength, px * 0.6, 0.6, k, a, b))
    if dicoms is not None:
        from node.pipeline.blur_gate import pixel_spacing_mm
        from node.pipeline.preprocess import decode, read_dataset, to_unit_stored_range

        seen: set[tuple[int, int]] = set()
        files = sorted(dicoms.glob("*.dcm"))
        for f in files:
            ds = read_dataset(f)
            r = decode(ds)
            if min(r.stored.shape) < 512 or r.stored.shape in seen:
                continue
            seen.add(r.stored.shape)
            sp = pixel_spacing_mm(ds) or 0.15
            a = _crop(to_unit_stored_range(r), DETECTOR_CROP)
            for kind in ("straight", "curved"):
                for strength, mm in STRENGTHS_MM_DETECTOR.items():
                    k = motion_kernel(kind, mm / sp, rng)
                    b = simulate_motion_blur(a, k, rng, noise=noise)
                    cases.append(Case(f.name, "detector", kind, strength, mm, sp, k, a, b))
            if max_images and len(seen) >= max_images:
                break
    return cases


def _scores(
    cases: list[Case],
    outs: list[F32],
    est_mm: list[float] | None,
    kernel_err: list[float] | None = None,
) -> dict[str, Any]:
    per: dict[str, list[tuple[float, float, float, float, float]]] = {}
    for i, (c, o) in enumerate(zip(cases, outs, strict=True)):
        p = float(peak_signal_noise_ratio(c.sharp, o, data_range=1.0))
        s = float(structural_similarity(c.sharp, o, data_range=1.0))
        p0 = float(peak_signal_noise_ratio(c.sharp, c.blurred, data_range=1.0))
        s0 = float(structural_similarity(c.sharp, c.blurred, data_range=1.0))
        err = abs(est_mm[i] - c.motion_mm) if est_mm is not None else float("nan")
        for key in (
            f"{c.scale}/{c.kind}/{c.strength}",
            f"{c.scale}/all",
            "all",
        ):
            kerr = kernel_err[i] if kernel_err is not None else float("nan")
            per.setdefault(key, []).append((p - p0, s - s0, err, p, kerr))
    out: dict[str, Any] = {}
    for k, vals in sorted(per.items()):
        v = np.array(vals)
        row: dict[str, Any] = {
            "psnr_gain_db": round(float(v[:, 0].mean()), 3),
            "ssim_gain": round(float(v[:, 1].mean()), 4),
            "psnr_db": round(float(v[:, 3].mean()), 3),
            "n": len(vals),
        }
        if est_mm is not None:
            row["motion_error_mm_median"] = round(float(np.median(v[:, 2])), 3)
        if kernel_err is not None:
            row["kernel_error_median"] = round(float(np.median(v[:, 4])), 3)
        out[k] = row
    return out


def evaluate_deblur(
    radiographs: Path | None,
    dicoms: Path | None,
    deblur: Path | None,
    crop: int | None,
    max_images: int | None,
    figures: Path | None = None,
    refiner: Path | None = None,
    photons: float | None = 1e4,
    kernel_shape: Path | None = None,
    shrinkage_factor: float | None = None,
    checked_balance_factor: float | None = None,
    subtract_noise: NoiseSubtraction | None = None,
    kernel_shape_candidate: Path | None = None,
    detector_shape_candidate: Path | None = None,
    candidate_tau: tuple[float, float] | None = None,
    consistency_min: float | None = None,
    detector_min_quanta: float | None = None,
    detector_max_consistency: float | None = None,
    detector_kept_halved: bool = True,
    detector_max_specificity: float | None = None,
    detector_fallback_max_fit: float | None = None,
    node_as_shipped: bool = False,
    figure_methods: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Every method on every case; PSNR/SSIM gains over the blurred input, motion error.

    ``node_as_shipped``: also the node's own correction as ``sharpray process`` builds it from
    its settings (``config.yaml`` in the working directory or ``$SHARPRAY_CONFIG``, environment
    overrides; every network it loads), as ``node_as_shipped``, judged on its own estimates —
    the column that is the shipped version whatever the defaults of :mod:`models.deblur` and the
    candidate columns are. ``figure_methods``: the pictures' panels after the sharp image, in this
    order (default: every method).

    ``consistency_min``: also the node with the thirty-fifth round's floor (λ at least 0.1 at
    pixels finer than 0.4 mm where the frame's spectrum does not follow the straight kernel and
    the Wiener filter is kept), as ``blind_wiener_node_consistency``.

    ``shrinkage_factor``: also the node with the sixth round's candidate (the Wiener λ times this
    factor, then the noise shrunk in a wavelet domain; docs/models.md), as
    ``blind_wiener_node_shrink``, with the kernel shape step where ``kernel_shape`` is given;
    ``checked_balance_factor``: also the node with the seventh round's (λ times this factor
    where the shape step read the kernel's magnitude), as ``blind_wiener_node_checked``;
    ``subtract_noise``: also the node whose motion estimate subtracts the frame's measured noise
    so (``always``: the eighth round, ``second_look``: the ninth), as
    ``blind_wiener_node_subtract``, judged on its own estimates; ``kernel_shape_candidate``: also
    the node with another learned magnitude in its shape step (the eleventh round), as
    ``blind_wiener_node_shape_candidate``; ``detector_shape_candidate``: also the node whose
    shape step runs at pixels finer than 0.4 mm with this native-pixel magnitude (the sixteenth
    round), as ``blind_wiener_node_detector_shape``; ``candidate_tau``: the candidate magnitude's
    τ (quiet, noisy) instead of the node's, and also the pixel-wise mean of the node's correction
    and the candidate's (the twenty-eighth round) as ``blind_wiener_node_shape_mean``;
    ``detector_min_quanta`` / ``detector_max_consistency``: that native-pixel step only in frames
    whose measured noise is at least so many quanta per pixel, its retrieved kernel only where the
    spectrum follows the straight kernel less than so much, and (``detector_kept_halved`` False)
    λ as if unread where it keeps the straight kernel (the forty-eighth round);
    ``detector_max_specificity``: its retrieved kernel only where the straight fit's
    specificity is under so much (the forty-ninth round); ``detector_fallback_max_fit``: where its
    retrieved kernel's Wiener result rings, Richardson-Lucy with that kernel where its fit is
    under so much (the fifty-first round)."""
    import dataclasses

    from models.deblur import MotionPolicy, assess_motion, correct, deconvolve, refiner_inputs
    from models.kernel_shape import load_magnitude_model

    cases = make_cases(radiographs, dicoms, crop, max_images, photons=photons)
    policy = MotionPolicy()
    fixed = dataclasses.replace(policy, balance_follows_noise=False)
    assessments = [assess_motion(c.blurred, c.spacing_mm, policy) for c in cases]
    est_mm = [a.motion_mm if a.blurred else 0.0 for a in assessments]
    # the kernel each blind method deconvolved with (none: a point) against the true one
    point = np.ones((1, 1))
    used_kernels: dict[str, list[NDArray[np.float64]]] = {
        "blind_wiener_ungated": [a.estimate.kernel() for a in assessments],
        "blind_wiener_node": [a.estimate.kernel() if a.blurred else point for a in assessments],
    }
    methods: dict[str, tuple[Any, bool]] = {
        "blurred_input": (lambda c, a: c.blurred, False),
        "unsharp_mask": (lambda c, a: _unsharp(c.blurred, c.kernel), False),
        "wiener_oracle_kernel": (lambda c, a: wiener_oracle(c.blurred, c.kernel), False),
        "richardson_lucy_oracle_kernel": (lambda c, a: rl_oracle(c.blurred, c.kernel), False),
        "blind_wiener_ungated": (
            lambda c, a: wiener_blind(c.blurred, a.estimate.kernel(), policy),
            True,
        ),
        "blind_wiener_gated": (
            lambda c, a: deconvolve(c.blurred, a, policy, allow_fallback=False).image,
            True,
        ),
        "blind_wiener_node": (lambda c, a: correct(c.blurred, a, policy), True),
        # sharpray-blind-wiener 0.5.0: the node with one fixed regulariser
        "blind_wiener_node_fixed_balance": (lambda c, a: correct(c.blurred, a, fixed), True),
    }
    if consistency_min is not None:
        consistent = dataclasses.replace(policy, kernel_consistency_min=consistency_min)
        methods["blind_wiener_node_consistency"] = (
            lambda c, a: correct(c.blurred, a, consistent),
            True,
        )
    magnitude = load_magnitude_model(kernel_shape) if kernel_shape is not None else None
    if refiner is not None:
        ref = OnnxDeblur(refiner)

        use = ref.manifest.intended_use
        lo, hi = use.pixel_spacing_mm if use and use.pixel_spacing_mm else (0.0, float("inf"))
        # a refiner of the node's correction as shipped refines the shape step's output (with
        # the fallback); an older one the Wiener filter alone
        on_node = ref.manifest.training.get("refines") == "node_correction"
        if on_node and magnitude is None:
            raise ValueError("this refiner refines the node's shape step: give --kernel-shape")

        factors = ref.manifest.variant_balance_factors

        def refined(c: Case, a: Any) -> F32:
            if not a.blurred:
                return c.blurred
            shape_with = magnitude if on_node else None
            if not lo <= c.spacing_mm <= hi:
                return refiner_inputs(c.blurred, a, policy, shape_with, fallback=on_node)[1].image
            inputs, _ = refiner_inputs(c.blurred, a, policy, shape_with, factors, fallback=on_node)
            return ref(*inputs)

        methods["blind_wiener_refiner"] = (refined, True)

    def node_with(pol: MotionPolicy, label: str, mag: Any = magnitude, det: Any = None) -> Any:
        """The node's correction under ``pol`` (shape step with ``mag`` included, and ``det`` at
        detector scale), recording its kernels."""
        kernels = used_kernels.setdefault(label, [])

        def corrected(c: Case, a: Any) -> F32:
            d = deconvolve(c.blurred, a, pol, magnitude=mag, detector_magnitude=det)
            k = d.shape.kernel if d.shape is not None else None
            kernels.append(k if k is not None else a.estimate.kernel() if a.blurred else point)
            return d.image

        return corrected

    own_mm: dict[str, list[float]] = {}  # methods that estimate the motion themselves

    def node_estimating(pol: MotionPolicy, label: str) -> Any:
        """:func:`node_with` from its own motion estimate under ``pol`` on, recording the mm."""
        mm, correct_with = own_mm.setdefault(label, []), node_with(pol, label)

        def corrected(c: Case, _: Any) -> F32:
            a = assess_motion(c.blurred, c.spacing_mm, pol)
            mm.append(a.motion_mm if a.blurred else 0.0)
            return correct_with(c, a)  # type: ignore[no-any-return]

        return corrected

    if subtract_noise is not None:
        subtracting = dataclasses.replace(policy, estimate_noise_subtraction=subtract_noise)
        methods["blind_wiener_node_subtract"] = (
            node_estimating(subtracting, "blind_wiener_node_subtract"),
            True,
        )
    if magnitude is not None:
        methods["blind_wiener_node_shape"] = (node_with(policy, "blind_wiener_node_shape"), True)
    if shrinkage_factor is not None:
        shrinking = dataclasses.replace(
            policy, wiener_balance_factor=shrinkage_factor, shrinkage=True
        )
        methods["blind_wiener_node_shrink"] = (
            node_with(shrinking, "blind_wiener_node_shrink"),
            True,
        )
    if checked_balance_factor is not None:
        checking = dataclasses.replace(policy, checked_balance_factor=checked_balance_factor)
        methods["blind_wiener_node_checked"] = (
            node_with(checking, "blind_wiener_node_checked"),
            True,
        )
    if kernel_shape_candidate is not None:
        candidate_policy = dataclasses.replace(policy, shape_thresholds=candidate_tau)
        other = load_magnitude_model(kernel_shape_candidate)
        methods["blind_wiener_node_shape_candidate"] = (
            node_with(candidate_policy, "blind_wiener_node_shape_candidate", other),
            True,
        )
        if candidate_tau is not None and magnitude is not None:

            def mean(c: Case, a: Any) -> F32:
                own = deconvolve(c.blurred, a, policy, magnitude=magnitude).image
                theirs = deconvolve(c.blurred, a, candidate_policy, magnitude=other).image
                return ((own.astype(np.float64) + theirs) / 2).astype(np.float32)

            methods["blind_wiener_node_shape_mean"] = (mean, True)
    if detector_shape_candidate is not None and magnitude is not None:
        detector_policy = dataclasses.replace(
            policy,
            shape_detector_min_quanta=detector_min_quanta,
            shape_detector_max_consistency=detector_max_consistency,
            shape_detector_kept_halved=detector_kept_halved,
            shape_detector_max_specificity=detector_max_specificity,
            shape_detector_fallback_max_fit=detector_fallback_max_fit,
        )
        methods["blind_wiener_node_detector_shape"] = (
            node_with(
                detector_policy,
                "blind_wiener_node_detector_shape",
                det=load_magnitude_model(detector_shape_candidate),
            ),
            True,
        )
    shipped = ""
    if node_as_shipped:
        fn, shipped = shipped_node(own_mm.setdefault("node_as_shipped", []))
        methods["node_as_shipped"] = (fn, True)
    if deblur is not None:
        model = OnnxDeblur(deblur)
        methods["deblur_demo_generator"] = (lambda c, a: model(c.blurred), False)
    result: dict[str, Any] = {
        "cases": len(cases),
        "images": sorted({c.name for c in cases}),
        "crop_0.6mm": crop,
        "crop_detector": DETECTOR_CROP,
        "strengths": {"0.6mm_px": STRENGTHS_PX_06, "detector_mm": STRENGTHS_MM_DETECTOR},
        "noise_photons_per_pixel": photons,
        "gate_decisions": {
            d: sum(a.decision == d for a in assessments) for d in ("sharp", "blurred", "severe")
        },
        "methods": {},
    }
    if shipped:
        result["node_as_shipped"] = shipped
        print(f"node_as_shipped: {shipped}", flush=True)
    unknown = [m for m in figure_methods or () if m not in methods]
    if unknown:  # said before the run, not after it
        raise ValueError(f"--figure-methods: no such method in this run: {unknown}")
    outputs: dict[str, list[F32]] = {}
    for name, (fn, blind) in methods.items():
        t = time.perf_counter()
        outs = [
            np.asarray(fn(c, a), dtype=np.float32) for c, a in zip(cases, assessments, strict=True)
        ]
        outputs[name] = outs
        kernel_errors = (
            [kernel_error(k, c.kernel) for k, c in zip(used_kernels[name], cases, strict=True)]
            if name in used_kernels
            else None
        )
        result["methods"][name] = {
            **_scores(cases, outs, own_mm.get(name, est_mm) if blind else None, kernel_errors),
            "seconds_per_image": round((time.perf_counter() - t) / max(1, len(cases)), 3),
        }
        print(name, json.dumps(result["methods"][name]["all"]), flush=True)
    if figures is not None:
        if figure_methods is not None:
            outputs = {m: outputs[m] for m in figure_methods}
        _figures(cases, outputs, figures)
    return result


def shipped_node(
    motion_mm: list[float], said: list[str] | None = None, overrides: dict[str, str] | None = None
) -> tuple[Any, str]:
    """The node's correction as it is built from its settings (:func:`node.app.load_models`):
    (a function of a case that assesses the motion under the node's blur-gate policy, records
    the motion in mm it found (0 where it calls the image sharp) in ``motion_mm`` and what the
    correction says it did in ``said`` (where given), and returns the corrected image; the
    correction's name and version). ``overrides``: environment variables over the process's own (a
    candidate's settings, ``SHARPRAY_MODELS__KERNEL_SHAPE_DETECTOR`` and the like)."""
    from models.deblur import assess_motion
    from node.app import load_models
    from node.config import config_path, load_settings
    from node.pipeline.blur_gate import policy as gate_policy

    settings = load_settings(config_path(None), {**os.environ, **(overrides or {})})
    corrector = load_models(settings).deblur
    pol = gate_policy(settings.blur_gate)
    identity = f"{corrector.info.name} {corrector.info.version}"

    def corrected(c: Case, _: Any) -> F32:
        a = assess_motion(c.blurred, c.spacing_mm, pol)
        motion_mm.append(a.motion_mm if a.blurred else 0.0)
        done = corrector(c.blurred, a)
        if said is not None:
            said.append(done.method)
        return done.image

    return corrected, identity


def wiener_blind(img: F32, kernel: NDArray[np.float64], policy: Any) -> F32:
    from models.deconvolve import wiener as wiener_fn

    return wiener_fn(img, kernel, policy.balance, policy.power, policy.log_range)


def _figures(
    cases: list[Case],
    outputs: dict[str, list[F32]],
    folder: Path,
    strengths: tuple[str, ...] = tuple(STRENGTHS_PX_06),
) -> list[Path]:
    """One PNG per scale, motion kind and strength: a 2× zoom of a region left of and above the
    centre (ribs and vessels in a frontal chest), the first image's case; returns the files."""

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for scale in ("0.6mm", "detector"):
        for kind in ("straight", "curved"):
            for strength in strengths:
                idx = [
                    i
                    for i, c in enumerate(cases)
                    if c.scale == scale and c.kind == kind and c.strength == strength
                ]
                if not idx:
                    continue
                written.append(folder / f"deblur-{scale}-{kind}-{strength}.png")
                _figure_sheet(cases[idx[0]], idx[0], outputs, scale).save(written[-1])
    return written


def _figure_sheet(c: Case, i: int, outputs: dict[str, list[F32]], scale: str) -> Any:
    from PIL import Image, ImageDraw

    h, w = c.sharp.shape
    z = 96 if scale == "0.6mm" else 160
    y0, x0 = h // 2 - z // 2 - h // 8, w // 2 - z // 2 - w // 6
    panels = [("sharp", c.sharp)] + [(n, o[i]) for n, o in outputs.items()]
    tiles = []
    for label, im in panels:
        crop = np.clip(im[y0 : y0 + z, x0 : x0 + z], 0, 1)
        t = Image.fromarray(np.rint(crop * 255).astype(np.uint8)).resize(
            (2 * z, 2 * z), Image.Resampling.NEAREST
        )
        canvas = Image.new("L", (2 * z, 2 * z + 16), 0)
        canvas.paste(t, (0, 16))
        ImageDraw.Draw(canvas).text((2, 2), label[:30], fill=255)
        tiles.append(canvas)
    sheet = Image.new("L", (len(tiles) * (2 * z + 4), 2 * z + 16), 0)
    for j, t in enumerate(tiles):
        sheet.paste(t, (j * (2 * z + 4), 0))
    return sheet


def pneumonia_probabilities(
    sess: ort.InferenceSession, manifest: ModelManifest, images: list[F32], batch: int = 16
) -> NDArray[np.float64]:
    """P(pneumonia) for grey images in [0, 1], in batches: each image stretched
    (:func:`models.intensity.percentile_stretch`, as evaluation always fed the files), then
    :func:`models.intensity.classifier_input` — the node's own function — with the manifest's
    normalisation."""
    from models.intensity import classifier_input, percentile_stretch

    size = manifest.input.size or 224
    x = np.concatenate(
        [
            classifier_input(percentile_stretch(a), size, manifest.input.mean, manifest.input.std)
            for a in images
        ]
    )
    out = []
    for i in range(0, len(x), batch):
        (p,) = sess.run([manifest.outputs["probabilities"]], {"image": x[i : i + batch]})
        out.append(np.asarray(p)[:, 1])
    return np.concatenate(out).astype(np.float64)


def evaluate_classifier(
    labels_csv: Path, split: str, classify: Path, deblur: Path | None, seed: int = 7
) -> dict[str, Any]:
    """The classifier on ``split`` of ``labels_csv`` through :func:`models.intensity` (as the
    node feeds it): clean, motion-blurred (3–6 px at 224 px, in exposure, Poisson noise) and
    blurred-then-corrected (the node's blind Wiener correction, or the ``deblur`` generator);
    every figure with its 95 % bootstrap interval, at the manifest's operating threshold."""
    from models.deblur import MotionPolicy, assess_motion, correct
    from models.kermany import read_kermany
    from models.metrics import bootstrap_ci, expected_calibration_error, reliability

    samples = read_kermany(labels_csv, split)
    manifest, path = load_manifest(classify)
    sess = session(path)
    thr = manifest.operating_threshold
    y = np.array([s.label for s in samples])
    raw = [load_gray(labels_csv.parent / s.path).astype(np.float32) / 255.0 for s in samples]
    rng = np.random.default_rng(seed)
    blurred = [
        simulate_motion_blur(a, random_kernel(rng, 3.0, 6.0), rng, noise=NoiseSpec(20000.0))
        for a in raw
    ]
    policy = MotionPolicy()
    generator = OnnxDeblur(deblur) if deblur is not None else None

    from node.config import BlurGateSettings
    from node.pipeline.blur_gate import assumed_spacing_mm

    def corrected(b: F32) -> F32:
        if generator is not None:
            return generator(b)
        # as the node sees them wrapped without a pixel spacing (224 px: 0.7 mm assumed)
        spacing = assumed_spacing_mm(b.shape, BlurGateSettings())
        return correct(b, assess_motion(b, spacing, policy), policy)

    def probs(images: list[F32]) -> NDArray[np.float64]:
        return pneumonia_probabilities(sess, manifest, images)

    def report(p: NDArray[np.float64]) -> dict[str, Any]:
        m: dict[str, Any] = binary_metrics(y, p, thr)
        for key in ("accuracy", "auc", "sensitivity", "specificity"):
            m[f"{key}_ci95"] = list(bootstrap_ci(y, p, key, thr))
        m["ece"] = round(expected_calibration_error(y, p), 4)
        return m

    clean = probs(raw)
    result: dict[str, Any] = {
        "split": split,
        "labels": str(labels_csv.parent.name),
        "images": len(samples),
        "pneumonia": int(y.sum()),
        "threshold": thr,
        "blur_px": [3, 6],
        "clean": report(clean),
        "reliability_clean": reliability(y, clean),
        "blurred": report(probs(blurred)),
        "corrected": report(probs([corrected(b) for b in blurred])),
        "corrected_by": "deblur generator" if generator is not None else "blind Wiener (node)",
    }
    for k in ("clean", "blurred", "corrected"):
        print("classifier", k, json.dumps(result[k]), flush=True)
    return result


def time_generators(threads: int = 2, size: int = 2048) -> dict[str, Any]:
    """ORT CPU seconds per ``size``² frame, tiled 512/32, for the refiner (2 channels: blurred +
    correction), light and esrgan configs."""
    import torch

    from models.export import export_deblur
    from models.rrdbnet import build_generator

    torch.set_num_threads(threads)
    out: dict[str, Any] = {"threads": threads, "frame": size, "tile": 512, "overlap": 32}
    n_tiles = len(tile_starts(size, 512, 32)) ** 2
    img = np.random.default_rng(0).random((size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in ("refiner", "light", "esrgan"):
            torch.manual_seed(0)
            channels = 2 if cfg == "refiner" else 1
            export_deblur(build_generator(cfg, channels), Path(tmp) / cfg, config_name=cfg)
            sess = session(Path(tmp) / cfg / "model.onnx", threads)

            def fn(b: F32, s: ort.InferenceSession = sess) -> F32:
                (r,) = s.run(["corrected"], {"image": b})
                return np.asarray(r, dtype=np.float32)

            frame = img if channels == 1 else np.stack([img, img])
            fn(frame[None, ..., :512, :512].reshape(1, channels, 512, 512))  # warm-up
            if cfg != "esrgan":
                t = time.perf_counter()
                run_tiled(frame, fn, 512, 32)
                secs = time.perf_counter() - t
                how = "measured, whole frame tiled"
            else:
                t = time.perf_counter()
                fn(img[None, None, :512, :512])
                secs = (time.perf_counter() - t) * n_tiles
                how = f"one 512 tile x {n_tiles} tiles"
            out[cfg] = {"ms_per_frame": round(secs * 1000), "how": how}
            print("timing", cfg, out[cfg], flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=None, help="cxr-labeled/labels.csv")
    ap.add_argument("--split", default="test")
    ap.add_argument("--radiographs", type=Path, default=None, help="cxr-radiographs-mhh folder")
    ap.add_argument("--dicoms", type=Path, default=None, help="cxr-dicom folder (detector scale)")
    ap.add_argument("--figures", type=Path, default=None, help="folder for 2x zoom PNGs")
    here = Path(__file__).parent / "weights"
    ap.add_argument("--deblur", type=Path, default=here / "deblur-demo", help="old generator")
    ap.add_argument(
        "--refiner", type=Path, default=here / "deblur-refiner", help="refiner of the correction"
    )
    ap.add_argument(
        "--kernel-shape",
        type=Path,
        default=here / "kernel-magnitude",
        help="learned kernel magnitude of the shape step",
    )
    ap.add_argument(
        "--kernel-shape-candidate",
        type=Path,
        default=None,
        help="also the node with this learned kernel magnitude in its shape step",
    )
    ap.add_argument(
        "--candidate-tau",
        nargs=2,
        type=float,
        metavar=("QUIET", "NOISY"),
        help="the candidate magnitude's τ; also the mean of the node's and its correction",
    )
    ap.add_argument(
        "--detector-shape-candidate",
        type=Path,
        default=None,
        help="also the node whose shape step runs at pixels finer than 0.4 mm with this "
        "native-pixel kernel magnitude",
    )
    ap.add_argument(
        "--detector-min-quanta",
        type=float,
        default=None,
        help="the native-pixel candidate only in frames whose measured noise is at least this "
        "many quanta per pixel (blur_gate.shape_detector_min_quanta)",
    )
    ap.add_argument(
        "--detector-max-consistency",
        type=float,
        default=None,
        help="its retrieved kernel only where the frame's spectrum follows the straight kernel "
        "less than this (blur_gate.shape_detector_max_consistency)",
    )
    ap.add_argument(
        "--detector-max-specificity",
        type=float,
        default=None,
        help="its retrieved kernel only where the straight fit's specificity is under this "
        "(blur_gate.shape_detector_max_specificity)",
    )
    ap.add_argument(
        "--detector-fallback-max-fit",
        type=float,
        default=None,
        help="where its retrieved kernel's Wiener result rings, Richardson-Lucy with that kernel "
        "where its fit is under this (blur_gate.shape_detector_fallback_max_fit)",
    )
    ap.add_argument(
        "--detector-kept-unhalved",
        action="store_true",
        help="where it keeps the straight kernel, λ as if unread "
        "(blur_gate.shape_detector_kept_halved: false)",
    )
    ap.add_argument("--classify", type=Path, default=here / "classify-demo")
    ap.add_argument("--crop", type=int, default=384, help="centred crop for deblurring (0 = whole)")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument(
        "--photons", type=float, default=1e4, help="Poisson quanta/px after the blur (0 = none)"
    )
    ap.add_argument(
        "--shrinkage-factor",
        type=float,
        default=None,
        help="also the node with noise shrinkage after a Wiener filter of λ times this factor",
    )
    ap.add_argument(
        "--checked-balance-factor",
        type=float,
        default=None,
        help="also the node with λ times this factor where the shape step read the magnitude",
    )
    ap.add_argument(
        "--subtract-noise",
        choices=("never", "always", "second_look"),
        default=None,
        help="also the node whose motion estimate subtracts the measured noise so",
    )
    ap.add_argument(
        "--consistency-min",
        type=float,
        default=None,
        help="also the node with λ at least 0.1 where a fine-pixel frame's spectrum follows the "
        "straight kernel's less than this (blur_gate.kernel_consistency_min)",
    )
    ap.add_argument(
        "--node-as-shipped",
        action="store_true",
        help="also the node's correction as sharpray process builds it from its settings "
        "(column node_as_shipped)",
    )
    ap.add_argument(
        "--figure-methods",
        nargs="+",
        default=None,
        help="the pictures' panels after the sharp image, in this order (default: every method)",
    )
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    deblur = args.deblur if (args.deblur / "manifest.json").is_file() else None
    refiner = args.refiner if (args.refiner / "manifest.json").is_file() else None
    shape = args.kernel_shape if (args.kernel_shape / "manifest.json").is_file() else None
    result: dict[str, Any] = {}
    if args.radiographs is not None or args.dicoms is not None:
        result["deblur"] = evaluate_deblur(
            args.radiographs,
            args.dicoms,
            deblur,
            args.crop or None,
            args.max_images or None,
            args.figures,
            refiner,
            args.photons or None,
            shape,
            args.shrinkage_factor,
            args.checked_balance_factor,
            args.subtract_noise,
            args.kernel_shape_candidate,
            args.detector_shape_candidate,
            (args.candidate_tau[0], args.candidate_tau[1]) if args.candidate_tau else None,
            args.consistency_min,
            args.detector_min_quanta,
            args.detector_max_consistency,
            not args.detector_kept_unhalved,
            args.detector_max_specificity,
            args.detector_fallback_max_fit,
            args.node_as_shipped,
            tuple(args.figure_methods) if args.figure_methods else None,
        )
    if args.labels is not None and (args.classify / "manifest.json").is_file():
        # corrected as the node corrects (blind Wiener), whatever generator the table compares
        result["classifier"] = evaluate_classifier(args.labels, args.split, args.classify, None)
    if args.timing:
        result["timing_cpu"] = time_generators()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(
        json.dumps(result, indent=1) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
