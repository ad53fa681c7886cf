"""Why the Kermany scenes' 1 mm estimates come out too long (docs/models.md, twenty-seventh
session): the power law of the base images and the estimated / true length of 1 mm (5 px)
straight motion at 0.2 mm/px, on six Kermany images of the thirty-sixth round (seen) and six MHH
fitting images, as their detector-like scenes (:func:`models.detector_texture.continued`) with
and without noise, and the Kermany ones also without the continued texture. Angles 0 … 90° in
steps of 22.5° (the median per angle too), Poisson 2·10⁴ where noisy. Nothing is chosen here.

Run: ``PYTHONPATH=. python docs/experiments/short_estimate_bias.py`` (about 5 min).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from consistency_balance import KERMANY, KERMANY_SIDE_PX, kermany_images
from detector_scenes import DATA, SIDE_PX, SPACING_MM
from scipy.ndimage import zoom

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion
from models.deblur_data import load_gray
from models.detector_texture import continued, power_law
from models.tune_balance import image_lists

LENGTH_PX = 1.0 / SPACING_MM
ANGLES = (0.0, 22.5, 45.0, 67.5, 90.0)


def scene(path: Path, seed: int, side: int, texture: bool) -> np.ndarray:
    base = load_gray(path).astype(np.float32) / 255.0
    if texture:
        return continued(base, side, seed)
    big = np.clip(zoom(base, 3.0, order=3), 0.0, 1.0)
    h, w = big.shape
    s = min(side, h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return big[y0 : y0 + s, x0 : x0 + s]


def main() -> None:
    node = MotionPolicy()
    kermany = [KERMANY / n for n in kermany_images()[:6]]
    fit, _ = image_lists(DATA)
    mhh = [DATA / n for n in fit[:6]]
    for label, paths in (("Kermany", kermany), ("MHH", mhh)):
        betas = [power_law(load_gray(p).astype(np.float32) / 255.0)[0] for p in paths]
        print(f"{label} power law β: " + " ".join(f"{b:.2f}" for b in betas))
    settings = [
        ("Kermany scenes, Poisson 2e4", kermany, KERMANY_SIDE_PX, True, 2e4),
        ("Kermany scenes, noiseless", kermany, KERMANY_SIDE_PX, True, None),
        ("Kermany ×3 without texture, 2e4", kermany, KERMANY_SIDE_PX, False, 2e4),
        ("MHH scenes 672², Poisson 2e4", mhh, KERMANY_SIDE_PX, True, 2e4),
        ("MHH scenes 1024², Poisson 2e4", mhh, SIDE_PX, True, 2e4),
        ("MHH scenes 1024², noiseless", mhh, SIDE_PX, True, None),
    ]
    for label, paths, side, texture, quanta in settings:
        by_angle: dict[float, list[float]] = {angle: [] for angle in ANGLES}
        flagged, cases = 0, 0
        for i, p in enumerate(paths):
            sharp = scene(p, i, side, texture)
            for angle in ANGLES:
                rng = np.random.default_rng(i)
                k = linear_kernel(LENGTH_PX, angle)
                b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
                a = assess_motion(b, SPACING_MM, node)
                cases += 1
                if a.blurred:
                    flagged += 1
                    by_angle[angle].append(a.estimate.length_px / LENGTH_PX)
        ratios = [r for v in by_angle.values() for r in v]
        med = f"{np.median(ratios):.2f}" if ratios else "—"
        angles = " ".join(f"{a:g}° {np.median(v):.2f}" for a, v in by_angle.items() if v)
        print(f"{label}: flagged {flagged}/{cases}, estimate / true median {med} ({angles})")


if __name__ == "__main__":
    main()
