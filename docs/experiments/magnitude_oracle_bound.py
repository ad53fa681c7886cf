"""How much a truer kernel magnitude could still give the node at ≈0.6 mm/px: a bound (fitting images).

Four magnitude networks have lowered the held-out magnitude error 0.163 → 0.112, and the node's
validation gain per network fell with it (docs/models.md, the twenty-fourth and twenty-fifth
rounds). Before another network: what would the node gain with the **true** magnitude in place
of the learned one, everything else as built (the phase retrieval, the orientation by total
variation, τ, λ, the Richardson–Lucy fallback)? Per flagged case (the 20 fitting images of
``models.tune_balance``, 384² centred crops at 0.6 mm/px, straight and curved 3 / 6 / 10 px,
noise none / 3·10⁴ / 10⁴), the PSNR gain of:

- ``node``: the node as built (the bundled magnitude network, τ 0.25 / 0.3);
- ``true_magnitude``: the same with the case's true |K| as the "network's" output;
- ``true_magnitude_always``: the same with τ 0 (the retrieved kernel used wherever it was read);
- ``oracle_wiener``: the true kernel's Wiener filter (``models.evaluate.wiener_blind``).

``PYTHONPATH=. python docs/experiments/magnitude_oracle_bound.py --out runs/mo-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/mo-*.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import fitting_cases
import numpy as np
from fitting_cases import psnr

from models.deblur import MotionPolicy, deconvolve
from models.evaluate import wiener_blind
from models.kernel_shape import load_magnitude_model, magnitude_of
from models.tune_balance import BUNDLED_MAGNITUDE

AS_BUILT_TAU = (0.25, 0.3)


def true_magnitude(kernel: np.ndarray) -> Any:
    """An estimator that returns the kernel's own centred |K|, whatever spectrum it is given."""
    m = np.fft.fftshift(magnitude_of(kernel.astype(np.float64)))

    def estimate(spectrum: np.ndarray) -> np.ndarray:
        return m

    return estimate


def run(data: Path, part: tuple[int, int], out: Path) -> None:
    policy = MotionPolicy(shape_thresholds=AS_BUILT_TAU)
    always = dataclasses.replace(policy, shape_thresholds=(0.0, 0.0))
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        base = psnr(c.sharp, c.blurred)
        truth = true_magnitude(c.kernel)
        row: dict[str, Any] = {}
        for key, pol, mag in (
            ("node", policy, magnitude),
            ("true_magnitude", policy, truth),
            ("true_magnitude_always", always, truth),
        ):
            d = deconvolve(c.blurred, c.assessment, pol, magnitude=mag)
            row[key] = psnr(c.sharp, d.image) - base
            row[f"{key}_replaced"] = d.shape is not None and d.shape.replaced
        oracle = wiener_blind(c.blurred, c.kernel.astype(np.float64), policy)
        row["oracle_wiener"] = psnr(c.sharp, oracle) - base
        return row

    fitting_cases.collect(data, part, out, policy, measure)


KEYS = ("node", "true_magnitude", "true_magnitude_always", "oracle_wiener")


def summary(paths: list[Path]) -> None:
    def replaced(rs: list[dict[str, Any]]) -> str:
        return "/".join(str(sum(r[f"{k}_replaced"] for r in rs)) for k in KEYS[:3])

    rows = fitting_cases.read_rows(paths)
    fitting_cases.print_means(rows, KEYS, 16, ("replaced n/t/a", replaced))


if __name__ == "__main__":
    fitting_cases.main(run, summary)
