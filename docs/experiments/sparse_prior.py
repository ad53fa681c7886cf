"""A sparse gradient prior instead of the Wiener filter at ≈0.6 mm/px: the fitting look.

The node inverts its kernel with a Wiener filter whose quadratic penalty λ·|2πf| treats an edge
and noise alike; a hyper-Laplacian prior on the gradients (``Σ |∇x|^α``, α < 1; Krishnan &
Fergus 2009, :func:`models.deconvolve.sparse_exposure`) lets edges through and flattens noise,
the classical way past the Wiener filter on images with sparse edges. Per flagged fitting case in
the validation's design (``fitting_cases.scene_cases``: 0.6 mm open and collimated scenes, straight
and curved 6 / 10 px, noise none / 10⁵ / 3·10⁴ / 10⁴ / 3·10³), the node as built (0.18.0: the mean
of two readings) against the same where each reading that keeps its Wiener result (no fallback)
is deconvolved with the prior instead (same kernel: the shape step's finding reused), for every
variant ``m<μ>g<γ>a<α>``: data weight μ at λ = 0.1, times (λ / 0.1)^−γ, λ the reading's own
Wiener regulariser (``MotionPolicy.sparse_prior_*``).

``PYTHONPATH=. python docs/experiments/sparse_prior.py --out runs/sp-0.json --part 0/2`` (and
``1/2``), then ``--summary runs/sp-*.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path

import fitting_cases
import numpy as np
from fallback_retrieved import AS_BUILT_TAU, Count, run_readings

from models.deblur import Deconvolution, MotionPolicy, deconvolve
from models.tune_balance import BEFORE_BUDGET

WEIGHTS = (100.0, 200.0, 400.0, 800.0)
EXPONENTS = (1.0, 1.5, 2.0)
ALPHAS = (0.8,)
#: Thresholds on the measured quanta per pixel at or below which the summary takes a variant.
THRESHOLDS = (1e4, 2e4, 4e4, 1e5)


def label(weight: float, exponent: float, alpha: float) -> str:
    return f"m{weight:g}g{exponent:g}a{alpha:g}"


def grid(
    weights: tuple[float, ...] | list[float],
    exponents: tuple[float, ...] | list[float],
    alphas: tuple[float, ...] | list[float],
) -> dict[str, tuple[float, float, float]]:
    return {label(*p): p for p in itertools.product(weights, exponents, alphas)}


VARIANTS: dict[str, tuple[float, float, float]] = {}


def variant(
    c: fitting_cases.Case, done: Deconvolution, policy: MotionPolicy, how: str
) -> np.ndarray:
    """The reading ``done`` again with the sparse prior where it kept its Wiener result."""
    if done.method != "wiener":
        return done.image.astype(np.float64)
    m, g, a = VARIANTS[how]
    sparse = dataclasses.replace(
        policy, sparse_prior_weight=m, sparse_prior_exponent=g, sparse_prior_alpha=a
    )
    return deconvolve(c.blurred, c.assessment, sparse, shape=done.shape).image.astype(np.float64)


def run(
    data: Path,
    part: tuple[int, int],
    out: Path,
    weights: list[float],
    exponents: list[float],
    alphas: list[float],
) -> None:
    VARIANTS.update(grid(weights, exponents, alphas))
    built = MotionPolicy(shape_thresholds=AS_BUILT_TAU, **BEFORE_BUDGET)  # 0.18.0, as it ran
    counts: dict[str, Count] = {"kept_wiener": lambda d, _: d.method == "wiener"}
    run_readings(data, part, out, built, list(VARIANTS), variant, counts, fitting_cases.scene_cases)


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    keys = sorted({k for r in rows for k in r if k.startswith("m") and k[1:2].isdigit()})
    fitting_cases.print_means(rows, ("built", *keys[:4]), 8)
    fitting_cases.print_against(rows, keys, "built", 16)
    for t in THRESHOLDS:  # the prior only where the measured noise is at most t quanta/px
        for r in rows:
            if r["flagged"]:
                q = r["quanta_measured"]
                for k in keys:
                    noisy = q is not None and q <= t
                    r[f"{k}<={t:g}"] = r[k] if noisy else r["built"]
        print(f"-- where N <= {t:g}")
        fitting_cases.print_against(rows, [f"{k}<={t:g}" for k in keys], "built", 24)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", nargs="+", type=float, default=list(WEIGHTS))
    p.add_argument("--exponents", nargs="+", type=float, default=list(EXPONENTS))
    p.add_argument("--alphas", nargs="+", type=float, default=list(ALPHAS))


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
