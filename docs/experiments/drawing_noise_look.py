"""A look after the forty-fifth round: the drawing chosen only from what the noise leaves.

The round's chooser (:func:`models.deblur.drawing_fits`, every bin of 0.03–0.49 cycles/px)
picked the bilinear drawing for most nearest-drawn detector-scale frames with Poisson noise and
lost up to 0.15 dB a group there (collimated straight 1 mm at 10⁵): the noise fills the kernel's
dips, where the drawings differ. Here, on the round's cases (seen now): the MHH detector-like
scenes' straight motion (every noise) and the drawing cases at ≈0.6 mm/px, each flagged case
corrected with its estimate drawn all three ways (as the round corrected each set), and the fits
of each drawing over the band as the round read it (``all``) and over only the bins whose power
stands at least ``k`` times above the frame's noise floor (the 10th percentile of the power at
0.35–0.49 cycles/px, where a blurred frame holds little but noise), k = 2, 4, 8.

Run: ``PYTHONPATH=. python docs/experiments/drawing_noise_look.py --out runs/dn-m0.json --part
0/2`` (and ``1/2``; ``--drawings`` likewise), then ``--summary runs/dn-*.json``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import SPACING_MM, part_of
from drawing_round import DRAWING_NOISES, MHH_VALIDATION_OFFSET, NODE, ROUND, drawing_cases
from fitting_cases import read_rows
from look_rows import save
from outside_blur import gain
from round_design import cases_of, round_parser, unnamed_mhh_images

from models.blur import (
    LINE_DRAWINGS,
    to_exposure,
)
from models.blur_estimate import MotionEstimate
from models.deblur import (
    assess_motion,
    deconvolve,
    drawing_fits,
)
from models.kernel_shape import load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE

MASKS = {"all": 0.0, "k2": 2.0, "k4": 4.0, "k8": 8.0}


def fits(exposure: np.ndarray, length: float, angle: float) -> dict[str, float]:
    """Each drawing's fit (:func:`models.deblur.drawing_fits`) for each of :data:`MASKS` (0:
    every bin of the band; k: the bins at least k times the noise floor)."""
    est = MotionEstimate(length, angle, 1.0)
    out: dict[str, float] = {}
    for mask_name, k in MASKS.items():
        found = drawing_fits(exposure, est, k if k > 0 else None)
        out.update({f"{mask_name}_{d}": v for d, v in found.items()})
    return out


def row_for(
    sharp: np.ndarray, blurred: np.ndarray, spacing: float, magnitude: Any
) -> dict[str, Any]:
    a = assess_motion(blurred, spacing, NODE)
    row: dict[str, Any] = {"flagged": a.blurred}
    if not a.blurred:
        return row
    e = to_exposure(np.asarray(blurred, dtype=np.float64), NODE.log_range)
    row.update(fits(e, a.estimate.length_px, a.estimate.angle_deg))
    for drawing in LINE_DRAWINGS:
        drawn = replace(a, estimate=replace(a.estimate, drawing=drawing))
        d = deconvolve(blurred, drawn, NODE, magnitude=magnitude)
        row[f"gain_{drawing}"] = gain(sharp, blurred, d.image)
    return row


def run(out: Path, part: str, drawings: bool) -> None:
    names = part_of(unnamed_mhh_images()[MHH_VALIDATION_OFFSET::3], part, out)
    rows: list[dict[str, Any]] = []
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE) if drawings else None
    for name in names:
        if drawings:  # the round's drawing cases, drawn the same way
            sharp, cases = drawing_cases(name)
            for px, _angle, mode, noise, b in cases:
                row = {"set": "drawings", "image": name, "group": f"{px} px {mode} {noise}"}
                rows.append(row | row_for(sharp, b, 0.6, magnitude))
        else:
            for c in cases_of(name, "validation-mhh", ROUND.seed_key):
                if c.kind != "straight":
                    continue
                group = f"{c.scene} straight {c.mm:g} mm {c.noise}"
                row = {"set": "scenes", "image": name, "group": group}
                rows.append(row | row_for(c.sharp, c.blurred, SPACING_MM, None))
        save(out, rows, name)


def choose(r: dict[str, Any], mask: str, margin: float) -> str:
    f = {d: r[f"{mask}_{d}"] for d in LINE_DRAWINGS}
    best = "nearest"
    for d, v in f.items():
        if np.isfinite(v) and (
            not np.isfinite(f[best]) or v > f[best] + (margin if best == "nearest" else 0)
        ):
            best = d
    return best


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for s in ("drawings", "scenes"):
        sel = [r for r in rows if r["set"] == s]
        if not sel:
            continue
        groups = sorted({r["group"] for r in sel})
        print(f"{s}: {len(sel)} cases")
        for mask in MASKS:
            for margin in (0.0, 0.02, 0.05):
                per = {}
                for g in groups:
                    gs = [r for r in sel if r["group"] == g]
                    node = np.mean([r.get("gain_nearest", 0.0) for r in gs])
                    ch = np.mean(
                        [r[f"gain_{choose(r, mask, margin)}"] if r["flagged"] else 0.0 for r in gs]
                    )
                    per[g] = ch - node
                worst = min(per, key=per.get)
                line = f"  {mask} margin {margin:.2f}: worst group {per[worst]:+.3f} ({worst})"
                if s == "drawings":
                    for mode in LINE_DRAWINGS:
                        for noise in DRAWING_NOISES:
                            v = [per[g] for g in groups if g.endswith(f"{mode} {noise}")]
                            line += f" | {mode[:4]} {noise} {np.mean(v):+.3f}"
                else:
                    for noise in ("none", "1e5", "2e4", "1e4"):
                        v = [per[g] for g in groups if g.endswith(f" {noise}")]
                        line += f" | {noise} {np.mean(v):+.3f}"
                print(line)


def main() -> None:
    ap = round_parser()
    ap.add_argument("--drawings", action="store_true")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(args.out, args.part, args.drawings)


if __name__ == "__main__":
    sys.exit(main())
