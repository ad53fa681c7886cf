"""Does total variation guard the shape step's replacement? A look on fitting images.

The twenty-fourth to twenty-sixth rounds (docs/models.md) found truer magnitudes that gain on
curved motion overall and lose badly in a few cases, each a straight kernel replaced by a
retrieved one. ``MotionPolicy.shape_arbitrate`` (an experiment of the ninth session) keeps the
retrieved kernel only where its restoration also has a lower total variation than the straight
kernel's. Per flagged fitting case (``fitting_cases``), the PSNR gain of the node with the
bundled (fourth) network and with ``--magnitude`` (e.g. the fifth read under the eight
symmetries, ``runs/kmag5s-onnx``), each without and with that guard.

``PYTHONPATH=. python docs/experiments/replacement_guard.py --magnitude runs/kmag5s-onnx
--out runs/rg-0.json --part 0/2`` (and ``1/2``), then ``--summary runs/rg-*.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np
from fitting_cases import psnr

from models.deblur import MotionPolicy, deconvolve
from models.kernel_shape import load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE

AS_BUILT_TAU = (0.25, 0.3)
KEYS = ("fourth", "fourth_guarded", "candidate", "candidate_guarded")


def run(data: Path, part: tuple[int, int], out: Path, magnitude: Path) -> None:
    policy = MotionPolicy(shape_thresholds=AS_BUILT_TAU)
    guarded = dataclasses.replace(policy, shape_arbitrate=True)
    nets = {"fourth": load_magnitude_model(BUNDLED_MAGNITUDE)}
    nets["candidate"] = load_magnitude_model(magnitude)

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        base = psnr(c.sharp, c.blurred)
        row: dict[str, Any] = {}
        for name, net in nets.items():
            for suffix, pol in (("", policy), ("_guarded", guarded)):
                d = deconvolve(c.blurred, c.assessment, pol, magnitude=net)
                row[name + suffix] = psnr(c.sharp, d.image) - base
                row[f"{name}{suffix}_replaced"] = d.shape is not None and d.shape.replaced
        return row

    fitting_cases.collect(data, part, out, policy, measure)


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    fitting_cases.print_means(rows, KEYS, 18)
    flagged = [r for r in rows if r["flagged"]]
    for k in KEYS[1:]:
        d = np.array([r[k] - r["fourth"] for r in flagged])
        print(f"{k} against fourth: < -1 dB {(d < -1).sum()}, > +1 dB {(d > 1).sum()}")


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--magnitude", type=Path, default=BUNDLED_MAGNITUDE, help="the candidate")


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
