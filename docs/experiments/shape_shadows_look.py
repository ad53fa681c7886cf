"""The kernel shape step beside sharp shadows at ≈0.6 mm/px (thirty-eighth session).

The thirty-seventh session's look (:mod:`wiener_shadows_look`) found the clear windows (the
fifty-sixth round's estimate clear of the shadows) flagging every 4 mm motion behind sharp
shadows at 0.6 mm/px but harming 31 of 120 such frames; a first scratch look traced the harm to
curved motion where the kernel shape step replaced the straight kernel (its learned magnitude
reads the whole frame's spectrum, the shadows' sharp edges in it). This look measures, per case,
the gate and the anatomy gain of:

- ``node``: the node as built (``sharpray-blind-wiener 0.44.0``: at 0.6 mm the windows as built);
- ``clear``: the clear windows at every pixel size (``clear_windows_finer_than_mm`` None), the
  node's correction after them;
- ``spec``: ``clear`` and the shape step clear of the shadows (its spectrum's windows and the
  orientation's total variation; ``MotionPolicy.shape_clear_of_shadows``);
- ``skip``: ``clear`` and no shape step where shadows are found (``shape_skips_shadows``);
- ``node_spec``: the node's gate and ``shape_clear_of_shadows`` (the candidate alone).

Frames: ``--mhh`` MHH every third unnamed training image from the first (seen; the
thirty-seventh session's look images), as they are (640 px, 0.6 mm/px); ``--kermany OFFSET``:
Kermany every 200th train image from OFFSET, its longer side brought to 640 px, taken as 0.6
mm/px (kermany-full's images are 224 px: upsampled 2.86×, soft interpolated frames whose short
motion the estimate overreads; docs/models.md). Each open and collimated, straight and curved 1 / 2 / 4 mm, no noise and
Poisson 10⁴, shadows drawn before and after the blur (:func:`fixed_collimation_look.scenes`);
and the open frame, the same motions and noise (:func:`open_scenes`: the finder can take an
open frame's darkest or brightest anatomy for a shadow, and the candidates act wherever it
finds one).

Run: ``PYTHONPATH=../.. python shape_shadows_look.py --mhh --out runs/ss-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/ss-*.json``; the round's validation (``--kermany 160``)
runs ``node``, the chosen ``node_spec`` and, for the record, ``clear``.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, parser, part_of
from fitting_cases import read_rows
from fixed_collimation_look import (
    KINDS,
    MOTION_MM,
    NOISES,
    ORDERS,
    WEIGHTS,
    Scene,
    anatomy_gain,
    scenes,
)
from look_rows import save
from round_design import KERMANY, kermany_train_every_200th, unnamed_mhh_images
from skimage.transform import resize

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray
from models.kernel_shape import load_magnitude_model
from models.tune_deconvolution import collimate

SPACING_MM = 0.6
SIDE_PX = 640
NODE = replace(MotionPolicy(), kernel_length_across_up_to_px=None)  # 0.44.0
CLEAR = replace(NODE, clear_windows_finer_than_mm=None)
#: label -> (gate, correction)
POLICIES: dict[str, tuple[MotionPolicy, MotionPolicy]] = {
    "node": (NODE, NODE),
    "clear": (CLEAR, CLEAR),
    "spec": (CLEAR, replace(CLEAR, shape_clear_of_shadows=True)),
    "skip": (CLEAR, replace(CLEAR, shape_skips_shadows=True)),
    "node_spec": (NODE, replace(NODE, shape_clear_of_shadows=True)),
}
LABELS = tuple(POLICIES)
#: the validation's: the node, the chosen candidate (C) and, for the record, the clear windows
VALIDATION = ("node", "node_spec", "clear")


def mhh_frames(name: str, seed: int) -> list[tuple[str, np.ndarray]]:
    """(scene, sharp frame) of one MHH image as it is: open and collimated."""
    del seed
    img = load_gray(DATA / name).astype(np.float32) / 255.0
    return [("open", img), ("collimated", collimate(img))]


def kermany_frames(name: str, seed: int) -> list[tuple[str, np.ndarray]]:
    """(scene, sharp frame) of one Kermany image, its longer side 640 px (from kermany-full's
    224 px: upsampled): open and collimated."""
    del seed
    img = load_gray(KERMANY / name).astype(np.float32) / 255.0
    f = SIDE_PX / max(img.shape)
    shape = (round(img.shape[0] * f), round(img.shape[1] * f))
    small = np.clip(resize(img, shape, anti_aliasing=True), 0.0, 1.0).astype(np.float32)
    return [("open", small), ("collimated", collimate(small))]


def open_scenes(
    name: str, frames_of: Callable[[str, int], list[tuple[str, np.ndarray]]]
) -> Iterator[Scene]:
    """The same image open (no collimation, no marker: whatever shadows are found in it are the
    anatomy's), each kind and length of motion and noise (order ``open``; its own seeds)."""
    seed0 = zlib.crc32(("shape-shadows-look-open" + name).encode())
    (_, sharp), _ = frames_of(name, seed0)
    rng = np.random.default_rng(seed0)
    everywhere = np.ones(sharp.shape, dtype=bool)
    for kind in KINDS:
        for mm in MOTION_MM:
            kernel = motion_kernel(kind, mm / SPACING_MM, rng)
            for noise, quanta in NOISES.items():
                noise_rng = np.random.default_rng(int(rng.integers(2**31)))
                blurred = simulate_motion_blur(sharp, kernel, noise_rng, noise=NoiseSpec(quanta))
                yield Scene(name, kind, mm, noise, "open", sharp, blurred, everywhere)


def run(names: list[str], kermany: bool, out: Path, labels: tuple[str, ...] = LABELS) -> None:
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    frames_of = kermany_frames if kermany else mhh_frames
    rows: list[dict[str, Any]] = []
    for name in names:
        cases = chain(
            scenes(name, frames_of, "shape-shadows-look", SPACING_MM), open_scenes(name, frames_of)
        )
        for c in cases:
            policies = {label: POLICIES[label] for label in labels}
            rows.append(judged_row(c, policies, first, detector, kermany))
        save(out, rows, name)


def judged_row(
    c: Scene,
    policies: dict[str, tuple[MotionPolicy, MotionPolicy]],
    first: Any,
    detector: Any,
    kermany: bool,
) -> dict[str, Any]:
    """The scene's row: for each label of ``policies`` (gate, correction), whether its gate
    flags the scene, the anatomy gain of its correction (0 where not flagged), its path, whether
    the shape step replaced the kernel, the fallback's steps and the measured noise; one
    assessment per gate."""
    row = c.row(set="kermany-0.6" if kermany else "mhh-0.6")
    judged: dict[int, Any] = {}
    for label, (gate, policy) in policies.items():
        if id(gate) not in judged:
            judged[id(gate)] = assess_motion(c.blurred, SPACING_MM, gate)
        a = judged[id(gate)]
        row[f"flagged_{label}"] = a.blurred
        row[label] = 0.0
        if a.blurred:
            d = deconvolve(c.blurred, a, policy, magnitude=first, detector_magnitude=detector)
            row[label] = anatomy_gain(c.sharp, c.blurred, d.image, c.anatomy)
            row[f"path_{label}"] = d.method
            row[f"shaped_{label}"] = bool(d.shape is not None and d.shape.replaced)
            row[f"steps_{label}"] = d.rl_iterations
            row[f"quanta_{label}"] = d.noise_quanta
    return row


def summary(rows: list[dict[str, Any]]) -> None:
    for order in (*ORDERS, "open"):
        for mm in MOTION_MM:
            sel = [r for r in rows if r["order"] == order and r["mm"] == mm]
            if not sel:
                continue
            print(f"{order} {mm:g} mm, {len(sel)} cases:")
            for k in (k for k in LABELS if k in sel[0]):
                flags = sum(r[f"flagged_{k}"] for r in sel)
                shaped = sum(r.get(f"shaped_{k}", False) for r in sel)
                harmed = sum(r[k] < -0.1 for r in sel)
                print(
                    f"  {k:10s} flagged {flags:3d}, shaped {shaped:3d}, "
                    f"gain {np.mean([r[k] for r in sel]):+.3f}, harmed {harmed}"
                )


def look_arguments() -> argparse.Namespace:
    """:func:`detector_scenes.parser` with ``--mhh`` and ``--kermany OFFSET``, parsed."""
    ap = parser()
    ap.add_argument("--mhh", action="store_true", help="the seen MHH look images")
    ap.add_argument("--kermany", type=int, help="Kermany every 200th train image from this")
    return ap.parse_args()


def look_names(args: argparse.Namespace) -> list[str]:
    """The images the command line asks for: Kermany every 200th from ``--kermany``, else the
    thirty-seventh session's MHH look images."""
    if args.kermany is not None:
        return kermany_train_every_200th(args.kermany)
    return unnamed_mhh_images()[::3]


def main() -> None:
    args = look_arguments()
    if args.summary:
        summary(read_rows(args.summary))
        return
    labels = VALIDATION if args.kermany is not None else LABELS
    names = part_of(look_names(args), args.part, args.out)
    run(names, args.kermany is not None, args.out, labels)


if __name__ == "__main__":
    main()
