"""What the fitting-image experiments share (``short_motion_rl``, ``variant_choice_bound``,
``magnitude_oracle_bound``): their PSNR and their command line — ``--part I/K`` runs every K-th
fitting image from the I-th into ``--out``, ``--summary ROWS…`` prints the rows' table.

Imported by those scripts as a sibling module (``python docs/experiments/NAME.py`` puts this
folder first on the path)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def main(
    run: Callable[[Path, tuple[int, int], Path], None], summary: Callable[[list[Path]], None]
) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=Path("../shared/data/cxr-radiographs-mhh"))
    p.add_argument("--out", type=Path)
    p.add_argument("--part", default="0/1")
    p.add_argument("--summary", nargs="*", type=Path)
    a = p.parse_args()
    if a.summary:
        summary(a.summary)
        return
    i, k = (int(x) for x in a.part.split("/"))
    run(a.data, (i, k), a.out)
