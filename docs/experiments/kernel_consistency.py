"""The thirty-fourth and thirty-fifth rounds: a λ floor where the kernel does not explain the
blurred spectrum.

``outside_blur.py`` found, on detector-like scenes blurred by paths other than a straight line
(our smooth curves and the camera-shake paths of another blur model), flagged frames that the
node made worse than their blurred input — up to −2 dB, nearly all without noise, all with the
Wiener filter at the noise-following λ's floor 0.01 and the straight kernel (the shape step does
not run below 0.4 mm). :func:`models.deblur.kernel_consistency` measures whether the blurred
frame's spectrum follows the estimated kernel's; the candidate
(``MotionPolicy.kernel_consistency_min``) gives λ at least 0.1 where it does not.

Per case: the node as built and the candidate, PSNR gain over the blurred input, whether the
gate flagged it, the consistency and the λ the node used. Scenes as ``outside_blur.py`` (the
detector-like 1024² frames at 0.2 mm/px, open and collimated; straight, curved and shake paths of
1 / 2 / 4 mm). ``--look``: the first 12 validation images with noise none / 2·10⁴ (the look the
threshold was chosen on); default: the round's validation — the other 12 validation images and
the 20 fitting images of ``models.tune_balance``, noise none / 10⁵ / 2·10⁴ / 10⁴ (the
thirty-fourth round's validation, threshold 0.75, run at commit 053f732, where the floor also
applied where the frame then took the fallback); ``--fresh``: the thirty-fifth round's validation,
the 21 training-split images of the patients none of whose images is in either list, threshold
0.70 (the floor only where the Wiener filter is kept, as ``models.deblur`` now has it).

Run: ``PYTHONPATH=. python docs/experiments/kernel_consistency.py --fresh --out runs/kf-0.json
--part 0/2`` (and ``1/2``), then ``--summary runs/kf-*.json``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, SPACING_MM, frames, image_cases, parser, part_of
from fitting_cases import read_rows
from outside_blur import KINDS, MOTION_MM, gain

from models.blur import to_exposure
from models.deblur import MotionPolicy, assess_motion, deconvolve, kernel_consistency
from models.deblur_data import split_by_patient
from models.tune_balance import image_lists

#: The candidates' thresholds (docs/models.md): the thirty-fourth round's, chosen on its look,
#: and the thirty-fifth's, chosen on the thirty-fourth's validation cases.
THRESHOLD_34 = 0.75
THRESHOLD = 0.70
LOOK_NOISES: dict[str, float | None] = {"none": None, "2e4": 2e4}
VALIDATION_NOISES: dict[str, float | None] = {"none": None, "1e5": 1e5, "2e4": 2e4, "1e4": 1e4}


def run(
    names: list[str], noises: dict[str, float | None], out: Path, threshold: float = THRESHOLD
) -> None:
    node = MotionPolicy()
    candidate = replace(node, kernel_consistency_min=threshold)
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in image_cases(name, frames, "kernel-consistency", KINDS, MOTION_MM, noises):
            a = assess_motion(c.blurred, SPACING_MM, node)
            row: dict[str, Any] = c.row(
                flagged=a.blurred,
            )
            if a.blurred:
                built = deconvolve(c.blurred, a, node)
                e = to_exposure(np.asarray(c.blurred, dtype=np.float64), node.log_range)
                k = kernel_consistency(e, a.estimate.kernel())
                acts = math.isfinite(k) and k < threshold
                new = deconvolve(c.blurred, a, candidate).image if acts else built.image
                row |= {
                    "consistency": k,
                    "balance": built.balance,
                    "method": built.method,
                    "node": gain(c.sharp, c.blurred, built.image),
                    "candidate": gain(c.sharp, c.blurred, new),
                }
            rows.append(row)
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    flagged = [r for r in rows if r["flagged"]]
    print(f"{len(rows)} cases, {len(flagged)} flagged, {len({r['image'] for r in rows})} images")

    def said(part: list[dict[str, Any]]) -> str:
        node = np.array([r["node"] for r in part])
        cand = np.array([r["candidate"] for r in part])
        changed = int(np.sum(np.abs(cand - node) > 1e-9))
        return (
            f"n {len(part):4d} changed {changed:3d} node {node.mean():+.3f} candidate "
            f"{cand.mean():+.3f} (Δ {cand.mean() - node.mean():+.3f}) harmed "
            f"{int(np.sum(node < -0.1))} → {int(np.sum(cand < -0.1))} worst {node.min():+.2f} → "
            f"{cand.min():+.2f}"
        )

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in flagged:
        groups.setdefault(f"{r['scene']} {r['kind']} {r['mm']:g} mm {r['noise']}", []).append(r)
    worst = min(
        groups.items(),
        key=lambda kv: np.mean([r["candidate"] - r["node"] for r in kv[1]]),
    )
    for kind in KINDS:
        print(f"{kind:10s}", said([r for r in flagged if r["kind"] == kind]))
    for noise in dict.fromkeys(r["noise"] for r in flagged):
        print(f"noise {noise:4s}", said([r for r in flagged if r["noise"] == noise]))
    print(f"{'all':10s}", said(flagged))
    drop = np.mean([r["candidate"] - r["node"] for r in worst[1]])
    print(f"worst group: {worst[0]} Δ {drop:+.3f} dB ({len(worst[1])} cases)")


def main() -> None:
    ap = parser()
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--look", action="store_true", help="the thirty-fourth round's look")
    which.add_argument("--fresh", action="store_true", help="the thirty-fifth round's validation")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    fit, validation = image_lists(DATA)
    if args.fresh:
        run(
            part_of(fresh_images(fit + validation), args.part, args.out),
            VALIDATION_NOISES,
            args.out,
        )
        return
    if args.look:
        names, noises = validation[:12], LOOK_NOISES
    else:
        names, noises = validation[12:] + fit, VALIDATION_NOISES
    run(part_of(names, args.part, args.out), noises, args.out, THRESHOLD_34)


def fresh_images(seen: list[str]) -> list[str]:
    """The training-split images of the patients none of whose images is in ``seen``."""
    with (DATA / "metadata.csv").open(newline="", encoding="utf-8") as f:
        patient = {row["path"]: row["patient_id"] for row in csv.DictReader(f)}
    known = {patient[n] for n in seen}
    train = split_by_patient(DATA, 0.2, 0).train
    return [n for n in train if patient[n] not in known]


if __name__ == "__main__":
    main()
