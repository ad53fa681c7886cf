"""The forty-fourth round: λ at least 0.1 where a frame without noise does not follow its straight
kernel.

The forty-third round's check (:func:`models.deblur.kernel_consistency` under 0.7, the Wiener
filter kept, pixels finer than 0.4 mm: λ at least 0.1) missed its fitting look on the Kermany
scenes at 10⁵ quanta per pixel; read by the measured noise (``quiet_threshold_look``), the
check helps and harms nothing where the frame's measured noise is at least 10⁶ quanta per pixel
— frames without added noise. Candidate ``c70_noiseless``: the check only there
(``MotionPolicy.kernel_consistency_min_quanta`` 10⁶). docs/models.md, the forty-fourth round.

It acts on no frame with Poisson noise (measured at most 2.4·10⁵ on every fitting case), so the
validation runs the cases without added noise only (every case drawn, so the seeds are the
round's; the others not run) and ``--noisy-quanta`` measures the noise of every noisy case of
the validation's images (no assessment) to check that none reaches 10⁶.

``--validation``: fresh Kermany scenes (every 200th train image from the 70th; the forty-third
round's, never run); ``--validation --look``: fresh MHH scenes (every third unnamed MHH training
image from the second); ``--crops``: the check at ≈0.6 mm/px.

Run: ``PYTHONPATH=. python docs/experiments/noiseless_consistency_round.py --validation --out
runs/nc-vk0.json --part 0/2`` (and ``1/2``; ``--validation --look`` likewise), then
``--summary runs/nc-*.json``; ``--noisy-quanta --validation [--look] --out runs/nq-k.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
from detector_scenes import part_of
from quiet_consistency_round import CHECK, HARMED_SHARE, MHH_VALIDATION_OFFSET, NODE
from quiet_consistency_round import ROUND as QUIET_ROUND
from round_design import Round, cases_of, mode_and_names, round_main, round_parser

from models.blur import to_exposure
from models.deblur import wiener_balance

QUANTA = 1e6
CANDIDATES = {"c70_noiseless": replace(CHECK, kernel_consistency_min_quanta=QUANTA)}
#: the Kermany validation: every 200th train image from the 70th (the forty-third round's
#: validation images, never run)
VALIDATION_OFFSET = 70

ROUND = Round(
    CANDIDATES,
    "noiseless-consistency",
    QUIET_ROUND.detail,
    "raised",
    VALIDATION_OFFSET,
    HARMED_SHARE,
    mhh_validation_offset=MHH_VALIDATION_OFFSET,
    node=NODE,
    same_as_node=QUIET_ROUND.same_as_node,
    only_noise="none",
)


def noisy_quanta(spec: Round = ROUND) -> None:
    """The measured noise of every noisy case of the asked set's images (``--out``: the rows),
    with ``spec``'s validation images, seeds and node."""
    ap = round_parser()
    ap.add_argument("--noisy-quanta", action="store_true")
    args = ap.parse_args()
    mode, names = mode_and_names(args, spec.validation_offset, spec.mhh_validation_offset)
    rows = []
    node = spec.node
    for name in part_of(names, args.part, args.out):
        for c in cases_of(name, mode, spec.seed_key):
            if c.noise == "none":
                continue
            e = to_exposure(np.asarray(c.blurred, dtype=np.float64), node.log_range)
            rows.append({"image": name, "noise": c.noise, "quanta": wiener_balance(e, node)[1]})
        args.out.write_text(json.dumps(rows))
        print(name, "done", flush=True)
    q = np.array([r["quanta"] for r in rows if r["quanta"] is not None])
    print(f"{len(rows)} noisy cases, measured noise at most {q.max():.3g} quanta/px")


if __name__ == "__main__":
    if "--noisy-quanta" in sys.argv:
        noisy_quanta()
    else:
        round_main(ROUND)
