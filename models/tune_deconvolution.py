"""Choose the blind correction's deconvolution on **training** patients only (never the test split).

Cases, from the training patients of ``cxr-radiographs-mhh`` (:func:`models.deblur_data.split_by_patient`,
the complement of what ``models.evaluate`` reports on):

- ``0.6mm``: the 640 px images as they are (≈0.6 mm/px), centred 384² crops, 3 / 6 / 10 px;
- ``0.2mm``: the same images upsampled ×3 (≈0.2 mm/px, detector scale) with a faint white
  "detector" texture (σ 0.4 % of the grey range) added to the sharp image, centred 1024² crops,
  1 / 2 / 4 mm of motion (5 / 10 / 20 px);
- each as it is (``open``) and ``collimated`` (:func:`collimate`: unexposed bands and a lead
  marker, the hard edges of real radiographs that the chest crops lack);

straight and curved motion, Poisson noise 10⁴ quanta/px, as in ``models.evaluate``. Every variant
runs behind the node's own gate (an image judged sharp is returned unchanged) on the node's own
blind estimate. Reported: mean PSNR / SSIM gain over the blurred input per scale, kind and strength.

Usage: ``python -m models.tune_deconvolution --data ../shared/data/cxr-radiographs-mhh
[--images 12] [--out FILE.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import zoom
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from models.blur import (
    NoiseSpec,
    from_exposure,
    motion_kernel,
    simulate_motion_blur,
    to_exposure,
)
from models.deblur import (
    MotionAssessment,
    MotionPolicy,
    assess_motion,
    deconvolve,
    wiener_balance,
)
from models.deblur_data import load_gray, split_by_patient
from models.deconvolve import richardson_lucy, wiener_exposure

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
Method = Callable[[F32, MotionAssessment, MotionPolicy], F32]

STRENGTHS = {"0.6mm": (3.0, 6.0, 10.0), "0.2mm": (5.0, 10.0, 20.0)}
STRENGTH_NAMES = ("mild", "moderate", "severe")


class Case(NamedTuple):
    scene: str  # scale/open or scale/collimated
    kind: str
    strength: str
    spacing_mm: float
    sharp: F32
    blurred: F32


def centre_crop(a: F32, c: int) -> F32:
    """The centred c×c part of ``a`` (c capped at its sides), contiguous."""
    h, w = a.shape
    c = min(c, h, w)
    y, x = (h - c) // 2, (w - c) // 2
    return np.ascontiguousarray(a[y : y + c, x : x + c])


def collimate(sharp: F32) -> F32:
    """The image with what real radiographs have and the 640 px chest crops lack: an unexposed
    collimation band on two sides (grey 0, flat) and a dense lead marker (grey 1), hard edges."""
    out = sharp.copy()
    h, w = out.shape
    out[:, : int(0.15 * w)] = 0.0
    out[: int(0.12 * h), :] = 0.0
    out[int(0.85 * h) : int(0.9 * h), int(0.6 * w) : int(0.7 * w)] = 1.0
    return out


def make_cases(data: Path, images: int, seed: int = 7) -> list[Case]:
    """The tuning cases for the first ``images`` training images (see the module doc)."""
    rng = np.random.default_rng(seed)
    names = split_by_patient(data, 0.2, 0).train[:images]
    cases = []
    for name in names:
        base = load_gray(data / name).astype(np.float32) / 255.0
        for scale in ("0.6mm", "0.2mm"):
            if scale == "0.6mm":
                open_, spacing = centre_crop(base, 384), 0.6
            else:
                up = centre_crop(
                    np.clip(zoom(base, 3.0, order=3), 0.0, 1.0).astype(np.float32), 1024
                )
                noisy = up + rng.normal(0.0, 0.004, up.shape)
                open_, spacing = np.clip(noisy, 0.0, 1.0).astype(np.float32), 0.2
            for scene, sharp in (("open", open_), ("collimated", collimate(open_))):
                for kind in ("straight", "curved"):
                    for strength, px in zip(STRENGTH_NAMES, STRENGTHS[scale], strict=True):
                        k = motion_kernel(kind, px, rng)
                        b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(1e4))
                        cases.append(Case(f"{scale}/{scene}", kind, strength, spacing, sharp, b))
    return cases


def _in_exposure(fn: Callable[[F64, F64], F64]) -> Method:
    def corrected(img: F32, a: MotionAssessment, pol: MotionPolicy) -> F32:
        if not a.blurred:
            return img
        e = to_exposure(np.asarray(img, dtype=np.float64), pol.log_range)
        r = fn(e, a.estimate.kernel())
        return np.clip(from_exposure(r, pol.log_range), 0.0, 1.0).astype(np.float32)

    return corrected


def methods(policy: MotionPolicy) -> dict[str, Method]:
    """The Wiener filter, the same followed by Richardson–Lucy steps, RL alone, and the node's
    choice between Wiener and RL (:func:`models.deblur.deconvolve`)."""
    out: dict[str, Method] = {}

    def wiener_rl(n: int) -> Callable[[F64, F64], F64]:
        # the node's regulariser (it follows the noise measured in the image since 0.6.0)
        return lambda e, k: wiener_exposure(e, k, wiener_balance(e, policy)[0], policy.power, n)

    for n in (0, 2, 3, 5):
        out[f"wiener_rl{n}"] = _in_exposure(wiener_rl(n))

    out["rl10_alone"] = _in_exposure(lambda e, k: richardson_lucy(e, k, 10))
    # the node's choice: Wiener, or RL where the Wiener result rings (policy.ringing_limit)
    out["node"] = lambda img, a, pol: deconvolve(img, a, pol).image
    return out


def run(data: Path, images: int, only: list[str] | None = None) -> dict[str, Any]:
    policy = MotionPolicy()
    cases = make_cases(data, images)
    assessed = [assess_motion(c.blurred, c.spacing_mm, policy) for c in cases]
    result: dict[str, Any] = {"cases": len(cases), "images": images, "methods": {}}
    for name, fn in methods(policy).items():
        if only and name not in only:
            continue
        t = time.perf_counter()
        rows: dict[str, list[tuple[float, float]]] = {}
        for c, a in zip(cases, assessed, strict=True):
            sharp, blurred = c.sharp, c.blurred
            o = fn(blurred, a, policy)
            dp = peak_signal_noise_ratio(sharp, o, data_range=1.0) - peak_signal_noise_ratio(
                sharp, blurred, data_range=1.0
            )
            ds = structural_similarity(sharp, o, data_range=1.0) - structural_similarity(
                sharp, blurred, data_range=1.0
            )
            scale = c.scene.split("/")[0]
            for key in (
                f"{c.scene}/{c.kind}/{c.strength}",
                f"{c.scene}/all",
                f"{scale}/all",
                "all",
            ):
                rows.setdefault(key, []).append((float(dp), float(ds)))
        table = {
            k: f"{np.mean([r[0] for r in v]):+.2f} / {np.mean([r[1] for r in v]):+.3f}"
            for k, v in sorted(rows.items())
        }
        result["methods"][name] = {**table, "seconds": round(time.perf_counter() - t, 1)}
        print(name, json.dumps(result["methods"][name]), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True, help="cxr-radiographs-mhh")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--methods", nargs="*", default=None, help="only these (default: all)")
    args = ap.parse_args(argv)
    res = run(args.data, args.images, args.methods)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
