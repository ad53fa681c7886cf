"""What the detector-like scene experiments share (``detector_floor``, ``detector_gate``): the
scenes — a 640 px MHH frame ×3 upsampled to 0.2 mm/px with its own power law continued into the
band upsampling leaves empty (:func:`models.detector_texture.continued`), open and collimated —
and the command line: ``--part I/K`` runs every K-th image from the I-th into ``--out``,
``--summary ROWS…`` prints the rows' table.

Imported by those scripts as a sibling module (``python docs/experiments/NAME.py`` puts this
folder first on the path)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.deblur_data import load_gray
from models.detector_texture import continued
from models.tune_deconvolution import collimate

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"
SPACING_MM = 0.2
SIDE_PX = 1024


def frames(name: str, seed: int) -> list[tuple[str, np.ndarray]]:
    """(scene, sharp frame) of one MHH image: the detector-like frame open and collimated."""
    base = load_gray(DATA / name).astype(np.float32) / 255.0
    open_frame = continued(base, SIDE_PX, seed)
    return [("open", open_frame), ("collimated", collimate(open_frame))]


def parser() -> argparse.ArgumentParser:
    """``--out``, ``--part I/K`` and ``--summary ROWS…``; a script adds its own options."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--part", default="0/1")
    ap.add_argument("--summary", nargs="+", type=Path)
    return ap


def part_of(names: list[str], part: str, out: Path) -> list[str]:
    """Every K-th of ``names`` from the I-th (``part`` "I/K"); makes ``out``'s folder."""
    i, k = (int(x) for x in part.split("/"))
    out.parent.mkdir(parents=True, exist_ok=True)
    return names[i::k]
