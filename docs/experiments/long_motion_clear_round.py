"""The fifty-sixth round (docs/models.md, "Windows clear of the shadows, for longer motion"):
the node as built (``sharpray-blind-wiener 0.40.0``) against the same with the motion estimate's
windows clear of the shadows (``MotionPolicy.estimate_avoids_shadows``), that estimate taken only
where it reads at least T mm of motion (``MotionPolicy.clear_windows_from_mm``; shorter or none:
the gate as built). T is one of :data:`CANDIDATES_MM`.

Each case's row holds the gate as built and with the windows clear (flagged, motion in mm) and
the anatomy gain of 0.40.0's correction after either (0 where not flagged); a candidate's gain
is the clear one where the clear windows flag at least T mm, else the built one — exactly what
``assess_motion`` does with ``clear_windows_from_mm`` (tests/test_blur_estimate_shadows.py).

- ``--seen`` (the choice of T): the fifty-third round's Kermany 672² scenes (every 200th train
  image from the 90th, its seeds) and the fifty-fifth round's (from the 40th, its seeds);
- ``--validation``: Kermany 672² scenes of every 200th train image from the 80th (never used),
  ``--large``: 1024² scenes (×5 upsampled, as the fifty-fourth round) from the 60th (never
  used); seeds ``shadows-fifty-sixth``.

Run: ``PYTHONPATH=../.. python long_motion_clear_round.py --seen --out runs/r56-s0.json --part
0/2`` (and ``1/2``), then ``--summary runs/r56-s*.json``; alike with ``--validation [--large]``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames
from detector_scenes import SPACING_MM, parser, part_of
from fitting_cases import read_rows
from fixed_collimation_look import MOTION_MM, ORDERS, WEIGHTS, compared, scenes
from gate_shadows_look import _gain
from look_rows import save
from round_design import kermany_train_every_200th
from shadows_round import kermany_1024

from models.deblur import MotionPolicy, assess_motion
from models.kernel_shape import load_magnitude_model

BUILT = replace(MotionPolicy(), estimate_avoids_shadows=False)  # 0.40.0
#: the fifty-fifth round's form (every length, every pixel size)
CLEAR = replace(BUILT, estimate_avoids_shadows=True, clear_windows_from_mm=None)
#: the round's candidates for T (mm)
CANDIDATES_MM = (1.5, 2.0)
SEEN = {"shadows-fifty-third": 90, "shadows-fifty-fifth": 40}
SEED_KEY = "shadows-fifty-sixth"


def run(keyed: list[str], large: bool, out: Path) -> None:
    """Rows of the images ``keyed`` ("seed key|name")."""
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    rows: list[dict[str, Any]] = []
    for item in keyed:
        key, name = item.split("|")
        for c in scenes(name, kermany_1024 if large else kermany_frames, key):
            row = c.row(set=f"{'kermany-1024' if large else 'kermany-672'} {key}")
            for label, policy in (("node", BUILT), ("clear", CLEAR)):
                a = assess_motion(c.blurred, SPACING_MM, policy)
                row[f"flagged_{label}"] = a.blurred
                row[f"mm_{label}"] = a.motion_mm
                row[label] = _gain(c, a, BUILT, first, detector)
            rows.append(row)
        save(out, rows, name)


def with_candidates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with each candidate's gain and flag (``T1.5``, ``flagged_T1.5``, …)."""
    for r in rows:
        for t in CANDIDATES_MM:
            takes_clear = r["flagged_clear"] and r["mm_clear"] >= t
            r[f"T{t:g}"] = r["clear"] if takes_clear else r["node"]
            r[f"flagged_T{t:g}"] = r["flagged_clear"] if takes_clear else r["flagged_node"]
    return rows


def rule(large: bool, order: str, n: int, delta: float, hn: int, hc: int) -> bool:
    """The validation rule's condition for one set and shadow order (the fifty-fifth round's)."""
    if large:
        return delta >= -0.1 and hc <= hn + 1
    if order == "after":
        return delta >= 0.5 and hc <= 0.15 * n
    return delta >= 0.0 and hc <= hn + 1


def summary(rows: list[dict[str, Any]]) -> None:
    """Per set and shadow order, each candidate against 0.40.0 (means over all cases, harmed
    < −0.1 dB), by length, and the rule's condition; then the choice over all sets."""
    rows = with_candidates(rows)
    for name in sorted({r["set"] for r in rows}):
        for order in ORDERS:
            sel = [r for r in rows if r["set"] == name and r["order"] == order]
            fn = sum(r["flagged_node"] for r in sel)
            print(f"{name}, shadows {order} the blur: {len(sel)} cases, 0.40.0 flags {fn}")
            for label in ("clear", *(f"T{t:g}" for t in CANDIDATES_MM)):
                c = compared(sel, label)
                met = rule(
                    "1024" in name, order, len(sel), c.delta, c.node_harmed, c.candidate_harmed
                )
                fc = sum(r[f"flagged_{label}"] for r in sel)
                by_mm = " / ".join(
                    f"{np.mean([r[label] for r in sel if r['mm'] == mm]):+.2f}"
                    f" ({sum(r[label] < -0.1 for r in sel if r['mm'] == mm)})"
                    for mm in MOTION_MM
                )
                print(
                    f"  {label}: flags {fc}; 0.40.0 {c.node:+.3f} (harmed {c.node_harmed}), "
                    f"{label} {c.candidate:+.3f} (harmed {c.candidate_harmed}), "
                    f"Δ {c.delta:+.3f}; by mm {by_mm}; rule met {met}"
                )
    for t in CANDIDATES_MM:
        c = compared(rows, f"T{t:g}")
        print(f"all sets, T {t:g} mm: {c.candidate:+.3f} (harmed {c.candidate_harmed})")


def main() -> None:
    ap = parser()
    ap.add_argument("--seen", action="store_true", help="the choice of T on seen scenes")
    ap.add_argument("--validation", action="store_true", help="the fresh scenes")
    ap.add_argument("--large", action="store_true", help="with --validation: 1024²")
    args = ap.parse_args()
    if args.summary:
        summary(read_rows(args.summary))
        return
    if args.seen:
        keyed = [f"{k}|{n}" for k, o in SEEN.items() for n in kermany_train_every_200th(o)]
    elif args.validation:
        offset = 60 if args.large else 80
        keyed = [f"{SEED_KEY}|{n}" for n in kermany_train_every_200th(offset)]
    else:
        ap.error("--seen or --validation")
    run(part_of(keyed, args.part, args.out), args.validation and args.large, args.out)


if __name__ == "__main__":
    main()
