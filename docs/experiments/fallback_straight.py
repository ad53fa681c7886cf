"""The Richardson–Lucy fallback with the *straight* kernel at ≈0.6 mm/px: a look on fitting images.

The twenty-ninth round (``fallback_retrieved.py``, docs/models.md) let the fallback's steps follow
the measured noise where a reading's *retrieved* kernel rang (0.16.0); where the shape step kept
the straight kernel, the fallback still takes ten steps from a flat start. The general law (every
kernel, ``rl_fallback_follows_noise``) was switched off in the seventh session after a detector-
scale frame (straight kernel, a Fuji hip at 0.15 mm) lost with more steps; at ≈0.6 mm it was never
looked at on its own. Per flagged *collimated* fitting case in the validation's design
(``fitting_cases.scene_cases``), for the node as built (0.16.0: the mean of the fourth network's
correction at τ 0.25 / 0.3 and the second's at its τ), what changes where a reading kept the
straight kernel and took the fallback, if that reading instead

- ``noise``: takes as many steps as the measured noise gives by the fallback's noise-following
  law (10 at ≤ 6·10³ quanta/px up to 40: the law 0.16.0 uses for a retrieved kernel),
- ``steps20``: takes 20 steps instead of 10,
- ``wiener``: keeps its Wiener result (no fallback).

``PYTHONPATH=. python docs/experiments/fallback_straight.py --out runs/fs-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/fs-*.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import fitting_cases
import numpy as np
from fallback_retrieved import AS_BUILT_TAU, Count, run_readings, summarise_readings

from models.deblur import Deconvolution, MotionPolicy, deconvolve
from models.tune_balance import BEFORE_STRAIGHT_RL

VARIANTS = ("noise", "steps20", "wiener")


def straight_fallback(done: Deconvolution) -> bool:
    """Did this reading take the fallback with the straight kernel (no kernel retrieved)?"""
    return done.method == "richardson-lucy" and (done.shape is None or not done.shape.replaced)


def variant(
    c: fitting_cases.Case, done: Deconvolution, policy: MotionPolicy, how: str
) -> np.ndarray:
    """The reading ``done`` again, as ``how`` says, where it fell back with the straight kernel;
    else ``done`` itself."""
    if not straight_fallback(done):
        return done.image.astype(np.float64)
    if how == "noise":
        follows = dataclasses.replace(policy, rl_fallback_follows_noise=True)
        out = deconvolve(c.blurred, c.assessment, follows, shape=done.shape)
    elif how == "wiener":
        out = deconvolve(c.blurred, c.assessment, policy, shape=done.shape, allow_fallback=False)
    else:
        steps = int(how.removeprefix("steps"))
        more = dataclasses.replace(policy, rl_fallback_iterations=steps)
        out = deconvolve(c.blurred, c.assessment, more, shape=done.shape)
    return out.image.astype(np.float64)


def run(data: Path, part: tuple[int, int], out: Path, variants: list[str]) -> None:
    # 0.16.0, as the look ran: the straight kernel's fallback takes ten steps
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU, **BEFORE_STRAIGHT_RL)
    counts: dict[str, Count] = {
        "fell_back_straight": lambda d, _: straight_fallback(d),
        "fell_back": lambda d, _: d.method == "richardson-lucy",
    }
    run_readings(data, part, out, built, variants, variant, counts)


def summary(paths: list[Path]) -> None:
    flagged = summarise_readings(
        paths, VARIANTS, "fell_back_straight", "that fell back with the straight kernel"
    )
    print(f"readings that fell back: {sum(r['fell_back'] for r in flagged)}")
    touched = [r for r in flagged if r["fell_back_straight"] > 0]
    if touched:
        print(f"only the {len(touched)} cases with a straight fallback:")
        done = [k for k in VARIANTS if k in touched[0]]
        fitting_cases.print_against(touched, done, "built", 8)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
