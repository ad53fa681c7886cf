"""Are the validation split's first patients as hard as Kermany's test years? (a first look)

Kermany's official test split holds the *lowest* patient numbers (normals IM-0001…0107 and
NORMAL2-IM-0007…0376; the train split's start at IM-0115 and NORMAL2-IM-0383), so a validation
part made of the train split's lowest numbers might stand in for the test years. This prints the
classifier's false positives / negatives on the validation split (``split_patients``, fraction
0.15, seed 0, as every shipped member was trained) by patient-number band. Only the train split
is read. ``PYTHONPATH=. python docs/experiments/validation_by_patient_number.py
models/weights/classify-demo`` (about 3 min on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import re
from pathlib import Path

import numpy as np

from models.deblur_data import load_gray
from models.evaluate import pneumonia_probabilities, session
from models.kermany import read_kermany
from models.manifest import load_manifest
from models.train_classifier import split_patients

BANDS = {
    "IM-": [115, 250, 400, 550, 800],
    "NORMAL2-IM-": [383, 600, 800, 1000, 1200, 1500],
    "person": [1, 200, 500, 1000, 2000],
}


def band_of(patient: str) -> str:
    return next(p for p in ("NORMAL2-IM-", "IM-", "person") if patient.startswith(p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("classify", type=Path, help="classifier model folder")
    ap.add_argument("--labels", type=Path, default=Path("../shared/data/kermany-full/labels.csv"))
    args = ap.parse_args()
    _, val = split_patients(read_kermany(args.labels, "train"), 0.15, 0)
    manifest, path = load_manifest(args.classify)
    images = [load_gray(args.labels.parent / s.path).astype(np.float32) / 255.0 for s in val]
    p = pneumonia_probabilities(session(path, threads=1), manifest, images)
    thr = manifest.operating_threshold
    print(f"{len(val)} validation images, threshold {thr}")
    for prefix, edges in BANDS.items():
        for lo, hi in itertools.pairwise(edges):
            idx = [
                i
                for i, s in enumerate(val)
                if band_of(s.patient) == prefix
                and lo <= int(re.findall(r"\d+", s.patient)[-1]) < hi
            ]
            if not idx:
                continue
            q = p[idx]
            wrong = int((q < thr).sum()) if prefix == "person" else int((q >= thr).sum())
            kind = "missed pneumonias" if prefix == "person" else "normals called pneumonia"
            print(
                f"{prefix}{lo}–{hi - 1}: {len(idx)} images, {wrong} {kind}, median P {np.median(q):.3f}"
            )


if __name__ == "__main__":
    main()
