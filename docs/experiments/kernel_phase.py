"""A curved path's kernel from its magnitude: phase retrieval, and total variation for the mirror.

``kernel_magnitude.py`` showed that the magnitude |K| alone restores nothing (the phase is what a
curved path needs) and ``kernel_criteria_noiseless.py`` that total variation tells the true
kernel from its mirror image on every case. So: given |K| (here the *true* one on a small grid,
and a first blind estimate from the image's power spectrum), recover a kernel by Fienup's
hybrid input-output phase retrieval (non-negative, inside a disc of the straight estimate's
length), then keep it or its mirror image by the lower total variation of the restoration.

MHH *training* images only (the fitting images of ``models.tune_balance``), 0.6 mm/px crops.
Run: ``PYTHONPATH=. python docs/experiments/kernel_phase.py --images 8``.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np

from models.blur import (
    NoiseSpec,
    from_exposure,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.blur_estimate import welch_power
from models.deblur import MotionPolicy, assess_motion, wiener_balance
from models.deblur_data import load_gray
from models.deconvolve import wiener_exposure
from models.kernel_shape import GRID, magnitude_of
from models.kernel_shape import total_variation as tv
from models.tune_balance import image_lists, scenes

POLICY = MotionPolicy()
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"
N = GRID


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def retrieve(
    mag: np.ndarray,
    radius: float,
    rng: np.random.Generator,
    starts: int = 8,
    first: np.ndarray | None = None,
):
    """Fienup HIO (350 steps, β 0.9) then error reduction (50), from random starts (and
    ``first``, a kernel, as one more start); the start whose magnitude fits best wins."""
    yy, xx = np.mgrid[:N, :N]
    c = N // 2
    support = (yy - c) ** 2 + (xx - c) ** 2 <= radius**2
    best, best_err = None, np.inf
    inits = [rng.random((N, N)) * support for _ in range(starts)]
    if first is not None:
        x0 = np.zeros((N, N))
        h0, w0 = first.shape[0] // 2, first.shape[1] // 2
        x0[c - h0 : c - h0 + first.shape[0], c - w0 : c - w0 + first.shape[1]] = first
        inits.append(x0 * support + 1e-3 * support)
    for x in inits:
        for it in range(400):
            X = np.fft.fft2(x)
            xp = np.real(np.fft.ifft2(mag * np.exp(1j * np.angle(X))))
            ok = support & (xp >= 0)
            x = np.where(ok, xp, x - 0.9 * xp) if it < 350 else np.where(ok, xp, 0.0)
        err = float(np.linalg.norm(np.abs(np.fft.fft2(x)) - mag) / np.linalg.norm(mag))
        if err < best_err:
            best, best_err = x, err
    assert best is not None
    k = np.clip(best, 0, None)
    k /= k.sum()
    # centre on the centroid, odd square
    ys, xs = np.nonzero(k > 0)
    cy, cx = (k * yy).sum(), (k * xx).sum()
    half = int(np.ceil(max(np.abs(ys - cy).max(), np.abs(xs - cx).max()))) + 1
    sub = np.zeros((2 * half + 1, 2 * half + 1))
    from scipy.ndimage import shift

    moved = shift(k, (c - cy, c - cx), order=1)
    sub = moved[c - half : c + half + 1, c - half : c + half + 1]
    sub = np.clip(sub, 0, None)
    return sub / sub.sum(), best_err


def blind_magnitude(e: np.ndarray) -> np.ndarray:
    p = np.fft.ifftshift(welch_power(e - e.mean(), N))
    f = np.fft.fftfreq(N)
    r = np.hypot(f[:, None], f[None, :])
    ref = np.zeros_like(p)
    for ring in np.unique(np.round(r * N)):
        m = np.round(r * N) == ring
        ref[m] = np.percentile(p[m], 90)
    return np.sqrt(np.clip(p / np.maximum(ref, 1e-30), 0, 1))


def blind_magnitude_constrained(e: np.ndarray, angle_deg: float, length: float) -> np.ndarray:
    """Reference power across the motion (±15° of the perpendicular) per ring; the ratio's
    inverse transform (the kernel's autocorrelation) kept non-negative and within the disc of
    radius ``length + 2`` that a path of that length allows."""
    p = np.fft.ifftshift(welch_power(e - e.mean(), N))
    f = np.fft.fftfreq(N)
    r = np.hypot(f[:, None], f[None, :])
    phi = np.degrees(np.arctan2(-f[:, None], f[None, :])) % 180.0
    across = (angle_deg + 90.0) % 180.0
    d = np.abs((phi - across + 90.0) % 180.0 - 90.0)
    ring = np.round(r * N)
    ref = np.ones_like(p)
    for q in np.unique(ring):
        m = ring == q
        sel = m & (d <= 15.0)
        ref[m] = np.median(p[sel]) if sel.any() else np.percentile(p[m], 90)
    k2 = np.clip(p / np.maximum(ref, 1e-30), 0, 1.5)
    a = np.real(np.fft.ifft2(k2))
    yy, xx = np.mgrid[:N, :N]
    dist = np.hypot(np.minimum(yy, N - yy), np.minimum(xx, N - xx))
    a = np.where(dist <= length + 2, np.clip(a, 0, None), 0.0)
    a /= a[0, 0] if a[0, 0] > 0 else 1.0
    k2 = np.real(np.fft.fft2(a))
    k2 /= k2[0, 0]
    return np.sqrt(np.clip(k2, 0, None))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.0)
    args = ap.parse_args()
    fit, _ = image_lists(DATA)
    res: dict[str, list[float]] = {}
    for name in fit[: args.images]:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        base = load_gray(DATA / name).astype(np.float32) / 255.0
        for scene, spacing, sharp in scenes(base, rng, collimated=False):
            if not scene.startswith("0.6"):
                continue
            for px in (6.0, 10.0):
                k = trajectory_kernel(px, rng)
                b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(args.noise or None))
                a = assess_motion(b, spacing, POLICY)
                if not a.blurred:
                    continue
                e = to_exposure(b.astype(np.float64), POLICY.log_range)
                lam, _ = wiener_balance(e, POLICY, a.estimate.angle_deg)
                pb = psnr(sharp, b)

                def gain(
                    psf: np.ndarray,
                    e: np.ndarray = e,
                    lam: float = lam,
                    sharp: np.ndarray = sharp,
                    pb: float = pb,
                ) -> tuple[float, float]:
                    w = wiener_exposure(e, psf, lam, POLICY.power)
                    r = np.clip(from_exposure(w, POLICY.log_range), 0, 1)
                    return psnr(sharp, r) - pb, tv(r)

                radius = a.estimate.length_px / 2 + 2
                out = {"straight": gain(a.estimate.kernel())[0], "true": gain(k)[0]}
                mags = {
                    "pr_true_mag": magnitude_of(k),
                    "pr_blind": blind_magnitude(e),
                    "pr_blind2": blind_magnitude_constrained(
                        e, a.estimate.angle_deg, a.estimate.length_px
                    ),
                }
                for label, mag in mags.items():
                    res.setdefault(f"{px:g}px err_{label}", []).append(
                        float(
                            np.linalg.norm(mag - mags["pr_true_mag"])
                            / np.linalg.norm(mags["pr_true_mag"])
                        )
                    )
                    kr, _ = retrieve(mag, radius, rng)
                    g1, t1 = gain(kr)
                    g2, t2 = gain(kr[::-1, ::-1].copy())
                    out[label] = g1 if t1 <= t2 else g2
                    out[label + "_best_of_pair"] = max(g1, g2)
                for key, v in out.items():
                    res.setdefault(f"{px:g}px {key}", []).append(v)
        print(name, {k_: round(float(np.mean(v)), 2) for k_, v in res.items()}, flush=True)


if __name__ == "__main__":
    main()
