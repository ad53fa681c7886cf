"""The Richardson–Lucy fallback with a retrieved kernel at ≈0.6 mm/px: a look on fitting images.

The retrieval look (``retrieval_guard.py --scenes``, docs/models.md) found every replacement that
lost more than 0.5 dB to the straight kernel in a collimated frame that went to the fallback
(ten Richardson–Lucy steps from a flat start, where the Wiener result rings at the bands' edges),
most of them with the retrieved kernel the truer one. Per flagged *collimated* fitting case in
the validation's design (``fitting_cases.scene_cases``), for the node as built (0.14.0: the mean
of the fourth network's correction at τ 0.25 / 0.3 and the second's at its τ): what changes
where a reading's retrieved kernel took the fallback, if that reading instead

- ``straight``: falls back with the straight kernel (as at detector scale,
  ``shape_detector_fallback_unshaped``),
- ``steps20`` / ``steps40``: takes 20 / 40 steps instead of 10,
- ``wiener``: keeps its Wiener result (no fallback),
- ``noise``: takes as many steps as the measured noise gives by the fallback's noise-following
  law (``shape_rl_follows_noise``: 10 at ≤ 6·10³ quanta/px up to 40; ``--variants noise``).

``PYTHONPATH=. python docs/experiments/fallback_retrieved.py --out runs/fr-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/fr-*.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np

from models.deblur import Deconvolution, MotionPolicy, deconvolve
from models.kernel_shape import SECOND_THRESHOLDS, KernelShape, load_magnitude_model
from models.tune_balance import BEFORE_RL_ROUNDS, BUNDLED_MAGNITUDE, SECOND_MAGNITUDE

AS_BUILT_TAU = (0.25, 0.3)
VARIANTS = ("straight", "steps20", "steps40", "wiener", "noise")


Design = Callable[[Path, str, MotionPolicy], Iterator[fitting_cases.Case]]


def scenes_of(kind: str) -> Design:
    """The validation design's cases (``fitting_cases.scene_cases``) of one kind of scene only
    (``open`` or ``collimated``)."""

    def design(data: Path, name: str, policy: MotionPolicy) -> Iterator[fitting_cases.Case]:
        for c in fitting_cases.scene_cases(data, name, policy):
            if c.scene is not None and c.scene.endswith(kind):
                yield c

    return design


collimated = scenes_of("collimated")


def variant(
    c: fitting_cases.Case, done: Deconvolution, policy: MotionPolicy, how: str
) -> np.ndarray:
    """The reading ``done`` again, as ``how`` says, where its retrieved kernel took the
    fallback; else ``done`` itself."""
    s = done.shape
    if s is None or not s.replaced or done.method != "richardson-lucy":
        return done.image.astype(np.float64)
    if how == "straight":
        kept = KernelShape(
            c.assessment.estimate.kernel(), False, s.distance, s.threshold, s.factor, ""
        )
        out = deconvolve(c.blurred, c.assessment, policy, shape=kept)
    elif how == "noise":
        follows = dataclasses.replace(policy, shape_rl_follows_noise=True)
        out = deconvolve(c.blurred, c.assessment, follows, shape=s)
    elif how == "wiener":
        out = deconvolve(c.blurred, c.assessment, policy, shape=s, allow_fallback=False)
    else:
        steps = int(how.removeprefix("steps"))
        more = dataclasses.replace(policy, rl_fallback_iterations=steps)
        out = deconvolve(c.blurred, c.assessment, more, shape=s)
    return out.image.astype(np.float64)


#: How a variant redoes one reading: (case, the reading as built, its policy, the variant's name).
Variant = Callable[[fitting_cases.Case, Deconvolution, MotionPolicy, str], np.ndarray]
#: A property of one reading (as built, its policy) whose readings a row counts.
Count = Callable[[Deconvolution, MotionPolicy], bool]


def run_readings(
    data: Path,
    part: tuple[int, int],
    out: Path,
    built: MotionPolicy,
    variants: list[str],
    variant: Variant,
    counts: dict[str, Count],
    design: Design | None = None,
) -> None:
    """Per flagged collimated case: the node's two readings (the bundled network under
    ``built``, the second network at its τ, otherwise as ``built``), the PSNR gain of their mean
    (``built``), how many readings each of ``counts`` holds for, each reading's fallback steps,
    the first reading's measured noise (quanta per pixel), and for each of ``variants`` the gain
    of the mean of the readings redone as ``variant`` says.
    ``design``: the cases (default :func:`collimated`). Shared by ``fallback_straight.py``,
    ``fallback_cap.py`` and ``quiet_rl.py``."""
    second = dataclasses.replace(built, shape_thresholds=SECOND_THRESHOLDS)
    readings = [
        (load_magnitude_model(BUNDLED_MAGNITUDE), built),
        (load_magnitude_model(SECOND_MAGNITUDE), second),
    ]

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        done = [deconvolve(c.blurred, c.assessment, p, magnitude=m) for m, p in readings]
        pairs = list(zip(done, (p for _, p in readings), strict=True))
        row: dict[str, Any] = {
            "built": fitting_cases.gain(c, (done[0].image.astype(np.float64) + done[1].image) / 2),
            **{name: sum(holds(d, p) for d, p in pairs) for name, holds in counts.items()},
            "steps": [d.rl_iterations for d in done],
            "quanta_measured": done[0].noise_quanta,
        }
        for how in variants:
            images = [variant(c, d, p, how) for d, p in pairs]
            row[how] = fitting_cases.gain(c, (images[0] + images[1]) / 2)
        return row

    fitting_cases.collect(data, part, out, built, measure, design or collimated)


def run(data: Path, part: tuple[int, int], out: Path, variants: list[str]) -> None:
    # 0.14.0, as the look ran: ten steps for every kernel (the node's defaults since differ)
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU, **BEFORE_RL_ROUNDS)
    counts: dict[str, Count] = {
        "fell_back_retrieved": lambda d, _: (
            d.shape is not None and d.shape.replaced and d.method == "richardson-lucy"
        ),
        "fell_back": lambda d, _: d.method == "richardson-lucy",
    }
    run_readings(data, part, out, built, variants, variant, counts)


def summarise_readings(
    paths: list[Path], variants: tuple[str, ...], count: str, what: str, width: int = 8
) -> list[dict[str, Any]]:
    """``run_readings``' rows: the mean gains per group, how many readings ``count`` counted
    (``what`` they are) and in how many cases, each variant against the node as built; the
    flagged rows returned."""
    rows = fitting_cases.read_rows(paths)
    flagged = [r for r in rows if r["flagged"]]
    done = [k for k in variants if k in flagged[0]]
    fitting_cases.print_means(rows, ("built", *done), 8)
    print(
        f"readings {what}: {sum(r[count] for r in flagged)}; cases with one: "
        f"{sum(r[count] > 0 for r in flagged)} of {len(flagged)}"
    )
    fitting_cases.print_against(rows, done, "built", width)
    return flagged


def look_main(run: Callable[..., None], variants: tuple[str, ...], count: str, what: str) -> None:
    """The command line of a look at the readings (``fitting_cases.main``): ``--variants`` among
    ``variants`` (all by default); the summary counts the readings ``count`` holds for (``what``
    they are)."""

    def summary(paths: list[Path]) -> None:
        summarise_readings(paths, variants, count, what)

    def options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--variants", nargs="+", choices=variants, default=list(variants))

    fitting_cases.main(run, summary, options)


def summary(paths: list[Path]) -> None:
    flagged = summarise_readings(
        paths, VARIANTS, "fell_back_retrieved", "that fell back with a retrieved kernel", 9
    )
    print(f"readings that fell back: {sum(r['fell_back'] for r in flagged)}")


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:4]))


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
