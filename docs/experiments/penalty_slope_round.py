"""The thirty-eighth round: the Wiener penalty's slope from the frame's anatomy.

The node regularises with ``λ·|2πf|``; on frames whose anatomy falls steeply (the Kermany
scenes, β ≈ 5–7 across the motion) that leaves the high frequencies, where only noise is, too
little penalised, and even the true kernel harms (``true_length_look.py``, ``penalty_power_look.py``).
Candidates (``MotionPolicy.penalty_steep_beta`` / ``penalty_slope_offset`` /
``penalty_steep_power``; λ matched at 0.1 cycles/px; docs/models.md, the thirty-eighth round):

- ``steep5``: power 3 where β across the motion is at least 5;
- ``follow2``: power β − 2 within 1 … 3 on every frame.

Every case counted (0 dB where the node leaves the frame unflagged; the decision is the node's).
Default: the fitting look on the thirty-sixth round's Kermany cases (26 images; its seeds);
``--look``: its 21 MHH images; ``--validation``: 25 Kermany train images no round has used (every
200th from the 150th), their own seeds; ``--crops``: the check at ≈0.6 mm/px (the 20 fitting
images' 384² crops of ``fitting_cases``). ``--candidates`` limits the candidates run.

Run: ``PYTHONPATH=. python docs/experiments/penalty_slope_round.py --out runs/ps-k0.json --part
0/2`` (and ``1/2``; ``--look`` / ``--validation`` / ``--crops`` likewise), then ``--summary
runs/ps-*.json``.
"""

from __future__ import annotations

from dataclasses import replace

from round_design import NODE, Round, round_main

from models.deblur import Deconvolution

CANDIDATES = {
    "steep5": replace(NODE, penalty_steep_beta=5.0),
    "follow2": replace(NODE, penalty_steep_beta=0.0, penalty_slope_offset=2.0),
}
#: the validation's images: every 200th of the train split from this one (sorted by path; none
#: used by any correction round: the rounds' every 200th from the first and from the 100th, the
#: kernel-magnitude validation's every 50th from the 25th)
VALIDATION_OFFSET = 150


def _power(d: Deconvolution) -> float | None:
    return d.penalty_power


ROUND = Round(CANDIDATES, "penalty-slope", ("power", _power), "steeper", VALIDATION_OFFSET)

if __name__ == "__main__":
    round_main(ROUND)
