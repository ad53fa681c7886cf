"""The thirty-seventh round: the estimate's dip floor from the anatomy each motion leaves.

The noise-aware template of the twenty-seventh session (``MotionPolicy.estimate_eta_follows_noise``)
takes each ring's measured power as the anatomy there; but the blur took power out of the ring,
the more the longer the motion, so for long candidates the dip floor comes out too high and the
estimates 1–12 % short. With ``estimate_eta_follows_motion`` too, the floor of candidate L on
ring r is ``mean_φ sinc²(L·r·cos φ)`` × noise / (ring power − noise): the anatomy L would have
blurred into that ring's power. Candidates (docs/models.md, the thirty-seventh round):

- ``motion``: the node with both options (its own decision and kernel);
- ``hybrid``: the node's decision (its plain estimate flags the frame) with ``motion``'s kernel.

Every case counted, 0 dB where a policy leaves the frame unflagged (it comes back unchanged).
Default: the fitting look on the thirty-sixth round's Kermany cases (26 images, every 200th of
the train split from the first; its seeds); ``--look``: its 21 MHH images; ``--validation``:
25 Kermany train images no round has used (every 200th from the 100th), their own seeds;
``--crops``: the check at ≈0.6 mm/px (the 20 fitting images' 384² crops of ``fitting_cases``).

Run: ``PYTHONPATH=. python docs/experiments/dip_floor_by_motion.py --out runs/dm-0.json --part
0/2`` (and ``1/2``; ``--look`` / ``--validation`` likewise), then ``--summary runs/dm-*.json``.
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

LABELS = ("node", "motion", "hybrid")
#: the validation's images: every 200th of the train split from this one (sorted by path)
VALIDATION_OFFSET = 100


def validation_images() -> list[str]:
    """Every 200th Kermany train image from the 100th: none used by any correction round (the
    rounds' every 200th from the first, the kernel-magnitude validation's every 50th from the
    25th)."""
    with (KERMANY / "labels.csv").open(newline="", encoding="utf-8") as f:
        train = sorted(r["path"] for r in csv.DictReader(f) if r["split"] == "train")
    return train[VALIDATION_OFFSET::KERMANY_EVERY]


def cases_of(name: str, mode: str) -> Iterator[Case]:
    if mode == "0.6mm":
        return crop_case_list(name)
    if mode == "validation":
        return image_cases(
            name, kermany_frames, "dip-floor-by-motion", KINDS, MOTION_MM, VALIDATION_NOISES
        )
    return round_cases(name, mode == "mhh")


def crop_case_list(name: str) -> Iterator[Case]:
    """The check at ≈0.6 mm/px: :func:`fitting_cases.cases` (a fitting image's 384² crop,
    straight and curved 3 / 6 / 10 px, noise none / 3·10⁴ / 10⁴; its seed), as scene cases."""
    for c in crop_cases(DATA, name, MotionPolicy()):
        noise = "none" if c.quanta is None else f"{c.quanta:.0e}".replace("+0", "")
        yield Case(name, "crop", c.sharp, c.kind, c.px * 0.6, noise, c.kernel, c.blurred)


def run(names: list[str], mode: str, out: Path) -> None:
    node = MotionPolicy()
    motion = replace(node, estimate_eta_follows_noise=True, estimate_eta_follows_motion=True)
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in cases_of(name, mode):
            spacing = 0.6 if mode == "0.6mm" else SPACING_MM
            a = assess_motion(c.blurred, spacing, node)
            b = assess_motion(c.blurred, spacing, motion)
            row: dict[str, Any] = c.row(
                set=mode,
                node_flagged=a.blurred,
                motion_flagged=b.blurred,
                hybrid_flagged=a.blurred,
                node_mm=a.motion_mm,
                motion_mm=b.motion_mm,
            )
            plain = deconvolve(c.blurred, a, node).image if a.blurred else c.blurred
            own = deconvolve(c.blurred, b, motion).image if b.blurred else c.blurred
            row["node"] = gain(c.sharp, c.blurred, plain) if a.blurred else 0.0
            row["motion"] = gain(c.sharp, c.blurred, own) if b.blurred else 0.0
            row["hybrid"] = 0.0
            if a.blurred:
                mixed = replace(a, estimate=b.estimate) if b.estimate.length_px >= 1.0 else a
                row["hybrid"] = gain(c.sharp, c.blurred, deconvolve(c.blurred, mixed, node).image)
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for mode in sorted({r["set"] for r in rows}):
        sel = [r for r in rows if r["set"] == mode]
        groups = case_groups(sel)
        node = np.array([r["node"] for r in sel])
        node_harmed = int(np.sum(node < -0.1))
        print(f"{mode}: {len(sel)} cases from {len({r['image'] for r in sel})} images")
        for label in LABELS:
            v = np.array([r[label] for r in sel])
            flagged = sum(r[f"{label}_flagged"] for r in sel)
            harmed = int(np.sum(v < -0.1))
            line = (
                f"  {label:7s} flagged {flagged} mean over all {v.mean():+.3f} harmed {harmed} "
                f"worst {v.min():+.2f} | {by_mm(v, sel)}"
            )
            if label != "node":
                d, k = worst_group(v, node, groups)
                met = (
                    harmed <= node_harmed / 2,
                    v.mean() >= node.mean(),
                    d >= -0.1,
                )
                line += f" | worst group {d:+.3f} ({k}) | harmed≤half, mean, group: {met}"
            print(line)


def main() -> None:
    ap = parser()
    ap.add_argument("--look", action="store_true", help="the 21 MHH images instead of Kermany")
    ap.add_argument("--validation", action="store_true", help="the fresh Kermany images")
    ap.add_argument("--crops", action="store_true", help="the 20 fitting images at 0.6 mm/px")
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
    run(part_of(names, args.part, args.out), mode, args.out)


if __name__ == "__main__":
    main()
