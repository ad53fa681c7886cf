"""The forty-second round: a strong fit a little short of the gate's 1 mm is blurred (docs/models.md).

Motion found with confidence ≥ c and specificity ≥ s is "blurred" from 0.8 mm instead of 1 mm
(``MotionPolicy.strong_short_from_mm`` and its two thresholds). Candidates: ``s70_15`` (c 0.7,
s 0.15) and ``s65_12`` (c 0.65, s 0.12). Each case is decided by the node (0.25.0) and by each
candidate (second look included) and corrected where flagged by the node's correction; every
case counted, 0 dB where a policy does not flag; for a sharp scene whether it was corrected.

Default: the fitting look on the cases of ``short_motion_threshold_look`` (the thirty-sixth
round's Kermany detector-like scenes at 1 mm, and 0.5 mm and none of the same scenes; seen);
``--look``: its 21 MHH images; ``--validation``: fresh Kermany scenes (every 200th train image
from the 30th) and ``--validation --look`` fresh MHH scenes (every third MHH training image
that no earlier list named: not ``models.tune_balance``'s fitting or validation images, not the
rounds' 21), each sharp and blurred by straight, curved and shake motion of 0.5 and 1 mm, noise
none / 10⁵ / 2·10⁴ / 10⁴, their own seeds.

Run: ``PYTHONPATH=. python docs/experiments/strong_short_round.py --out runs/ss-k0.json --part
0/2`` (and ``1/2``; ``--look``, ``--validation``, ``--validation --look`` likewise), then
``--summary runs/ss-*.json``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames, round_cases, round_images
from detector_scenes import SPACING_MM, Case, frames, image_cases, parser, part_of
from fitting_cases import read_rows
from kernel_consistency import VALIDATION_NOISES
from look_rows import by_set, save
from outside_blur import KINDS
from round_design import kermany_train_every_200th, unnamed_mhh_images
from short_motion_round import added_line, decided_row
from short_motion_threshold_look import extra_cases

from models.blur import NoiseSpec, simulate_motion_blur
from models.deblur import MotionPolicy

#: the node as the round ran against it (sharpray-blind-wiener 0.25.0: its candidate, the
#: default since 0.27.0, off)
NODE = replace(MotionPolicy(), strong_short_from_mm=None)
CANDIDATES = {
    "s70_15": replace(
        NODE,
        strong_short_from_mm=0.8,
        strong_short_min_confidence=0.7,
        strong_short_min_specificity=0.15,
    ),
    "s65_12": replace(
        NODE,
        strong_short_from_mm=0.8,
        strong_short_min_confidence=0.65,
        strong_short_min_specificity=0.12,
    ),
}
#: the Kermany validation's images: every 200th train image by path from this one (unused by any
#: round: the rounds' every 200th from the 0th, 10th, 50th, 100th and 150th, the
#: kernel-magnitude validation's every 50th from the 25th)
VALIDATION_OFFSET = 30
SEED_KEY = "strong-short"


def fresh_mhh_images() -> list[str]:
    """Every third MHH training image no earlier list named (tune_balance's fitting and
    validation images, the rounds' 21)."""
    return unnamed_mhh_images()[::3]


def validation_cases(name: str, look: bool) -> Iterator[Case]:
    """One fresh image's cases: its scenes blurred by 0.5 and 1 mm of each kind and noise, then
    each scene sharp with each noise (its own seed)."""
    scenes_of = frames if look else kermany_frames
    yield from image_cases(name, scenes_of, SEED_KEY, KINDS, (0.5, 1.0), VALIDATION_NOISES)
    seed = zlib.crc32(f"{SEED_KEY}/{name}".encode())  # the scenes image_cases drew
    rng = np.random.default_rng(seed + 1)
    point = np.ones((1, 1))
    for scene, sharp in scenes_of(name, seed):
        for noise, quanta in VALIDATION_NOISES.items():
            b = simulate_motion_blur(sharp, point, rng, noise=NoiseSpec(quanta))
            yield Case(name, scene, sharp, "none", 0.0, noise, point, b)


def case_row(c: Case, set_name: str) -> dict[str, Any]:
    return decided_row(c, set_name, SPACING_MM, {"node": NODE, **CANDIDATES}, NODE)


def run(names: list[str], look: bool, validation: bool, out: Path) -> None:
    set_name = ("validation-" if validation else "") + ("mhh" if look else "kermany")
    rows: list[dict[str, Any]] = []
    for name in names:
        if validation:
            cases = list(validation_cases(name, look))
        else:
            cases = [c for c in round_cases(name, look) if c.mm == 1.0] + extra_cases(name, look)
        rows.extend(case_row(c, set_name) for c in cases)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    for set_name, every in by_set(read_rows(paths)):
        sharp = [r for r in every if r["mm"] == 0]
        sel = [r for r in every if r["mm"] > 0]
        mm = np.array([r["mm"] for r in sel])
        print(f"{set_name}: {len(sel)} blurred cases, {len(sharp)} sharp")
        for label in ("node", *CANDIDATES):
            v = np.array([r[label] for r in sel])
            flagged = sum(r[f"{label}_flagged"] for r in sel)
            sharp_done = sum(r[f"{label}_flagged"] for r in sharp)
            line = (
                f"  {label:8s} flagged {flagged} mean over all {v.mean():+.3f} harmed "
                f"{int(np.sum(v < -0.1))} worst {v.min():+.2f} | 0.5 mm {v[mm == 0.5].mean():+.3f}"
                f" 1 mm {v[mm == 1.0].mean():+.3f} | sharp corrected {sharp_done}"
            )
            if label != "node":
                line += added_line(label, v, sel, 8)[0]
            print(line)


def main() -> None:
    ap = parser()
    ap.add_argument("--look", action="store_true", help="MHH scenes instead of Kermany")
    ap.add_argument("--validation", action="store_true", help="fresh images, fresh cases")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    if args.validation:
        names = fresh_mhh_images() if args.look else kermany_train_every_200th(VALIDATION_OFFSET)
    else:
        names = round_images(args.look)
    run(part_of(names, args.part, args.out), args.look, args.validation, args.out)


if __name__ == "__main__":
    main()
