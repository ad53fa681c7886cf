"""The Richardson–Lucy fallback's law under the thirty-second round's budget: a look on fitting images.

The fallback takes 10 · (N̂ / 6·10³)^0.6 steps (``models.deblur.RL_REFERENCE_QUANTA`` /
``RL_EXPONENT``, fitted in the sixth session on collimated training scenes when the cap was 40
for every frame). Since 0.20.0 a small frame may take up to 120, so the law — not the cap — now
decides how far a quiet frame goes: at 10⁵ quanta/px it gives 54 steps. Per flagged *collimated*
fitting case in the validation's design (``fitting_cases.scene_cases``), for the node as built
(0.20.0, the mean of two readings), what changes where a reading took the fallback with the law,
if the law were

- ``exp0.8``: 10 · (N̂ / 6·10³)^0.8 (at 10⁵: 95 steps; 3·10⁴: 36; 10⁴: 15),
- ``ref3e3``: 10 · (N̂ / 3·10³)^0.6 (at 10⁵: 82; 3·10⁴: 40; 10⁴: 21).

The law's constants are module constants of ``models.deblur``; the variants set them for the
duration of one deconvolution (this script only).

``PYTHONPATH=. python docs/experiments/fallback_law.py --out runs/fl-0.json --part 0/2`` (and
``1/2``), then ``--summary runs/fl-*.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fitting_cases
import numpy as np
from fallback_retrieved import AS_BUILT_TAU, Count, look_main, run_readings

import models.deblur as deblur
from models.deblur import Deconvolution, MotionPolicy, deconvolve

#: variant -> (reference quanta, exponent)
LAWS = {"exp0.8": (6e3, 0.8), "ref3e3": (3e3, 0.6)}
VARIANTS = tuple(LAWS)


@contextmanager
def law(reference: float, exponent: float) -> Iterator[None]:
    before = deblur.RL_REFERENCE_QUANTA, deblur.RL_EXPONENT
    deblur.RL_REFERENCE_QUANTA, deblur.RL_EXPONENT = reference, exponent
    try:
        yield
    finally:
        deblur.RL_REFERENCE_QUANTA, deblur.RL_EXPONENT = before


def by_law(done: Deconvolution, policy: MotionPolicy) -> bool:
    """Did this reading take the fallback with more steps than the base count (the law acted)?"""
    return done.method == "richardson-lucy" and done.rl_iterations > policy.rl_fallback_iterations


def variant(
    c: fitting_cases.Case, done: Deconvolution, policy: MotionPolicy, how: str
) -> np.ndarray:
    """The reading ``done`` again under the law ``how`` names where it took the fallback."""
    if done.method != "richardson-lucy":
        return done.image.astype(np.float64)
    with law(*LAWS[how]):
        out = deconvolve(c.blurred, c.assessment, policy, shape=done.shape)
    return out.image.astype(np.float64)


def run(data: Path, part: tuple[int, int], out: Path, variants: list[str]) -> None:
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU)  # 0.20.0, as the look ran
    counts: dict[str, Count] = {"by_law": by_law}
    run_readings(data, part, out, built, variants, variant, counts)


if __name__ == "__main__":
    look_main(run, VARIANTS, "by_law", "that took more than the base steps")
