"""How well the blur gate (node/pipeline/blur_gate.py) tells motion-blurred radiographs from sharp.

Real radiographs at their native scale: the patient-level test split of ``cxr-radiographs-mhh``
(:func:`models.deblur_data.split_by_patient`, the split the deblur model never trained on) and the
chest images of ``cxr-labeled`` whose ``split`` is ``test`` (NIH 1024 px and pediatric 224 px).
Each image is scored unblurred and with linear motion blur of several lengths (random angle, in
linear exposure, :func:`models.blur.simulate_motion_blur`), under conditions that are not motion
blur: ``clean``; ``noise`` (low-dose Poisson noise, 1000 quanta per pixel at full exposure);
``grid`` (stationary anti-scatter grid lines, period 4 px, 3 % contrast, added after the blur);
``collimation`` (an unexposed border of 12 % per side); ``crop`` (the central half only).
MONOCHROME1 is covered by tests/blur_gate (the gate scores the image as displayed).

Reported per data set, condition and blur length: ROC AUC of the score (blurred vs the same
condition unblurred), the share flagged at the configured thresholds, and the false-blur rate on
unblurred images. Usage: ``python -m models.evaluate_blur_gate [--data ../shared/data] [--out
FILE.json] [--limit N]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur_data import load_gray, split_by_patient
from models.metrics import roc_auc

F32 = NDArray[np.float32]
LENGTHS = (0.0, 3.0, 5.0, 8.0, 12.0)
NOISE_PHOTONS = 1000.0
CONDITIONS = ("clean", "noise", "grid", "collimation", "crop")


def _images(data: Path, limit: int) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    mhh = data / "cxr-radiographs-mhh"
    if (mhh / "metadata.csv").exists():
        out["mhh-test"] = [mhh / p for p in split_by_patient(mhh).test][:limit]
    lab = data / "cxr-labeled"
    if (lab / "labels.csv").exists():
        with (lab / "labels.csv").open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
        for prefix in ("nih1024", "kermany224"):
            paths = [lab / r["path"] for r in rows if r["path"].startswith(prefix + "/")]
            if paths:
                out[f"cxr-labeled-{prefix}"] = paths[:limit]
    return out


def _condition(img: F32, blurred: F32, cond: str, rng: np.random.Generator) -> F32:
    """Apply the non-blur condition to an (already blurred or not) image in [0, 1]."""
    a = blurred
    if cond == "grid":
        cols = np.arange(a.shape[1])
        a = np.clip(a + 0.03 * np.sign(np.sin(2 * np.pi * cols / 4.0))[None, :], 0, 1)
    elif cond == "collimation":
        a = a.copy()
        h, w = a.shape
        mh, mw = int(0.12 * h), int(0.12 * w)
        a[:mh], a[h - mh :], a[:, :mw], a[:, w - mw :] = 1.0, 1.0, 1.0, 1.0
    elif cond == "crop":
        h, w = a.shape
        a = a[h // 4 : h - h // 4, w // 4 : w - w // 4]
    return np.asarray(a, dtype=np.float32)


def evaluate(data: Path, limit: int = 40, seed: int = 0) -> dict[str, Any]:
    from node.config import BlurGateSettings
    from node.pipeline.blur_gate import decide, score_image

    gate = BlurGateSettings()
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {
        "thresholds": {"blurred_from": gate.blurred_from, "severe_from": gate.severe_from},
        "lengths_px": list(LENGTHS),
        "sets": {},
    }
    for name, paths in _images(data, limit).items():
        scores: dict[str, dict[float, list[float]]] = {
            c: {L: [] for L in LENGTHS} for c in CONDITIONS
        }
        seconds: list[float] = []
        for path in paths:
            img = load_gray(path).astype(np.float32) / 255.0
            for L in LENGTHS:
                angle = float(rng.uniform(0.0, 180.0))
                for cond in CONDITIONS:
                    noise = NoiseSpec(photons=NOISE_PHOTONS) if cond == "noise" else None
                    b = (
                        img
                        if L == 0 and noise is None
                        else simulate_motion_blur(
                            img, linear_kernel(max(L, 1.0), angle), rng, noise=noise
                        )
                    )
                    t0 = time.perf_counter()
                    scores[cond][L].append(score_image(_condition(img, b, cond, rng), gate))
                    seconds.append(time.perf_counter() - t0)
        table: dict[str, Any] = {}
        for cond in CONDITIONS:
            neg = scores[cond][0.0]
            row: dict[str, Any] = {
                "false_blur_rate": float(np.mean([decide(v, gate) != "sharp" for v in neg])),
                "mean_score": {str(L): float(np.mean(scores[cond][L])) for L in LENGTHS},
            }
            for L in LENGTHS[1:]:
                pos = scores[cond][L]
                row[f"auc_{L:g}px"] = roc_auc([0] * len(neg) + [1] * len(pos), neg + pos)
                row[f"flagged_{L:g}px"] = float(np.mean([decide(v, gate) != "sharp" for v in pos]))
            pos5 = [v for L in LENGTHS if L >= 5 for v in scores[cond][L]]
            row["auc_ge5px"] = roc_auc([0] * len(neg) + [1] * len(pos5), neg + pos5)
            # the threshold this set would need for 5 % false blur, and what it then catches
            t5 = float(np.quantile(neg, 0.95))
            row["threshold_5pct_false_blur"] = t5
            row["flagged_ge5px_at_that"] = float(np.mean([v > t5 for v in pos5]))
            table[cond] = row
        report["sets"][name] = {
            "images": len(paths),
            "size": list(load_gray(paths[0]).shape) if paths else None,
            "score_seconds_median": float(np.median(seconds)) if seconds else None,
            "conditions": table,
        }
    return report


def markdown(report: dict[str, Any]) -> str:
    t = report["thresholds"]
    lines = [
        f"Thresholds: blurred from {t['blurred_from']}, severe from {t['severe_from']}.",
        "",
        "| set (images, size) | condition | AUC 3 px | AUC 5 px | AUC 8 px | AUC 12 px "
        "| AUC ≥5 px | false-blur rate | flagged 3/5/8/12 px | 5 % false-blur threshold "
        "(≥5 px flagged there) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in report["sets"].items():
        for cond, r in s["conditions"].items():
            flagged = "/".join(f"{r[f'flagged_{L:g}px']:.2f}" for L in LENGTHS[1:])
            lines.append(
                f"| {name} ({s['images']}, {s['size'][0]}×{s['size'][1]}) | {cond} | "
                f"{r['auc_3px']:.3f} | {r['auc_5px']:.3f} | {r['auc_8px']:.3f} | "
                f"{r['auc_12px']:.3f} | {r['auc_ge5px']:.3f} | {r['false_blur_rate']:.2f} | "
                f"{flagged} | {r['threshold_5pct_false_blur']:.3f} "
                f"({r['flagged_ge5px_at_that']:.2f}) |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=40, help="images per data set")
    args = ap.parse_args(argv)
    report = evaluate(args.data, args.limit)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
