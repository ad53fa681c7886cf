"""Two of the thirty-sixth round's worst cases, read (docs/models.md, "What these scenes showed").

On the Kermany-based detector-like scenes of ``consistency_balance.py`` the node as built made
some flagged frames far worse than their blurred input. This redraws two of them (the round's
seeds) and prints what the node estimated and did: the estimated length against the true 5 px,
the method, the Wiener λ, the ringing check's overshoot, the PSNR gain and the result's range.

Run: ``PYTHONPATH=. python docs/experiments/kermany_harm_cases.py``.
"""

from __future__ import annotations

import zlib

import numpy as np
from consistency_balance import VALIDATION_NOISES, kermany_frames
from outside_blur import KINDS, MOTION_MM, gain

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion, deconvolve

CASES = (
    ("train/PNEUMONIA/person1038_virus_1733.jpeg", ("open", "shake", 1.0, "1e4")),
    ("train/PNEUMONIA/person266_bacteria_1242.jpeg", ("open", "straight", 1.0, "1e5")),
)


def main() -> None:
    node = MotionPolicy()
    for name, wanted in CASES:
        seed = zlib.crc32(f"kernel-consistency/{name}".encode())
        rng = np.random.default_rng(seed)
        for scene, sharp in kermany_frames(name, seed):
            for kind in KINDS:
                for mm in MOTION_MM:
                    k = motion_kernel(kind, mm / 0.2, rng)
                    for noise, quanta in VALIDATION_NOISES.items():
                        b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
                        if (scene, kind, mm, noise) != wanted:
                            continue  # drawn all the same, to keep the round's draws
                        a = assess_motion(b, 0.2, node)
                        d = deconvolve(b, a, node)
                        e = a.estimate
                        print(
                            f"{name} {wanted}: estimated {e.length_px:.1f} px at "
                            f"{e.angle_deg:.0f} deg (confidence {e.confidence:.2f}, specificity "
                            f"{e.specificity:.2f}); {d.method}, λ {d.balance}, overshoot "
                            f"{d.overshoot:.4f}; gain {gain(sharp, b, d.image):+.2f} dB; result "
                            f"{d.image.min():.3f}..{d.image.max():.3f}, sharp "
                            f"{sharp.min():.3f}..{sharp.max():.3f}"
                        )


if __name__ == "__main__":
    main()
