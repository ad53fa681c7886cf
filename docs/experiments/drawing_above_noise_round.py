"""The forty-sixth round: the straight kernel's drawing chosen from what the noise leaves.

The forty-fifth round's chooser met its drawing cases by far but, on the MHH scenes, took the
bilinear drawing for most noisy frames of our own (nearest-drawn) straight motion and lost up to
0.15 dB a group. The look after it (``drawing_noise_look``, on those seen cases): reading only
the bins whose power is at least twice the frame's noise floor, and leaving the nearest pixels
only for a drawing that fits better by more than 0.02, keeps most of the gain and loses no
group. Candidate ``above``: the node as built (sharpray-blind-wiener 0.27.0) with
``MotionPolicy.kernel_drawing_by_spectrum``, ``kernel_drawing_above_noise`` 2 and
``kernel_drawing_margin`` 0.02. docs/models.md, the forty-sixth round.

Sets: ``--drawings``: the drawing cases (as the forty-fifth round's) on fresh Kermany train
images — every 200th by path from the 130th, each scaled so its shorter side is 480 px, its
384² centre crop; ``--validation``: Kermany detector-like scenes of the same images (fresh);
``--validation --look``: the forty-fifth round's MHH scenes (seen: the look was fitted on their
straight cases; a check); ``--crops``: the check at ≈0.6 mm/px (seen).

The forty-seventh round (the same candidate): ``--mhh-drawings``, the drawing cases on the 45 MHH
images the drawing question never used (``models.tune_balance``'s validation images and the
rounds' 21 MHH look images) at their own ≈0.6 mm/px: the Kermany files are 224² thumbnails, so
the forty-sixth round's drawing cases were upsampled and held no power where the drawings differ.

Run: ``PYTHONPATH=. python docs/experiments/drawing_above_noise_round.py --drawings --out
runs/da-d0.json --part 0/2`` (and ``1/2``; ``--validation``, ``--validation --look``,
``--crops`` likewise), then ``--summary runs/da-*.json``.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
from consistency_balance import KERMANY, round_images
from detector_scenes import DATA, part_of
from drawing_round import (
    MHH_VALIDATION_OFFSET,
    NODE,
    VALIDATION_OFFSET,
    mhh_crop,
    run_drawings,
    summary,
)
from drawing_round import ROUND as DRAWING_ROUND
from round_design import (
    Round,
    kermany_train_every_200th,
    round_main,
    round_parser,
)
from skimage.transform import rescale

from models.deblur_data import load_gray
from models.tune_balance import image_lists
from models.tune_deconvolution import centre_crop

ABOVE = replace(
    NODE,
    kernel_drawing_by_spectrum=True,
    kernel_drawing_above_noise=2.0,
    kernel_drawing_margin=0.02,
)
CANDIDATES = {"above": ABOVE}
SHORTER_SIDE_PX = 480
#: the scene sets' first condition: harmed cases at most this share of the node's
HARMED_SHARE = 1.1


def kermany_crop(name: str) -> np.ndarray:
    """A Kermany image scaled so its shorter side is :data:`SHORTER_SIDE_PX`, its 384² centre."""
    image = load_gray(KERMANY / name).astype(np.float64) / 255.0
    scaled = rescale(image, SHORTER_SIDE_PX / min(image.shape), anti_aliasing=True)
    return centre_crop(np.clip(scaled, 0.0, 1.0).astype(np.float32), 384)


ROUND = Round(
    CANDIDATES,
    DRAWING_ROUND.seed_key,  # the MHH check's cases are the forty-fifth round's
    DRAWING_ROUND.detail,
    "redrawn",
    VALIDATION_OFFSET,
    HARMED_SHARE,
    mhh_validation_offset=MHH_VALIDATION_OFFSET,
    node=NODE,
    same_as_node=DRAWING_ROUND.same_as_node,
)


def main() -> None:
    if "--summary" in sys.argv:
        summary(round_parser().parse_args().summary, ROUND, "above")
        return
    if "--mhh-drawings" in sys.argv:
        ap = round_parser()
        ap.add_argument("--mhh-drawings", action="store_true")
        args = ap.parse_args()
        _, validation = image_lists(DATA)
        names = validation + round_images(True)
        run_drawings(part_of(names, args.part, args.out), args.out, ABOVE, mhh_crop, "above")
        return
    if "--drawings" in sys.argv:
        ap = round_parser()
        ap.add_argument("--drawings", action="store_true")
        args = ap.parse_args()
        names = kermany_train_every_200th(VALIDATION_OFFSET)
        run_drawings(part_of(names, args.part, args.out), args.out, ABOVE, kermany_crop, "above")
        return
    round_main(ROUND)


if __name__ == "__main__":
    main()
