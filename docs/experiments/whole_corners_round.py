"""The fifty-seventh round (docs/models.md, "The shadows' corners"): the node as built
(``sharpray-blind-wiener 0.42.0``) against the same with the shadows found widened by a square
(``MotionPolicy.shadows_whole_corners``: a marker's corners left out of the fit too, and out of
the estimate's windows), on scenes whose shadows were drawn before and after the blur
(:func:`fixed_collimation_look.scenes`; straight and curved 1 / 2 / 4 mm, no noise and Poisson
10⁴), each gate's decision and the anatomy gain after it (0 where not flagged).

Sets: (a) Kermany 1024² (×5, :func:`shadows_round.kermany_1024`) of every 200th train image from
the 120th, (b) Kermany 672² (:func:`consistency_balance.kermany_frames`) from the 140th — both
never used; seeds ``shadows-fifty-seventh``; (c) ``--mhh``: MHH every third unnamed training
image from the first as they are (640 px, 0.6 mm/px; seen: no MHH image is unused), seeds
``wiener-shadows-look``.

Run: ``PYTHONPATH=../.. python whole_corners_round.py --set a --out runs/r57-a0.json --part
0/2`` (and ``1/2``; ``--set b``, ``--set c``), then ``--summary runs/r57-*.json``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames
from detector_scenes import parser, part_of
from fitting_cases import read_rows
from fixed_collimation_look import MOTION_MM, ORDERS, WEIGHTS, compared, scenes
from gate_shadows_look import judged_row
from look_rows import save
from round_design import kermany_train_every_200th, unnamed_mhh_images
from shadows_round import kermany_1024
from wiener_shadows_look import mhh_frames

from models.deblur import MotionPolicy
from models.kernel_shape import load_magnitude_model

NODE = MotionPolicy()  # 0.42.0
CANDIDATE = replace(NODE, shadows_whole_corners=True)
SEED_KEY = "shadows-fifty-seventh"
SETS = {
    "a": ("kermany-1024", kermany_1024, 0.2, SEED_KEY),
    "b": ("kermany-672", kermany_frames, 0.2, SEED_KEY),
    "c": ("mhh-640", mhh_frames, 0.6, "wiener-shadows-look"),
}


def run(which: str, names: list[str], out: Path) -> None:
    label, frames_of, spacing, key = SETS[which]
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    policies = {"node": NODE, "corners": CANDIDATE}
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in scenes(name, frames_of, key, spacing):
            rows.append(judged_row(c, spacing, policies, first, detector, set=label))
        save(out, rows, name)


def met(name: str, order: str, delta: float, hn: int, hc: int) -> bool:
    """The rule for one set and shadow order."""
    if name == "kermany-1024" and order == "after":
        return delta >= 0.1 and hc <= hn
    if order == "after":
        return delta >= -0.05 and hc <= hn
    return delta >= -0.05 and hc <= hn + 1


def summary(rows: list[dict[str, Any]]) -> None:
    for name in sorted({r["set"] for r in rows}):
        for order in ORDERS:
            sel = [r for r in rows if r["set"] == name and r["order"] == order]
            c = compared(sel, "corners")
            fn = sum(r["flagged_node"] for r in sel)
            fc = sum(r["flagged_corners"] for r in sel)
            by_mm = " / ".join(
                f"{np.mean([r['node'] for r in sel if r['mm'] == mm]):+.2f} → "
                f"{np.mean([r['corners'] for r in sel if r['mm'] == mm]):+.2f}"
                for mm in MOTION_MM
            )
            ok = met(name, order, c.delta, c.node_harmed, c.candidate_harmed)
            print(
                f"{name}, shadows {order}: {len(sel)} cases, flagged {fn} → {fc}; node "
                f"{c.node:+.3f} (harmed {c.node_harmed}) → corners {c.candidate:+.3f} (harmed "
                f"{c.candidate_harmed}), Δ {c.delta:+.3f}; by mm {by_mm}; rule met {ok}"
            )


def main() -> None:
    ap = parser()
    ap.add_argument("--set", choices=sorted(SETS), default="a")
    args = ap.parse_args()
    if args.summary:
        summary(read_rows(args.summary))
        return
    if args.set == "c":
        names = unnamed_mhh_images()[::3]
    else:
        names = kermany_train_every_200th(120 if args.set == "a" else 140)
    run(args.set, part_of(names, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
