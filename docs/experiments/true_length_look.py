"""A look: is the Kermany scenes' 1 mm harm the estimate's length, or the filter?

On the thirty-sixth round's cases (seen; its seeds), straight motion of 1 mm only (5 px at 0.2
mm/px, where most of the harm is), the frames the node flags: the node's correction, and the
same with the estimate's length replaced by the true one (× 1.0 and × 1.2; the estimate's angle,
λ, ringing check and fallback recomputed for it as the node would). If the true length still
harms, the filter is what harms; if not, the length. Default: the 26 Kermany images; ``--look``:
the 21 MHH images. Nothing is chosen here.

Run: ``PYTHONPATH=. python docs/experiments/true_length_look.py --out runs/tl-k.json`` (and
``--look --out runs/tl-m.json``), then ``--summary runs/tl-*.json``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_cases, round_main
from detector_scenes import SPACING_MM
from fitting_cases import read_rows
from look_rows import by_set, means_by, save
from outside_blur import gain

from models.deblur import MotionPolicy, assess_motion, deconvolve

MM = 1.0
FACTORS = (1.0, 1.2)


def run(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in round_cases(name, look):
            if c.kind != "straight" or c.mm != MM:
                continue
            a = assess_motion(c.blurred, SPACING_MM, node)
            if not a.blurred:
                continue
            d = deconvolve(c.blurred, a, node)
            row = c.row(
                set="mhh" if look else "kermany",
                estimate_ratio=a.estimate.length_px * SPACING_MM / MM,
                method=d.method,
                node=gain(c.sharp, c.blurred, d.image),
            )
            for f in FACTORS:
                est = replace(a.estimate, length_px=f * MM / SPACING_MM)
                fixed = deconvolve(c.blurred, replace(a, estimate=est), node)
                row[f"true{f:g}"] = gain(c.sharp, c.blurred, fixed.image)
                row[f"true{f:g}_method"] = fixed.method
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for s, sel in by_set(rows):
        ratio = np.median([r["estimate_ratio"] for r in sel])
        print(
            f"{s}: {len(sel)} flagged straight {MM:g} mm cases, estimate / true median {ratio:.2f}"
        )
        for label in ("node", *(f"true{f:g}" for f in FACTORS)):
            v = [r[label] for r in sel]
            harmed = sum(x < -0.1 for x in v)
            print(
                f"  {label:8s} mean {np.mean(v):+.3f} harmed {harmed} worst {min(v):+.2f} | "
                + means_by(v, sel, "noise", ("none", "1e5", "2e4", "1e4"))
            )
        harmed = [r for r in sel if r["node"] < -0.1]
        if harmed:
            still = sum(r["true1"] < -0.1 for r in harmed)
            print(f"  of the node's {len(harmed)} harmed, {still} harmed with the true length too")


def main() -> None:
    round_main(run, summary, "the 21 MHH images instead of Kermany")


if __name__ == "__main__":
    main()
