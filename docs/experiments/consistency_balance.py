"""The thirty-sixth round: how large a λ where the spectrum does not follow the straight kernel.

The thirty-fifth round's floor (λ at least 0.1 where :func:`models.deblur.kernel_consistency` is
under 0.7 and the Wiener filter is kept) raised the mean and lowered no group, but left frames
worse than their blurred input where even λ 0.1 amplifies the straight kernel's miss. Candidates:
that floor at λ 0.1 / 0.2 / 0.4 (``MotionPolicy.kernel_consistency_balance``), and leaving those
frames uncorrected (their gain 0; measured here, not a policy yet).

``--look``: the thirty-fifth round's validation cases again (the 21 fresh MHH images, the same
seeds, so the node's column repeats that round's), now seen. Default: the validation — detector-
like scenes made from ``kermany-full``'s **train** split (every 200th image by path: pediatric
224 px chest JPEGs ×3 upsampled to 672² with their own power law continued,
:func:`models.detector_texture.continued`, taken as 0.2 mm/px; open and collimated), images no
correction round has used. Both: straight / curved / shake, 1 / 2 / 4 mm, noise none / 10⁵ /
2·10⁴ / 10⁴.

Run: ``PYTHONPATH=. python docs/experiments/consistency_balance.py --out runs/cb-0.json --part
0/2`` (and ``1/2``; ``--look`` for the look), then ``--summary runs/cb-*.json``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, SPACING_MM, Case, frames, image_cases, parser, part_of
from fitting_cases import read_rows
from kernel_consistency import VALIDATION_NOISES, fresh_images
from outside_blur import KINDS, MOTION_MM, gain

from models.blur import to_exposure
from models.deblur import MotionPolicy, assess_motion, deconvolve, kernel_consistency
from models.deblur_data import load_gray
from models.detector_texture import continued
from models.tune_balance import image_lists
from models.tune_deconvolution import collimate

THRESHOLD = 0.70
FLOORS = (0.1, 0.2, 0.4)
KERMANY = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kermany-full"
KERMANY_SIDE_PX = 672
KERMANY_EVERY = 200


def round_cases(name: str, look: bool) -> Iterator[Case]:
    """One image's cases as the thirty-fifth and thirty-sixth rounds drew them (their seeds):
    MHH detector-like scenes (``look``) or Kermany ones."""
    scenes_of = frames if look else kermany_frames
    return image_cases(name, scenes_of, "kernel-consistency", KINDS, MOTION_MM, VALIDATION_NOISES)


def kermany_images() -> list[str]:
    with (KERMANY / "labels.csv").open(newline="", encoding="utf-8") as f:
        train = sorted(r["path"] for r in csv.DictReader(f) if r["split"] == "train")
    return train[::KERMANY_EVERY]


def kermany_frames(name: str, seed: int) -> list[tuple[str, np.ndarray]]:
    base = load_gray(KERMANY / name).astype(np.float32) / 255.0
    open_frame = continued(base, KERMANY_SIDE_PX, seed)
    return [("open", open_frame), ("collimated", collimate(open_frame))]


def run(names: list[str], look: bool, out: Path) -> None:
    node = MotionPolicy()
    variants = {
        f"floor{f:g}": replace(node, kernel_consistency_min=THRESHOLD, kernel_consistency_balance=f)
        for f in FLOORS
    }
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in round_cases(name, look):
            a = assess_motion(c.blurred, SPACING_MM, node)
            row: dict[str, Any] = c.row(
                flagged=a.blurred,
            )
            if a.blurred:
                built = deconvolve(c.blurred, a, node)
                e = to_exposure(np.asarray(c.blurred, dtype=np.float64), node.log_range)
                k = kernel_consistency(e, a.estimate.kernel())
                acts = built.method == "wiener" and math.isfinite(k) and k < THRESHOLD
                row |= {
                    "consistency": k,
                    "acts": acts,
                    "node": gain(c.sharp, c.blurred, built.image),
                }
                for label, policy in variants.items():
                    img = deconvolve(c.blurred, a, policy).image if acts else built.image
                    row[label] = gain(c.sharp, c.blurred, img)
                row["skip"] = 0.0 if acts else row["node"]
            rows.append(row)
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    flagged = [r for r in rows if r["flagged"]]
    print(f"{len(rows)} cases, {len(flagged)} flagged, {sum(r['acts'] for r in flagged)} checked")
    node = np.array([r["node"] for r in flagged])
    print(f"node as built: mean {node.mean():+.3f} harmed {int(np.sum(node < -0.1))}")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in flagged:
        groups.setdefault(f"{r['scene']} {r['kind']} {r['mm']:g} mm {r['noise']}", []).append(r)
    for label in [f"floor{f:g}" for f in FLOORS] + ["skip"]:
        v = np.array([r[label] for r in flagged])
        worst = min(
            (float(np.mean([r[label] - r["node"] for r in g])), key) for key, g in groups.items()
        )
        kinds = " ".join(
            f"{kind} {np.mean([r[label] for r in flagged if r['kind'] == kind]):+.3f}"
            for kind in KINDS
        )
        print(
            f"{label:9s} mean {v.mean():+.3f} (Δ {v.mean() - node.mean():+.3f}) harmed "
            f"{int(np.sum(v < -0.1))} worst case {v.min():+.2f} worst group {worst[0]:+.3f} "
            f"({worst[1]}) | {kinds}"
        )


def round_main(
    run_part: Callable[[list[str], bool, Path], None],
    summarise: Callable[[list[Path]], None],
    look_help: str,
) -> None:
    """The command line of the scripts on this round's images: ``--look`` (``look_help``),
    ``--part``, ``--out`` and ``--summary``."""
    ap = parser()
    ap.add_argument("--look", action="store_true", help=look_help)
    args = ap.parse_args()
    if args.summary:
        summarise(args.summary)
        return
    run_part(part_of(round_images(args.look), args.part, args.out), args.look, args.out)


def main() -> None:
    round_main(run, summary, "the thirty-fifth round's cases again")


def round_images(look: bool) -> list[str]:
    """The round's images: the look's 21 MHH images, or the validation's Kermany images."""
    if look:
        fit, validation = image_lists(DATA)
        return fresh_images(fit + validation)
    return kermany_images()


if __name__ == "__main__":
    main()
