"""The forty-third round: λ at least 0.1 where a quiet frame does not follow its straight kernel.

The thirty-fifth round's check (:func:`models.deblur.kernel_consistency` under 0.7, the Wiener
filter kept, pixels finer than 0.4 mm: λ at least 0.1) against the node as built now
(sharpray-blind-wiener 0.27.0, whose penalty floor already holds back a noisy frame's noise):
``c70`` everywhere, ``c70_quiet`` only in frames whose measured noise is at least 5·10⁴ quanta
per pixel (``MotionPolicy.kernel_consistency_min_quanta``: a quiet frame, whose noise-following
λ is small; in a noisy one the noise fills a right kernel's dips too). docs/models.md, "λ where
a quiet frame does not follow its straight kernel".

Every case counted (0 dB where the node leaves the frame unflagged; the decision is the node's).
Default: the fitting look on the thirty-sixth round's Kermany cases (26 images; seen);
``--look``: its 21 MHH images (seen); ``--validation``: fresh Kermany scenes (every 200th train
image from the 70th); ``--validation --look``: fresh MHH scenes (every third of the MHH training
images no list named, from the second); ``--crops``: the check at ≈0.6 mm/px.

Run: ``PYTHONPATH=. python docs/experiments/quiet_consistency_round.py --out runs/qc-k0.json
--part 0/2`` (and ``1/2``; ``--look`` / ``--validation`` / ``--crops`` likewise), then
``--summary runs/qc-*.json``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from round_design import Round, round_main

from models.blur import to_exposure
from models.deblur import Deconvolution, MotionAssessment, MotionPolicy, consistency_floor

#: the node as the round runs against it (sharpray-blind-wiener 0.27.0)
NODE = replace(
    MotionPolicy(),
    kernel_consistency_min=None,
    kernel_consistency_min_quanta=None,
    kernel_drawing_by_spectrum=False,
)
CHECK = replace(NODE, kernel_consistency_min=0.7, kernel_consistency_balance=0.1)
CANDIDATES = {
    "c70": CHECK,
    "c70_quiet": replace(CHECK, kernel_consistency_min_quanta=5e4),
}
#: the Kermany validation: every 200th train image by path from this one (unused: the rounds'
#: every 200th from the 0th, 10th, 30th, 50th, 100th and 150th, the kernel-magnitude
#: validation's every 50th from the 25th)
VALIDATION_OFFSET = 70
#: the MHH validation: every third unnamed MHH training image from this one (the forty-second
#: round's from the 0th)
MHH_VALIDATION_OFFSET = 1
#: the validation's first condition: harmed cases at most this share of the node's (as the
#: thirty-ninth and fortieth rounds)
HARMED_SHARE = 0.75


def _raised(d: Deconvolution) -> bool | None:
    return True if d.consistency_raised else None


def _same_as_node(
    blurred: np.ndarray, a: MotionAssessment, policy: MotionPolicy, built: Deconvolution
) -> bool:
    """The check changes nothing where the node fell back to Richardson–Lucy (ringing is judged
    at the λ without the floor) or where it asks no floor of this frame (its consistency, its
    measured noise): the candidate's correction is then the node's, exactly."""
    if built.method != "wiener":
        return True
    e = to_exposure(np.asarray(blurred, dtype=np.float64), policy.log_range)
    least, _ = consistency_floor(e, a, policy, built.noise_quanta)
    return least == 0.0


ROUND = Round(
    CANDIDATES,
    "quiet-consistency",
    ("raised", _raised),
    "raised",
    VALIDATION_OFFSET,
    HARMED_SHARE,
    mhh_validation_offset=MHH_VALIDATION_OFFSET,
    node=NODE,
    same_as_node=_same_as_node,
)

if __name__ == "__main__":
    round_main(ROUND)
