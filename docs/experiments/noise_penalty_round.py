"""The thirty-ninth round: the Wiener penalty as the measured noise over the anatomy.

The Wiener filter's own regulariser is the noise over the signal's power, σ² / S(f). The node's
``λ·|2πf|`` follows the measured noise in λ only, so on frames whose anatomy falls steeply (the
Kermany scenes) it lets through the high frequencies where only noise is; the thirty-eighth
round's steeper power helped there and held back a noiseless frame's recoverable anatomy. Here
the penalty is at least ``c·σ²·|f|^β / A`` (``MotionPolicy.penalty_noise_over_signal``;
:func:`models.noise_level.power_law_across`: ``A·f^−β`` across the motion and σ², read together
on the blurred frame), so it rises only as far as noise is measured (docs/models.md, the
thirty-ninth round). Candidates: ``nsr1`` (c = 1, the MMSE filter's ratio) and ``nsr_half``
(c = ½); the fortieth round's ``nsr1_fine``: nsr1 at pixels finer than 0.4 mm only.

Every case counted (0 dB where the node leaves the frame unflagged; the decision is the node's).
Default: the fitting look on the thirty-sixth round's Kermany cases (26 images; its seeds);
``--look``: its 21 MHH images; ``--validation``: 25 Kermany train images no round has used (every
200th from the 50th), their own seeds; ``--crops``: the check at ≈0.6 mm/px (the 20 fitting
images' 384² crops of ``fitting_cases``); ``--second-validation``: the fortieth round's 25 fresh
Kermany train images (every 200th from the 10th). ``--candidates`` limits the candidates run.

Run: ``PYTHONPATH=. python docs/experiments/noise_penalty_round.py --out runs/np-k0.json --part
0/2`` (and ``1/2``; ``--look`` / ``--validation`` / ``--crops`` likewise), then ``--summary
runs/np-*.json``.
"""

from __future__ import annotations

from dataclasses import replace

from round_design import NODE, Round, round_main

from models.deblur import Deconvolution

CANDIDATES = {
    "nsr1": replace(NODE, penalty_noise_over_signal=1.0),
    "nsr_half": replace(NODE, penalty_noise_over_signal=0.5),
    # the fortieth round: nsr1 at pixels finer than 0.4 mm only (docs/models.md)
    "nsr1_fine": replace(NODE, penalty_noise_over_signal=1.0, penalty_noise_finer_than_mm=0.4),
}
#: the validation's images: every 200th of the train split from this one (sorted by path; none
#: used by any correction round: the rounds' every 200th from the first, the 100th and the
#: 150th, the kernel-magnitude validation's every 50th from the 25th)
VALIDATION_OFFSET = 50
#: the validation's first condition: harmed cases at most this share of the node's (half the
#: node's harm is the length estimate's, which no penalty changes: docs/models.md)
HARMED_SHARE = 0.75
#: the fortieth round's validation: every 200th train image from this one (unused as above, and
#: not the thirty-ninth's)
SECOND_VALIDATION_OFFSET = 10


def _floor(d: Deconvolution) -> list[float] | None:
    f = d.penalty_floor
    return None if f is None else [f.coefficient, f.exponent]


ROUND = Round(
    CANDIDATES,
    "noise-penalty",
    ("floor", _floor),
    "floored",
    VALIDATION_OFFSET,
    HARMED_SHARE,
    SECOND_VALIDATION_OFFSET,
)

if __name__ == "__main__":
    round_main(ROUND)
