"""A look for the next round: the straight estimate's kernel shortened where the estimate is short
(docs/models.md, after the thirty-sixth round).

On the thirty-sixth round's Kermany scenes the node's harmed frames were mostly 1 mm of motion
whose estimate was somewhat too long (a median 1.35× the true length; the others 1.00×). A
too-long kernel inverts detail that is not blurred (ringing, clipping); a too-short one only
leaves some blur. Per flagged case (``--look``: the 21 MHH images; default: the 26 Kermany
images; the round's seeds): the node's gain, and the gains with the estimate's length ×
``FACTORS`` (the same decision otherwise: λ, ringing check and fallback as the node computes them
for the shorter kernel), with the estimated and the true length. The summary applies a factor
(or leaves the frame uncorrected, "×0") only to estimates up to a length. Nothing is chosen here.

Run: ``PYTHONPATH=. python docs/experiments/shorter_kernel_look.py --out runs/sk-0.json --part
0/2`` (and ``1/2``), then ``--summary runs/sk-*.json``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_main
from detector_scenes import SPACING_MM
from fitting_cases import read_rows
from look_rows import against_node, by_mm, case_groups, flagged_corrections, save
from outside_blur import gain

from models.deblur import MotionPolicy, deconvolve

FACTORS = (0.7, 0.8, 0.9)
UP_TO_PX = (6.0, 8.0, 10.0, 14.0, 1e9)


def run(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in names:
        for c, a, d in flagged_corrections(name, look, node):
            row: dict[str, Any] = c.row(
                method=d.method,
                length_px=a.estimate.length_px,
                true_px=c.mm / SPACING_MM,
                node=gain(c.sharp, c.blurred, d.image),
            )
            for f in FACTORS:
                est = replace(a.estimate, length_px=a.estimate.length_px * f)
                img = deconvolve(c.blurred, replace(a, estimate=est), node).image
                row[f"x{f:g}"] = gain(c.sharp, c.blurred, img)
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    node = np.array([r["node"] for r in rows])
    length = np.array([r["length_px"] for r in rows])
    print(f"{len(rows)} flagged, node mean {node.mean():+.3f} harmed {int(np.sum(node < -0.1))}")
    groups = case_groups(rows)
    for f in (*FACTORS, 0.0):  # 0: those frames left uncorrected
        shorter = np.array([r[f"x{f:g}"] if f else 0.0 for r in rows])
        for top in UP_TO_PX:
            v = np.where(length <= top, shorter, node)
            print(f"×{f:g} up to {top:g} px: {against_node(v, node, groups)} | {by_mm(v, rows)}")


def main() -> None:
    round_main(run, summary, "the 21 MHH images instead of Kermany")


if __name__ == "__main__":
    main()
