"""The blur gate at detector scale on more than five frames: detector-like scenes.

The gate's detection figures at detector scale (docs/models.md, "Blur gate") rest on the five
distinct real CR/DX frames of ``cxr-dicom``: AUC 1.0 at 1 mm, but five images. Here the same
measurement on the detector-like scenes of ``detector_proxy.py`` (a 640 px MHH frame ×3
upsampled to 0.2 mm/px with its own power law continued into the band upsampling leaves empty,
:func:`models.detector_texture.continued`), open and collimated, from every image of
``models.tune_balance``'s fitting and validation lists (nothing is fitted here): each scene sharp
(as it is, and with Poisson noise of 2·10⁴ quanta/px) and blurred by 0.5 / 1 / 2 mm of motion
(straight and curved alternating, as ``models.evaluate_blur_gate`` does) with that noise. The
node's gate at its defaults: the share flagged, and the ROC AUC of the estimate's specificity
(the gate's evidence) against the same scenes sharp.

Run: ``PYTHONPATH=. python docs/experiments/detector_gate.py --out runs/dg-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/dg-*.json``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, SPACING_MM, frames, parser, part_of

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion
from models.metrics import roc_auc
from models.tune_balance import image_lists

MOTION_MM = (0.5, 1.0, 2.0)
QUANTA = 2e4


def run(names: list[str], out: Path) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        seed = zlib.crc32(f"detector-gate/{name}".encode())
        rng = np.random.default_rng(seed)
        for scene, sharp in frames(name, seed):
            # the same noise as the blurred scenes get, without the blur (a point kernel)
            noisy = simulate_motion_blur(sharp, np.ones((1, 1)), rng, noise=NoiseSpec(QUANTA))
            row: dict[str, Any] = {"image": name, "scene": scene}
            for label, img in (("sharp", sharp), ("sharp_noisy", noisy)):
                a = assess_motion(img, SPACING_MM, node)
                row[label] = [a.estimate.specificity, a.decision != "sharp"]
            for j, mm in enumerate(MOTION_MM):
                kind = "straight" if (i + j) % 2 == 0 else "curved"
                k = motion_kernel(kind, mm / SPACING_MM, rng)
                b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(QUANTA))
                a = assess_motion(b, SPACING_MM, node)
                row[f"{mm:g}"] = [a.estimate.specificity, a.decision != "sharp", kind]
            rows.append(row)
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = [r for p in paths for r in json.loads(p.read_text())]
    for scene in ("open", "collimated", "all"):
        part = [r for r in rows if scene in ("all", r["scene"])]
        for ref in ("sharp", "sharp_noisy"):
            alarms = sum(r[ref][1] for r in part)
            said = [f"{scene}, against {ref} ({len(part)} scenes, {alarms} false alarms):"]
            for mm in MOTION_MM:
                key = f"{mm:g}"
                y = np.r_[np.zeros(len(part)), np.ones(len(part))]
                score = np.r_[[r[ref][0] for r in part], [r[key][0] for r in part]]
                flagged = np.mean([r[key][1] for r in part])
                said.append(f"{key} mm flagged {flagged:.2f} AUC {roc_auc(y, score):.3f}")
            print(" ".join(said))


def main() -> None:
    args = parser().parse_args()
    if args.summary:
        summary(args.summary)
        return
    fit, validation = image_lists(DATA)
    run(part_of(fit + validation, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
