"""The Wiener regulariser by generalized cross-validation (GCV), against the noise-following λ.

GCV (Golub, Heath & Wahba 1979; for image restoration Reeves & Mersereau 1990) picks the λ
that best predicts each frequency of the blurred image from the others, with no noise model:
GCV(λ) = Σ|R_λ B|² / (Σ R_λ)², R_λ = λP / (|K|² + λP). It sees whatever the kernel cannot
explain — noise, and energy where the estimated kernel has zeros the true one does not (a curved
path taken for a straight one) — so it regularises a doubtful kernel more, which the fixed power
law of the noise alone cannot.

Fitting images of ``models.tune_balance`` only (never the test split), open scenes, its case
design; for each flagged case the gain with the node's λ and with c · λ_GCV for several c.

Run: ``PYTHONPATH=. python docs/experiments/gcv_balance.py --part 0/2 --out runs/gcv-0.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.blur import (
    NoiseSpec,
    from_exposure,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.deblur import MotionPolicy, assess_motion, wiener_balance
from models.deblur_data import load_gray
from models.deconvolve import pad_for_fft, psf_to_otf, wiener_exposure
from models.tune_balance import LENGTHS, NOISE, image_lists, scenes

F64 = NDArray[np.float64]
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"
FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
LAMBDAS = np.logspace(-3.5, 0.5, 41)


def gcv_balance(exposure: F64, psf: F64) -> float:
    """The λ (penalty λ·|2πf|) that minimises GCV on the padded exposure's spectrum."""
    ep, _ = pad_for_fft(exposure, psf)
    h, w = ep.shape
    b2 = np.abs(np.fft.rfft2(ep - ep.mean())) ** 2
    k2 = np.abs(psf_to_otf(psf, (h, w))) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    p = 2 * np.pi * np.sqrt(fx**2 + fy**2)
    wt = np.full(b2.shape, 2.0)
    wt[:, 0] = 1.0
    if w % 2 == 0:
        wt[:, -1] = 1.0
    best, best_v = float(LAMBDAS[0]), np.inf
    for lam in LAMBDAS:
        r = lam * p / (k2 + lam * p)
        v = float(np.sum(wt * r**2 * b2) / np.sum(wt * r) ** 2)
        if v < best_v:
            best, best_v = float(lam), v
    return best


def psnr(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="0/1")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--validation", action="store_true", help="the validation images instead")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    i, k = (int(v) for v in args.part.split("/"))
    fit, val = image_lists(DATA)
    names = (val if args.validation else fit)[: args.images][i::k]
    policy = MotionPolicy()
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for name in names:
        rng = np.random.default_rng(zlib.crc32(f"gcv/{name}/{args.validation}".encode()))
        base = load_gray(DATA / name).astype(np.float32) / 255.0
        for scene, spacing, sharp in scenes(base, rng, collimated=False):
            for kind in ("straight", "curved"):
                for px in LENGTHS[scene.split("/")[0]]:
                    kern = (
                        linear_kernel(px, float(rng.uniform(0.0, 180.0)))
                        if kind == "straight"
                        else trajectory_kernel(px, rng)
                    )
                    for q in NOISE:
                        b = simulate_motion_blur(sharp, kern, rng, noise=NoiseSpec(q))
                        a = assess_motion(b, spacing, policy)
                        if not a.blurred:
                            continue
                        e = to_exposure(b.astype(np.float64), policy.log_range)
                        psf = a.estimate.kernel()
                        lam_noise, _ = wiener_balance(e, policy, a.estimate.angle_deg)
                        lam_gcv = gcv_balance(e, psf)
                        pb = psnr(sharp, b)
                        row: dict[str, Any] = {
                            "image": name,
                            "scene": scene,
                            "kind": kind,
                            "px": px,
                            "q": q,
                            "lam_noise": lam_noise,
                            "lam_gcv": lam_gcv,
                        }
                        for label, lam in [("noise", lam_noise)] + [
                            (f"gcv_{c:g}", c * lam_gcv) for c in FACTORS
                        ]:
                            w = wiener_exposure(e, psf, lam, policy.power)
                            o = np.clip(from_exposure(w, policy.log_range), 0, 1)
                            row[label] = psnr(sharp, o) - pb
                        rows.append(row)
        print(f"{name}: {len(rows)} rows, {time.time() - t0:.0f} s", flush=True)
        args.out.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
