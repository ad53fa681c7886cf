"""A third reading beside the two the node averages: mean or median of three? A look on fitting
images.

Since 0.14.0 the node averages two corrections where the first (fourth) magnitude network read a
frame: the fourth's at τ 0.25 / 0.3 and the fifth's read eight ways at τ 0.15 / 0.25. That mean
helped because the two networks' wrong retrievals rarely coincide (docs/models.md, the
twenty-eighth round). Per flagged fitting case in the validation's design
(``fitting_cases.scene_cases``), this records the two as built and each third reading given by
``--third FOLDER:QUIET:NOISY`` (a magnitude model folder and its τ), and the gains of the node
as built (the mean of two), the mean of three and the pixel-wise median of three for each third.

``PYTHONPATH=. python docs/experiments/restoration_third.py --second runs/kmag5s-onnx
--third runs/kmag4s-onnx:0.15:0.25 runs/kmag3s-onnx:0.15:0.25 --out runs/r3-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/r3-*.json``.
"""

from __future__ import annotations

import argparse
import operator
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np

from models.deblur import MotionPolicy, deconvolve
from models.kernel_shape import SECOND_THRESHOLDS, load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE

AS_BUILT_TAU = (0.25, 0.3)


def parse_third(text: str) -> tuple[Path, tuple[float, float]]:
    folder, quiet, noisy = text.rsplit(":", 2)
    return Path(folder), (float(quiet), float(noisy))


def label(folder: Path) -> str:
    return folder.name.removesuffix("-onnx")


def run(data: Path, part: tuple[int, int], out: Path, second: Path, third: list[str]) -> None:
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU)
    readings = [
        ("fourth", load_magnitude_model(BUNDLED_MAGNITUDE), built),
        ("second", load_magnitude_model(second), MotionPolicy(shape_thresholds=SECOND_THRESHOLDS)),
    ]
    for text in third:
        folder, tau = parse_third(text)
        readings.append(
            (label(folder), load_magnitude_model(folder), MotionPolicy(shape_thresholds=tau))
        )

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        images = {
            name: deconvolve(c.blurred, c.assessment, pol, magnitude=m).image.astype(np.float64)
            for name, m, pol in readings
        }
        two = (images["fourth"] + images["second"]) / 2
        row = {name: fitting_cases.gain(c, im) for name, im in images.items()}
        row["built"] = fitting_cases.gain(c, two)
        for name in list(images)[2:]:
            stack = np.stack([images["fourth"], images["second"], images[name]])
            row[f"mean3 {name}"] = fitting_cases.gain(c, stack.mean(axis=0))
            row[f"median3 {name}"] = fitting_cases.gain(c, np.median(stack, axis=0))
        return row

    fitting_cases.collect(data, part, out, built, measure, fitting_cases.scene_cases)


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    flagged = next(r for r in rows if r["flagged"])
    keys = ("built", *[k for k in flagged if k not in KNOWN and k != "built"])
    fitting_cases.print_means(rows, keys, 9)
    for k in keys[1:]:
        a = fitting_cases.against(rows, operator.itemgetter(k), "built")
        print(
            f"{k:22s} against as built: all {a.all:+.3f}, curved {a.curved:+.3f}, worst group"
            f" {a.worst:+.3f} ({a.worst_group}), < -1 dB {a.losses}, > +1 dB {a.wins}"
        )


KNOWN = ("image", "kind", "px", "quanta", "flagged", "scene")


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--second", type=Path, default=Path("models/weights/kernel-magnitude-second"))
    p.add_argument("--third", nargs="+", default=[], help="FOLDER:QUIET:NOISY (τ), each")


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
