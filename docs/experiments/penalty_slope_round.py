"""The thirty-eighth round: the Wiener penalty's slope from the frame's anatomy.

The node regularises with ``λ·|2πf|``; on frames whose anatomy falls steeply (the Kermany
scenes, β ≈ 5–7 across the motion) that leaves the high frequencies, where only noise is, too
little penalised, and even the true kernel harms (``true_length_look.py``, ``penalty_power_look.py``).
Candidates (``MotionPolicy.penalty_steep_beta`` / ``penalty_slope_offset`` /
``penalty_steep_power``; λ matched at 0.1 cycles/px; docs/models.md, the thirty-eighth round):

- ``steep5``: power 3 where β across the motion is at least 5;
- ``follow2``: power β − 2 within 1 … 3 on every frame.

Every case counted (0 dB where the node leaves the frame unflagged; the decision is the node's).
Default: the fitting look on the thirty-sixth round's Kermany cases (26 images; its seeds);
``--look``: its 21 MHH images; ``--validation``: 25 Kermany train images no round has used (every
200th from the 150th), their own seeds; ``--crops``: the check at ≈0.6 mm/px (the 20 fitting
images' 384² crops of ``fitting_cases``). ``--candidates`` limits the candidates run.

Run: ``PYTHONPATH=. python docs/experiments/penalty_slope_round.py --out runs/ps-k0.json --part
0/2`` (and ``1/2``; ``--look`` / ``--validation`` / ``--crops`` likewise), then ``--summary
runs/ps-*.json``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import KERMANY, KERMANY_EVERY, kermany_frames, round_cases, round_images
from detector_scenes import DATA, SPACING_MM, Case, image_cases, parser, part_of
from fitting_cases import cases as crop_cases
from fitting_cases import names as fitting_names
from fitting_cases import read_rows
from kernel_consistency import VALIDATION_NOISES
from look_rows import by_mm, case_groups, save, worst_group
from outside_blur import KINDS, MOTION_MM, gain

from models.deblur import MotionPolicy, assess_motion, deconvolve

NODE = MotionPolicy()
CANDIDATES = {
    "steep5": replace(NODE, penalty_steep_beta=5.0),
    "follow2": replace(NODE, penalty_steep_beta=0.0, penalty_slope_offset=2.0),
}
#: the validation's images: every 200th of the train split from this one (sorted by path)
VALIDATION_OFFSET = 150


def validation_images() -> list[str]:
    """Every 200th Kermany train image from the 150th: none used by any correction round (the
    rounds' every 200th from the first and from the 100th, the kernel-magnitude validation's
    every 50th from the 25th)."""
    with (KERMANY / "labels.csv").open(newline="", encoding="utf-8") as f:
        train = sorted(r["path"] for r in csv.DictReader(f) if r["split"] == "train")
    return train[VALIDATION_OFFSET::KERMANY_EVERY]


def crop_case_list(name: str) -> Iterator[Case]:
    """The check at ≈0.6 mm/px: :func:`fitting_cases.cases`, as scene cases."""
    for c in crop_cases(DATA, name, NODE):
        noise = "none" if c.quanta is None else f"{c.quanta:.0e}".replace("+0", "")
        yield Case(name, "crop", c.sharp, c.kind, c.px * 0.6, noise, c.kernel, c.blurred)


def cases_of(name: str, mode: str) -> Iterator[Case]:
    if mode == "0.6mm":
        return crop_case_list(name)
    if mode == "validation":
        return image_cases(
            name, kermany_frames, "penalty-slope", KINDS, MOTION_MM, VALIDATION_NOISES
        )
    return round_cases(name, mode == "mhh")


def run(names: list[str], mode: str, out: Path, labels: list[str]) -> None:
    spacing = 0.6 if mode == "0.6mm" else SPACING_MM
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in cases_of(name, mode):
            a = assess_motion(c.blurred, spacing, NODE)
            row: dict[str, Any] = c.row(set=mode, flagged=a.blurred)
            for label in ("node", *labels):
                policy = NODE if label == "node" else CANDIDATES[label]
                row[label] = 0.0
                if a.blurred:
                    d = deconvolve(c.blurred, a, policy)
                    row[label] = gain(c.sharp, c.blurred, d.image)
                    row[f"{label}_power"] = d.penalty_power
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for mode in sorted({r["set"] for r in rows}):
        sel = [r for r in rows if r["set"] == mode]
        groups = case_groups(sel)
        node = np.array([r["node"] for r in sel])
        node_harmed = int(np.sum(node < -0.1))
        flagged = sum(r["flagged"] for r in sel)
        print(
            f"{mode}: {len(sel)} cases from {len({r['image'] for r in sel})} images, {flagged} flagged"
        )
        for label in ("node", *(k for k in CANDIDATES if k in sel[0])):
            v = np.array([r[label] for r in sel])
            harmed = int(np.sum(v < -0.1))
            steeper = sum(r.get(f"{label}_power") is not None for r in sel)
            line = (
                f"  {label:8s} mean over all {v.mean():+.3f} harmed {harmed} worst {v.min():+.2f} "
                f"steeper {steeper} | {by_mm(v, sel)}"
            )
            if label != "node":
                d, k = worst_group(v, node, groups)
                met = (harmed <= node_harmed / 2, v.mean() >= node.mean(), d >= -0.1)
                line += f" | worst group {d:+.3f} ({k}) | harmed≤half, mean, group: {met}"
            print(line)


def main() -> None:
    ap = parser()
    ap.add_argument("--look", action="store_true", help="the 21 MHH images instead of Kermany")
    ap.add_argument("--validation", action="store_true", help="the fresh Kermany images")
    ap.add_argument("--crops", action="store_true", help="the 20 fitting images at 0.6 mm/px")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    if args.crops:
        mode, names = "0.6mm", fitting_names(DATA, (0, 1))
    elif args.validation:
        mode, names = "validation", validation_images()
    else:
        mode, names = ("mhh" if args.look else "kermany"), round_images(args.look)
    run(part_of(names, args.part, args.out), mode, args.out, args.candidates)


if __name__ == "__main__":
    main()
