"""The forty-fifth round: the straight kernel drawn as the frame's spectrum says.

The node draws its straight estimate on the nearest pixels; an evaluator may draw its line
bilinearly (an interpolated or anti-aliased line) or band-limited (continuous motion sampled),
and the inverse filter built on the wrong drawing loses 0.3–0.6 dB on frames without noise (the
rendering look). The drawing look (``drawing_choice_look``, on the same seen crops) found that
the correlation of the frame's log power with each drawing's log transfer, each ring's mean
removed, over 0.03–0.49 cycles/px, picks the drawing well enough to keep most of that. Candidate
``drawn``: the node as built (sharpray-blind-wiener 0.27.0) with
``MotionPolicy.kernel_drawing_by_spectrum`` (:func:`models.deblur.chosen_drawing`).
docs/models.md, "How the straight kernel is drawn, chosen by the spectrum".

Sets, all fresh except the check: ``--drawings``: the question itself — 384² centre crops at
≈0.6 mm/px of every third unnamed MHH training image from the third, straight 2.5 / 3 / 4 / 6 px
at a random angle, drawn nearest / bilinear / Lanczos-3, noise none and Poisson 10⁴, corrected
as the node does at that scale (the first magnitude network's shape step);
``--validation``: Kermany detector-like scenes (every 200th train image by path from the 130th);
``--validation --look``: MHH detector-like scenes (the same MHH images); ``--crops``: the check
at ≈0.6 mm/px on the fitting images (seen). The scene sets as every round's: straight / curved /
shake, 1 / 2 / 4 mm, open and collimated, noise none / 10⁵ / 2·10⁴ / 10⁴.

Run: ``PYTHONPATH=. python docs/experiments/drawing_round.py --drawings --out runs/dr-d0.json
--part 0/2`` (and ``1/2``; ``--validation``, ``--validation --look``, ``--crops`` likewise),
then ``--summary runs/dr-*.json``.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import part_of
from fitting_cases import read_rows
from kernel_rendering_look import LENGTHS, NOISES, crop, drawn_line_cases
from look_rows import by_set, save
from outside_blur import gain
from round_design import (
    Round,
    counted,
    round_main,
    round_parser,
    set_heading,
    summarise_against_node,
    unnamed_mhh_images,
)

from models.blur import (
    LINE_DRAWINGS,
    to_exposure,
)
from models.deblur import (
    Deconvolution,
    MotionAssessment,
    MotionPolicy,
    assess_motion,
    chosen_drawing,
    deconvolve,
)
from models.kernel_shape import load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE

#: the node as built (sharpray-blind-wiener 0.27.0; the drawing, its default since 0.31.0, off)
NODE = replace(
    MotionPolicy(),
    kernel_drawing_by_spectrum=False,
    kernel_drawing_above_noise=None,
    kernel_drawing_margin=0.0,
)
CANDIDATES = {"drawn": replace(NODE, kernel_drawing_by_spectrum=True)}
#: the Kermany validation: every 200th train image by path from this one (unused: the rounds'
#: every 200th from the 0th, 10th, 30th, 50th, 70th, 100th and 150th, the kernel-magnitude
#: validation's every 50th from the 25th)
VALIDATION_OFFSET = 130
#: the MHH images: every third unnamed MHH training image from this one (the forty-second round's
#: from the 0th, the forty-third and forty-fourth rounds' from the 1st)
MHH_VALIDATION_OFFSET = 2
#: the drawing cases (as the rendering look's, on fresh images)
LENGTHS_PX = LENGTHS
DRAWING_NOISES = NOISES
#: the scene sets' first condition: harmed cases at most this share of the node's
HARMED_SHARE = 1.1


def _drawing(d: Deconvolution) -> str | None:
    return None if d.drawing == "nearest" else d.drawing


def _same_as_node(
    blurred: np.ndarray, a: MotionAssessment, policy: MotionPolicy, built: Deconvolution
) -> bool:
    """Where the frame chooses the nearest drawing (as the candidate ``policy`` reads it) the
    candidate's correction is the node's, exactly (the estimate is unchanged)."""
    e = to_exposure(np.asarray(blurred, dtype=np.float64), policy.log_range)
    above, margin = policy.kernel_drawing_above_noise, policy.kernel_drawing_margin
    return chosen_drawing(e, a.estimate, above, margin) == "nearest"


ROUND = Round(
    CANDIDATES,
    "drawing",
    ("drawing", _drawing),
    "redrawn",
    VALIDATION_OFFSET,
    HARMED_SHARE,
    mhh_validation_offset=MHH_VALIDATION_OFFSET,
    node=NODE,
    same_as_node=_same_as_node,
)


#: an MHH image's 384² centre crop at its own ≈0.6 mm/px
mhh_crop = crop


def drawing_cases(
    name: str, crop_of: Callable[[str], np.ndarray] = crop
) -> tuple[np.ndarray, Iterator[tuple[float, float, str, str, np.ndarray]]]:
    """The rounds' drawing cases of one image (its ``crop_of``, seeded by its name): the crop
    and :func:`kernel_rendering_look.drawn_line_cases`."""
    rng = np.random.default_rng(zlib.crc32(f"drawing-cases/{name}".encode()))
    sharp = crop_of(name)
    return sharp, drawn_line_cases(sharp, rng)


def run_drawings(
    names: Sequence[str],
    out: Path,
    candidate: MotionPolicy = CANDIDATES["drawn"],
    crop: Callable[[str], np.ndarray] = mhh_crop,
    label: str = "drawn",
) -> None:
    """The drawing cases of ``names`` (each image's ``crop``): the node's decision, and the
    node's and the candidate's gain where it flags (0 dB where not), with the candidate's
    drawing."""
    magnitude = load_magnitude_model(BUNDLED_MAGNITUDE)
    rows: list[dict[str, Any]] = []
    for name in names:
        sharp, cases = drawing_cases(name, crop)
        for px, _angle, mode, noise, b in cases:
            a = assess_motion(b, 0.6, NODE)
            row: dict[str, Any] = {
                "set": "drawings",
                "image": name,
                "px": px,
                "mode": mode,
                "noise": noise,
                "flagged": a.blurred,
                "node": 0.0,
                label: 0.0,
            }
            if a.blurred:
                d = deconvolve(b, a, NODE, magnitude=magnitude)
                row["node"] = gain(sharp, b, d.image)
                c = deconvolve(b, a, candidate, magnitude=magnitude)
                row[label] = gain(sharp, b, c.image)
                row[f"{label}_drawing"] = c.drawing
            rows.append(row)
        save(out, rows, name)


def summarise_drawings(rows: Sequence[dict[str, Any]], label: str = "drawn") -> None:
    """The drawing cases' means by drawing and noise, and the round's first condition."""
    print(f"drawings: {len(rows)} cases from {len({r['image'] for r in rows})} images")
    diff: dict[tuple[str, str], float] = {}
    for noise in DRAWING_NOISES:
        for mode in LINE_DRAWINGS:
            sel = [r for r in rows if r["noise"] == noise and r["mode"] == mode]
            node = np.mean([r["node"] for r in sel])
            drawn = np.mean([r[label] for r in sel])
            diff[(noise, mode)] = float(drawn - node)
            chosen = {m: sum(r.get(f"{label}_drawing") == m for r in sel) for m in LINE_DRAWINGS}
            harmed = [sum(r[k] < -0.1 for r in sel) for k in ("node", label)]
            print(
                f"  noise {noise:4s} blur {mode:8s} n {len(sel)} node {node:+.3f} {label} "
                f"{drawn:+.3f} ({drawn - node:+.3f}) harmed {harmed[0]} → {harmed[1]} chosen {chosen}"
            )
    met = (
        diff[("none", "bilinear")] >= 0.15,
        diff[("none", "lanczos")] >= 0.15,
        diff[("none", "nearest")] >= -0.1,
        all(diff[("1e4", m)] >= -0.05 for m in LINE_DRAWINGS),
    )
    print(
        f"  (1) bilinear ≥ +0.15, Lanczos ≥ +0.15, nearest ≥ −0.1 without noise; 10⁴ ≥ −0.05: {met}"
    )


def summary(paths: list[Path], spec: Round = ROUND, label: str = "drawn") -> None:
    """The drawing cases' summary, then the scene sets' against the node, for the candidate
    ``label`` of the round ``spec`` (the forty-sixth and forty-seventh rounds' ``above`` too)."""
    rows = read_rows(paths)
    drawings = [r for r in rows if r["set"] == "drawings"]
    scenes = [r for r in rows if r["set"] != "drawings"]
    if drawings:
        summarise_drawings(drawings, label)
    if scenes:
        count = counted(spec.counted_as, spec.detail[0])
        labels = list(spec.candidates)
        summarise_against_node(scenes, labels, 8, set_heading, count, spec.harmed_share)
        for mode, sel in by_set(scenes):
            node = np.mean([r["node"] for r in sel])
            drawn = np.mean([r[label] for r in sel])
            print(f"  {mode}: mean {drawn - node:+.3f} against the node (condition: ≥ −0.02)")


def main() -> None:
    if "--summary" in sys.argv:
        args = round_parser().parse_args()
        summary(args.summary)
        return
    if "--drawings" in sys.argv:
        ap = round_parser()
        ap.add_argument("--drawings", action="store_true")
        args = ap.parse_args()
        names = unnamed_mhh_images()[MHH_VALIDATION_OFFSET::3]
        run_drawings(part_of(names, args.part, args.out), args.out)
        return
    round_main(ROUND)


if __name__ == "__main__":
    main()
