"""Sharp shadows with the detector's noise in them at ≈0.6 mm/px (thirty-eighth session).

Every "shadows after the blur" scene of the shadow rounds (:func:`fixed_collimation_look.scenes`)
draws the collimation and the marker after the noise too: their areas are perfectly flat,
noiseless grey. A real detector is noisy under a collimator as anywhere (the shadow is sharp
because the collimator hangs on the tube, not because no quantum reaches it). In such a
scene the noise measured in the frame (:func:`models.noise_level.quanta_per_pixel`) reads a
quarter of flat grey as quiet; the fifty-eighth round's scratch look found the clear windows'
harmed 4 mm cases at 0.6 mm taking 20–24 Richardson–Lucy steps for noise measured as 1.8–2.6·10⁴
quanta per pixel where 10⁴ was added. This look draws the shadows after the blur and **before**
the noise (order ``under``), beside the old ``after`` order, noise Poisson 10⁴ (noiseless
scenes are the same in both orders), and measures the gate and the anatomy gain of:

- ``node``: the node as built (``sharpray-blind-wiener 0.44.0``: at 0.6 mm the windows as built);
- ``clear``: the clear windows at every pixel size (``clear_windows_finer_than_mm`` None);
- ``node_noise``, ``clear_noise``: each with the correction's noise read clear of the shadows
  at pixels of 0.4 mm and more (``MotionPolicy.noise_clear_of_shadows_from_mm``, the
  candidate for a next round).

Frames: ``--mhh`` the thirty-seventh session's look images (seen: MHH every third unnamed
training image from the first, 640 px at 0.6 mm/px); ``--kermany OFFSET``: Kermany every 200th
train image from OFFSET, upsampled from 224 px to 640 px, taken as 0.6 mm/px
(:func:`shape_shadows_look.kermany_frames`); collimated; straight and curved 1 / 2 / 4 mm.

Run: ``PYTHONPATH=../.. python noise_under_shadows_look.py --mhh --out runs/nu-0.json --part
0/2`` (and ``1/2``), then ``--summary runs/nu-*.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import part_of
from fitting_cases import read_rows
from fixed_collimation_look import KINDS, MOTION_MM, WEIGHTS, Scene, scene_frames
from look_rows import save
from shape_shadows_look import (
    CLEAR,
    NODE,
    POLICIES,
    SPACING_MM,
    judged_row,
    kermany_frames,
    look_arguments,
    look_names,
    mhh_frames,
)

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.kernel_shape import load_magnitude_model
from models.tune_deconvolution import collimate

QUANTA = 1e4
ORDERS = ("after", "under")
#: label -> (gate, correction): the shape look's two, and each with the noise read clear of the
#: shadows at pixels of 0.4 mm and more (``MotionPolicy.noise_clear_of_shadows_from_mm``)
NOISE_POLICIES = {
    **{k: POLICIES[k] for k in ("node", "clear")},
    "node_noise": (NODE, replace(NODE, noise_clear_of_shadows_from_mm=0.4)),
    "clear_noise": (CLEAR, replace(CLEAR, noise_clear_of_shadows_from_mm=0.4)),
}
LABELS = tuple(NOISE_POLICIES)
#: a kernel that moves nothing: the noise alone
STILL = np.ones((1, 1))


def noisy_scenes(
    name: str, frames_of: Callable[[str, int], list[tuple[str, np.ndarray]]], seed_key: str
) -> Iterator[Scene]:
    """One image's collimated cases at Poisson 10⁴: the shadows drawn after the noise
    (``after``, as the shadow rounds drew them) and after the blur but before the noise
    (``under``), the same kernel and noise seed for both."""
    sharp_open, rng, anatomy, sharp = scene_frames(name, frames_of, seed_key)
    for kind in KINDS:
        for mm in MOTION_MM:
            kernel = motion_kernel(kind, mm / SPACING_MM, rng)
            seed = int(rng.integers(2**31))
            after = collimate(
                simulate_motion_blur(
                    sharp_open, kernel, np.random.default_rng(seed), noise=NoiseSpec(QUANTA)
                )
            )
            moved = simulate_motion_blur(sharp_open, kernel, noise=NoiseSpec(None))
            under = simulate_motion_blur(
                collimate(moved), STILL, np.random.default_rng(seed), noise=NoiseSpec(QUANTA)
            )
            for order, blurred in (("after", after), ("under", under)):
                yield Scene(name, kind, mm, "1e4", order, sharp, blurred, anatomy)


def run(names: list[str], kermany: bool, out: Path) -> None:
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    frames_of = kermany_frames if kermany else mhh_frames
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in noisy_scenes(name, frames_of, "noise-under-shadows"):
            rows.append(judged_row(c, NOISE_POLICIES, first, detector, kermany))
        save(out, rows, name)


def summary(rows: list[dict[str, Any]]) -> None:
    for order in ORDERS:
        sel = [r for r in rows if r["order"] == order]
        for mm in (None, *MOTION_MM):
            part = [r for r in sel if mm is None or r["mm"] == mm]
            what = "all" if mm is None else f"{mm:g} mm"
            cells = []
            for k in LABELS:
                flags = sum(r[f"flagged_{k}"] for r in part)
                harmed = sum(r[k] < -0.1 for r in part)
                steps = [r[f"steps_{k}"] for r in part if r.get(f"steps_{k}")]
                mean_steps = f"{np.mean(steps):.1f}" if steps else "-"
                cells.append(
                    f"{k} flagged {flags}, gain {np.mean([r[k] for r in part]):+.3f}, "
                    f"harmed {harmed}, steps {mean_steps}"
                )
            print(f"{order} {what} ({len(part)}): " + "; ".join(cells))


def main() -> None:
    args = look_arguments()
    if args.summary:
        summary(read_rows(args.summary))
        return
    run(part_of(look_names(args), args.part, args.out), args.kermany is not None, args.out)


if __name__ == "__main__":
    main()
