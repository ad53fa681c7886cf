"""Choosing the Wiener regulariser per frame by the discrepancy principle: a first look.

The whole-frame law search (docs/models.md, after the fifteenth round) found that no law of the
measured noise and the motion's length gains much over the node's λ, while the best λ per frame
would gain +0.45 dB. The discrepancy principle (Morozov) picks, per frame, the λ whose residual
``k * ŝ − b`` has the variance the noise has: where the estimated kernel misses the blur (a
curved path under a straight kernel) the residual is larger and λ comes out larger, which is
what the noise-only λ could not do.

Here, on *fitting* images as whole frames (``models.tune_balance.whole_scenes``, the thirteenth
round's cases), the node's estimate and gate, the Wiener filter alone (reflect-padded as
``models.deconvolve.wiener_exposure``) at every λ of ``models.tune_balance.GRID``: each λ's
PSNR gain and the residual's variance over the frame (interior, not the padding). The noise
variance σ² = mean exposure / N̂ with N̂ measured where it is read; the discrepancy λ for
τ ∈ {0.8, 1, 1.25, 1.6} is where the residual variance crosses τ σ² (log-linear between grid
values, kept within 0.01–0.4), its gain interpolated as ``law-summary`` does. Nothing here is
tuned or adopted.

Run: ``PYTHONPATH=. python docs/experiments/discrepancy_balance.py --images 10 --part 0/2``
(and 1/2), then ``--summary FILE…``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from models.blur import from_exposure, to_exposure
from models.deblur import MotionPolicy, assess_motion, wiener_balance
from models.deblur_data import load_gray
from models.deconvolve import pad_for_fft, psf_to_otf
from models.noise_level import quanta_per_pixel
from models.tune_balance import GRID, gain_at, image_lists, whole_frame_cases

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"
TAUS = (0.8, 1.0, 1.25, 1.6)
BOUNDS = (0.01, 0.4)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-20)))


def wiener_family(e: np.ndarray, psf: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(restored exposure, residual variance over the frame) for every λ of GRID (power 1)."""
    ep, pad = pad_for_fft(e, psf)
    h, w = ep.shape
    k = psf_to_otf(psf, (h, w))
    mean = float(ep.mean())
    spec = np.fft.rfft2(ep - mean)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    lap = np.sqrt((2 * np.pi) ** 2 * (fx**2 + fy**2))
    out = []
    inner = (slice(pad, pad + e.shape[0]), slice(pad, pad + e.shape[1]))
    for lam in GRID:
        ws = np.conj(k) * spec / (np.abs(k) ** 2 + lam * lap)
        restored = np.fft.irfft2(ws, s=(h, w))[inner] + mean
        resid = np.fft.irfft2(spec - k * ws, s=(h, w))[inner]
        out.append((restored, float(np.var(resid))))
    return out


def discrepancy_lambda(residuals: list[float], target: float) -> float:
    """The λ whose residual variance is ``target`` (log-linear between GRID), within BOUNDS."""
    r = np.log(np.maximum(np.array(residuals), 1e-30))
    lam = float(np.exp(np.interp(math.log(max(target, 1e-30)), r, np.log(np.array(GRID)))))
    return min(max(lam, BOUNDS[0]), BOUNDS[1])


def run(names: list[str], out: Path) -> None:
    policy = MotionPolicy()
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for name in names:
        rng = np.random.default_rng(zlib.crc32(f"discrepancy/{name}".encode()))
        base = load_gray(DATA / name).astype(np.float32) / 255.0
        for c in whole_frame_cases(base, rng):
            a = assess_motion(c.blurred, c.spacing_mm, policy)
            if not a.blurred:
                continue
            e = to_exposure(c.blurred.astype(np.float64), 3.0)
            p0 = psnr(c.sharp, c.blurred)
            row: dict[str, Any] = {
                "image": name,
                "scene": c.scene,
                "kind": c.kind,
                "px": c.px,
                "quanta": c.quanta,
                "estimated_px": a.estimate.length_px,
                "lambda_node": wiener_balance(e, policy)[0],
            }
            nq = quanta_per_pixel(e, where_read=True)
            row["sigma2"] = float(np.mean(e)) / nq if math.isfinite(nq) else 0.0
            fam = wiener_family(e, a.estimate.kernel())
            for lam, (restored, res) in zip(GRID, fam, strict=True):
                o = np.clip(from_exposure(restored, 3.0), 0.0, 1.0)
                row[f"gain_{lam}"] = psnr(c.sharp, o) - p0
                row[f"resid_{lam}"] = res
            rows.append(row)
        print(f"{name}: {len(rows)} flagged cases, {time.time() - t0:.0f} s", flush=True)
        out.write_text(json.dumps(rows))


def summary(rows: list[dict[str, Any]]) -> None:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['scene']} {r['kind']} {r['quanta']}", []).append(r)
    groups["all"] = rows
    head = "group: n | node law | " + " | ".join(f"τ {t:g}" for t in TAUS) + " | best grid λ"
    print(head)
    for key, rs in sorted(groups.items()):
        node = np.mean([gain_at(r, r["lambda_node"]) for r in rs])
        disc = [
            np.mean(
                [
                    gain_at(r, discrepancy_lambda([r[f"resid_{g}"] for g in GRID], t * r["sigma2"]))
                    for r in rs
                ]
            )
            for t in TAUS
        ]
        best = np.mean([max(r[f"gain_{g}"] for g in GRID) for r in rs])
        print(
            f"{key}: {len(rs)} | {node:+.3f} | "
            + " | ".join(f"{d:+.3f}" for d in disc)
            + f" | {best:+.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--part", default="0/1")
    ap.add_argument("--out", type=Path, default=Path("runs/discrepancy.json"))
    ap.add_argument("--summary", nargs="*", type=Path)
    args = ap.parse_args()
    if args.summary:
        rows: list[dict[str, Any]] = []
        for f in args.summary:
            rows += json.loads(f.read_text())
        summary(rows)
        return
    i, k = (int(v) for v in args.part.split("/"))
    fit, _ = image_lists(DATA)
    run(fit[: args.images][i::k], args.out)


if __name__ == "__main__":
    main()
