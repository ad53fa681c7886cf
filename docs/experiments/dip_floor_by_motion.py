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

from dataclasses import replace
from pathlib import Path
from typing import Any

from detector_scenes import part_of
from fitting_cases import read_rows
from look_rows import save
from outside_blur import gain
from round_design import (
    cases_of,
    mode_and_names,
    round_parser,
    spacing_of,
    summarise_against_node,
)

from models.deblur import MotionPolicy, assess_motion, deconvolve

LABELS = ("node", "motion", "hybrid")
#: the validation's images: every 200th of the train split from this one (sorted by path; none
#: used by any correction round: the rounds' every 200th from the first, the kernel-magnitude
#: validation's every 50th from the 25th)
VALIDATION_OFFSET = 100


def run(names: list[str], mode: str, out: Path) -> None:
    node = MotionPolicy()
    motion = replace(node, estimate_eta_follows_noise=True, estimate_eta_follows_motion=True)
    spacing = spacing_of(mode)
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in cases_of(name, mode, "dip-floor-by-motion"):
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
    summarise_against_node(
        read_rows(paths),
        LABELS[1:],
        7,
        lambda mode, sel: f"{mode}: {len(sel)} cases from {len({r['image'] for r in sel})} images",
        lambda label, sel: (f"flagged {sum(r[f'{label}_flagged'] for r in sel)} ", ""),
    )


def main() -> None:
    args = round_parser().parse_args()
    if args.summary:
        summary(args.summary)
        return
    mode, names = mode_and_names(args, VALIDATION_OFFSET)
    run(part_of(names, args.part, args.out), mode, args.out)


if __name__ == "__main__":
    main()
