"""Training examples for the refiner, computed once: (blurred, node correction, sharp) crops.

The refiner learns to clean what the node's blind Wiener correction leaves. That correction must
be the one the node computes: the motion estimate of the **whole image** at its pixel spacing
(:func:`models.deblur.assess_motion`), not of a small crop, whose spectrum says much less. So each
example is made from a whole training image: blur it (a motion of ``0.5–6`` mm mapped through
the image's pixel spacing, straight or curved, Poisson noise), let the node's functions assess and
correct it, then keep a few random crops of the three images — only where the node corrects (its
estimate calls the image blurred), because only there does the node run the refiner.

Computing these is what made a refiner step cost seconds on 2 CPU cores; with the bank a step is
the network alone. The bank is a folder of ``.npz`` shards (float16), written incrementally, so
building it can stop and go on (``--resume``-like: existing shards are kept)::

    python -m models.refiner_bank --data ../shared/data/cxr-radiographs-mhh --out runs/refiner-bank
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from skimage.transform import rescale

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur, trajectory_kernel
from models.deblur import MotionPolicy, assess_motion, refiner_inputs
from models.deblur_data import load_images, split_by_patient
from models.kernel_shape import MagnitudeEstimator, load_magnitude_model

F32 = NDArray[np.float32]
F16 = NDArray[np.float16]
NATIVE_SPACING_MM = 0.6  # cxr-radiographs-mhh: 640 px wide adult chests
#: Rescale factors of each training image: 0.2 and 0.3 mm/px (detector-like; upsampled, so smoother
#: than a real detector image) and the native 0.6 mm/px. Coarser copies are left out: at 1.2 mm/px
#: the estimate calls almost no motion of 0.5–6 mm blurred, so the refiner would never run there.
SCALES = (3.0, 2.0, 1.0)
MOTION_MM = (0.5, 6.0)


@dataclass(frozen=True)
class Draw:
    """One simulated exposure: the motion (``None`` = no motion) and the dose."""

    motion_mm: float | None
    straight: bool
    angle_deg: float
    photons: float


def random_draw(rng: np.random.Generator, p_sharp: float = 0.1) -> Draw:
    """Motion log-uniform in :data:`MOTION_MM`, half straight, half curved; 10 % none."""
    lo, hi = MOTION_MM
    mm = (
        None if rng.random() < p_sharp else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    )
    return Draw(
        motion_mm=mm,
        straight=bool(rng.random() < 0.5),
        angle_deg=float(rng.uniform(0.0, 180.0)),
        photons=float(math.exp(rng.uniform(math.log(2000.0), math.log(50000.0)))),
    )


def kernel_for(draw: Draw, spacing_mm: float, rng: np.random.Generator) -> NDArray[np.float64]:
    if draw.motion_mm is None:
        return np.ones((1, 1))
    px = max(1.0, draw.motion_mm / spacing_mm)
    if draw.straight:
        return linear_kernel(px, draw.angle_deg)
    return trajectory_kernel(px, rng)


def make_example(
    sharp: F32,
    spacing_mm: float,
    draw: Draw,
    rng: np.random.Generator,
    policy: MotionPolicy,
    magnitude: MagnitudeEstimator | None = None,
    balance_factors: tuple[float, ...] = (),
) -> tuple[list[F32], bool]:
    """Whole-image inputs of the refiner and whether the node corrected, for one draw.

    Without ``magnitude`` the correction is the Wiener filter alone (no Richardson–Lucy fallback,
    no shape step: what the first refiner was trained on); with it, the node's correction as
    shipped (the kernel shape step with that magnitude, the fallback where the filter rings).
    The inputs are ``[blurred, *variants, correction]`` (:func:`refiner_inputs`).
    """
    k = kernel_for(draw, spacing_mm, rng)
    blurred = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(photons=draw.photons))
    blurred = np.asarray(blurred, dtype=np.float32)
    assessment = assess_motion(blurred, spacing_mm, policy)
    inputs, _ = refiner_inputs(
        blurred, assessment, policy, magnitude, balance_factors, fallback=magnitude is not None
    )
    return inputs, assessment.blurred


def random_crops(
    images: tuple[F32, ...], size: int, count: int, rng: np.random.Generator
) -> list[F16]:
    """``count`` crops [C, size, size] at the same place in all the images."""
    h, w = images[0].shape
    out = []
    for _ in range(count):
        y = int(rng.integers(0, max(1, h - size + 1)))
        x = int(rng.integers(0, max(1, w - size + 1)))
        out.append(np.stack([a[y : y + size, x : x + size] for a in images]).astype(np.float16))
    return out


def build(
    data: Path,
    out: Path,
    draws_per_image: int,
    crop: int,
    crops_per_draw: int,
    seed: int,
    names: list[str] | None = None,
    scales: tuple[float, ...] = SCALES,
    magnitude: MagnitudeEstimator | None = None,
    balance_factors: tuple[float, ...] = (),
) -> dict[str, int]:
    """Write one shard per (training image, scale); existing shards are kept. A crop's channels
    are the refiner's inputs (:func:`refiner_inputs`), then the sharp image."""
    out.mkdir(parents=True, exist_ok=True)
    policy = MotionPolicy()
    if names is None:
        names = split_by_patient(data).train
    counts = {"shards": 0, "crops": 0, "corrected": 0, "draws": 0}
    for i, (name, im) in enumerate(zip(names, load_images(data, names), strict=True)):
        base = im.astype(np.float32) / 255.0
        for factor in scales:
            shard = out / f"{Path(name).stem}_x{factor:g}.npz"
            if shard.exists():
                continue
            rng = np.random.default_rng([seed, i, int(factor * 100)])
            sharp = (
                base
                if factor == 1.0
                else np.asarray(
                    rescale(base, factor, anti_aliasing=factor < 1, order=3), np.float32
                )
            )
            sharp = np.clip(sharp, 0.0, 1.0).astype(np.float32)
            spacing = NATIVE_SPACING_MM / factor
            crops: list[F16] = []
            meta = []
            # Fewer exposures of the large upsampled copies: each costs (factor)² more to assess.
            for _ in range(max(2, round(draws_per_image / max(1.0, factor) ** 1.2))):
                draw = random_draw(rng)
                inputs, applied = make_example(
                    sharp, spacing, draw, rng, policy, magnitude, balance_factors
                )
                if applied:
                    crops += random_crops((*inputs, sharp), crop, crops_per_draw, rng)
                meta.append([draw.motion_mm or 0.0, float(draw.straight), float(applied)])
                counts["corrected"] += int(applied)
                counts["draws"] += 1
            tmp = shard.with_suffix(".tmp.npz")
            channels = 3 + len(balance_factors)
            stacked = np.stack(crops) if crops else np.zeros((0, channels, crop, crop), np.float16)
            np.savez(
                tmp, crops=stacked, meta=np.asarray(meta, np.float32), spacing=np.float32(spacing)
            )
            tmp.replace(shard)
            counts["shards"] += 1
            counts["crops"] += len(crops)
    return counts


def describe_bank(
    scales: tuple[float, ...],
    draws: int,
    kernel_shape: Path | None,
    balance_factors: tuple[float, ...] = (),
) -> dict[str, object]:
    """What a bank holds, written as ``bank.json`` beside its shards and read by the training
    (:mod:`models.train_refiner`) into the refiner's manifest: which correction it refines."""
    described: dict[str, object] = {
        "scales_mm_per_px": [round(NATIVE_SPACING_MM / f, 4) for f in scales],
        "draws_per_image": draws,
        "motion_mm": list(MOTION_MM),
        "refines": "wiener" if kernel_shape is None else "node_correction",
        "variant_balance_factors": list(balance_factors),
    }
    if kernel_shape is not None:
        m = json.loads((kernel_shape / "manifest.json").read_text())
        described["kernel_magnitude"] = {"name": m["name"], "version": m["version"]}
    return described


def read_description(folder: Path) -> dict[str, object]:
    """``bank.json`` of a bank; banks built before it existed refined the Wiener filter alone at
    0.2 / 0.3 / 0.6 mm/px."""
    path = folder / "bank.json"
    if path.exists():
        described: dict[str, object] = json.loads(path.read_text())
        return described
    return describe_bank(SCALES, 6, None)


def load_bank(folder: Path, names: set[str] | None = None) -> tuple[F16, F32]:
    """All crops [N, C, S, S] (the refiner's inputs, the correction last of them, then the sharp
    image) and their pixel spacing [N]."""
    crops, spacing = [], []
    for shard in sorted(folder.glob("*_x*.npz")):
        if shard.name.endswith(".tmp.npz"):
            continue
        if names is not None and shard.stem.rsplit("_x", 1)[0] not in names:
            continue
        with np.load(shard) as z:
            if not len(z["crops"]):
                continue
            crops.append(z["crops"])
            spacing.append(np.full(len(z["crops"]), float(z["spacing"]), np.float32))
    if not crops:
        raise FileNotFoundError(f"no bank shards in {folder}")
    return np.concatenate(crops), np.concatenate(spacing)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="cxr-radiographs-mhh folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--draws", type=int, default=6, help="simulated exposures per image and scale")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--crops-per-draw", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="first N training images only")
    ap.add_argument("--part", default="0/1", help="I/N: every N-th image from the I-th (parallel)")
    ap.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=list(SCALES),
        help="rescale factors of each image (1 = native 0.6 mm/px, 3 = 0.2 mm/px upsampled)",
    )
    ap.add_argument(
        "--kernel-shape",
        type=Path,
        default=None,
        help="kernel_magnitude model folder: correct as the node ships (shape step, fallback); "
        "without it the Wiener filter alone",
    )
    ap.add_argument(
        "--variant-balance-factors",
        type=float,
        nargs="*",
        default=[],
        help="also give the refiner the deconvolution with the Wiener λ times each of these",
    )
    args = ap.parse_args(argv)
    names = split_by_patient(args.data).train
    if args.limit:
        names = names[: args.limit]
    i, n = (int(v) for v in args.part.split("/"))
    names = names[i::n]
    t = time.time()
    magnitude = load_magnitude_model(args.kernel_shape) if args.kernel_shape else None
    args.out.mkdir(parents=True, exist_ok=True)
    factors = tuple(args.variant_balance_factors)
    described = describe_bank(tuple(args.scales), args.draws, args.kernel_shape, factors)
    (args.out / "bank.json").write_text(json.dumps(described, indent=1) + "\n")
    counts = build(
        args.data,
        args.out,
        args.draws,
        args.crop,
        args.crops_per_draw,
        args.seed,
        names,
        tuple(args.scales),
        magnitude,
        factors,
    )
    counts["seconds"] = round(time.time() - t)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
