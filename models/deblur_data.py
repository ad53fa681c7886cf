"""Data for training and evaluating the deblurring generator (numpy only, no torch).

Source: ``cxr-radiographs-mhh`` (190 real adult CR/DX chest radiographs, 8-bit PNG, 640 px wide,
50 patients, CC BY 3.0, Winther et al. doi:10.6084/m9.figshare.12275009). Images are split **by
patient** (seeded) into train and test; the sharp PNG is the target, the input is the same image
blurred by :mod:`models.blur` (random linear or trajectory kernels, in linear exposure, with
Poisson-Gaussian noise).

At 640 px for a 35–43 cm field the pixel spacing is about 0.6 mm, so the training blur lengths
(1.5–10 px by default) correspond to about 1–6 mm of motion at the detector.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from models.blur import (
    NoiseSpec,
    linear_kernel,
    random_kernel,
    simulate_motion_blur,
    trajectory_kernel,
)

U8Array = NDArray[np.uint8]
F32Array = NDArray[np.float32]

#: Approximate pixel spacing of the 640 px wide MHH PNGs (35–43 cm field of view).
MHH_PIXEL_SPACING_MM = 0.6

#: Blur strengths for evaluation: (name, min length px, max length px) at the MHH pixel spacing.
EVAL_STRENGTHS: tuple[tuple[str, float, float], ...] = (
    ("mild", 2.0, 4.0),
    ("moderate", 4.0, 7.0),
    ("severe", 7.0, 10.0),
)


@dataclass(frozen=True)
class Split:
    train: list[str]
    test: list[str]
    train_patients: list[str]
    test_patients: list[str]


def split_by_patient(data_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Read ``metadata.csv`` and split its images by patient (seeded, reproducible)."""
    rows: list[tuple[str, str]] = []
    with (data_dir / "metadata.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows.append((row["path"], row["patient_id"]))
    patients = sorted({p for _, p in rows})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    n_test = max(1, int(round(test_fraction * len(patients))))
    test_p = sorted(patients[i] for i in order[:n_test])
    train_p = sorted(patients[i] for i in order[n_test:])
    tset = set(test_p)
    return Split(
        train=sorted(p for p, pid in rows if pid not in tset),
        test=sorted(p for p, pid in rows if pid in tset),
        train_patients=train_p,
        test_patients=test_p,
    )


def load_gray(path: Path) -> U8Array:
    """An 8-bit PNG/JPEG as a 2-D uint8 array (RGB files are converted to luminance)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def load_images(data_dir: Path, rel_paths: list[str]) -> list[U8Array]:
    return [load_gray(data_dir / p) for p in rel_paths]


@dataclass
class BlurSampler:
    """Random degradation for training patches (all lengths in pixels of the training images)."""

    min_length_px: float = 1.5
    max_length_px: float = 10.0
    p_linear: float = 0.5
    p_sharp: float = 0.1  # fraction of inputs left unblurred (the model must not over-sharpen)
    log_range: float = 3.0
    min_photons: float = 1000.0
    max_photons: float = 20000.0
    p_noise: float = 0.7
    read_noise: float = 0.001

    def kernel(self, rng: np.random.Generator) -> NDArray[np.float64]:
        if rng.random() < self.p_sharp:
            return np.ones((1, 1), dtype=np.float64)
        return random_kernel(rng, self.min_length_px, self.max_length_px, self.p_linear)

    def noise(self, rng: np.random.Generator) -> NoiseSpec | None:
        if rng.random() >= self.p_noise:
            return None
        lo, hi = math.log(self.min_photons), math.log(self.max_photons)
        return NoiseSpec(photons=float(math.exp(rng.uniform(lo, hi))), read_noise=self.read_noise)

    def as_dict(self) -> dict[str, object]:
        return {
            "blur_length_px": [self.min_length_px, self.max_length_px],
            "p_linear_vs_trajectory": self.p_linear,
            "p_unblurred": self.p_sharp,
            "log_range": self.log_range,
            "photons_per_pixel_at_full_exposure": [self.min_photons, self.max_photons],
            "p_noise": self.p_noise,
            "read_noise": self.read_noise,
        }


def sample_pair(
    images: list[U8Array], rng: np.random.Generator, patch: int, sampler: BlurSampler
) -> tuple[F32Array, F32Array]:
    """One (blurred, sharp) training pair of ``patch``² pixels, with random flips/rotations."""
    img = images[int(rng.integers(len(images)))]
    k = sampler.kernel(rng)
    margin = k.shape[0] // 2 + 2
    size = patch + 2 * margin
    h, w = img.shape
    if h < size or w < size:
        raise ValueError(f"image {h}x{w} smaller than patch {size}")
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    crop = img[y : y + size, x : x + size].astype(np.float32) / 255.0
    # Dihedral augmentation: valid for blur (the kernel is random anyway).
    crop = np.rot90(crop, int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = np.ascontiguousarray(crop)
    blurred = simulate_motion_blur(
        crop, k, rng, log_range=sampler.log_range, noise=sampler.noise(rng)
    )
    sl = slice(margin, margin + patch)
    return blurred[sl, sl], crop[sl, sl]


def sample_batch(
    images: list[U8Array], rng: np.random.Generator, batch: int, patch: int, sampler: BlurSampler
) -> tuple[F32Array, F32Array]:
    """[N,1,patch,patch] blurred inputs and sharp targets."""
    pairs = [sample_pair(images, rng, patch, sampler) for _ in range(batch)]
    x = np.stack([p[0] for p in pairs])[:, None]
    y = np.stack([p[1] for p in pairs])[:, None]
    return x.astype(np.float32), y.astype(np.float32)


@dataclass(frozen=True)
class EvalItem:
    name: str  # image path
    strength: str
    kernel: NDArray[np.float64]
    sharp: F32Array
    blurred: F32Array


def make_eval_set(
    images: list[U8Array],
    names: list[str],
    seed: int = 1234,
    crop: int | None = None,
    strengths: tuple[tuple[str, float, float], ...] = EVAL_STRENGTHS,
    photons: float | None = 10000.0,
    log_range: float = 3.0,
) -> list[EvalItem]:
    """A fixed, seeded evaluation set: every image × every blur strength.

    Kernels alternate linear / trajectory; ``crop`` (a multiple of 4) takes a centred square, else
    the whole image. Noise: ``photons`` quanta per pixel at full exposure (None = none).
    """
    rng = np.random.default_rng(seed)
    out: list[EvalItem] = []
    for i, (img, name) in enumerate(zip(images, names, strict=True)):
        a = img.astype(np.float32) / 255.0
        if crop is not None:
            h, w = a.shape
            c = min(crop, h, w)
            y, x = (h - c) // 2, (w - c) // 2
            a = a[y : y + c, x : x + c]
        for j, (sname, lo, hi) in enumerate(strengths):
            length = float(rng.uniform(lo, hi))
            if (i + j) % 2 == 0:
                k = linear_kernel(length, float(rng.uniform(0.0, 180.0)))
            else:
                k = trajectory_kernel(length, rng)
            noise = NoiseSpec(photons=photons, read_noise=0.0) if photons else None
            b = simulate_motion_blur(a, k, rng, log_range=log_range, noise=noise)
            out.append(EvalItem(name=name, strength=sname, kernel=k, sharp=a, blurred=b))
    return out
