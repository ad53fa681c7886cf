"""A soft frame under a short motion, a look (thirty-eighth session).

Kermany's 224 px images upsampled to 640 px made the straight estimate read 1–2 mm of motion
2–5× too long, and the correction then harmed every such frame (docs/models.md, "Kermany frames
upsampled to 640 px"). An interpolation is one isotropic low-pass; a detector's own MTF (a CR
plate's phosphor), a resampling on export or a display filter are others. This look asks how
much isotropic softness the node as built (``sharpray-blind-wiener 0.44.0``, the first magnitude
network) stands: MHH frames as they are (640 px, 0.6 mm/px; the thirty-seventh session's seen
look images, the first five of each half), an isotropic Gaussian of σ 0 / 0.7 / 1.0 / 1.5 px
applied to the sharp frame (the reference stays that soft frame: the correction should take the
motion out, not the softness), straight and curved 1 / 2 mm without noise. Per σ: sharp frames
flagged, blurred frames flagged, the median of estimated over true length, the mean PSNR gain
over the blurred input (0 where not flagged) and the cases harmed (< −0.1 dB).

Run: ``PYTHONPATH=../.. python isotropic_blur_look.py --part 0/2`` (and ``1/2``); it prints.
"""

from __future__ import annotations

import argparse

import numpy as np
from fixed_collimation_look import WEIGHTS
from outside_blur import gain
from round_design import unnamed_mhh_images
from scipy.ndimage import gaussian_filter
from shape_shadows_look import NODE, SPACING_MM, mhh_frames

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import assess_motion, deconvolve
from models.kernel_shape import load_magnitude_model

SIGMAS_PX = (0.0, 0.7, 1.0, 1.5)
IMAGES_PER_PART = 5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="0/1")
    i, k = (int(x) for x in ap.parse_args().part.split("/"))
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    names = unnamed_mhh_images()[::3][i::k][:IMAGES_PER_PART]
    for sigma in SIGMAS_PX:
        false_alarms = 0
        rows: list[tuple[float, float]] = []  # (estimated / true length or nan, gain)
        for name in names:
            (_, img), _ = mhh_frames(name, 0)
            soft = gaussian_filter(img, sigma) if sigma else img
            false_alarms += assess_motion(soft, SPACING_MM, NODE).blurred
            rng = np.random.default_rng(7)
            for kind in ("straight", "curved"):
                for mm in (1.0, 2.0):
                    kernel = motion_kernel(kind, mm / SPACING_MM, rng)
                    blurred = simulate_motion_blur(soft, kernel, noise=NoiseSpec(None))
                    a = assess_motion(blurred, SPACING_MM, NODE)
                    if not a.blurred:
                        rows.append((float("nan"), 0.0))
                        continue
                    d = deconvolve(blurred, a, NODE, magnitude=first)
                    ratio = a.estimate.length_px / (mm / SPACING_MM)
                    rows.append((ratio, gain(soft, blurred, d.image)))
        read = [r for r, _ in rows if r == r]
        median = f"{np.median(read):.2f}" if read else "-"
        print(
            f"sigma {sigma:g} px: sharp flagged {false_alarms}/{len(names)}; blurred flagged "
            f"{len(read)}/{len(rows)}, length read / true (median) {median}, gain "
            f"{np.mean([g for _, g in rows]):+.2f}, harmed {sum(g < -0.1 for _, g in rows)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
