"""Richardson–Lucy instead of the Wiener filter in quiet open frames at ≈0.6 mm/px: a look.

Since 0.18.0 a frame at pixels of 0.4 mm and more whose Wiener result rings takes Richardson–Lucy
with 10 · (N̂ / 6·10³)^0.6 steps (10 … 40, N̂ the measured quanta per pixel), and that gained
most where the frame is quiet (the thirtieth round). Open frames do not ring and keep the Wiener
filter. The seventeenth session's look (``short_motion_rl.py``) found Richardson–Lucy with the
node's kernel behind the Wiener filter in every group *with* noise, ahead only without it. Per
flagged *open* fitting case in the validation's design (``fitting_cases.scene_cases``), for the
node as built (0.18.0: the mean of the two readings), what changes if every reading took the
fallback's Richardson–Lucy (``rl``: its steps by the law) — by noise level, and with the measured
noise of each case recorded (``quanta``), so that a threshold on N̂ can be read off the rows.

``PYTHONPATH=. python docs/experiments/quiet_rl.py --out runs/qr-0.json --part 0/2`` (and
``1/2``), then ``--summary runs/qr-*.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import fitting_cases
import numpy as np
from fallback_retrieved import AS_BUILT_TAU, Count, run_readings, scenes_of

from models.deblur import Deconvolution, MotionPolicy, deconvolve
from models.tune_balance import BEFORE_BUDGET

VARIANTS = ("rl",)
#: Thresholds on the measured quanta per pixel above which the summary takes ``rl``.
THRESHOLDS = (1e4, 3e4, 1e5, 3e5, math.inf)


def variant(
    c: fitting_cases.Case, done: Deconvolution, policy: MotionPolicy, how: str
) -> np.ndarray:
    """The reading ``done`` again by Richardson–Lucy with the law's steps (the fallback forced:
    a ringing limit no frame stays under)."""
    if done.method == "none":
        return done.image.astype(np.float64)
    forced = dataclasses.replace(policy, ringing_limit=-1.0)
    out = deconvolve(c.blurred, c.assessment, forced, shape=done.shape)
    return out.image.astype(np.float64)


def run(data: Path, part: tuple[int, int], out: Path, variants: list[str]) -> None:
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU, **BEFORE_BUDGET)  # 0.18.0, as it ran
    counts: dict[str, Count] = {"fell_back": lambda d, _: d.method == "richardson-lucy"}
    run_readings(data, part, out, built, variants, variant, counts, scenes_of("open"))


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    fitting_cases.print_means(rows, ("built", "rl"), 8)
    for t in THRESHOLDS:
        for r in rows:
            if r["flagged"]:
                q = r["quanta_measured"]
                r[f"above_{t:g}"] = r["rl"] if q is not None and q >= t else r["built"]
    keys = [f"above_{t:g}" for t in THRESHOLDS]
    fitting_cases.print_against(rows, ["rl", *keys], "built", 10)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
