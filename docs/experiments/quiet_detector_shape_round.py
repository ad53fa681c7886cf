"""The forty-eighth round: the native-pixel magnitude network at detector scale, in quiet frames
only.

The eighteenth round's step (``sharpray-kernel-magnitude-detector 0.1.0``, τ 0.25, the frame
corrected without it where its Wiener result rings) met its validation on detector-like scenes
and was switched off again on the test split's real frames *with* Poisson noise (−0.73 dB over
the detector rows); without noise it gained there (curved 2 mm +1.01 → +3.79). Candidate
``quiet``: the step only where the frame's measured noise is at least 10⁶ quanta per pixel
(``MotionPolicy.shape_detector_min_quanta``; the forty-fourth round's line between frames
without added noise and every noisy one, not fitted); ``every``: the step in every frame, for
the record (it acts on the noiseless cases' frames under 10⁶ too). The node as it runs today
(``sharpray-blind-wiener 0.31.0``, with its shape step's first network, which does not read
frames finer than 0.4 mm).

The candidate acts on no frame with Poisson noise where that reads under 10⁶, so only the cases
without added noise are run (every case drawn, so the seeds are the same); ``--noisy-quanta``
(``noiseless_consistency_round``) measures the noisy cases of the same images.

Sets: ``--forty-fourth --validation`` and ``--forty-fourth --validation --look`` are the
forty-fourth round's validation sets (Kermany every 200th train image from the 70th, MHH every
third unnamed training image from the second; its seeds; seen): the look. ``--validation``: Kermany every 200th train image from the **170th**
(fresh), and ``--validation --look`` MHH every third unnamed training image from the first (seen
by the forty-second round's gate question), with this round's seeds. ``--crops``: the crops at
≈0.6 mm/px (the step acts only finer than 0.4 mm: unchanged).

Run: ``PYTHONPATH=../.. python quiet_detector_shape_round.py --forty-fourth --validation --out
runs/qd-lk0.json --part 0/2`` (and ``1/2``; with ``--look`` likewise), ``--validation [--look]``
for the validation, then ``--summary runs/qd-*.json``; ``--noisy-quanta --validation [--look]
--out runs/qd-nq.json`` measures the validation's noisy cases.
docs/models.md, the forty-eighth round.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
from noiseless_consistency_round import ROUND as NOISELESS_ROUND
from noiseless_consistency_round import noisy_quanta
from round_design import Networks, Round, round_main

from models.deblur import Deconvolution, MotionAssessment, MotionPolicy, quiet_for_detector
from models.kernel_shape import load_magnitude_model

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"
#: the node as the round runs against it (sharpray-blind-wiener 0.31.0; since 0.34.0 the default
#: policy reads detector frames as the forty-ninth round's candidate, pinned back here)
NODE = replace(
    MotionPolicy(),
    shape_detector_min_quanta=None,
    shape_detector_max_specificity=None,
    shape_detector_kept_halved=True,
)
QUANTA = 1e6
QUIET = replace(NODE, shape_detector_min_quanta=QUANTA)
CANDIDATES = {
    "quiet": QUIET,
    "every": NODE,
    # after the look (docs/models.md): a retrieved kernel only where the frame's spectrum
    # follows the straight kernel less than this
    "quiet_c60": replace(QUIET, shape_detector_max_consistency=0.60),
    "quiet_c65": replace(QUIET, shape_detector_max_consistency=0.65),
    "quiet_c70": replace(QUIET, shape_detector_max_consistency=0.70),
    # after those: where the straight kernel is kept, λ as if the network had not read the frame
    "quiet_c65_kept": replace(
        QUIET, shape_detector_max_consistency=0.65, shape_detector_kept_halved=False
    ),
    "quiet_c70_kept": replace(
        QUIET, shape_detector_max_consistency=0.70, shape_detector_kept_halved=False
    ),
    # a look after the round (docs/models.md): no limit, and a lower noise line
    "quiet_kept": replace(QUIET, shape_detector_kept_halved=False),
    "q5_kept": replace(QUIET, shape_detector_min_quanta=5e5, shape_detector_kept_halved=False),
    # ... and a retrieved kernel only where the spectrum follows it more than the straight one
    "q5_cmp_kept": replace(
        QUIET,
        shape_detector_min_quanta=5e5,
        shape_detector_better_by=0.0,
        shape_detector_kept_halved=False,
    ),
    # the forty-ninth round's candidate (docs/models.md): chosen on the look by
    # detector_discriminator_look.py
    "q5_s177_kept": replace(
        QUIET,
        shape_detector_min_quanta=5e5,
        shape_detector_max_specificity=0.177,
        shape_detector_kept_halved=False,
    ),
    "q5_c65_kept": replace(
        QUIET,
        shape_detector_min_quanta=5e5,
        shape_detector_max_consistency=0.65,
        shape_detector_kept_halved=False,
    ),
}
#: the Kermany validation: every 200th train image by path from this one (unused: the rounds'
#: every 200th from the 0th, 10th, 30th, 50th, 70th, 100th, 130th and 150th, the kernel-magnitude
#: validation's every 50th from the 25th)
VALIDATION_OFFSET = 170
#: the MHH validation: every third unnamed MHH training image from this one
MHH_VALIDATION_OFFSET = 0


def networks() -> Mapping[str, Networks]:
    """The node's shape-step network for every label, the native-pixel one for the candidates."""
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    return {"node": (first, None), **{label: (first, detector) for label in CANDIDATES}}


def _retrieved(d: Deconvolution) -> bool | None:
    return True if d.shape is not None and d.shape.replaced else None


def _same_as_node(
    blurred: np.ndarray, a: MotionAssessment, policy: MotionPolicy, built: Deconvolution
) -> bool:
    """Where the frame is not quiet enough, the candidate's step does not read it: its
    correction is the node's, exactly (the node's measured noise is the one it reads)."""
    return not quiet_for_detector(built.noise_quanta, policy)


LOOK = Round(
    CANDIDATES,
    NOISELESS_ROUND.seed_key,
    ("retrieved", _retrieved),
    "retrieved",
    NOISELESS_ROUND.validation_offset,
    0.75,
    mhh_validation_offset=NOISELESS_ROUND.mhh_validation_offset,
    node=NODE,
    same_as_node=_same_as_node,
    only_noise="none",
    networks=networks,
)
ROUND = replace(
    LOOK,
    seed_key="quiet-detector-shape",
    validation_offset=VALIDATION_OFFSET,
    mhh_validation_offset=MHH_VALIDATION_OFFSET,
)

#: the forty-ninth round's validation (docs/models.md): Kermany every 200th train image from the
#: 190th (never used), MHH every third unnamed training image from the third (never read by a
#: round of the native-pixel network), with the round's own seeds
FORTY_NINTH = replace(
    LOOK, seed_key="detector-discriminator", validation_offset=190, mhh_validation_offset=2
)

#: the fiftieth round (docs/models.md): the node as built (sharpray-blind-wiener 0.34.0, both
#: networks) against the retrieved kernel in the Richardson-Lucy fallback at detector scale
NODE_34 = MotionPolicy()
FALLBACK_CANDIDATES = {
    "rl": replace(NODE_34, shape_detector_fallback_unshaped=False),
    "rl10": replace(NODE_34, shape_detector_fallback_unshaped=False, shape_rl_follows_noise=False),
    # the fifty-first round's candidate, chosen on the look by detector_discriminator_look.py
    # --fiftieth: the retrieved kernel in the fallback only where its fit is under 0.058
    "rl_fit058": replace(NODE_34, shape_detector_fallback_max_fit=0.058),
}
UNSHAPED_REASON = "the retrieved kernel's Wiener result rang"


def _retrieved_fallback(d: Deconvolution) -> bool | None:
    replaced = d.shape is not None and d.shape.replaced
    return True if replaced and d.method == "richardson-lucy" else None


def _not_unshaped(
    blurred: np.ndarray, a: MotionAssessment, policy: MotionPolicy, built: Deconvolution
) -> bool:
    """A candidate differs from 0.34.0 only where 0.34.0 corrected the frame without the shape
    step because the retrieved kernel's Wiener result rang."""
    return built.shape is None or not built.shape.reason.startswith(UNSHAPED_REASON)


def _both_networks() -> Mapping[str, Networks]:
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    return {label: (first, detector) for label in ("node", *FALLBACK_CANDIDATES)}


#: ``--fiftieth --look-sets --validation [--look]``: the look, on the forty-eighth round's look sets
#: with their seeds; ``--fiftieth --validation [--look]``: the validation, Kermany every 200th
#: train image from the 110th (fresh), MHH every third unnamed training image from the first
#: (seen), with the round's own seeds
FIFTIETH_LOOK = replace(
    LOOK,
    candidates=FALLBACK_CANDIDATES,
    detail=("fallback", _retrieved_fallback),
    counted_as="fallback",
    harmed_share=1.0,
    node=NODE_34,
    same_as_node=_not_unshaped,
    networks=_both_networks,
)
FIFTIETH = replace(
    FIFTIETH_LOOK, seed_key="fallback-retrieved", validation_offset=110, mhh_validation_offset=0
)

if __name__ == "__main__":
    if "--fiftieth" in sys.argv:
        sys.argv.remove("--fiftieth")
        look_sets = "--look-sets" in sys.argv
        if look_sets:
            sys.argv.remove("--look-sets")
        round_main(FIFTIETH_LOOK if look_sets else FIFTIETH)
        sys.exit(0)
    # ``--forty-fourth``: the look, on the forty-fourth round's validation sets with its seeds
    # (``--validation`` and ``--validation --look`` with it)
    if "--forty-fourth" in sys.argv:
        sys.argv.remove("--forty-fourth")
        round_main(LOOK)
    elif "--forty-ninth" in sys.argv:
        sys.argv.remove("--forty-ninth")
        if "--noisy-quanta" in sys.argv:
            noisy_quanta(FORTY_NINTH)
        else:
            round_main(FORTY_NINTH)
    elif "--noisy-quanta" in sys.argv:
        noisy_quanta(ROUND)
    else:
        round_main(ROUND)
