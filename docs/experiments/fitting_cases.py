"""What the fitting-image experiments share (``short_motion_rl``, ``variant_choice_bound``,
``magnitude_oracle_bound``): their cases — the 20 fitting images of ``models.tune_balance``,
384² centred crops at 0.6 mm/px, straight and curved 3 / 6 / 10 px, noise none / 3·10⁴ / 10⁴,
each assessed by the node — their PSNR and their command line: ``--part I/K`` runs every K-th
fitting image from the I-th into ``--out``, ``--summary ROWS…`` prints the rows' table.

Imported by those scripts as a sibling module (``python docs/experiments/NAME.py`` puts this
folder first on the path)."""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionAssessment, MotionPolicy, assess_motion
from models.deblur_data import load_gray
from models.kernel_shape import MagnitudeEstimator, load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE, image_lists, scenes
from models.tune_balance import LENGTHS as SCENE_LENGTHS_BY_SCALE
from models.tune_balance import NOISE as SCENE_NOISE
from models.tune_deconvolution import centre_crop

LENGTHS = (3.0, 6.0, 10.0)
NOISE = (None, 3e4, 1e4)
SCENE_LENGTHS = SCENE_LENGTHS_BY_SCALE["0.6"]


@dataclass(frozen=True)
class Case:
    image: str
    kind: str
    px: float
    quanta: float | None
    sharp: np.ndarray
    blurred: np.ndarray
    kernel: np.ndarray
    assessment: MotionAssessment
    scene: str | None = None  # the validation design's scene (``scene_cases``)

    def row(self) -> dict[str, Any]:
        row = {
            "image": self.image,
            "kind": self.kind,
            "px": self.px,
            "quanta": self.quanta,
            "flagged": self.assessment.blurred,
        }
        return row if self.scene is None else {**row, "scene": self.scene}


def names(data: Path, part: tuple[int, int]) -> list[str]:
    """Every ``part[1]``-th fitting image from the ``part[0]``-th."""
    fit, _ = image_lists(data)
    return fit[part[0] :: part[1]]


def cases(data: Path, name: str, policy: MotionPolicy) -> Iterator[Case]:
    """The image's 18 cases, in a fixed order from a seed of its name."""
    rng = np.random.default_rng(sum(map(ord, name)))
    sharp = centre_crop(load_gray(data / name).astype(np.float32) / 255.0, 384)
    for kind in ("straight", "curved"):
        for px in LENGTHS:
            k = motion_kernel(kind, px, rng)
            for q in NOISE:
                b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                yield Case(name, kind, px, q, sharp, b, k, assess_motion(b, 0.6, policy))


def scene_cases(data: Path, name: str, policy: MotionPolicy) -> Iterator[Case]:
    """The image's cases in the design of ``tune_balance shape-net-validate`` (its 0.6 mm open
    and collimated scenes, straight and curved 6 / 10 px, noise none / 10⁵ / 3·10⁴ / 10⁴ /
    3·10³), on a fitting image, from a seed of its name."""
    rng = np.random.default_rng(sum(map(ord, name)))
    base = load_gray(data / name).astype(np.float32) / 255.0
    for scene, spacing, sharp in scenes(base, rng, True):
        if spacing != 0.6:
            continue
        for kind in ("straight", "curved"):
            for px in SCENE_LENGTHS:
                k = motion_kernel(kind, px, rng)
                for q in SCENE_NOISE:
                    b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                    a = assess_motion(b, spacing, policy)
                    yield Case(name, kind, px, q, sharp, b, k, a, scene)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def gain(c: Case, image: np.ndarray) -> float:
    """PSNR gain of ``image`` over the case's blurred input."""
    return psnr(c.sharp, image) - psnr(c.sharp, c.blurred)


def fourth_and(magnitude: Path) -> tuple[MagnitudeEstimator, MagnitudeEstimator]:
    """The bundled (fourth) magnitude network and the candidate of folder ``magnitude``."""
    return load_magnitude_model(BUNDLED_MAGNITUDE), load_magnitude_model(magnitude)


def collect(
    data: Path,
    part: tuple[int, int],
    out: Path,
    policy: MotionPolicy,
    measure: Callable[[Case], dict[str, Any]],
    design: Callable[[Path, str, MotionPolicy], Iterator[Case]] = cases,
) -> None:
    """Every case's row (:meth:`Case.row` and what ``measure`` adds to it), written to ``out``
    after each image; ``design``: :func:`cases` or :func:`scene_cases`."""
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for name in names(data, part):
        rows += [{**c.row(), **measure(c)} for c in design(data, name, policy)]
        print(f"{name}: {len(rows)} rows, {time.time() - t0:.0f} s", flush=True)
        out.write_text(json.dumps(rows))


def read_rows(paths: list[Path]) -> list[dict[str, Any]]:
    return [r for p in paths for r in json.loads(p.read_text())]


def flagged_groups(
    rows: list[dict[str, Any]], kinds: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """The flagged rows by kind × length × noise, by kind (``kinds``) and all."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if not r["flagged"]:
            continue
        q = "none" if r["quanta"] is None else f"{r['quanta']:.0e}"
        scene = f"{r['scene'].split('/')[1]} " if "scene" in r else ""
        groups[f"{scene}{r['kind']} {r['px']:g}px {q}"].append(r)
        if kinds:
            groups[f"{r['kind']} all"].append(r)
        groups["all"].append(r)
    return groups


@dataclass(frozen=True)
class Against:
    """A variant's gain against a reference's over the flagged rows."""

    all: float  # mean difference
    curved: float  # ... on curved motion
    worst: float  # the lowest group mean (kind × length × noise, scene where given)
    worst_group: str
    losses: int  # cases more than 1 dB below the reference
    wins: int  # ... above it


def against(
    rows: list[dict[str, Any]], gain: Callable[[dict[str, Any]], float], reference: str
) -> Against:
    """How ``gain`` of each flagged row compares with its ``reference`` gain."""

    def diff(r: dict[str, Any]) -> float:
        return gain(r) - float(r[reference])

    groups = flagged_groups(rows, kinds=False)
    d = np.array([diff(r) for r in groups["all"]])
    curved = [diff(r) for r in groups["all"] if r["kind"] == "curved"]
    worst, name = min(
        (float(np.mean([diff(r) for r in g])), name) for name, g in groups.items() if name != "all"
    )
    return Against(
        float(d.mean()),
        float(np.mean(curved)),
        worst,
        name,
        int((d < -1).sum()),
        int((d > 1).sum()),
    )


def print_against(
    rows: list[dict[str, Any]], keys: tuple[str, ...] | list[str], reference: str, width: int = 0
) -> None:
    """One line per key: how its gains compare with the ``reference`` gain (:func:`against`)."""
    for k in keys:
        a = against(rows, lambda r, k=k: float(r[k]), reference)
        print(
            f"{k:{width}s} against {reference}: all {a.all:+.3f}, curved {a.curved:+.3f}, worst"
            f" group {a.worst:+.3f} ({a.worst_group}), < -1 dB {a.losses}, > +1 dB {a.wins}"
        )


def print_means(
    rows: list[dict[str, Any]],
    keys: tuple[str, ...],
    width: int,
    extra: tuple[str, Callable[[list[dict[str, Any]]], str]] | None = None,
) -> None:
    """The mean of each key over each group of flagged rows (``extra``: a last column's title
    and what it shows of a group), then how many rows were flagged."""
    groups = flagged_groups(rows)
    title = f"  {extra[0]}" if extra else ""
    print(f"{'group':24s}   n " + " ".join(f"{k[:width]:>{width}s}" for k in keys) + title)
    for g in sorted(groups):
        rs = groups[g]
        vals = [np.mean([r[k] for r in rs]) for k in keys]
        column = f"  {extra[1](rs)}" if extra else ""
        print(f"{g:24s} {len(rs):3d} " + " ".join(f"{v:+{width}.2f}" for v in vals) + column)
    print(f"flagged {sum(r['flagged'] for r in rows)} of {len(rows)}")


def main(
    run: Callable[..., None],
    summary: Callable[[list[Path]], None],
    more: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The command line: ``run(data, (i, k), out, **more)``, ``more`` adding an experiment's
    own options (passed to ``run`` by name), or ``summary(paths)``."""
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=Path("../shared/data/cxr-radiographs-mhh"))
    p.add_argument("--out", type=Path)
    p.add_argument("--part", default="0/1")
    p.add_argument("--summary", nargs="*", type=Path)
    if more is not None:
        more(p)
    a = vars(p.parse_args())
    data, out, part, paths = (a.pop(key) for key in ("data", "out", "part", "summary"))
    if paths:
        summary(paths)
        return
    i, k = (int(x) for x in part.split("/"))
    run(data, (i, k), out, **a)
