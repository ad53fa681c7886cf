"""A look: how a short straight motion is drawn on the pixel grid, and what the node makes of it.

The node's kernel (:func:`models.blur.linear_kernel`) puts each point of the path on its nearest
pixel: 2.5 px of horizontal motion becomes [0.3, 0.4, 0.3], whose first zero lies at 0.366
cycles/px where the motion's own transfer sinc(2.5·f) has it at 0.4. The estimate's template is
that continuous sinc. An evaluator may draw a line another way. Three renderings of the same
path (``render``): ``nearest`` (the node's, and the blur of every round), ``bilinear`` (each
point spread over its four neighbours, as an interpolated or anti-aliased line is), ``lanczos``
(each point a Lanczos-3 kernel: close to the band-limited line, transfer ≈ sinc(L·f)).

Cases: the 20 fitting images of ``models.tune_balance`` (``fitting_cases``: 384² crops at
0.6 mm/px), straight motion of 2.5 / 3 / 4 / 6 px at a random angle, each rendering, noise none
and Poisson 10⁴. Per case: the node's decision and estimate (``MotionPolicy()``), and the gain
of the straight-kernel correction with the first magnitude network (as the node's first
reading) where the node flags — with the node's kernel of its estimate (``node``), of the true
length and angle (``true_nearest``), and drawn as the blur was (``true_drawn``); the last two on
every case, flagged or not (what a right kernel could give).

Run: ``PYTHONPATH=. python docs/experiments/kernel_rendering_look.py --out runs/kr-0.json --part
0/2`` (and ``1/2``), then ``--summary runs/kr-*.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, parser, part_of
from fitting_cases import names as fitting_names
from fitting_cases import read_rows
from look_rows import save
from outside_blur import gain

from models.blur import NoiseSpec, drawn_linear_kernel, simulate_motion_blur
from models.blur_estimate import MotionEstimate
from models.deblur import MotionAssessment, MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray
from models.kernel_shape import load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE
from models.tune_deconvolution import centre_crop

LENGTHS = (2.5, 3.0, 4.0, 6.0)
RENDERINGS = ("nearest", "bilinear", "lanczos")
NOISES = {"none": None, "1e4": 1e4}


def render(length_px: float, angle_deg: float, mode: str) -> np.ndarray:
    """The path drawn by ``mode`` (:func:`models.blur.drawn_linear_kernel`, this look's own
    drawing when it ran, moved there unchanged)."""
    return drawn_linear_kernel(length_px, angle_deg, mode)


def drawn_line_cases(
    sharp: np.ndarray, rng: np.random.Generator
) -> Iterator[tuple[float, float, str, str, np.ndarray]]:
    """The drawing cases of one crop, in the order the looks and rounds draw them: each of
    :data:`LENGTHS` at a random angle, drawn each of :data:`RENDERINGS` ways, each of
    :data:`NOISES` a blurred copy — (px, angle, drawing, noise, blurred)."""
    for px in LENGTHS:
        angle = float(rng.uniform(0, 180))
        for mode in RENDERINGS:
            k = render(px, angle, mode)
            for noise, quanta in NOISES.items():
                blurred = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
                yield px, angle, mode, noise, blurred


def crop(name: str) -> np.ndarray:
    """An MHH image's 384² centre crop at its own ≈0.6 mm/px (the looks' and rounds' crops)."""
    return centre_crop(load_gray(DATA / name).astype(np.float32) / 255.0, 384)


def case_row(name: str, px: float, mode: str, noise: str, a: MotionAssessment) -> dict[str, Any]:
    """A look case's row before any correction: the case and whether the node flags it."""
    return {"image": name, "px": px, "mode": mode, "noise": noise, "flagged": a.blurred}


def look_cases(name: str) -> tuple[np.ndarray, Iterator[tuple[float, float, str, str, np.ndarray]]]:
    """This look's cases of one image (its crop, seeded by its name): the crop and
    :func:`drawn_line_cases`."""
    sharp = crop(name)
    return sharp, drawn_line_cases(sharp, np.random.default_rng(sum(map(ord, name)) + 43))


def run(names: list[str], out: Path) -> None:
    policy = dataclasses.replace(MotionPolicy(), kernel_drawing_by_spectrum=False)  # as it ran
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)
    rows: list[dict[str, Any]] = []
    for name in names:
        sharp, cases = look_cases(name)
        for px, angle, mode, noise, b in cases:
            a = assess_motion(b, 0.6, policy)
            est = a.estimate
            row: dict[str, Any] = {
                **case_row(name, px, mode, noise, a),
                "length": est.length_px,
                "angle_error": abs((est.angle_deg - angle + 90) % 180 - 90),
                "node": 0.0,
            }
            for m in RENDERINGS[1:]:
                row[f"node_{m}"] = 0.0
            if a.blurred:
                d = deconvolve(b, a, policy, magnitude=magnitude)
                row["node"] = gain(sharp, b, d.image)
                for m in RENDERINGS[1:]:
                    # the node's estimate drawn another way (where the shape step kept
                    # the straight kernel; else the node's own correction)
                    row[f"node_{m}"] = row["node"]
                    if d.shape is not None and not d.shape.replaced:
                        k_m = render(est.length_px, est.angle_deg, m)
                        other = dataclasses.replace(d.shape, kernel=k_m)
                        d_m = deconvolve(b, a, policy, shape=other)
                        row[f"node_{m}"] = gain(sharp, b, d_m.image)
            true = MotionEstimate(px, angle, 1.0)
            t: MotionAssessment = dataclasses.replace(a, decision="blurred", estimate=true)
            d = deconvolve(b, t, policy, magnitude=magnitude)
            row["true_nearest"] = gain(sharp, b, d.image)
            shape = d.shape
            if shape is not None and not shape.replaced:
                # the shape step confirmed the straight kernel: the same finding (its λ),
                # the kernel drawn as the blur was
                drawn = dataclasses.replace(shape, kernel=render(px, angle, mode))
                d = deconvolve(b, t, policy, shape=drawn)
            elif shape is None:
                drawn_t = dataclasses.replace(
                    t, estimate=MotionEstimate(px, angle, 1.0, drawing=mode)
                )
                d = deconvolve(b, drawn_t, policy)
            row["true_drawn"] = gain(sharp, b, d.image)
            row["shape_replaced"] = bool(shape is not None and shape.replaced)
            rows.append(row)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    print(f"{len(rows)} cases")
    for noise in NOISES:
        print(f"noise {noise}")
        for px in LENGTHS:
            for mode in RENDERINGS:
                sel = [
                    r for r in rows if r["px"] == px and r["mode"] == mode and r["noise"] == noise
                ]
                if not sel:
                    continue
                fl = [r for r in sel if r["flagged"]]
                lengths = np.array([r["length"] / px for r in fl]) if fl else np.array([np.nan])
                print(
                    f"  {px:4.1f} px {mode:8s} flagged {len(fl):2d}/{len(sel)} length/true "
                    f"{np.median(lengths):.2f} | node {np.mean([r['node'] for r in sel]):+.3f} "
                    f"true length, node's kernel {np.mean([r['true_nearest'] for r in sel]):+.3f} "
                    f"drawn as blurred {np.mean([r['true_drawn'] for r in sel]):+.3f} | node "
                    + " ".join(
                        f"{m} {np.mean([r[f'node_{m}'] for r in sel]):+.3f}" for m in RENDERINGS[1:]
                    )
                )


def main() -> None:
    args = parser().parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(part_of(fitting_names(DATA, (0, 1)), args.part, args.out), args.out)


if __name__ == "__main__":
    main()
