"""What the detector-like scene experiments share (``detector_floor``, ``detector_gate``): the
scenes — a 640 px MHH frame ×3 upsampled to 0.2 mm/px with its own power law continued into the
band upsampling leaves empty (:func:`models.detector_texture.continued`), open and collimated —
and the command line: ``--part I/K`` runs every K-th image from the I-th into ``--out``,
``--summary ROWS…`` prints the rows' table.

Imported by those scripts as a sibling module (``python docs/experiments/NAME.py`` puts this
folder first on the path)."""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
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


@dataclass(frozen=True)
class Case:
    """One blurred scene: the image it came from, the sharp frame, the motion and the noise."""

    image: str
    scene: str
    sharp: np.ndarray
    kind: str
    mm: float
    noise: str
    kernel: np.ndarray
    blurred: np.ndarray

    def row(self, **more: object) -> dict[str, object]:
        """The case's keys for a results row (image, scene, kind, mm, noise), and ``more``."""
        keys = {"image": self.image, "scene": self.scene, "kind": self.kind, "mm": self.mm}
        return {**keys, "noise": self.noise, **more}


def image_cases(
    name: str,
    scenes_of: Callable[[str, int], list[tuple[str, np.ndarray]]],
    seed_key: str,
    kinds: tuple[str, ...],
    motion_mm: tuple[float, ...],
    noises: dict[str, float | None],
) -> Iterator[Case]:
    """Every case of one image, in the order the experiments draw them: the image's own seed
    (``seed_key``/name), each scene, kind and length a kernel, each noise level a blurred copy."""
    seed = zlib.crc32(f"{seed_key}/{name}".encode())
    rng = np.random.default_rng(seed)
    for scene, sharp in scenes_of(name, seed):
        for kind in kinds:
            for mm in motion_mm:
                k = motion_kernel(kind, mm / SPACING_MM, rng)
                for noise, quanta in noises.items():
                    b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
                    yield Case(name, scene, sharp, kind, mm, noise, k, b)
