"""A look: can the frame's spectrum tell how its motion was drawn on the pixel grid?

The rendering look (``kernel_rendering_look``) found that the node's estimate inverted with the
kernel drawn as the blur was (nearest / bilinear / Lanczos-3) gains 0.3–0.6 dB over a wrong
drawing on frames without noise, and that the node cannot tell which drawing it meets. Here, on
the same cases (the 20 fitting images' 384² crops at 0.6 mm/px, straight 2.5 / 3 / 4 / 6 px at a
random angle, each drawing, noise none and Poisson 10⁴; the same seeds), per flagged case: the
node's correction with its estimate drawn each way (where the shape step kept the straight
kernel; else the node's own correction for all three), and the consistency of each drawing with
the frame (:func:`models.deblur.consistency_spectra`: the correlation of the frame's log power
with the kernel's log transfer) over the node's band (0.03–0.3 cycles/px) and over a wide one
(0.03–0.49), where the drawings differ most.

Run: ``PYTHONPATH=. python docs/experiments/drawing_choice_look.py --out runs/dc-0.json --part
0/2`` (and ``1/2``), then ``--summary runs/dc-*.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, parser, part_of
from fitting_cases import names as fitting_names
from fitting_cases import read_rows
from kernel_rendering_look import NOISES, RENDERINGS, case_row, look_cases, render
from look_rows import save
from outside_blur import gain

from models.blur import to_exposure
from models.deblur import (
    CONSISTENCY_PATCH,
    MotionPolicy,
    assess_motion,
    consistency_spectra,
    deconvolve,
)
from models.kernel_shape import load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE

BANDS = {"node": (0.03, 0.3), "wide": (0.03, 0.49)}
#: the three readings of each band: ``raw`` (the node's correlation), ``rings`` (each ring's mean
#: removed from both spectra first) and ``fit`` (minus the spread, within rings, of log power −
#: log transfer: a frame blurred by the kernel has power = radial anatomy × |K|², so the
#: difference is constant on each ring); higher is better for each
READINGS = ("raw", "rings", "fit")
SCORES = tuple(f"{band}_{r}" for band in BANDS for r in READINGS)


def _ring_centred(x: np.ndarray, ring: np.ndarray, band: np.ndarray) -> np.ndarray:
    y = x.copy()
    for k in np.unique(ring[band]):
        m = band & (ring == k)
        y[m] -= y[m].mean()
    return y[band]


def consistencies(exposure: np.ndarray, psf: np.ndarray) -> dict[str, float]:
    """Each of :data:`SCORES` for the kernel and the frame (NaN: not measured)."""
    s = consistency_spectra(exposure, psf)
    out = {}
    for band, (lo, hi) in BANDS.items():
        if s is None:
            out.update({f"{band}_{r}": float("nan") for r in READINGS})
            continue
        m = (s.radius > lo) & (s.radius < hi)
        ring = np.round(s.radius * CONSISTENCY_PATCH).astype(int)
        out[f"{band}_raw"] = float(np.corrcoef(s.log_power[m], s.log_transfer[m])[0, 1])
        a, b = _ring_centred(s.log_power, ring, m), _ring_centred(s.log_transfer, ring, m)
        out[f"{band}_rings"] = float(np.corrcoef(a, b)[0, 1])
        out[f"{band}_fit"] = -float(np.std(a - b))
    return out


def run(names: list[str], out: Path) -> None:
    policy = dataclasses.replace(MotionPolicy(), kernel_drawing_by_spectrum=False)  # as it ran
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)
    rows: list[dict[str, Any]] = []
    for name in names:
        sharp, cases = look_cases(name)  # the rendering look's cases
        for px, _angle, mode, noise, b in cases:
            a = assess_motion(b, 0.6, policy)
            row: dict[str, Any] = case_row(name, px, mode, noise, a)
            if not a.blurred:
                rows.append(row)
                continue
            est = a.estimate
            d = deconvolve(b, a, policy, magnitude=magnitude)
            straight = d.shape is not None and not d.shape.replaced
            row["straight"] = straight
            e = to_exposure(b.astype(np.float64), policy.log_range)
            for m in RENDERINGS:
                k_m = render(est.length_px, est.angle_deg, m)
                for band, c in consistencies(e, k_m).items():
                    row[f"c_{band}_{m}"] = c
                if m == "nearest" or not straight or d.shape is None:
                    row[f"gain_{m}"] = gain(sharp, b, d.image)
                    continue
                other = dataclasses.replace(d.shape, kernel=k_m)
                row[f"gain_{m}"] = gain(sharp, b, deconvolve(b, a, policy, shape=other).image)
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    fl = [r for r in rows if r["flagged"]]
    print(f"{len(rows)} cases, {len(fl)} flagged, {sum(r['straight'] for r in fl)} straight kept")
    for band in SCORES:
        print(f"score {band}")
        for noise in NOISES:
            sel = [r for r in fl if r["noise"] == noise]
            confusion = {(t, p): 0 for t in RENDERINGS for p in RENDERINGS}
            for r in sel:
                c = [r[f"c_{band}_{m}"] for m in RENDERINGS]
                confusion[(r["mode"], RENDERINGS[int(np.nanargmax(c))])] += 1
            print(f"  noise {noise}: blur drawn → chosen")
            for t in RENDERINGS:
                print(f"    {t:8s} " + " ".join(f"{confusion[(t, p)]:3d}" for p in RENDERINGS))
    for noise in NOISES:
        print(f"noise {noise}: mean gain (over all cases, 0 where not flagged) by blur drawing")
        for t in RENDERINGS:
            sel = [r for r in rows if r["noise"] == noise and r["mode"] == t]
            line = f"  {t:8s}"
            for m in RENDERINGS:
                line += f" {m} {np.mean([r.get(f'gain_{m}', 0.0) for r in sel]):+.3f}"
            for band in SCORES:
                chosen = [
                    r[
                        f"gain_{RENDERINGS[int(np.nanargmax([r[f'c_{band}_{m}'] for m in RENDERINGS]))]}"
                    ]
                    if r["flagged"]
                    else 0.0
                    for r in sel
                ]
                line += f" | {band} {np.mean(chosen):+.3f}"
            print(line)


def main() -> None:
    args = parser().parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(part_of(fitting_names(DATA, (0, 1)), args.part, args.out), args.out)


if __name__ == "__main__":
    main()
