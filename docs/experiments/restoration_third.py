"""A third reading beside the two the node averages: mean or median of three? A look on fitting
images.

Since 0.14.0 the node averages two corrections where the first (fourth) magnitude network read a
frame: the fourth's at τ 0.25 / 0.3 and the fifth's read eight ways at τ 0.15 / 0.25. That mean
helped because the two networks' wrong retrievals rarely coincide (docs/models.md, the
twenty-eighth round). Per flagged fitting case in the validation's design
(``fitting_cases.scene_cases``), this records the two as built and each third reading given by
``--third FOLDER:QUIET:NOISY`` (a magnitude model folder and its τ), each of the two as built
with its kernel retrieved from other random starts (``--seed``: ``fourth@S``, ``second@S``), and
the gains of the node as built (the mean of two), the mean and the pixel-wise median of three for
each third reading, and the mean of the four (two as built, two from other starts).

``PYTHONPATH=. python docs/experiments/restoration_third.py --second runs/kmag5s-onnx
--third runs/kmag4s-onnx:0.15:0.25 runs/kmag3s-onnx:0.15:0.25 --out runs/r3-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/r3-*.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np

import models.kernel_shape
from models.deblur import MotionPolicy, deconvolve
from models.kernel_shape import SECOND_THRESHOLDS, load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE

AS_BUILT_TAU = (0.25, 0.3)
#: A row's own fields (``fitting_cases.Case.row``); the rest are gains.
KNOWN = ("image", "kind", "px", "quanta", "flagged", "scene")


def parse_third(text: str) -> tuple[Path, tuple[float, float]]:
    folder, quiet, noisy = text.rsplit(":", 2)
    return Path(folder), (float(quiet), float(noisy))


def label(folder: Path) -> str:
    return folder.name.removesuffix("-onnx")


def run(
    data: Path, part: tuple[int, int], out: Path, second: Path, third: list[str], seed: int
) -> None:
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
    starts = [(f"{name}@{seed}", m, pol) for name, m, pol in readings[:2]]

    def correct(c: fitting_cases.Case, m: Any, pol: MotionPolicy) -> np.ndarray:
        return deconvolve(c.blurred, c.assessment, pol, magnitude=m).image.astype(np.float64)

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        images = {name: correct(c, m, pol) for name, m, pol in readings}
        # the retrieval's random starts: a module constant, set here for the look only
        models.kernel_shape.RETRIEVAL_SEED = seed
        try:
            images.update({name: correct(c, m, pol) for name, m, pol in starts})
        finally:
            models.kernel_shape.RETRIEVAL_SEED = 0
        two = (images["fourth"] + images["second"]) / 2
        row = {name: fitting_cases.gain(c, im) for name, im in images.items()}
        row["built"] = fitting_cases.gain(c, two)
        names = list(images)
        for name in names[2:]:
            stack = np.stack([images["fourth"], images["second"], images[name]])
            row[f"mean3 {name}"] = fitting_cases.gain(c, stack.mean(axis=0))
            row[f"median3 {name}"] = fitting_cases.gain(c, np.median(stack, axis=0))
        four = [images[n] for n in ("fourth", "second", *(n for n, _, _ in starts))]
        row["mean4 starts"] = fitting_cases.gain(c, np.mean(four, axis=0))
        return row

    fitting_cases.collect(data, part, out, built, measure, fitting_cases.scene_cases)


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    flagged = next(r for r in rows if r["flagged"])
    keys = ("built", *[k for k in flagged if k not in KNOWN and k != "built"])
    fitting_cases.print_means(rows, keys, 9)
    fitting_cases.print_against(rows, keys[1:], "built", 22)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--second", type=Path, default=Path("models/weights/kernel-magnitude-second"))
    p.add_argument("--third", nargs="+", default=[], help="FOLDER:QUIET:NOISY (τ), each")
    p.add_argument("--seed", type=int, default=1, help="the other retrieval's random starts")


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
