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
from pathlib import Path

from detector_scenes import part_of
from fitting_cases import read_rows
from round_design import (
    NODE,
    counted,
    mode_and_names,
    round_parser,
    run_against_node,
    set_heading,
    summarise_against_node,
)

from models.deblur import Deconvolution

CANDIDATES = {
    "steep5": replace(NODE, penalty_steep_beta=5.0),
    "follow2": replace(NODE, penalty_steep_beta=0.0, penalty_slope_offset=2.0),
}
#: the validation's images: every 200th of the train split from this one (sorted by path; none
#: used by any correction round: the rounds' every 200th from the first and from the 100th, the
#: kernel-magnitude validation's every 50th from the 25th)
VALIDATION_OFFSET = 150


def run(names: list[str], mode: str, out: Path, labels: list[str]) -> None:
    chosen = {label: CANDIDATES[label] for label in labels}
    run_against_node(names, mode, out, chosen, "penalty-slope", ("power", _power))


def _power(d: Deconvolution) -> float | None:
    return d.penalty_power


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    summarise_against_node(rows, list(CANDIDATES), 8, set_heading, counted("steeper", "power"))


def main() -> None:
    ap = round_parser()
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    mode, names = mode_and_names(args, VALIDATION_OFFSET)
    run(part_of(names, args.part, args.out), mode, args.out, args.candidates)


if __name__ == "__main__":
    main()
