"""Kermany's ``labels.csv`` read into samples (no torch: training, evaluation and
:mod:`models.shortcut` share it)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CLASSES = ("NORMAL", "PNEUMONIA")
DATASET = "kermany_pediatric"
CITATION = (
    "Kermany D., Zhang K., Goldbaum M., Labeled Optical Coherence Tomography (OCT) and Chest X-Ray "
    "Images for Classification, Mendeley Data v2, doi:10.17632/rscbjbr9sj.2 (CC BY 4.0); copies "
    "resized to 224x224 by github waliatushar/ai-pneumonia-detection"
)


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    patient: str


def read_kermany(labels_csv: Path, split: str) -> list[Sample]:
    """Kermany rows of ``labels.csv`` with the given ``split`` column value.

    A ``dataset`` column, where present (cxr-labeled), must say ``kermany_pediatric``.
    """
    out: list[Sample] = []
    with labels_csv.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("dataset", DATASET) == DATASET and row["split"] == split:
                out.append(Sample(row["path"], CLASSES.index(row["label"]), row["patient_id"]))
    return out
