"""The fifty-fourth round (docs/models.md, "The fallback leaves the shadows out of its fit, at
real frames' size"): the node as built (``sharpray-blind-wiener 0.34.0``) against
``MotionPolicy.fallback_leaves_shadows`` (its masked steps now the node's float32 ones) on
detector-like scenes of 1024² at 0.2 mm/px, the collimation and marker drawn before and after
the blur (:func:`fixed_collimation_look.scenes`).

Sets: Kermany every 200th train image from the 20th (25, never used by a correction round; the
224 px JPEG ×5 upsampled to 1024² with its power law continued, :func:`models.detector_texture.
continued`) and (``--mhh``) MHH every third unnamed training image from the first (seen by the
fifty-first round's validation; :func:`detector_scenes.frames`). Seeds by the image's name and
``shadows-fifty-fourth``.

Run: ``PYTHONPATH=../.. python shadows_round.py --out runs/r54-k0.json --part 0/2`` (and
``1/2``, and ``--mhh`` for the MHH set), then ``--summary runs/r54-*.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import KERMANY
from detector_scenes import frames, parser, part_of
from fitting_cases import read_rows
from fixed_collimation_look import MOTION_MM, ORDERS, compared, validate
from round_design import kermany_train_every_200th, unnamed_mhh_images

from models.deblur_data import load_gray
from models.detector_texture import continued
from models.tune_deconvolution import collimate

SEED_KEY = "shadows-fifty-fourth"
SIDE_PX = 1024
#: under this many flagged cases with sharp shadows, a set's condition (1) is on harm alone
MIN_FLAGGED = 30


def kermany_1024(name: str, seed: int) -> list[tuple[str, np.ndarray]]:
    """(scene, sharp frame) of one Kermany image: ×5 upsampled to 1024², open and collimated."""
    base = load_gray(KERMANY / name).astype(np.float32) / 255.0
    open_frame = continued(base, SIDE_PX, seed, up=5)
    return [("open", open_frame), ("collimated", collimate(open_frame))]


def run(names: list[str], mhh: bool, out: Path) -> None:
    """The rows: :func:`fixed_collimation_look.validate` (its ``BUILT``, 0.34.0, against its
    ``CANDIDATE``, the default since 0.39.0 / 0.40.0) on this round's scenes and seeds."""
    validate(names, mhh, out, frames if mhh else kermany_1024, SEED_KEY)


def summary(rows: list[dict[str, Any]]) -> None:
    """Per set and shadow order, the rule's conditions: after the blur over the flagged cases
    (on harm alone where fewer than :data:`MIN_FLAGGED`), before the blur over all cases."""
    for name in sorted({r["set"] for r in rows}):
        for order in ORDERS:
            every = [r for r in rows if r["set"] == name and r["order"] == order]
            flagged = [r for r in every if r["flagged"]]
            sel = flagged if order == "after" else every
            c = compared(sel, "shadows")
            hn, hc = c.node_harmed, c.candidate_harmed
            if order == "after" and len(flagged) >= MIN_FLAGGED:
                met = c.delta >= 1.0 and hc < hn / 2
            elif order == "after":
                met = hc <= hn
            else:
                met = c.delta >= -0.1 and hc <= hn + 1
            over = "flagged" if order == "after" else "all"
            print(
                f"{name} shadows {order} the blur: {len(every)} cases, {len(flagged)} flagged; "
                f"over {over}: node {c.node:+.3f} (harmed {hn}), shadows {c.candidate:+.3f} "
                f"(harmed {hc}), Δ {c.delta:+.3f}: met {met}"
            )
            for mm in MOTION_MM:
                d = [r["shadows"] - r["node"] for r in sel if r["mm"] == mm]
                n = [r["node"] for r in sel if r["mm"] == mm]
                if d:
                    print(f"    {mm:g} mm: node {np.mean(n):+.3f}, Δ {np.mean(d):+.3f} ({len(d)})")


def main() -> None:
    ap = parser()
    ap.add_argument("--mhh", action="store_true", help="the MHH set (default: Kermany)")
    args = ap.parse_args()
    if args.summary:
        summary(read_rows(args.summary))
        return
    images = unnamed_mhh_images()[0::3] if args.mhh else kermany_train_every_200th(20)
    run(part_of(images, args.part, args.out), args.mhh, args.out)


if __name__ == "__main__":
    main()
