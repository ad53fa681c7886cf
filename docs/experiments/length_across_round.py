"""The length read across the motion: the fifty-ninth round (docs/models.md, written before its
figures).

A soft frame (an isotropic low-pass: a detector's MTF, a resampling, a display filter) under a
short motion: the node's straight estimate folds the softness into the motion's length and the
correction then harms about a quarter of such frames (the thirty-eighth session's look,
``isotropic_blur_look.py``). The candidates keep the node's decision and read the kernel's length
from the power along the motion over the power across it, where an isotropic low-pass cancels
(:func:`models.blur_estimate.length_from_directions`; ``MotionPolicy.kernel_length_across_up_to_px``
12 px): ``shorter`` takes it only where it is shorter than the estimate, ``directions`` wherever
it is read.

Sets (``--set``):

- ``choice``: the look's ten seen MHH images as they are (640 px, 0.6 mm/px, open), an isotropic
  Gaussian of σ 0 / 0.7 / 1.0 / 1.5 px on the sharp frame (which stays the reference), straight and
  curved 1 / 2 / 4 mm, noise none and Poisson 3·10⁴ (480 cases);
- ``validation``: fresh Kermany train images (every 200th by path from the 180th, 25 images) at
  their own 224 px taken as 0.6 mm/px, the same σ, motions and noise (1,200 cases);
- ``crops``: the 20 fitting images' 384² crops at 0.6 mm/px (``round_design.crop_scene_cases``,
  seen; 360 cases);
- ``detector``: three seen MHH images as detector scenes (1024², 0.2 mm/px, open and collimated,
  straight / curved / shake 1 / 2 / 4 mm, noise none / 10⁵ / 2·10⁴ / 10⁴; 216 cases).

Every case counted, 0 dB where the node leaves the frame unflagged; a candidate's decision must be
the node's (checked per case). A candidate whose length is the node's takes the node's correction.

Run: ``PYTHONPATH=../.. python length_across_round.py --set choice --out runs/la-choice-0.jsonl
--part 0/2`` (and ``1/2``), then ``--summary runs/la-choice-*.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from consistency_balance import round_images
from detector_scenes import frames as detector_frames
from detector_scenes import image_cases
from fitting_cases import names as fitting_names
from fixed_collimation_look import WEIGHTS
from kernel_consistency import VALIDATION_NOISES
from outside_blur import gain
from round_design import (
    DATA,
    KERMANY,
    crop_scene_cases,
    kermany_train_every_200th,
    unnamed_mhh_images,
)
from scipy.ndimage import gaussian_filter
from shape_shadows_look import mhh_frames

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray
from models.kernel_shape import load_magnitude_model

#: sharpray-blind-wiener 0.44.0 (the length read across off, whatever the defaults)
NODE = replace(
    MotionPolicy(),
    kernel_length_across_up_to_px=None,
    kernel_length_across_min_fit_gain=None,
    kernel_length_across_max_template_drop=None,
)
UP_TO_PX = 12.0
ROUND_59 = {
    "shorter": replace(NODE, kernel_length_across_up_to_px=UP_TO_PX),
    "directions": replace(
        NODE, kernel_length_across_up_to_px=UP_TO_PX, kernel_length_across_mode="directions"
    ),
}
#: the sixtieth round: the shape step reads the template's estimate (P, Q) and the length read
#: across only for estimates up to 5.5 px (Q, R)
ROUND_60 = {
    "P": replace(ROUND_59["shorter"], kernel_length_across_shape_reads_estimate=True),
    "Q": replace(
        ROUND_59["shorter"],
        kernel_length_across_up_to_px=5.5,
        kernel_length_across_shape_reads_estimate=True,
    ),
    "R": replace(ROUND_59["shorter"], kernel_length_across_up_to_px=5.5),
}
#: the sixty-first round: R where the read length fits the ratio better by at least 0.25 and
#: the template's correlation at it is at most 0.15 under its correlation at the estimate's
ROUND_61 = {
    "S": replace(
        ROUND_60["R"],
        kernel_length_across_min_fit_gain=0.25,
        kernel_length_across_max_template_drop=0.15,
    ),
}
ROUNDS = {59: ROUND_59, 60: ROUND_60, 61: ROUND_61}
SIGMAS_PX = (0.0, 0.7, 1.0, 1.5)
SOFT_KINDS = ("straight", "curved")
SOFT_MM = (1.0, 2.0, 4.0)
SOFT_NOISES: dict[str, float | None] = {"none": None, "3e4": 3e4}
VALIDATION_OFFSET = 180
VALIDATION_60_OFFSET = 5
VALIDATION_61_OFFSET = 15
HARMED_DB = -0.1

Item = tuple[dict[str, object], np.ndarray, np.ndarray, float]  # keys, sharp, blurred, spacing


def soft_cases(name: str, base: np.ndarray) -> Iterator[Item]:
    """One image's soft-frame cases (its own seed, by name)."""
    rng = np.random.default_rng(zlib.crc32(f"length-across/{name}".encode()))
    for sigma in SIGMAS_PX:
        soft = (gaussian_filter(base, sigma) if sigma else base).astype(np.float32)
        for kind in SOFT_KINDS:
            for mm in SOFT_MM:
                kernel = motion_kernel(kind, mm / 0.6, rng)
                for noise, quanta in SOFT_NOISES.items():
                    blurred = simulate_motion_blur(soft, kernel, rng, noise=NoiseSpec(quanta))
                    keys = {"image": name, "sigma": sigma, "kind": kind, "mm": mm, "noise": noise}
                    yield keys, soft, blurred, 0.6


def set_items(which: str, names: list[str]) -> Iterator[Item]:
    for name in names:
        if which == "choice":
            (_, img), _ = mhh_frames(name, 0)
            yield from soft_cases(name, img)
        elif which in ("validation", "validation60", "validation61"):
            img = load_gray(KERMANY / name).astype(np.float32) / 255.0
            yield from soft_cases(name, img)
        elif which == "crops":
            for c in crop_scene_cases(name):
                keys = {"image": name, "kind": c.kind, "mm": c.mm, "noise": c.noise}
                yield keys, c.sharp, c.blurred, 0.6
        else:
            cases = image_cases(
                name,
                detector_frames,
                "length-across",
                ("straight", "curved", "shake"),
                SOFT_MM,
                VALIDATION_NOISES,
            )
            for c in cases:
                keys = {
                    "image": name,
                    "scene": c.scene,
                    "kind": c.kind,
                    "mm": c.mm,
                    "noise": c.noise,
                }
                yield keys, c.sharp, c.blurred, 0.2


def set_names(which: str) -> list[str]:
    if which == "choice":
        return unnamed_mhh_images()[::3][:10]
    if which == "validation":
        return kermany_train_every_200th(VALIDATION_OFFSET)
    if which == "validation60":
        return kermany_train_every_200th(VALIDATION_60_OFFSET)
    if which == "validation61":
        return kermany_train_every_200th(VALIDATION_61_OFFSET)
    if which == "crops":
        return fitting_names(DATA, (0, 1))
    return round_images(True)[:3]


def run(which: str, names: list[str], out: Path, candidates: dict[str, MotionPolicy]) -> None:
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for keys, sharp, blurred, spacing in set_items(which, names):
            a = assess_motion(blurred, spacing, NODE)
            row: dict[str, object] = dict(keys, flagged=a.blurred, node_len=a.estimate.length_px)
            node_gain = 0.0
            if a.blurred:
                node_gain = gain(
                    sharp, blurred, deconvolve(blurred, a, NODE, magnitude=first).image
                )
            row["node"] = node_gain
            done: dict[tuple[object, ...], float] = {}  # a correction another candidate made
            for label, policy in candidates.items():
                c = assess_motion(blurred, spacing, policy)
                if c.decision != a.decision:
                    raise AssertionError(f"{label} decided otherwise than the node: {keys}")
                row[f"{label}_len"] = c.estimate.length_px
                if not c.blurred or c.estimate == a.estimate:
                    row[label] = node_gain
                    continue
                key = (c.estimate, c.template_estimate)
                if key not in done:
                    d = deconvolve(blurred, c, policy, magnitude=first)
                    done[key] = gain(sharp, blurred, d.image)
                row[label] = done[key]
            f.write(json.dumps(row) + "\n")
            f.flush()


def summary(paths: list[Path]) -> None:
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line]
    labels = ["node", *(k for r in ROUNDS.values() for k in r if k in rows[0])]
    group_keys = [k for k in ("scene", "sigma", "kind", "mm", "noise") if k in rows[0]]
    print(f"{len(rows)} cases, {sum(r['flagged'] for r in rows)} flagged")
    for label in labels:
        g = np.array([r[label] for r in rows])
        groups: dict[tuple[object, ...], list[float]] = defaultdict(list)
        for r in rows:
            groups[tuple(r[k] for k in group_keys)].append(r[label] - r["node"])
        worst = min(groups.items(), key=lambda kv: float(np.mean(kv[1])))
        by_mm = " / ".join(
            f"{np.mean([r[label] for r in rows if r['mm'] == mm]):+.3f}"
            for mm in sorted({r["mm"] for r in rows})
        )
        print(
            f"{label:>10}: mean {g.mean():+.3f} harmed {(g < HARMED_DB).sum():3d} worst "
            f"{g.min():+.2f} | by mm {by_mm} | worst group vs node {float(np.mean(worst[1])):+.3f} "
            f"{dict(zip(group_keys, worst[0], strict=True))}"
        )
    if "sigma" in rows[0]:
        for sigma in SIGMAS_PX:
            sel = [r for r in rows if r["sigma"] == sigma]
            print(
                f"  sigma {sigma:g}: "
                + "; ".join(
                    f"{label} {np.mean([r[label] for r in sel]):+.3f} "
                    f"({sum(r[label] < HARMED_DB for r in sel)} harmed)"
                    for label in labels
                )
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--set",
        choices=("choice", "validation", "validation60", "validation61", "crops", "detector"),
    )
    ap.add_argument("--round", type=int, default=59, choices=sorted(ROUNDS))
    ap.add_argument("--only", nargs="+", help="these candidates of the round (its chosen one)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--part", default="0/1")
    ap.add_argument("--summary", nargs="+", type=Path)
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    i, k = (int(x) for x in args.part.split("/"))
    candidates = ROUNDS[args.round]
    if args.only:
        candidates = {label: candidates[label] for label in args.only}
    run(args.set, set_names(args.set)[i::k], args.out, candidates)


if __name__ == "__main__":
    main()
