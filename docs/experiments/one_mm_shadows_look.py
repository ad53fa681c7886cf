"""1 mm of motion behind sharp shadows in 1024² frames, a look (thirty-seventh session).

The fifty-sixth round's 1024² Kermany scenes showed 0.40.0 harming 1 mm motion whose shadows
stayed sharp (−1.40 dB over 100 cases, 42 harmed) while the same motion with the shadows blurred
gained +1.75. This look asks why, on seen images only:

1. the blind estimate of 5 px (1 mm at 0.2 mm/px) and 10 px straight motion, no noise, on the
   open 1024² scenes of the round's first six Kermany images (every 200th train image from the
   60th, ×5 upsampled, :func:`shadows_round.kermany_1024`) and of six MHH images (the first six
   unnamed training images, ×3, :func:`detector_scenes.frames`); angles drawn from seed 0;
2. on the second Kermany image, 5 px at 156° drawn before and after the collimation: the node's
   fallback steps (10, the shadows found left out) with the true kernel and with a 7.8 px one
   (what the estimate read there), the anatomy gain by distance from the shadows.

3. ``--corners``: on that scene (shadows after the blur, true kernel), the pixels neither
   anatomy nor found as shadows (the marker's corners the finder's diamond widening misses) and
   the anatomy gain within 2, 2–5 and 5–10 px of the shadows with those pixels left out too.

Run: ``PYTHONPATH=../.. python one_mm_shadows_look.py`` (4 min, one process); ``--corners``.
"""

from __future__ import annotations

import numpy as np
from detector_scenes import frames
from fixed_collimation_look import exposed
from round_design import kermany_train_every_200th, unnamed_mhh_images
from scipy.ndimage import distance_transform_edt
from shadows_round import kermany_1024
from skimage.metrics import peak_signal_noise_ratio as psnr

from models.blur import NoiseSpec, from_exposure, linear_kernel, simulate_motion_blur, to_exposure
from models.deblur import MotionPolicy, assess_motion
from models.deconvolve import richardson_lucy
from models.shadows import find_shadows
from models.tune_deconvolution import collimate

ZONES_PX = ((0, 20), (20, 80), (80, 200), (200, 2000))


def estimates() -> None:
    policy = MotionPolicy()
    rng = np.random.default_rng(0)
    sets = (
        ("Kermany ×5", kermany_train_every_200th(60)[:6], kermany_1024),
        ("MHH ×3", unnamed_mhh_images()[:6], frames),
    )
    for label, names, frames_of in sets:
        for px in (5.0, 10.0):
            read = []
            for name in names:
                (_, open_frame), _ = frames_of(name, 7)
                kernel = linear_kernel(px, float(rng.uniform(0, 180)))
                blurred = simulate_motion_blur(open_frame, kernel, noise=NoiseSpec(None))
                read.append(assess_motion(blurred, 0.2, policy).estimate.length_px)
            print(f"{label}, {px:g} px: estimated " + " ".join(f"{r:.1f}" for r in read))


def zones() -> None:
    (_, open_frame), _ = kermany_1024(kermany_train_every_200th(60)[1], 7)
    true, long = linear_kernel(5.0, 156.0), linear_kernel(7.8, 156.0)
    anatomy = exposed(open_frame.shape)
    distance = distance_transform_edt(anatomy)
    sharp = collimate(open_frame)
    orders = {
        "before": simulate_motion_blur(sharp, true, noise=NoiseSpec(None)),
        "after": collimate(simulate_motion_blur(open_frame, true, noise=NoiseSpec(None))),
    }
    for order, blurred in orders.items():
        shadows = find_shadows(blurred)
        e = to_exposure(blurred.astype(np.float64), 3.0)
        for label, kernel in (("true 5 px", true), ("7.8 px", long)):
            out = np.clip(from_exposure(richardson_lucy(e, kernel, 10, False, ~shadows), 3.0), 0, 1)
            parts = []
            for lo, hi in ZONES_PX:
                m = anatomy & (distance > lo) & (distance <= hi)
                g = psnr(sharp[m], out[m], data_range=1.0) - psnr(
                    sharp[m], blurred[m], data_range=1.0
                )
                parts.append(f"{lo}–{hi} px {g:+.2f}")
            print(f"shadows {order} the blur, {label}: " + "; ".join(parts))


def corners() -> None:
    (_, open_frame), _ = kermany_1024(kermany_train_every_200th(60)[1], 7)
    kernel = linear_kernel(5.0, 156.0)
    anatomy = exposed(open_frame.shape)
    distance = distance_transform_edt(anatomy)
    sharp = collimate(open_frame)
    blurred = collimate(simulate_motion_blur(open_frame, kernel, noise=NoiseSpec(None)))
    found = find_shadows(blurred)
    missed = ~anatomy & ~found
    print(f"neither anatomy nor found: {int(missed.sum())} pixels")
    e = to_exposure(blurred.astype(np.float64), 3.0)
    for label, left_out in (("found", found), ("found and the missed", found | missed)):
        u = richardson_lucy(e, kernel, 10, False, ~left_out)
        out = np.where(left_out, blurred, np.clip(from_exposure(u, 3.0), 0, 1))
        parts = []
        for lo, hi in ((0, 2), (2, 5), (5, 10)):
            m = anatomy & (distance > lo) & (distance <= hi)
            g = psnr(sharp[m], out[m], data_range=1.0) - psnr(sharp[m], blurred[m], data_range=1.0)
            parts.append(f"{lo}–{hi} px {g:+.2f}")
        print(f"left out: {label}: " + "; ".join(parts))


if __name__ == "__main__":
    import sys

    if "--corners" in sys.argv:
        corners()
    else:
        estimates()
        zones()
