"""What the thirty-seventh and thirty-eighth rounds share (``dip_floor_by_motion``,
``penalty_slope_round``): their four sets of cases — the thirty-sixth round's Kermany and MHH
cases (the fitting look), fresh Kermany train images (the validation), the 0.6 mm crops of
``fitting_cases`` (a check) — their command line, and the summary against the node with the
validation's three conditions.

Imported by those scripts as a sibling module (``python docs/experiments/NAME.py`` puts this
folder first on the path)."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import KERMANY, KERMANY_EVERY, kermany_frames, round_cases, round_images
from detector_scenes import DATA, SPACING_MM, Case, frames, image_cases, parser, part_of
from fitting_cases import cases as crop_cases
from fitting_cases import names as fitting_names
from fitting_cases import read_rows
from kernel_consistency import VALIDATION_NOISES
from look_rows import by_mm, by_set, case_groups, save, worst_group
from outside_blur import KINDS, MOTION_MM, gain

from models.deblur import Deconvolution, MotionAssessment, MotionPolicy, assess_motion, deconvolve
from models.deblur_data import split_by_patient
from models.kernel_shape import MagnitudeEstimator
from models.tune_balance import image_lists

#: the node as these rounds ran against it (sharpray-blind-wiener 0.18.0: the forty-second round's
#: strong short fit, the default since 0.27.0, off; and the penalty floor of
#: the thirty-ninth and fortieth rounds, the default since 0.25.0, off)
NODE = replace(
    MotionPolicy(),
    penalty_noise_over_signal=None,
    penalty_noise_finer_than_mm=None,
    strong_short_from_mm=None,
    kernel_drawing_by_spectrum=False,
)


def kermany_train_every_200th(offset: int) -> list[str]:
    """Every 200th Kermany train image by path from the ``offset``-th."""
    with (KERMANY / "labels.csv").open(newline="", encoding="utf-8") as f:
        train = sorted(r["path"] for r in csv.DictReader(f) if r["split"] == "train")
    return train[offset::KERMANY_EVERY]


def unnamed_mhh_images() -> list[str]:
    """The MHH training images no earlier list named (``models.tune_balance``'s fitting and
    validation images, the rounds' 21): the forty-second round took every third from the first,
    the forty-third every third from the second."""
    fit, validation = image_lists(DATA)
    named = set(fit + validation + round_images(True))
    return [n for n in split_by_patient(DATA).train if n not in named]


def crop_scene_cases(name: str) -> Iterator[Case]:
    """The check at ≈0.6 mm/px: :func:`fitting_cases.cases` (a fitting image's 384² crop,
    straight and curved 3 / 6 / 10 px, noise none / 3·10⁴ / 10⁴; its seed), as scene cases."""
    for c in crop_cases(DATA, name, NODE):
        noise = "none" if c.quanta is None else f"{c.quanta:.0e}".replace("+0", "")
        yield Case(name, "crop", c.sharp, c.kind, c.px * 0.6, noise, c.kernel, c.blurred)


def spacing_of(mode: str) -> float:
    return 0.6 if mode == "0.6mm" else SPACING_MM


def cases_of(name: str, mode: str, seed_key: str) -> Iterator[Case]:
    """One image's cases in ``mode`` (``kermany``, ``mhh``, ``validation`` and
    ``validation-mhh`` with its own ``seed_key``, ``0.6mm``)."""
    if mode == "0.6mm":
        return crop_scene_cases(name)
    if mode == "validation":
        return image_cases(name, kermany_frames, seed_key, KINDS, MOTION_MM, VALIDATION_NOISES)
    if mode == "validation-mhh":
        return image_cases(name, frames, seed_key, KINDS, MOTION_MM, VALIDATION_NOISES)
    return round_cases(name, mode == "mhh")


def round_parser() -> argparse.ArgumentParser:
    """:func:`detector_scenes.parser` with the four sets: ``--look``, ``--validation``,
    ``--crops`` (default: the fitting look's Kermany cases)."""
    ap = parser()
    ap.add_argument("--look", action="store_true", help="the 21 MHH images instead of Kermany")
    ap.add_argument("--validation", action="store_true", help="the fresh Kermany images")
    ap.add_argument("--crops", action="store_true", help="the 20 fitting images at 0.6 mm/px")
    return ap


def mode_and_names(
    args: argparse.Namespace, validation_offset: int, mhh_offset: int | None = None
) -> tuple[str, list[str]]:
    """The set the command line asks for and its images (``--validation --look``: every third
    of :func:`unnamed_mhh_images` from ``mhh_offset``, where the round has one)."""
    if args.crops:
        return "0.6mm", fitting_names(DATA, (0, 1))
    if args.validation and args.look and mhh_offset is not None:
        return "validation-mhh", unnamed_mhh_images()[mhh_offset::3]
    if args.validation:
        return "validation", kermany_train_every_200th(validation_offset)
    return ("mhh" if args.look else "kermany"), round_images(args.look)


def run_against_node(
    names: Sequence[str],
    mode: str,
    out: Path,
    candidates: Mapping[str, MotionPolicy],
    seed_key: str,
    detail: tuple[str, Callable[[Deconvolution], Any]],
    node: MotionPolicy = NODE,
    same_as_node: SameAsNode | None = None,
    only_noise: str | None = None,
    networks: Mapping[str, Networks] | None = None,
) -> None:
    """Every case of ``names`` in ``mode`` (seeds by ``seed_key`` for the validation): the
    ``node``'s decision, and the gain of the node and of each candidate where it flags (0 dB where
    it does not), with each correction's ``detail`` (its name, what it reads of the correction)
    as ``{label}_{name}``; the rows saved to ``out`` after each image. Where ``same_as_node``
    says a candidate's correction of a case is the node's, the node's is taken for it. With
    ``only_noise``, the cases of that noise level only (the others drawn, so the seeds are the
    same, and not run). ``networks``: a label's kernel-magnitude networks (the shape step's, the
    native-pixel one), passed to its :func:`models.deblur.deconvolve` (none: no shape step)."""
    spacing = spacing_of(mode)
    key, read = detail
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in cases_of(name, mode, seed_key):
            if only_noise is not None and c.noise != only_noise:
                continue
            a = assess_motion(c.blurred, spacing, node)
            row: dict[str, Any] = c.row(set=mode, flagged=a.blurred)
            built: Deconvolution | None = None
            for label, policy in {"node": node, **candidates}.items():
                row[label] = 0.0
                if a.blurred:
                    if (
                        built is not None
                        and same_as_node
                        and same_as_node(c.blurred, a, policy, built)
                    ):
                        d = built
                    else:
                        mag, det = (networks or {}).get(label, (None, None))
                        d = deconvolve(c.blurred, a, policy, magnitude=mag, detector_magnitude=det)
                    built = built or d
                    row[label] = gain(c.sharp, c.blurred, d.image)
                    row[f"{label}_{key}"] = read(d)
            rows.append(row)
        save(out, rows, name)


def set_heading(mode: str, sel: list[dict[str, Any]]) -> str:
    """A set's line above its summary: cases, images, flagged."""
    images = len({r["image"] for r in sel})
    flagged = sum(r["flagged"] for r in sel)
    return f"{mode}: {len(sel)} cases from {images} images, {flagged} flagged"


def counted(word: str, key: str) -> Callable[[str, list[dict[str, Any]]], tuple[str, str]]:
    """A label's count of rows whose ``{label}_{key}`` is set, as ``word N`` after its line."""

    def count(label: str, sel: list[dict[str, Any]]) -> tuple[str, str]:
        return "", f" {word} {sum(r.get(f'{label}_{key}') is not None for r in sel)}"

    return count


def summarise_against_node(
    rows: Sequence[dict[str, Any]],
    labels: Sequence[str],
    width: int,
    heading: Callable[[str, list[dict[str, Any]]], str],
    counts: Callable[[str, list[dict[str, Any]]], tuple[str, str]],
    harmed_share: float = 0.5,
) -> None:
    """Per set: ``heading`` of its rows, then for the node and each of ``labels`` its mean over
    all cases, harmed (under the blurred input by more than 0.1 dB), worst case, means by length
    (``counts``: a label's own figures before and after these), and for a candidate its worst
    group against the node and whether the validation's three conditions hold (harmed at most
    ``harmed_share`` of the node's, mean not lower, no group lower by more than 0.1 dB)."""
    for mode, sel in by_set(rows):
        groups = case_groups(sel)
        node = np.array([r["node"] for r in sel])
        node_harmed = int(np.sum(node < -0.1))
        print(heading(mode, sel))
        for label in ("node", *(x for x in labels if x in sel[0])):
            v = np.array([r[label] for r in sel])
            harmed = int(np.sum(v < -0.1))
            before, after = counts(label, sel)
            line = (
                f"  {label:{width}s} {before}mean over all {v.mean():+.3f} harmed {harmed} "
                f"worst {v.min():+.2f}{after} | {by_mm(v, sel)}"
            )
            if label != "node":
                d, k = worst_group(v, node, groups)
                met = (
                    harmed <= node_harmed * harmed_share,
                    bool(v.mean() >= node.mean()),
                    d >= -0.1,
                )
                share = "half" if harmed_share == 0.5 else f"{harmed_share:g}"
                line += f" | worst group {d:+.3f} ({k}) | harmed≤{share}, mean, group: {met}"
            print(line)


#: a label's kernel-magnitude networks: the shape step's and the native-pixel one (or None)
Networks = tuple[MagnitudeEstimator | None, MagnitudeEstimator | None]

#: whether a candidate policy's correction of a flagged frame is the node's (the frame, the
#: node's assessment, the candidate, the node's correction), so it need not be computed again
SameAsNode = Callable[[np.ndarray, MotionAssessment, MotionPolicy, Deconvolution], bool]


@dataclass(frozen=True)
class Round:
    """A round's script: its candidates, the seed key of its validation's cases, what each
    correction's row records (``detail``: a name and how it is read) and the word its summary
    counts those by, its validation images (every 200th train image from ``validation_offset``;
    a second set behind ``--second-validation``; with ``mhh_validation_offset``, fresh MHH
    images behind ``--validation --look``), its first condition's share and the node it runs
    against (the node as built when the round was written)."""

    candidates: Mapping[str, MotionPolicy]
    seed_key: str
    detail: tuple[str, Callable[[Deconvolution], Any]]
    counted_as: str
    validation_offset: int
    harmed_share: float = 0.5
    second_validation_offset: int | None = None
    mhh_validation_offset: int | None = None
    node: MotionPolicy = NODE
    same_as_node: SameAsNode | None = None
    #: run the cases of this noise level only (the candidates act on no other)
    only_noise: str | None = None
    #: each label's kernel-magnitude networks, loaded when the round runs (none: no shape step)
    networks: Callable[[], Mapping[str, Networks]] | None = None


def round_main(spec: Round) -> None:
    """A round's command line (:func:`round_parser` with ``--candidates``): the rows of the set it
    asks for in ``--part`` of its images, or ``--summary`` of saved rows."""
    ap = round_parser()
    names = list(spec.candidates)
    ap.add_argument("--candidates", nargs="+", default=names, choices=names)
    if spec.second_validation_offset is not None:
        ap.add_argument(
            "--second-validation", action="store_true", help="the round's second fresh images"
        )
    ap.add_argument("--skip", nargs="+", type=Path, default=[], help="rows of images done")
    args = ap.parse_args()
    if args.summary:
        count = counted(spec.counted_as, spec.detail[0])
        rows = read_rows(args.summary)
        summarise_against_node(rows, names, 8, set_heading, count, spec.harmed_share)
        return
    offset = spec.validation_offset
    if getattr(args, "second_validation", False) and spec.second_validation_offset is not None:
        args.validation, offset = True, spec.second_validation_offset
    mode, images = mode_and_names(args, offset, spec.mhh_validation_offset)
    chosen = {label: spec.candidates[label] for label in args.candidates}
    done = {r["image"] for r in read_rows(args.skip)} if args.skip else set()
    part = [n for n in part_of(images, args.part, args.out) if n not in done]
    run_against_node(
        part,
        mode,
        args.out,
        chosen,
        spec.seed_key,
        spec.detail,
        spec.node,
        spec.same_as_node,
        spec.only_noise,
        spec.networks() if spec.networks is not None else None,
    )
