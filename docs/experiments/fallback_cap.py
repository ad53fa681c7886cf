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

import fitting_cases
import numpy as np
from fallback_retrieved import AS_BUILT_TAU, Count, Variant, run_readings, summarise_readings

from models.deblur import Deconvolution, MotionPolicy, deconvolve
from models.tune_balance import BEFORE_BUDGET

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


def run_at_cap(
    data: Path, part: tuple[int, int], out: Path, variants: list[str], redo: Variant
) -> None:
    """The look's rows: the node as it ran (0.18.0) and each variant ``redo`` makes of the
    readings at the cap (shared with ``fallback_accelerated.py``)."""
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU, **BEFORE_BUDGET)  # 0.18.0, as it ran
    counts: dict[str, Count] = {"at_cap": at_cap}
    run_readings(data, part, out, built, variants, redo, counts)


def run(data: Path, part: tuple[int, int], out: Path, variants: list[str]) -> None:
    run_at_cap(data, part, out, variants, variant)


def summary(paths: list[Path]) -> None:
    summarise_readings(paths, VARIANTS, "at_cap", "at the cap")


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
