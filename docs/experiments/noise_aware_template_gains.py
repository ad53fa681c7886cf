"""A look: what the noise-aware template (``MotionPolicy.estimate_eta_follows_noise``) does to
the node's corrections, on the thirty-sixth round's scenes (``--look``: the 21 MHH images;
default: the 26 Kermany images; the round's seeds, so the node's column repeats its figures).

Per case, for the node as built and with the candidate estimate: flagged or not, and the PSNR
gain over the blurred input (0 where not flagged: the frame comes back unchanged). ``--hybrid``:
instead of the candidate, the node's decision (its plain estimate flags the frame) with the
candidate estimate's kernel (``hybrid``). Nothing is chosen here.

Run: ``PYTHONPATH=. python docs/experiments/noise_aware_template_gains.py --out runs/ng-0.json
--part 0/2`` (and ``1/2``), then ``--summary runs/ng-*.json``; ``--hybrid`` likewise.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_cases, round_main
from detector_scenes import SPACING_MM
from fitting_cases import read_rows
from look_rows import by_mm, case_groups, flagged_corrections, save
from outside_blur import gain

from models.deblur import MotionPolicy, assess_motion, deconvolve

LABELS = ("node", "candidate")
HYBRID = "--hybrid" in sys.argv


def run_hybrid(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    aware = replace(node, estimate_eta_follows_noise=True)
    rows: list[dict[str, Any]] = []
    for name in names:
        for c, a, d in flagged_corrections(name, look, node):
            b = assess_motion(c.blurred, SPACING_MM, aware)
            mixed = replace(a, estimate=b.estimate) if b.estimate.length_px >= 1.0 else a
            rows.append(
                c.row(
                    node=gain(c.sharp, c.blurred, d.image),
                    hybrid=gain(c.sharp, c.blurred, deconvolve(c.blurred, mixed, node).image),
                    node_mm=a.motion_mm,
                    hybrid_mm=mixed.motion_mm,
                )
            )
        save(out, rows, name)


def run(names: list[str], look: bool, out: Path) -> None:
    if HYBRID:
        run_hybrid(names, look, out)
        return
    node = MotionPolicy()
    policies = dict(
        zip(LABELS, (node, replace(node, estimate_eta_follows_noise=True)), strict=True)
    )
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in round_cases(name, look):
            row: dict[str, Any] = c.row()
            for label, policy in policies.items():
                a = assess_motion(c.blurred, SPACING_MM, policy)
                row[f"{label}_flagged"] = a.blurred
                row[f"{label}_mm"] = a.motion_mm
                row[label] = (
                    gain(c.sharp, c.blurred, deconvolve(c.blurred, a, policy).image)
                    if a.blurred
                    else 0.0
                )
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    print(f"{len(rows)} cases from {len({r['image'] for r in rows})} images")
    other = "hybrid" if "hybrid" in rows[0] else "candidate"
    node = np.array([r["node"] for r in rows])
    cand = np.array([r[other] for r in rows])
    for label, v in (("node", node), (other, cand)):
        flagged = sum(r.get(f"{label}_flagged", True) for r in rows)
        print(
            f"{label:9s} flagged {flagged} mean over all cases {v.mean():+.3f} harmed "
            f"{int(np.sum(v < -0.1))} worst {v.min():+.2f} | {by_mm(v, rows)}"
        )
    groups = case_groups(rows)
    diffs = sorted((float(np.mean(cand[ix] - node[ix])), k) for k, ix in groups.items())
    print("lowest groups:", "; ".join(f"{k} {d:+.3f}" for d, k in diffs[:4]))
    print("highest groups:", "; ".join(f"{k} {d:+.3f}" for d, k in diffs[-4:]))


def main() -> None:
    if HYBRID:
        sys.argv.remove("--hybrid")
    round_main(run, summary, "the 21 MHH images instead of Kermany")


if __name__ == "__main__":
    main()
