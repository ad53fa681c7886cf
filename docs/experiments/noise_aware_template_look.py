"""A look: does a template that expects the noise in its dips estimate short motion truer?

The Kermany scenes' 1 mm estimates come out 1.25–1.5× too long (``short_estimate_bias.py``):
their steep spectra put the first dip of 5 px motion where the noise fills it, and a longer
motion, whose dip lies where the anatomy still stands above the noise, fits the fixed template
``log(sinc² + 0.02)`` better. With ``MotionPolicy.estimate_eta_follows_noise`` the dip floor on
each ring is the frame's noise over its anatomy there. Per scene (``--look``: six MHH fitting
images; default: six Kermany images of the thirty-sixth round; both seen, open scenes), straight
and curved motion of 1 / 2 / 4 mm at 0.2 mm/px and the sharp frame, noise none / 10⁵ / 2·10⁴ /
10⁴: flagged or not and the estimated length, for the node's estimate and the candidate's.
Nothing is chosen here.

Run: ``PYTHONPATH=. python docs/experiments/noise_aware_template_look.py --out runs/nt.json``
(and ``--look --out runs/ntl.json``), then ``--summary runs/nt.json``.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames, kermany_images
from detector_scenes import DATA, SPACING_MM, frames, parser
from fitting_cases import read_rows
from kernel_consistency import VALIDATION_NOISES

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion
from models.tune_balance import image_lists

IMAGES = 6
MOTION_MM = (0.0, 1.0, 2.0, 4.0)
KINDS = ("straight", "curved")
#: the node's estimate, the noise-aware template's, and the same with the anatomy each
#: candidate motion leaves (``MotionPolicy.estimate_eta_follows_motion``, twenty-eighth session)
LABELS = ("node", "candidate", "motion")


def run(look: bool, out: Path) -> None:
    node = MotionPolicy()
    candidate = replace(node, estimate_eta_follows_noise=True)
    motion = replace(candidate, estimate_eta_follows_motion=True)
    names = image_lists(DATA)[0][:IMAGES] if look else kermany_images()[:IMAGES]
    scenes_of = frames if look else kermany_frames
    rows: list[dict[str, Any]] = []
    for name in names:
        seed = zlib.crc32(f"noise-aware-template/{name}".encode())
        rng = np.random.default_rng(seed)
        sharp = scenes_of(name, seed)[0][1]
        for kind in KINDS:
            for mm in MOTION_MM:
                if mm == 0.0 and kind != KINDS[0]:
                    continue
                k = motion_kernel(kind, mm / SPACING_MM, rng) if mm else None
                for noise, quanta in VALIDATION_NOISES.items():
                    kernel = k if k is not None else np.ones((1, 1))
                    b = simulate_motion_blur(sharp, kernel, rng, noise=NoiseSpec(quanta))
                    row: dict[str, Any] = {"image": name, "kind": kind, "mm": mm, "noise": noise}
                    for label, policy in zip(LABELS, (node, candidate, motion), strict=True):
                        a = assess_motion(b, SPACING_MM, policy)
                        row[f"{label}_flagged"] = a.blurred
                        row[f"{label}_mm"] = a.motion_mm
                    rows.append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for kind in KINDS:
        for mm in MOTION_MM:
            for noise in VALIDATION_NOISES:
                sel = [
                    r
                    for r in rows
                    if r["mm"] == mm and r["noise"] == noise and (mm == 0 or r["kind"] == kind)
                ]
                if not sel or (mm == 0 and kind != KINDS[0]):
                    continue
                line = [f"{'sharp' if mm == 0 else kind:8s} {mm:g} mm {noise:5s}"]
                for label in (x for x in LABELS if f"{x}_mm" in sel[0]):
                    flagged = [r for r in sel if r[f"{label}_flagged"]]
                    ratio = (
                        f"{np.median([r[f'{label}_mm'] / mm for r in flagged]):.2f}"
                        if flagged and mm
                        else "—"
                    )
                    every = f"{np.median([r[f'{label}_mm'] / mm for r in sel]):.2f}" if mm else "—"
                    line.append(
                        f"{label} flagged {len(flagged)}/{len(sel)} est/true {ratio} (all {every})"
                    )
                print(" | ".join(line))


def main() -> None:
    ap = parser()
    ap.add_argument("--look", action="store_true", help="six MHH fitting images, not Kermany")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(args.look, args.out)


if __name__ == "__main__":
    main()
