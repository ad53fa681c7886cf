"""Richardson–Lucy with the node's own kernel at ≈0.6 mm/px, a first look (fitting images only).

The test split's tables show the true-kernel Richardson–Lucy oracle ahead of the node at 3 px of
motion with noise (+0.87 / +0.81 dB against +0.72 / +0.52). Does Richardson–Lucy with the
node's *estimated* kernel keep that lead? Per flagged case (the 20 fitting images of
``models.tune_balance``, 384² centred crops at 0.6 mm/px, straight and curved 3 / 6 / 10 px,
noise none / 3·10⁴ / 10⁴ quanta/px): the node as built, RL from a flat start after 5 … 40 steps
with the kernel the node used, a few RL steps after the node's Wiener result, and RL with the
true kernel (10 steps, the evaluation's oracle). PSNR gain over the blurred input.

``PYTHONPATH=. python docs/experiments/short_motion_rl.py --out runs/short-rl-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/short-rl-*.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np
from fitting_cases import psnr

from models.deblur import MotionPolicy, deconvolve
from models.kernel_shape import load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE, rl_gains

STEPS = (5, 10, 20, 40)
AFTER = (2, 5)


def run(data: Path, part: tuple[int, int], out: Path) -> None:
    policy = MotionPolicy()
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        sharp, b, a = c.sharp, c.blurred, c.assessment
        base = psnr(sharp, b)
        row = rl_gains(sharp, b, c.kernel.astype(np.float64), 3.0, (10,), prefix="oracle_rl")
        if a.blurred:
            d = deconvolve(b, a, policy, magnitude=magnitude)
            row["node"] = psnr(sharp, d.image) - base
            row["method"] = d.method
            psf = d.shape.kernel if d.shape is not None else a.estimate.kernel()
            row.update(rl_gains(sharp, b, psf, 3.0, STEPS, prefix="rl"))
            if d.method == "wiener":
                row.update(rl_gains(sharp, b, psf, 3.0, AFTER, d.image, "after"))
        return row

    fitting_cases.collect(data, part, out, policy, measure)


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    keys = ["node", *(f"rl{n}" for n in STEPS), *(f"after{n}" for n in AFTER), "oracle_rl10"]
    groups = fitting_cases.flagged_groups(rows, kinds=False)
    print("group n " + " ".join(keys))
    for g in sorted(groups):
        rs = [r for r in groups[g] if "after2" in r]
        vals = [np.mean([r.get(k, np.nan) for r in rs]) for k in keys]
        print(f"{g:28s} {len(rs):3d} " + " ".join(f"{v:+.2f}" for v in vals))
    total = len(rows)
    print(f"flagged {sum(r['flagged'] for r in rows)} of {total}")


if __name__ == "__main__":
    fitting_cases.main(run, summary)
