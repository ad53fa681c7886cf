"""A look for the next round: the node's own correction (the same kernel, method, λ and steps)
computed in another domain than linear exposure (docs/models.md, after the thirty-sixth round).

The thirty-sixth round's Kermany scenes showed the node's harm in dense, low-exposure parts: a
small error in exposure is a large one in grey values there (δv = δe / (3·e)). Variants of the
domain the filter acts in, each the node's decision replayed (the Wiener filter at the node's λ,
or the Richardson–Lucy fallback with its steps):

- ``grey``: the grey values themselves (errors even in grey values; the blur is not linear
  there, but nearly so where the exposure varies little);
- ``norm{σ}``: the exposure divided by its Gaussian low-pass of σ px (the blurred frame's local
  level), filtered, multiplied back: linear where the level is even, the ringing a dense part
  gets from a bright edge scaled by the level ratio;

Per flagged case of the thirty-sixth round's scenes (``--look``: the 21 MHH images; default: the
26 Kermany images; the round's seeds, so the node's gains repeat its figures). Nothing is chosen
here.

Run: ``PYTHONPATH=. python docs/experiments/domain_look.py --out runs/dl-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/dl-*.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_main
from fitting_cases import read_rows
from look_rows import against_node, by_mm, case_groups, flagged_corrections, means_by, save
from outside_blur import KINDS, gain
from scipy.ndimage import gaussian_filter

from models.blur import from_exposure, to_exposure
from models.deblur import Deconvolution, MotionPolicy
from models.deconvolve import richardson_lucy, wiener_exposure

SIGMAS_PX = (16.0, 64.0)


def replay(signal: np.ndarray, psf: np.ndarray, d: Deconvolution, policy: MotionPolicy) -> Any:
    """The node's decision ``d`` applied to ``signal`` (any domain)."""
    if d.method == "wiener":
        assert d.balance is not None
        return wiener_exposure(signal, psf, d.balance, policy.power, policy.rl_iterations)
    return richardson_lucy(signal, psf, d.rl_iterations, d.rl_accelerated)


def variants(blurred: np.ndarray, psf: np.ndarray, d: Deconvolution, p: MotionPolicy) -> dict:
    b = blurred.astype(np.float64)
    out = {"grey": np.clip(replay(b, psf, d, p), 0.0, 1.0)}
    e = to_exposure(b, p.log_range)
    for s in SIGMAS_PX:
        level = gaussian_filter(e, s, mode="reflect")
        z = replay(e / level, psf, d, p) * level
        out[f"norm{s:g}"] = np.clip(from_exposure(z, p.log_range), 0.0, 1.0)
    return out


def run(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in names:
        for c, a, d in flagged_corrections(name, look, node):
            if d.method == "none" or (d.shape is not None and d.shape.replaced):
                continue
            row: dict[str, Any] = c.row(method=d.method, node=gain(c.sharp, c.blurred, d.image))
            for label, img in variants(c.blurred, a.estimate.kernel(), d, node).items():
                row[label] = gain(c.sharp, c.blurred, img)
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    labels = ["node", "grey"] + [f"norm{s:g}" for s in SIGMAS_PX]
    for method in ("wiener", "richardson-lucy", None):
        sub = [r for r in rows if method is None or r["method"] == method]
        groups = case_groups(sub)
        node = np.array([r["node"] for r in sub])
        print(f"== {method or 'all'}: {len(sub)} flagged cases")
        for label in labels:
            v = np.array([r[label] for r in sub])
            kinds = means_by(v, sub, "kind", KINDS)
            print(f"{label:8s} {against_node(v, node, groups)} | {kinds} | {by_mm(v, sub)}")


def main() -> None:
    round_main(run, summary, "the 21 MHH images instead of Kermany")


if __name__ == "__main__":
    main()
