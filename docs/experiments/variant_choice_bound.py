"""How much a local choice among deconvolutions could give at ≈0.6 mm/px: a bound (fitting images).

A refiner given only the blurred image and the node's correction cannot know the kernel better
than the node did. DWDN-style, it could be given several deconvolutions and choose locally. Before
building that, the bound: per flagged case (the 20 fitting images of ``models.tune_balance``,
384² centred crops at 0.6 mm/px, straight and curved 3 / 6 / 10 px, noise none / 3·10⁴ / 10⁴),
the PSNR gain of the node's correction, of each variant (the node's kernel with λ ×0.5 / ×2; the
straight estimate without the shape step; the straight estimate ×0.8 / ×1.25 in length), and of
an **oracle choice** that takes, in every 16×16 block, whichever of them is closest to the sharp
image (a bound no network reaches: it sees the truth). The true-kernel Wiener oracle beside.

``PYTHONPATH=. python docs/experiments/variant_choice_bound.py --out runs/vc-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/vc-*.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np
from fitting_cases import psnr

from models.blur_estimate import MotionEstimate
from models.deblur import MotionPolicy, deconvolve
from models.evaluate import wiener_blind
from models.kernel_shape import load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE

BLOCK = 16


def block_choice(sharp: np.ndarray, variants: list[np.ndarray]) -> np.ndarray:
    """In each BLOCK² block, the variant with the least squared error against the truth."""
    out = np.empty_like(variants[0])
    h, w = sharp.shape
    for y in range(0, h, BLOCK):
        for x in range(0, w, BLOCK):
            sl = (slice(y, y + BLOCK), slice(x, x + BLOCK))
            errs = [float(np.mean((v[sl] - sharp[sl]) ** 2)) for v in variants]
            out[sl] = variants[int(np.argmin(errs))][sl]
    return out


def run(data: Path, part: tuple[int, int], out: Path) -> None:
    policy = MotionPolicy()
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        sharp, b, a = c.sharp, c.blurred, c.assessment
        if not a.blurred:
            return {}
        base = psnr(sharp, b)
        node = deconvolve(b, a, policy, magnitude=magnitude)
        variants = {"node": node.image}
        for f in (0.5, 2.0):
            pol = dataclasses.replace(policy, wiener_balance_factor=f)
            variants[f"lambda_x{f:g}"] = deconvolve(
                b, a, pol, magnitude=magnitude, shape=node.shape
            ).image
        variants["straight"] = deconvolve(b, a, policy).image
        for f in (0.8, 1.25):
            longer = dataclasses.replace(a, estimate=_scaled(a.estimate, f))
            variants[f"straight_x{f:g}"] = deconvolve(b, longer, policy).image
        row = {key: psnr(sharp, v) - base for key, v in variants.items()}
        row["choice"] = psnr(sharp, block_choice(sharp, list(variants.values()))) - base
        near = [variants[k] for k in ("node", "lambda_x0.5", "lambda_x2")]
        row["choice_node_lambda"] = psnr(sharp, block_choice(sharp, near)) - base
        row["oracle_wiener"] = (
            psnr(sharp, wiener_blind(b, c.kernel.astype(np.float64), policy)) - base
        )
        return row

    fitting_cases.collect(data, part, out, policy, measure)


def _scaled(est: MotionEstimate, factor: float) -> MotionEstimate:
    return dataclasses.replace(est, length_px=max(1.0, est.length_px * factor))


KEYS = (
    "node",
    "lambda_x0.5",
    "lambda_x2",
    "straight",
    "straight_x0.8",
    "straight_x1.25",
    "choice_node_lambda",
    "choice",
    "oracle_wiener",
)


def summary(paths: list[Path]) -> None:
    fitting_cases.print_means(fitting_cases.read_rows(paths), KEYS, 13)


if __name__ == "__main__":
    fitting_cases.main(run, summary)
