"""Two networks' restorations averaged: fewer catastrophic cases? A look on fitting images.

The twenty-sixth and twenty-seventh rounds (docs/models.md) lost their rule to single cases in
which the candidate network's retrieved kernel was wrong where the bundled (fourth) network's
was right — and gained more in as many cases the other way round. Where two estimates err
independently, their mean errs less than either on average. Per flagged fitting case in the
validation's design (``fitting_cases.scene_cases``): the node with the fourth network as built
(τ 0.25 / 0.3), with ``--magnitude`` at ``--tau`` (the twenty-seventh round's candidate: the
fifth read eight ways at 0.15 / 0.25), and the pixel-wise mean of the two corrections.

``PYTHONPATH=. python docs/experiments/restoration_mean.py --magnitude runs/kmag5s-onnx
--out runs/rm-0.json --part 0/2`` (and ``1/2``), then ``--summary runs/rm-*.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np

from models.deblur import MotionPolicy, deconvolve
from models.tune_balance import BUNDLED_MAGNITUDE

AS_BUILT_TAU = (0.25, 0.3)
KEYS = ("fourth", "candidate", "mean")


def run(data: Path, part: tuple[int, int], out: Path, magnitude: Path, tau: list[float]) -> None:
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU)
    policy = MotionPolicy(shape_thresholds=(tau[0], tau[1]))
    fourth, candidate = fitting_cases.fourth_and(magnitude)

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        a = deconvolve(c.blurred, c.assessment, built, magnitude=fourth).image
        b = deconvolve(c.blurred, c.assessment, policy, magnitude=candidate).image
        mean = (a.astype(np.float64) + b) / 2
        return {
            "fourth": fitting_cases.gain(c, a),
            "candidate": fitting_cases.gain(c, b),
            "mean": fitting_cases.gain(c, mean),
        }

    fitting_cases.collect(data, part, out, built, measure, fitting_cases.scene_cases)


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    fitting_cases.print_means(rows, KEYS, 9)
    fitting_cases.print_against(rows, KEYS[1:], "fourth")


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--magnitude", type=Path, default=BUNDLED_MAGNITUDE, help="the candidate")
    p.add_argument("--tau", nargs=2, type=float, default=[0.15, 0.25], help="its τ quiet, noisy")


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
