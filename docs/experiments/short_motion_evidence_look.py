"""Short motion at ≈0.6 mm/px, a look: the gate's evidence on sharp and on short-blurred frames.

At ≈0.6 mm/px the node leaves about half the 3 px (1.8 mm) motion of its crops uncorrected: the
estimate finds the right length (3–4 px) but with a specificity under the gate's 0.1 (0.03–0.099).
Specificity compares the best length's fit with 0.6× and 1.5× that length; for a short motion
0.6× lies near the frame's finest scale, so a genuine short motion may be less "specific" than a
long one, and a threshold that depends on the estimated length could find it without calling
sharp frames blurred. This records the evidence to decide that on:

- ``--sharp``: every real sharp radiograph in ``../shared/data`` at native scale (the gate's
  false-alarm sets: ``cxr-dicom`` at its header's spacing, MHH at 0.6 mm, Kermany at 0.9 mm,
  ``nih1024`` at 0.4 mm), each set's rows flagged by set;
- default: the MHH training patients' images (``split_by_patient``'s train; the fitting set of
  the gate's second way), each sharp with Poisson noise 3·10⁴ and 10⁴, and blurred by straight
  and curved motion of 2.5 / 3 / 4 px (1.5 / 1.8 / 2.4 mm), noise none / 3·10⁴ / 10⁴, its seed.

Each row: the first estimate and the second look (the frame's noise taken out) as length (px),
angle, specificity and confidence, whether the frame is a decoded JPEG, and the node's decision.

Run: ``PYTHONPATH=. python docs/experiments/short_motion_evidence_look.py --out runs/se-f0.json
--part 0/2`` (and ``1/2``; ``--sharp --out runs/se-s0.json`` likewise).
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, parser, part_of
from look_rows import save

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.blur_estimate import MotionEstimate
from models.deblur import MotionPolicy, assess_motion
from models.deblur_data import load_gray, split_by_patient
from models.evaluate_blur_gate import SPACING_MM as SET_SPACING_MM
from models.jpeg_history import decoded_jpeg

#: the node as the look ran against it (sharpray-blind-wiener 0.25.0: the forty-second round's
#: strong short fit, the default since 0.27.0, off)
NODE = replace(MotionPolicy(), strong_short_from_mm=None)
LENGTHS_PX = (2.5, 3.0, 4.0)
NOISES: dict[str, float | None] = {"none": None, "3e4": 3e4, "1e4": 1e4}
SHARED = DATA.parent


def said(e: MotionEstimate) -> list[float]:
    return [e.length_px, e.angle_deg, e.specificity, e.confidence]


def evidence(frame: np.ndarray, spacing: float, **keys: Any) -> dict[str, Any]:
    """The two looks' estimates and the node's decision on one frame."""
    first = assess_motion(frame, spacing, replace(NODE, estimate_noise_subtraction="never"))
    second = assess_motion(frame, spacing, replace(NODE, estimate_noise_subtraction="always"))
    node = assess_motion(frame, spacing, NODE)
    return {
        **keys,
        "spacing": spacing,
        "jpeg": decoded_jpeg(frame),
        "first": said(first.estimate),
        "second": said(second.estimate),
        "node": node.decision,
    }


def sharp_frames() -> list[tuple[str, str, float]]:
    """(set, path, spacing) of every real sharp radiograph the gate's false alarms count."""
    out: list[tuple[str, str, float]] = []
    for f in sorted((SHARED / "cxr-dicom").glob("*.dcm")):
        out.append(("cxr-dicom", str(f), 0.0))
    for set_name, table in (
        ("cxr-radiographs-mhh", "metadata.csv"),
        ("kermany-full", "labels.csv"),
    ):
        with (SHARED / set_name / table).open(newline="", encoding="utf-8") as f:
            paths = [SHARED / set_name / r["path"] for r in csv.DictReader(f)]
        out.extend((set_name, str(p), SET_SPACING_MM[set_name]) for p in paths)
    for p in sorted((SHARED / "cxr-labeled" / "nih1024").glob("*.png")):
        out.append(("nih1024", str(p), SET_SPACING_MM["nih1024"]))
    return out


def run_sharp(frames: list[tuple[str, str, float]], out: Path) -> None:
    from node.pipeline.blur_gate import pixel_spacing_mm
    from node.pipeline.preprocess import decode, read_dataset, to_unit_stored_range

    rows: list[dict[str, Any]] = []
    for i, (set_name, path, spacing) in enumerate(frames):
        if set_name == "cxr-dicom":
            ds = read_dataset(Path(path))
            spacing = pixel_spacing_mm(ds) or 0.15
            img = to_unit_stored_range(decode(ds))
        else:
            img = load_gray(Path(path)).astype(np.float32) / 255.0
        rows.append(evidence(img, spacing, set=set_name, image=Path(path).name, mm=0.0))
        if i % 200 == 199 or i == len(frames) - 1:
            save(out, rows, f"{i + 1} of {len(frames)}")


def run_fitting(names: list[str], out: Path) -> None:
    mhh = SHARED / "cxr-radiographs-mhh"
    rows: list[dict[str, Any]] = []
    for name in names:
        rng = np.random.default_rng(zlib.crc32(f"short-motion-evidence/{name}".encode()))
        sharp = load_gray(mhh / name).astype(np.float32) / 255.0
        point = np.ones((1, 1))
        for noise in ("3e4", "1e4"):
            b = simulate_motion_blur(sharp, point, rng, noise=NoiseSpec(NOISES[noise]))
            rows.append(evidence(b, 0.6, set="fit", image=name, kind="none", px=0.0, noise=noise))
        for kind in ("straight", "curved"):
            for px in LENGTHS_PX:
                k = motion_kernel(kind, px, rng)
                for noise, quanta in NOISES.items():
                    b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
                    rows.append(
                        evidence(b, 0.6, set="fit", image=name, kind=kind, px=px, noise=noise)
                    )
        save(out, rows, name)


def main() -> None:
    ap = parser()
    ap.add_argument("--sharp", action="store_true", help="every real sharp radiograph")
    args = ap.parse_args()
    if args.sharp:
        frames = sharp_frames()
        i, k = (int(x) for x in args.part.split("/"))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        run_sharp(frames[i::k], args.out)
        return
    train = split_by_patient(SHARED / "cxr-radiographs-mhh").train
    run_fitting(part_of(train, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
