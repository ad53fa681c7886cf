"""A look: does a steeper Wiener penalty suit the steep-spectrum frames?

The node's Wiener filter regularises with ``λ·|2πf|`` (``MotionPolicy.power`` 1), as if the
anatomy's power fell about as 1/f against white noise; the Wiener filter's own choice is noise
over the anatomy's power, and the Kermany scenes' anatomy falls as f^−4.3…−4.6 (MHH's f^−1.7…−2.4,
``short_estimate_bias.py``). Here the penalty ``λ'·|2πf|^p`` for p 2 and 3, λ' = λ·(2π·0.1)^(1−p)
(the same penalty at 0.1 cycles/px, so only its slope changes; the node's λ, ringing check and
fallback otherwise). On the thirty-sixth round's cases (seen; its seeds), straight motion, the
frames the node flags, with the node's estimate and with the true length (the estimate's angle):
default the 26 Kermany images, ``--look`` the 21 MHH images. Nothing is chosen here.

Each row also holds β, the anatomy's power law across the motion measured on the blurred frame
(:func:`models.noise_level.spectral_slope_across`, the node's estimated angle), and the summary
reads the gains by β.

Run: ``PYTHONPATH=. python docs/experiments/penalty_power_look.py --part 0/3 --out
runs/pp-k.json`` (and ``--look --part 0/3 --out runs/pp-m.json``: every third image, 9 Kermany and
7 MHH; 8 min), then ``--summary runs/pp-*.json``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_cases, round_main
from detector_scenes import SPACING_MM
from fitting_cases import read_rows
from look_rows import by_mm, by_set, save
from outside_blur import gain

from models.blur import to_exposure
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.noise_level import spectral_slope_across

POWERS = (1.0, 2.0, 3.0)
#: the frequency (cycles/px) where every penalty equals the node's
MATCHED_AT = 0.1


def policy_with_power(node: MotionPolicy, p: float) -> MotionPolicy:
    factor = (2 * math.pi * MATCHED_AT) ** (node.power - p)
    return replace(node, power=p, wiener_balance_factor=node.wiener_balance_factor * factor)


def run(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    policies = {p: policy_with_power(node, p) for p in POWERS}
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in round_cases(name, look):
            if c.kind != "straight":
                continue
            a = assess_motion(c.blurred, SPACING_MM, node)
            if not a.blurred:
                continue
            true = replace(a, estimate=replace(a.estimate, length_px=c.mm / SPACING_MM))
            e = to_exposure(c.blurred.astype(np.float64), node.log_range)
            beta = spectral_slope_across(e, a.estimate.angle_deg)
            row = c.row(set="mhh" if look else "kermany", beta=beta)
            for p, policy in policies.items():
                row[f"p{p:g}"] = gain(c.sharp, c.blurred, deconvolve(c.blurred, a, policy).image)
                fixed = deconvolve(c.blurred, true, policy).image
                row[f"p{p:g}_true"] = gain(c.sharp, c.blurred, fixed)
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for s, sel in by_set(rows):
        print(f"{s}: {len(sel)} flagged straight cases")
        for length in ("", "_true"):
            for p in POWERS:
                v = [r[f"p{p:g}{length}"] for r in sel]
                harmed = sum(x < -0.1 for x in v)
                label = f"p{p:g}{length or ' (estimate)'}"
                print(f"  {label:15s} mean {np.mean(v):+.3f} harmed {harmed} | {by_mm(v, sel)}")
    if "beta" not in rows[0]:
        return
    print("by β across the motion (the node's estimate): cases, mean gain for p 1 / 2 / 3")
    edges = (0.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 99.0)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = [r for r in rows if lo <= r["beta"] < hi]
        if sel:
            means = " / ".join(f"{np.mean([r[f'p{p:g}'] for r in sel]):+.3f}" for p in POWERS)
            sets = ", ".join(sorted({r["set"] for r in sel}))
            print(f"  β {lo:g}–{hi:g}: {len(sel)} ({sets}) {means}")


def main() -> None:
    round_main(run, summary, "the 21 MHH images instead of Kermany")


if __name__ == "__main__":
    main()
