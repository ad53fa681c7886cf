"""Sharp shadows in frames at ≈0.6 mm/px, a look (thirty-seventh session).

Since ``sharpray-blind-wiener 0.39.0 / 0.40.0`` the Richardson-Lucy fallback leaves the shadows
found in a frame (collimation, markers, borders) out of its fit and gives them back unchanged;
the Wiener path still filters the whole frame. Most frames at ≈0.6 mm/px take the Wiener path.
This look asks, on seen images only, whether that costs anything where the collimation stayed
sharp while the anatomy moved:

- MHH every third unnamed training image from the first (seen by the fifty-fourth round), as
  they are (640 px, 0.6 mm/px), collimated; straight and curved 1 / 2 / 4 mm, no noise and
  Poisson 10⁴, shadows drawn before and after the blur (:func:`fixed_collimation_look.scenes`,
  seeds ``wiener-shadows-look``);
- per case: the node as built (0.40.0): flagged, its path, the anatomy gain; ``pasted``: the
  same with the shadows found given back unchanged; ``filled``: the frame handed to the
  correction with its shadows filled from the anatomy around them (normalised Gaussian
  convolution), the same assessment, the shadows given back unchanged; ``clear``: the
  fifty-sixth round's candidate gate (the estimate clear of the shadows from 2 mm of motion,
  ``blur_gate.estimate_clear_of_shadows_from_mm: 2.0``) and 0.40.0's correction after it.

Run: ``PYTHONPATH=../.. python wiener_shadows_look.py --out runs/ws-0.json --part 0/2`` (and
``1/2``), then ``--summary runs/ws-*.json``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, parser, part_of
from fitting_cases import read_rows
from fixed_collimation_look import MOTION_MM, ORDERS, WEIGHTS, anatomy_gain, scenes
from look_rows import save
from round_design import unnamed_mhh_images
from scipy.ndimage import gaussian_filter

from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray
from models.kernel_shape import load_magnitude_model
from models.shadows import find_shadows
from models.tune_deconvolution import collimate

SPACING_MM = 0.6
NODE = replace(MotionPolicy(), estimate_avoids_shadows=False)  # 0.40.0
#: the fifty-sixth round's candidate at every pixel size
CLEAR = replace(NODE, estimate_avoids_shadows=True, clear_windows_finer_than_mm=None)
FILL_SIGMA_PX = 8.0


def mhh_frames(name: str, seed: int) -> list[tuple[str, np.ndarray]]:
    """(scene, sharp frame) of one MHH image as it is: open and collimated."""
    del seed
    img = load_gray(DATA / name).astype(np.float32) / 255.0
    return [("open", img), ("collimated", collimate(img))]


def filled(image: np.ndarray, shadows: np.ndarray) -> np.ndarray:
    """``image`` with its ``shadows`` replaced by the anatomy around them, smoothed (a
    normalised Gaussian convolution of the pixels outside them)."""
    keep = (~shadows).astype(np.float32)
    num = gaussian_filter(image * keep, FILL_SIGMA_PX)
    den = gaussian_filter(keep, FILL_SIGMA_PX)
    fill = num / np.maximum(den, 1e-6)
    # far from any anatomy the normalised convolution has nothing: the mean of the anatomy
    fill = np.where(den > 1e-3, fill, float(image[~shadows].mean()))
    return np.where(shadows, fill, image).astype(np.float32)


def run(names: list[str], out: Path) -> None:
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in scenes(name, mhh_frames, "wiener-shadows-look", SPACING_MM):
            row = c.row(set="mhh-0.6")
            a = assess_motion(c.blurred, SPACING_MM, NODE)
            row["flagged"] = a.blurred
            row["motion_mm"] = a.motion_mm
            shadows = find_shadows(c.blurred)
            row["shadow_share"] = float(shadows.mean())
            kw = {"magnitude": first, "detector_magnitude": detector}
            b = assess_motion(c.blurred, SPACING_MM, CLEAR)
            row["flagged_clear"] = b.blurred
            row["clear"] = 0.0
            if b.blurred:
                done = deconvolve(c.blurred, b, NODE, **kw).image
                row["clear"] = anatomy_gain(c.sharp, c.blurred, done, c.anatomy)
            if not a.blurred:
                row.update(path="none", node=0.0, pasted=0.0, filled=0.0)
                rows.append(row)
                continue
            d = deconvolve(c.blurred, a, NODE, **kw)
            row["path"] = d.method
            row["node"] = anatomy_gain(c.sharp, c.blurred, d.image, c.anatomy)
            pasted = np.where(shadows, c.blurred, d.image)
            row["pasted"] = anatomy_gain(c.sharp, c.blurred, pasted, c.anatomy)
            if shadows.any() and not shadows.all():
                f = deconvolve(filled(c.blurred, shadows), a, NODE, **kw)
                row["filled_path"] = f.method
                done = np.where(shadows, c.blurred, f.image)
                row["filled"] = anatomy_gain(c.sharp, c.blurred, done, c.anatomy)
            else:
                row["filled"] = row["pasted"]
            rows.append(row)
        save(out, rows, name)


def summary(rows: list[dict[str, Any]]) -> None:
    for order in ORDERS:
        for mm in MOTION_MM:
            sel = [r for r in rows if r["order"] == order and r["mm"] == mm]
            paths = {p: sum(r["path"] == p for r in sel) for p in ("wiener", "richardson-lucy")}
            gains = ", ".join(
                f"{k} {np.mean([r[k] for r in sel]):+.3f} (harmed {sum(r[k] < -0.1 for r in sel)})"
                for k in ("node", "pasted", "filled", "clear")
            )
            fc = sum(r["flagged_clear"] for r in sel)
            print(f"{order} {mm:g} mm: {len(sel)} cases, paths {paths}, clear flags {fc}; {gains}")
        sel = [r for r in rows if r["order"] == order]
        wiener = [r for r in sel if r["path"] == "wiener"]
        gains = ", ".join(
            f"{k} {np.mean([r[k] for r in wiener]):+.3f} (harmed {sum(r[k] < -0.1 for r in wiener)})"
            for k in ("node", "pasted", "filled")
        )
        print(f"  {order}, the {len(wiener)} Wiener cases: {gains}")
        share = np.mean([r["shadow_share"] for r in sel])
        print(f"  {order}: shadows found {share:.3f} of the frame on average")


def main() -> None:
    ap = parser()
    args = ap.parse_args()
    if args.summary:
        summary(read_rows(args.summary))
        return
    names = unnamed_mhh_images()[::3]
    run(part_of(names, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
