"""A look for the next round: would a guard on the correction's low-pass content refuse the
frames the node harms? (docs/models.md, after the thirty-sixth round.)

A motion blur conserves the local mean exposure, and so must its inverse: a correction whose
low-pass content departs from the blurred input's has clipped or inverted a wrong kernel. Per
flagged case of the thirty-sixth round's scenes (``--look``: the 21 MHH images; default: the 26
Kermany images; the round's seeds, so the node's gains repeat its figures), the node's gain and
the statistic: the RMS, over the frame, of the difference between the corrected and the blurred
frame's grey values after a Gaussian low-pass of σ ``SIGMA_PX``. Nothing is chosen here.

Run: ``PYTHONPATH=. python docs/experiments/lowpass_guard_look.py --out runs/lg-0.json --part
0/2`` (and ``1/2``), then ``--summary runs/lg-*.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_main
from fitting_cases import read_rows
from look_rows import flagged_corrections, save
from outside_blur import gain
from scipy.ndimage import gaussian_filter

from models.deblur import MotionPolicy
from models.metrics import roc_auc

SIGMA_PX = (4.0, 8.0, 16.0)


def run(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in names:
        for c, a, d in flagged_corrections(name, look, node):
            diff = d.image.astype(np.float64) - c.blurred
            row: dict[str, Any] = c.row(
                method=d.method,
                length_px=a.estimate.length_px,
                node=gain(c.sharp, c.blurred, d.image),
            )
            for s in SIGMA_PX:
                low = gaussian_filter(diff, s, mode="reflect")
                row[f"rms{s:g}"] = float(np.sqrt(np.mean(low**2)))
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    node = np.array([r["node"] for r in rows])
    harmed = node < -0.1
    print(f"{len(rows)} flagged cases, {int(harmed.sum())} harmed, mean {node.mean():+.3f}")
    for s in SIGMA_PX:
        stat = np.array([r[f"rms{s:g}"] for r in rows])
        line = [f"σ {s:g} px: AUC {roc_auc(harmed.astype(float), stat):.3f}"]
        for tau in (0.005, 0.01, 0.02, 0.04):
            kept = np.where(stat > tau, 0.0, node)
            line.append(
                f"τ {tau:g}: refused {int(np.sum(stat > tau))} mean {kept.mean():+.3f} "
                f"harmed {int(np.sum(kept < -0.1))}"
            )
        print(" | ".join(line))


def main() -> None:
    round_main(run, summary, "the 21 MHH images instead of Kermany")


if __name__ == "__main__":
    main()
