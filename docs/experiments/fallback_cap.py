"""The Richardson–Lucy fallback's most steps at ≈0.6 mm/px: a look on fitting images.

Since 0.18.0 (the thirtieth round, docs/models.md) every kernel that takes the fallback at pixels
of 0.4 mm and more takes 10 · (N̂ / 6·10³)^0.6 steps within 10 … 40 (``rl_fallback_max_iterations``,
set in the sixth session on collimated training scenes, where 40 was the largest count tried).
Quiet frames reach the cap: without noise and at 10⁵ quanta/px (the law gives 54 there), and a
640 px frame downsampled from a detector's is quiet. Per flagged *collimated* fitting case in the
validation's design (``fitting_cases.scene_cases``), for the node as built (0.18.0: the mean of
the fourth network's correction at τ 0.25 / 0.3 and the second's at its τ), what changes where a
reading took the fallback at the cap, if the cap were

- ``cap60`` / ``cap80`` / ``cap120``: 60 / 80 / 120 steps.

``PYTHONPATH=. python docs/experiments/fallback_cap.py --out runs/fc-0.json --part 0/2`` (and
``1/2``), then ``--summary runs/fc-*.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np
from fallback_retrieved import AS_BUILT_TAU, collimated

from models.deblur import Deconvolution, MotionPolicy, deconvolve
from models.kernel_shape import SECOND_THRESHOLDS, load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE, SECOND_MAGNITUDE

VARIANTS = ("cap60", "cap80", "cap120")


def at_cap(done: Deconvolution, policy: MotionPolicy) -> bool:
    """Did this reading take the fallback with as many steps as the cap allows?"""
    return (
        done.method == "richardson-lucy" and done.rl_iterations == policy.rl_fallback_max_iterations
    )


def variant(
    c: fitting_cases.Case, done: Deconvolution, policy: MotionPolicy, how: str
) -> np.ndarray:
    """The reading ``done`` again with the cap ``how`` names, where it took the fallback at the
    cap; else ``done`` itself."""
    if not at_cap(done, policy):
        return done.image.astype(np.float64)
    cap = dataclasses.replace(policy, rl_fallback_max_iterations=int(how.removeprefix("cap")))
    return deconvolve(c.blurred, c.assessment, cap, shape=done.shape).image.astype(np.float64)


def run(data: Path, part: tuple[int, int], out: Path, variants: list[str]) -> None:
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU)  # 0.18.0, as the look ran
    second = dataclasses.replace(built, shape_thresholds=SECOND_THRESHOLDS)
    readings = [
        (load_magnitude_model(BUNDLED_MAGNITUDE), built),
        (load_magnitude_model(SECOND_MAGNITUDE), second),
    ]

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        done = [deconvolve(c.blurred, c.assessment, p, magnitude=m) for m, p in readings]
        row: dict[str, Any] = {
            "built": fitting_cases.gain(c, (done[0].image.astype(np.float64) + done[1].image) / 2),
            "at_cap": sum(at_cap(d, p) for d, (_, p) in zip(done, readings, strict=True)),
            "steps": [d.rl_iterations for d in done],
        }
        for how in variants:
            images = [variant(c, d, p, how) for d, (_, p) in zip(done, readings, strict=True)]
            row[how] = fitting_cases.gain(c, (images[0] + images[1]) / 2)
        return row

    fitting_cases.collect(data, part, out, built, measure, collimated)


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    flagged = [r for r in rows if r["flagged"]]
    done = [k for k in VARIANTS if k in flagged[0]]
    fitting_cases.print_means(rows, ("built", *done), 8)
    print(
        f"readings at the cap: {sum(r['at_cap'] for r in flagged)}; cases with one: "
        f"{sum(r['at_cap'] > 0 for r in flagged)} of {len(flagged)}"
    )
    fitting_cases.print_against(rows, done, "built", 8)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
