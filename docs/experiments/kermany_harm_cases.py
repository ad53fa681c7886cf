"""Two of the thirty-sixth round's worst cases, read (docs/models.md, "What these scenes showed").

On the Kermany-based detector-like scenes of ``consistency_balance.py`` the node as built made
some flagged frames far worse than their blurred input. This redraws two of them (the round's
seeds) and prints what the node estimated and did: the estimated length against the true 5 px,
the method, the Wiener λ, the ringing check's overshoot, the PSNR gain and the result's range.

Run: ``PYTHONPATH=. python docs/experiments/kermany_harm_cases.py``.
"""

from __future__ import annotations

from consistency_balance import round_cases
from detector_scenes import SPACING_MM
from outside_blur import gain

from models.deblur import MotionPolicy, assess_motion, deconvolve

CASES = (
    ("train/PNEUMONIA/person1038_virus_1733.jpeg", ("open", "shake", 1.0, "1e4")),
    ("train/PNEUMONIA/person266_bacteria_1242.jpeg", ("open", "straight", 1.0, "1e5")),
)


def main() -> None:
    node = MotionPolicy()
    for name, wanted in CASES:
        for c in round_cases(name, look=False):
            if (c.scene, c.kind, c.mm, c.noise) != wanted:
                continue  # drawn all the same, to keep the round's draws
            a = assess_motion(c.blurred, SPACING_MM, node)
            d = deconvolve(c.blurred, a, node)
            e = a.estimate
            print(
                f"{name} {wanted}: estimated {e.length_px:.1f} px at {e.angle_deg:.0f} deg "
                f"(confidence {e.confidence:.2f}, specificity {e.specificity:.2f}); {d.method}, "
                f"λ {d.balance}, overshoot {d.overshoot:.4f}; gain "
                f"{gain(c.sharp, c.blurred, d.image):+.2f} dB; result "
                f"{d.image.min():.3f}..{d.image.max():.3f}, sharp "
                f"{c.sharp.min():.3f}..{c.sharp.max():.3f}"
            )


if __name__ == "__main__":
    main()
