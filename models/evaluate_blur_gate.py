"""How well the blur gate (node/pipeline/blur_gate.py) tells motion-blurred radiographs from sharp.

The gate decides on the blind motion estimate in mm (:func:`models.deblur.assess_motion`) with the
defaults of ``config.yaml`` (``blur_gate``). Two questions, on real radiographs at native scale:

1. **False alarms**: every sharp radiograph in ``../shared/data`` (the CR/DX DICOMs of
   ``cxr-dicom`` with their header's pixel spacing; the PNG/JPEG sets twice: with their approximate
   spacing, :data:`SPACING_MM`, and with the spacing the node assumes when a header gives none,
   :func:`node.pipeline.blur_gate.assumed_spacing_mm`, as they arrive wrapped without one). A
   false alarm is any decision other than ``sharp``.
2. **Detection**: the DICOM chest/hip/hand images and the held-out ``cxr-radiographs-mhh`` patients,
   blurred by 0.5 / 1 / 2 mm of straight or curved motion (random direction, in linear exposure,
   Poisson noise), through their pixel spacing. Reported: share flagged, ROC AUC of the gate's
   continuous evidence (the estimate's specificity) against the same images unblurred, and the
   error of the estimated length for the flagged ones.

Usage: ``python -m models.evaluate_blur_gate [--data ../shared/data] [--out FILE.json]
[--limit N] [--false-alarms-only] [--eta-follows-motion] [--avoid-shadows [--clear-windows-from-mm
MM]]`` (``--limit`` caps the images per set; 0 = all; ``--false-alarms-only``: question 1 alone;
``--eta-follows-motion``: the thirty-seventh round's candidate estimate; ``--avoid-shadows``: the
fifty-fifth round's, ``--clear-windows-from-mm``: the fifty-sixth round's, docs/models.md).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, NoiseSubtraction, assess_motion
from models.deblur_data import load_gray, split_by_patient
from models.metrics import roc_auc

F32 = NDArray[np.float32]
MOTIONS_MM = (0.5, 1.0, 2.0)
#: Approximate pixel spacing of the downscaled public sets (field of view / width).
SPACING_MM = {"cxr-radiographs-mhh": 0.6, "kermany-full": 0.9, "nih1024": 0.4, "nih64": 6.0}


def _policy(
    subtract_noise: NoiseSubtraction | None = None,
    jpeg_guard: bool = True,
    eta_follows_motion: bool = False,
    avoid_shadows: bool = False,
    clear_windows_from_mm: float | None = None,
) -> MotionPolicy:
    """The node's defaults; ``subtract_noise`` set: with that noise subtraction of the estimate
    (the eighth and ninth rounds, docs/models.md); ``eta_follows_motion``: with the thirty-seventh
    round's estimate (the dip floor from the anatomy each motion leaves); ``avoid_shadows``: the
    fifty-fifth round's estimate (its windows clear of the shadows found in the frame), taken
    only from ``clear_windows_from_mm`` of motion where that is given (the fifty-sixth round's)."""
    from node.config import BlurGateSettings
    from node.pipeline.blur_gate import policy

    pol = dataclasses.replace(policy(BlurGateSettings()), noise_subtraction_skips_jpeg=jpeg_guard)
    if eta_follows_motion:
        pol = dataclasses.replace(
            pol, estimate_eta_follows_noise=True, estimate_eta_follows_motion=True
        )
    if avoid_shadows:
        pol = dataclasses.replace(
            pol,
            estimate_avoids_shadows=True,
            clear_windows_from_mm=clear_windows_from_mm,
            clear_windows_finer_than_mm=None,
        )
    if subtract_noise is None:
        return pol
    return dataclasses.replace(pol, estimate_noise_subtraction=subtract_noise)


def _dicoms(data: Path) -> list[tuple[str, F32, float]]:
    from node.pipeline.blur_gate import pixel_spacing_mm
    from node.pipeline.preprocess import decode, read_dataset, to_unit_stored_range

    out = []
    for f in sorted((data / "cxr-dicom").glob("*.dcm")):
        ds = read_dataset(f)
        spacing = pixel_spacing_mm(ds) or 0.15
        out.append((f.name, to_unit_stored_range(decode(ds)), spacing))
    return out


def _pngs(data: Path, limit: int) -> dict[str, list[Path]]:
    sets: dict[str, list[Path]] = {}
    mhh = data / "cxr-radiographs-mhh"
    if (mhh / "metadata.csv").exists():
        with (mhh / "metadata.csv").open(newline="", encoding="utf-8") as f:
            sets["cxr-radiographs-mhh"] = [mhh / r["path"] for r in csv.DictReader(f)]
    kf = data / "kermany-full"
    if (kf / "labels.csv").exists():
        with (kf / "labels.csv").open(newline="", encoding="utf-8") as f:
            sets["kermany-full"] = [kf / r["path"] for r in csv.DictReader(f)]
    lab = data / "cxr-labeled"
    for sub in ("nih1024",):
        if (lab / sub).is_dir():
            sets[sub] = sorted((lab / sub).glob("*.png"))
    return {k: (v[:limit] if limit else v) for k, v in sets.items()}


def evaluate(
    data: Path,
    limit: int = 0,
    seed: int = 0,
    subtract_noise: NoiseSubtraction | None = None,
    jpeg_guard: bool = True,
    eta_follows_motion: bool = False,
    detection: bool = True,
    avoid_shadows: bool = False,
    clear_windows_from_mm: float | None = None,
) -> dict[str, Any]:
    pol = _policy(
        subtract_noise, jpeg_guard, eta_follows_motion, avoid_shadows, clear_windows_from_mm
    )
    rng = np.random.default_rng(seed)
    result: dict[str, Any] = {
        "policy": {
            "blurred_from_mm": pol.blurred_from_mm,
            "severe_from_mm": pol.severe_from_mm,
            "min_specificity": pol.min_specificity,
            "max_motion_mm": pol.max_motion_mm,
            "estimate_noise_subtraction": pol.estimate_noise_subtraction,
            "noise_subtraction_skips_jpeg": pol.noise_subtraction_skips_jpeg,
            "estimate_eta_follows_motion": pol.estimate_eta_follows_motion,
            "estimate_avoids_shadows": pol.estimate_avoids_shadows,
            "clear_windows_from_mm": pol.clear_windows_from_mm,
            "clear_windows_finer_than_mm": pol.clear_windows_finer_than_mm,
        },
        "false_alarms": {},
        "detection": {},
    }
    t0 = time.time()
    dicoms = _dicoms(data) if (data / "cxr-dicom").is_dir() else []
    alarms = []
    for name, img, sp in dicoms:
        a = assess_motion(img, sp, pol)
        if a.decision != "sharp":
            alarms.append({"image": name, "decision": a.decision, "mm": round(a.motion_mm, 2)})
    result["false_alarms"]["cxr-dicom"] = {"images": len(dicoms), "flagged": alarms}
    from node.config import BlurGateSettings
    from node.pipeline.blur_gate import assumed_spacing_mm

    defaults = BlurGateSettings()
    for set_name, paths in _pngs(data, limit).items():
        sp = SPACING_MM[set_name]
        flagged, flagged_assumed, node_spacings = [], [], []
        for p in paths:
            img = load_gray(p).astype(np.float32) / 255.0
            a = assess_motion(img, sp, pol)
            if a.decision != "sharp":
                flagged.append(
                    {"image": p.name, "decision": a.decision, "mm": round(a.motion_mm, 2)}
                )
            node_sp = assumed_spacing_mm(img.shape, defaults)
            node_spacings.append(node_sp)
            na = a if abs(node_sp - sp) < 1e-9 else assess_motion(img, node_sp, pol)
            if na.decision != "sharp":
                flagged_assumed.append(
                    {"image": p.name, "decision": na.decision, "mm": round(na.motion_mm, 2)}
                )
        result["false_alarms"][set_name] = {
            "images": len(paths),
            "pixel_spacing_mm_assumed": sp,
            "flagged": flagged,
            "node_assumed_spacing_mm": [
                round(float(min(node_spacings, default=0)), 3),
                round(float(max(node_spacings, default=0)), 3),
            ],
            "flagged_without_header_spacing": flagged_assumed,
        }
        print(
            set_name,
            len(paths),
            "images,",
            len(flagged),
            "false alarms;",
            len(flagged_assumed),
            "at the node's assumed spacing",
            flush=True,
        )
    if not detection:
        result["seconds"] = round(time.time() - t0, 1)
        return result

    # Detection at native scale: distinct DICOM images (one per source image) + held-out MHH.
    cases: list[tuple[str, F32, float]] = []  # (name, image, spacing); spacing 0.6 = MHH
    seen: set[tuple[int, int]] = set()
    for name, img, sp in dicoms:
        if min(img.shape) >= 512 and img.shape not in seen:
            seen.add(img.shape)
            cases.append((name, img, sp))
    mhh = data / "cxr-radiographs-mhh"
    if (mhh / "metadata.csv").exists():
        test = split_by_patient(mhh).test
        for rel in test[:limit] if limit else test:
            cases.append((rel, load_gray(mhh / rel).astype(np.float32) / 255.0, 0.6))
    sharp_ev = [assess_motion(img, sp, pol).estimate.specificity for _, img, sp in cases]
    scale_of = ["0.6mm" if sp == 0.6 else "detector" for _, _, sp in cases]
    for mm in MOTIONS_MM:
        ev, hits, errs, hit_flags = [], 0, [], []
        for i, (_, img, sp) in enumerate(cases):
            length = mm / sp
            k = motion_kernel("straight" if i % 2 == 0 else "curved", length, rng)
            b = simulate_motion_blur(img, k, rng, noise=NoiseSpec(20000.0))
            a = assess_motion(b, sp, pol)
            ev.append(a.estimate.specificity)
            hit_flags.append(a.decision != "sharp")
            if a.decision != "sharp":
                hits += 1
                errs.append(abs(a.motion_mm - mm))
        for scale in ("detector", "0.6mm"):
            idx = [i for i, s in enumerate(scale_of) if s == scale]
            if idx:
                ys = np.r_[np.zeros(len(idx)), np.ones(len(idx))]
                sc = np.r_[[sharp_ev[i] for i in idx], [ev[i] for i in idx]]
                result["detection"][f"{mm} mm at {scale}"] = {
                    "images": len(idx),
                    "flagged": round(float(np.mean([hit_flags[i] for i in idx])), 3),
                    "auc": round(roc_auc(ys, sc), 4),
                }
        y = np.r_[np.zeros(len(sharp_ev)), np.ones(len(ev))]
        result["detection"][f"{mm} mm"] = {
            "images": len(cases),
            "flagged": round(hits / max(1, len(cases)), 3),
            "auc": round(roc_auc(y, np.r_[sharp_ev, ev]), 4),
            "median_abs_error_mm_flagged": round(float(np.median(errs)), 3) if errs else None,
        }
        print(f"{mm} mm", result["detection"][f"{mm} mm"], flush=True)
    result["seconds"] = round(time.time() - t0, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument(
        "--subtract-noise",
        choices=("never", "always", "second_look"),
        default=None,
        help="the estimate's noise subtraction (default: as configured)",
    )
    ap.add_argument(
        "--no-jpeg-guard",
        action="store_true",
        help="subtract the noise in decoded JPEGs too (as the ninth round ran)",
    )
    ap.add_argument(
        "--eta-follows-motion",
        action="store_true",
        help="the thirty-seventh round's estimate: its dip floor from the anatomy each motion leaves",
    )
    ap.add_argument(
        "--avoid-shadows",
        action="store_true",
        help="the fifty-fifth round's estimate: its windows clear of the shadows found",
    )
    ap.add_argument(
        "--clear-windows-from-mm",
        type=float,
        default=None,
        help="with --avoid-shadows: the clear windows' estimate only from this motion (mm)",
    )
    ap.add_argument(
        "--false-alarms-only", action="store_true", help="the sharp radiographs only, no detection"
    )
    args = ap.parse_args(argv)
    result = evaluate(
        args.data,
        args.limit,
        subtract_noise=args.subtract_noise,
        jpeg_guard=not args.no_jpeg_guard,
        eta_follows_motion=args.eta_follows_motion,
        detection=not args.false_alarms_only,
        avoid_shadows=args.avoid_shadows,
        clear_windows_from_mm=args.clear_windows_from_mm,
    )
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "false_alarms"}, indent=1))
    for k, v in result["false_alarms"].items():
        print(k, v.get("images"), "images,", len(v["flagged"]), "false alarms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
