"""A look for the next round: does the frame hold the evidence its estimated length rests on?

Straight motion of L px puts its first dip at 1/L cycles/px along the motion. Where the anatomy's
own power at that frequency (read *across* the motion, which the blur leaves alone) is below the
frame's white noise, the dip cannot be seen and the length is a guess — the Kermany scenes'
harmed 1 mm cases (docs/models.md: their steep spectra, power law β ≈ 4.4 against MHH's ≈ 2,
put 0.2 cycles/px under the noise, and the estimate comes out 1.25–1.5× too long). The
statistic: :func:`models.noise_level.signal_power_across` in the band 0.85/L … 1.15/L over
:func:`models.noise_level.white_noise_variance` of the blurred frame's exposure (a frame without
noise: very large). Per flagged case of the thirty-sixth round's scenes (``--look``: the 21 MHH
images; default: the 26 Kermany images; the round's seeds): the node's gain, the estimate and
that ratio. The summary refuses (gain 0) the frames under a threshold. Nothing is chosen here.

Run: ``PYTHONPATH=. python docs/experiments/dip_support_look.py --out runs/ds-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/ds-*.json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_main
from detector_scenes import SPACING_MM
from fitting_cases import read_rows
from look_rows import by_mm, case_groups, flagged_corrections, save, worst_group
from outside_blur import gain

from models.blur import to_exposure
from models.deblur import MotionPolicy
from models.metrics import roc_auc
from models.noise_level import signal_power_across, white_noise_variance

THRESHOLDS = (4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0)


def dip_support(exposure: np.ndarray, length_px: float, angle_deg: float) -> float:
    """The anatomy's power across the motion around 1/``length_px`` over the white noise."""
    noise = white_noise_variance(exposure)
    band = (0.85 / length_px, 1.15 / length_px)
    try:
        signal = signal_power_across(exposure, angle_deg, band)
    except ValueError:
        return math.inf
    if not math.isfinite(signal):
        return math.inf
    return signal / max(noise, 1e-30)


def run(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in names:
        for c, a, d in flagged_corrections(name, look, node):
            e = to_exposure(np.asarray(c.blurred, dtype=np.float64), node.log_range)
            est = a.estimate
            rows.append(
                c.row(
                    method=d.method,
                    length_px=est.length_px,
                    ratio=est.length_px / (c.mm / SPACING_MM),
                    confidence=est.confidence,
                    specificity=est.specificity,
                    support=dip_support(e, est.length_px, est.angle_deg),
                    node=gain(c.sharp, c.blurred, d.image),
                )
            )
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    node = np.array([r["node"] for r in rows])
    support = np.array([r["support"] for r in rows])
    harmed = node < -0.1
    print(f"{len(rows)} flagged, node mean {node.mean():+.3f}, harmed {int(harmed.sum())}")
    finite = np.where(np.isfinite(support), support, 1e30)
    auc = roc_auc(harmed.astype(float), -np.log(finite))
    print(f"AUC of low support for harm: {auc:.3f}")
    groups = case_groups(rows)
    for tau in THRESHOLDS:
        refused = finite < tau
        v = np.where(refused, 0.0, node)
        worst = worst_group(v, node, groups)
        print(
            f"τ {tau:g}: refused {int(refused.sum())} (harmed among them "
            f"{int(np.sum(refused & harmed))}) mean {v.mean():+.3f} harmed "
            f"{int(np.sum(v < -0.1))} worst group {worst[0]:+.3f} ({worst[1]}) | {by_mm(v, rows)}"
        )


def main() -> None:
    round_main(run, summary, "the 21 MHH images instead of Kermany")


if __name__ == "__main__":
    main()
