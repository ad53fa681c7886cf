"""The forty-first round: a third way for the gate to find short motion (docs/models.md).

A *first* estimate (before the second look takes the frame's noise out) of at most 4 px with
specificity ≥ s and confidence ≥ c, in a frame that is not a decoded JPEG, is motion
(``MotionPolicy.short_motion_max_px`` and its two thresholds). Candidates: ``short_loose`` (s
0.03, c 0.4) and ``short_strict`` (s 0.05, c 0.45). Each case is decided by the node (0.25.0) and
by each candidate, and corrected where flagged as the rounds do (the straight kernel, no shape
step); every case counted, 0 dB where a policy does not flag; for a sharp case the PSNR of the
output against its input.

Default: the fitting look on the rounds' crops (``round_design.crop_scene_cases``: the 20
fitting images' 384² crops, straight and curved 3 / 6 / 10 px, noise none / 3·10⁴ / 10⁴; seen);
``--validation``: whole 640 px frames at 0.6 mm/px of the 24 images of ``models.tune_balance``'s
validation list, each sharp and blurred by straight, curved and shake motion of 2.5 / 3 / 4 / 6 px,
noise none / 3·10⁴ / 10⁴, their own seeds.

Run: ``PYTHONPATH=. python docs/experiments/short_motion_round.py --out runs/sr-c0.json --part
0/2`` (and ``1/2``; ``--validation`` likewise), then ``--summary runs/sr-*.json``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, Case, parser, part_of
from fitting_cases import names as fitting_names
from fitting_cases import psnr, read_rows
from look_rows import by_set, case_groups, save, worst_group
from outside_blur import KINDS, gain
from round_design import crop_scene_cases

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray
from models.tune_balance import image_lists

SPACING_MM = 0.6
#: the node as the round ran against it (sharpray-blind-wiener 0.25.0; the forty-second round's
#: strong short fit, the default since 0.27.0, off)
NODE = replace(MotionPolicy(), strong_short_from_mm=None)
#: the third way's longest first estimate (px; not fitted: docs/models.md, the forty-first round)
SHORT_PX = 4.0
CANDIDATES = {
    "short_loose": replace(
        NODE,
        short_motion_max_px=SHORT_PX,
        short_motion_min_specificity=0.03,
        short_motion_min_confidence=0.4,
    ),
    "short_strict": replace(
        NODE,
        short_motion_max_px=SHORT_PX,
        short_motion_min_specificity=0.05,
        short_motion_min_confidence=0.45,
    ),
}
VALIDATION_PX = (2.5, 3.0, 4.0, 6.0)
VALIDATION_NOISES: dict[str, float | None] = {"none": None, "3e4": 3e4, "1e4": 1e4}
SHORT_MM = 4.0 * SPACING_MM  # the cases of at most 4 px


def validation_cases(name: str) -> Iterator[Case]:
    """One validation image's cases: whole, sharp and blurred, its own seed."""
    rng = np.random.default_rng(zlib.crc32(f"short-motion-round/{name}".encode()))
    sharp = load_gray(DATA / name).astype(np.float32) / 255.0
    point = np.ones((1, 1))
    for noise, quanta in VALIDATION_NOISES.items():
        b = simulate_motion_blur(sharp, point, rng, noise=NoiseSpec(quanta))
        yield Case(name, "whole", sharp, "none", 0.0, noise, point, b)
    for kind in KINDS:
        for px in VALIDATION_PX:
            k = motion_kernel(kind, px, rng)
            for noise, quanta in VALIDATION_NOISES.items():
                b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
                yield Case(name, "whole", sharp, kind, px * SPACING_MM, noise, k, b)


def decided_row(
    c: Case,
    set_name: str,
    spacing_mm: float,
    policies: Mapping[str, MotionPolicy],
    correction: MotionPolicy,
) -> dict[str, Any]:
    """One case decided by each of ``policies`` (the node's first) and, where flagged, corrected
    under ``correction``: the gain over the blurred input (0 dB where not flagged), or for a
    sharp case the PSNR of the output against its input (99 where untouched), each label's
    ``_flagged`` and ``_mm`` (its estimate); a correction shared by equal estimates."""
    row: dict[str, Any] = c.row(set=set_name)
    done: dict[tuple[float, float], float] = {}
    for label, policy in policies.items():
        a = assess_motion(c.blurred, spacing_mm, policy)
        row[f"{label}_flagged"] = a.blurred
        row[label] = 0.0 if c.mm > 0 else 99.0
        if not a.blurred:
            continue
        key = (a.estimate.length_px, a.estimate.angle_deg)
        if key not in done:
            d = deconvolve(c.blurred, a, correction)
            done[key] = gain(c.sharp, c.blurred, d.image) if c.mm > 0 else psnr(c.blurred, d.image)
        row[label] = done[key]
        row[f"{label}_mm"] = a.motion_mm
    return row


def added_line(
    label: str, v: np.ndarray, rows: list[dict[str, Any]], width: int
) -> tuple[str, float, int, int, float]:
    """A candidate's line on the cases it corrects and the node does not, and against the node
    by group: (line, their mean, how many, how many harmed, the worst group's difference)."""
    node = np.array([r["node"] for r in rows])
    new = np.array([r[f"{label}_flagged"] and not r["node_flagged"] for r in rows])
    nv = v[new]
    d, k = worst_group(v, node, case_groups(rows))
    new_mean = float(nv.mean()) if len(nv) else float("nan")
    harmed = int(np.sum(nv < -0.1))
    line = (
        f"\n  {'':{width}s} newly corrected {len(nv)}: mean {new_mean:+.3f} harmed {harmed}"
        f" | worst group {d:+.3f} ({k})"
    )
    return line, new_mean, len(nv), harmed, d


def case_row(c: Case, mode: str) -> dict[str, Any]:
    return decided_row(c, mode, SPACING_MM, {"node": NODE, **CANDIDATES}, NODE)


def run(names: list[str], mode: str, out: Path) -> None:
    rows: list[dict[str, Any]] = []
    for name in names:
        cases = crop_scene_cases(name) if mode == "0.6mm" else validation_cases(name)
        rows.extend(case_row(c, mode) for c in cases)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    for mode, every in by_set(read_rows(paths)):
        sharp = [r for r in every if r["mm"] == 0]
        sel = [r for r in every if r["mm"] > 0]
        short = np.array([r["mm"] <= SHORT_MM + 1e-9 for r in sel])
        node = np.array([r["node"] for r in sel])
        print(f"{mode}: {len(sel)} blurred cases from {len({r['image'] for r in sel})} images")
        for label in ("node", *CANDIDATES):
            v = np.array([r[label] for r in sel])
            flagged = sum(r[f"{label}_flagged"] for r in sel)
            sharp_done = [r[label] for r in sharp if r[f"{label}_flagged"]]
            line = (
                f"  {label:12s} flagged {flagged} mean over all {v.mean():+.3f} "
                f"harmed {int(np.sum(v < -0.1))} worst {v.min():+.2f} "
                f"short (<=4 px) {v[short].mean():+.3f} | sharp corrected "
                f"{len(sharp_done)} of {len(sharp)}"
                + (f" (least {min(sharp_done):.1f} dB)" if sharp_done else "")
            )
            if label != "node":
                added, new_mean, added_n, new_harmed, d = added_line(label, v, sel, 12)
                line += added
                met = (
                    bool(v.mean() >= node.mean()),
                    bool(v[short].mean() >= node[short].mean() + 0.05),
                    bool(added_n > 0 and new_mean >= 0.3 and new_harmed <= added_n / 5),
                    d >= -0.1,
                    not sharp_done,
                )
                line += f"\n  {'':12s} (1) mean (2) short +0.05 (3) new (4) group (5) sharp: {met}"
            print(line)


def main() -> None:
    ap = parser()
    ap.add_argument("--validation", action="store_true", help="whole frames, fresh cases")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    if args.validation:
        mode, names = "validation", image_lists(DATA)[1]
    else:
        mode, names = "0.6mm", fitting_names(DATA, (0, 1))
    run(part_of(names, args.part, args.out), mode, args.out)


if __name__ == "__main__":
    main()
