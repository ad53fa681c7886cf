"""The Richardson–Lucy fallback accelerated where the frame is quiet: a look on fitting images.

Since 0.18.0 a reading that takes the fallback at pixels of 0.4 mm and more takes 10 · (N̂ /
6·10³)^0.6 plain steps within 10 … 40; quiet frames (no measurable noise, or about 6·10⁴ quanta
per pixel and more) stop at the cap. The twenty-third session's look (``fallback_cap.py``) found
60 / 80 / 120 steps there worth +0.14 / +0.21 / +0.28 dB on these cases, all of it in those quiet
frames, and left the cap at 40 for the time more plain steps take. Accelerated Richardson–Lucy
(Biggs & Andrews 1997, :func:`models.deconvolve.richardson_lucy_steps`) goes as far in about a
quarter of the steps at the same cost per step. Per flagged *collimated* fitting case in the
validation's design (``fitting_cases.scene_cases``), for the node as built (0.18.0, the mean of
two readings), what changes where a reading took the fallback at the cap, if it took

- ``acc<N>``: N accelerated steps instead (``MotionPolicy.rl_fallback_quiet_accelerated``),
- ``cap80``: 80 plain steps (the earlier look's, for comparison).

``PYTHONPATH=. python docs/experiments/fallback_accelerated.py --out runs/fa-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/fa-*.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import fallback_cap
import fitting_cases
import numpy as np
from fallback_cap import at_cap
from fallback_retrieved import look_main

from models.deblur import Deconvolution, MotionPolicy, deconvolve

VARIANTS = ("acc15", "acc20", "acc25", "acc30", "cap80")


def variant(
    c: fitting_cases.Case, done: Deconvolution, policy: MotionPolicy, how: str
) -> np.ndarray:
    """The reading ``done`` again as ``how`` says where it took the fallback at the cap; else
    ``done`` itself (``cap80``: ``fallback_cap.py``'s)."""
    if how.startswith("cap") or not at_cap(done, policy):
        return fallback_cap.variant(c, done, policy, how)
    quick = dataclasses.replace(policy, rl_fallback_quiet_accelerated=int(how.removeprefix("acc")))
    return deconvolve(c.blurred, c.assessment, quick, shape=done.shape).image.astype(np.float64)


def run(data: Path, part: tuple[int, int], out: Path, variants: list[str]) -> None:
    fallback_cap.run_at_cap(data, part, out, variants, variant)


if __name__ == "__main__":
    look_main(run, VARIANTS, "at_cap", "at the cap")
