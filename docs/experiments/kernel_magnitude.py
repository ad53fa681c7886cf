"""What does a curved path's kernel need to be right in: its magnitude, its phase, or both?

An oracle experiment on MHH *training* images (the fitting images of ``models.tune_balance``;
never the test split): each case is blurred by a random curved (or straight) path, the node's
gate and regulariser decide as in the node, and the Wiener filter is run with transfer functions
that keep some of the truth and drop the rest:

* ``straight``: the node's straight estimate (what ships);
* ``true``: the true kernel;
* ``mirrored``: the true kernel point-reflected, k(-x) (what the power spectrum cannot tell apart);
* ``magnitude``: |K| of the true kernel with zero phase;
* ``magnitude_sign``: |K| of the true kernel with the sign of the straight estimate's (real) K.

Run: ``PYTHONPATH=. python docs/experiments/kernel_magnitude.py --data ../shared/data/cxr-radiographs-mhh
--images 6 --out runs/kernel-magnitude.json``. Prints the mean PSNR gain per group.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections import defaultdict
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
from models.deconvolve import pad_for_fft, psf_to_otf
from models.tune_balance import LENGTHS, image_lists, scenes

C128 = NDArray[np.complex128]
F64 = NDArray[np.float64]


def penalty(h: int, w: int, balance: float) -> F64:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    out: F64 = balance * np.sqrt((2 * np.pi) ** 2 * (fx**2 + fy**2))
    return out


def wiener_otf(e: F64, k: C128 | F64, pad: int, ep: F64, balance: float) -> F64:
    h, w = ep.shape
    mean = float(ep.mean())
    spec = np.fft.rfft2(ep - mean)
    out = np.fft.irfft2(np.conj(k) * spec / (np.abs(k) ** 2 + penalty(h, w, balance)), s=(h, w))
    res: F64 = out[pad : pad + e.shape[0], pad : pad + e.shape[1]] + mean
    return res


def psnr(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--images", type=int, default=6)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    fit, _ = image_lists(args.data)
    policy = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in fit[: args.images]:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        base = load_gray(args.data / name).astype(np.float32) / 255.0
        for scene, spacing, sharp in scenes(base, rng, collimated=False):
            for kind in ("straight", "curved"):
                for px in LENGTHS[scene.split("/")[0]]:
                    k = (
                        linear_kernel(px, float(rng.uniform(0, 180)))
                        if kind == "straight"
                        else trajectory_kernel(px, rng)
                    )
                    for q in (None, 1e4):
                        b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                        a = assess_motion(b, spacing, policy)
                        if not a.blurred:
                            continue
                        e = to_exposure(b.astype(np.float64), policy.log_range)
                        lam, _ = wiener_balance(e, policy, a.estimate.angle_deg)
                        ks = a.estimate.kernel()
                        ep, pad = pad_for_fft(e, np.ones((max(ks.shape[0], k.shape[0]),) * 2))
                        shape = ep.shape
                        kt = psf_to_otf(k, shape)
                        ko = psf_to_otf(ks, shape)
                        otfs: dict[str, C128 | F64] = {
                            "straight": ko,
                            "true": kt,
                            "mirrored": psf_to_otf(k[::-1, ::-1].copy(), shape),
                            "magnitude": np.abs(kt),
                            "magnitude_sign": np.abs(kt) * np.sign(ko.real + 1e-12),
                        }
                        base_psnr = psnr(sharp, b)
                        row: dict[str, Any] = {"scene": scene, "kind": kind, "px": px, "q": q}
                        for label, otf in otfs.items():
                            w = wiener_otf(e, otf, pad, ep, lam)
                            o = np.clip(from_exposure(w, policy.log_range), 0, 1)
                            row[label] = psnr(sharp, o) - base_psnr
                        rows.append(row)
        print(name, len(rows), flush=True)
    args.out.write_text(json.dumps(rows))
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[f"{r['scene'].split('/')[0]} {r['kind']} {r['px']:g}px q={r['q']}"].append(r)
    labels = ["straight", "true", "mirrored", "magnitude", "magnitude_sign"]
    print("group n " + " ".join(labels))
    for g, rs in sorted(groups.items()):
        print(g, len(rs), " ".join(f"{np.mean([r[x] for r in rs]):+.2f}" for x in labels))


if __name__ == "__main__":
    main()
