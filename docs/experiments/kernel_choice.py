"""Curved motion: can the kernel be chosen among path candidates? (docs/models.md, 2026-12-03)

An experiment, not a part of the node. Three steps, each on MHH *training* patients only:

    # 1. what the choice is worth when the truth chooses (63 candidates), and hand-made criteria
    PYTHONPATH=. python docs/experiments/kernel_choice.py oracle
    PYTHONPATH=. python docs/experiments/kernel_choice.py criteria
    # 2. a bank of (sharp, blurred, 21 candidate restorations) crops, training / validation patients
    PYTHONPATH=. python docs/experiments/kernel_choice.py bank --out runs/kernel-choice
    # 3. a small dilated CNN that scores the candidates; validation figures every 1,250 steps
    PYTHONPATH=. python docs/experiments/kernel_choice.py train --bank runs/kernel-choice --steps 2000 --pair

Needs the train extra (torch) for step 3 and ``../shared/data/cxr-radiographs-mhh``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import rotate, zoom
from skimage.metrics import peak_signal_noise_ratio

from models.blur import (
    NoiseSpec,
    _rasterise,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.deblur import MotionEstimate, MotionPolicy, assess_motion
from models.deblur_data import load_gray, split_by_patient
from models.deconvolve import wiener
from models.evaluate import _crop

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"
POLICY = MotionPolicy()
BENDS = (-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3)
RAMPS = (-1.5, 0.0, 1.5)
STRAIGHT = BENDS.index(0.0) * len(RAMPS) + RAMPS.index(0.0)
CROP, KEEP = 384, 256


def path_kernel(length: float, angle_deg: float, bend: float, ramp: float) -> np.ndarray:
    """A circular arc (sagitta / length ≈ ``bend``) along ``angle_deg``, walked at a speed that
    grows as exp(``ramp`` · t) over the exposure (0: constant), as a normalised PSF."""
    n = max(2, math.ceil(length * 8))
    t = (np.arange(n) + 0.5) / n
    s = (np.exp(ramp * t) - 1) / (np.exp(ramp) - 1) if abs(ramp) > 1e-9 else t
    if abs(bend) < 1e-9:
        x, y = (s - 0.5) * length, np.zeros_like(s)
    else:
        phi = 8 * bend  # total turn; sagitta / length ≈ phi / 8 for small turns
        r = length / phi
        a = (s - 0.5) * phi
        x, y = r * np.sin(a), r * (1 - np.cos(a))
    c, si = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return _rasterise(np.stack([x * c - y * si, -(x * si + y * c)], axis=1))


def restore(blurred: np.ndarray, psf: np.ndarray) -> np.ndarray:
    return wiener(blurred, psf, POLICY.balance, POLICY.power, POLICY.log_range)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(b, a, data_range=1.0))


def centre_crop(rel: str, c: int = CROP) -> np.ndarray:
    return _crop(load_gray(DATA / rel).astype(np.float32) / 255.0, c)


def candidates(blurred: np.ndarray, est: MotionEstimate, factors: tuple[float, ...] = (1.0,)):
    for lf in factors:
        for bend in BENDS:
            for ramp in RAMPS:
                psf = path_kernel(est.length_px * lf, est.angle_deg, bend, ramp)
                yield (bend, ramp, lf), restore(blurred, psf)


def oracle(_: argparse.Namespace) -> None:
    train = split_by_patient(DATA).train
    rng = np.random.default_rng(5)
    rows: dict[tuple[str, float], list[tuple[float, float, float]]] = {}
    for rel in train[:: max(1, len(train) // 14)][:14]:
        g = centre_crop(rel)
        for kind, length in (("curved", 6.0), ("curved", 10.0), ("straight", 10.0)):
            k = (
                trajectory_kernel(length, rng)
                if kind == "curved"
                else linear_kernel(length, float(rng.uniform(0, 180)))
            )
            b = simulate_motion_blur(g, k, rng, noise=NoiseSpec(1e4))
            a = assess_motion(b, 0.6, POLICY)
            if not a.blurred:
                continue
            pb = psnr(b, g)
            best = max(psnr(r, g) for _, r in candidates(b, a.estimate, (0.85, 1.0, 1.15)))
            straight = psnr(restore(b, a.estimate.kernel()), g)
            true = psnr(restore(b, k), g)
            rows.setdefault((kind, length), []).append((straight - pb, best - pb, true - pb))
    for key, r in rows.items():
        print(key, len(r), "straight / best candidate / true kernel", np.mean(r, axis=0).round(2))


def criteria(_: argparse.Namespace) -> None:
    train = split_by_patient(DATA).train
    rng = np.random.default_rng(7)
    names = ("tv", "l1l2", "overshoot", "negative")
    res: dict[str, list[float]] = {n: [] for n in (*names, "straight", "best", "true")}
    for rel in train[3 :: max(1, len(train) // 12)][:12]:
        g = centre_crop(rel)
        for length in (6.0, 10.0):
            k = trajectory_kernel(length, rng)
            b = simulate_motion_blur(g, k, rng, noise=NoiseSpec(1e4))
            a = assess_motion(b, 0.6, POLICY)
            if not a.blurred:
                continue
            pb = psnr(b, g)
            eb = to_exposure(b.astype(np.float64), POLICY.log_range)
            scored = []
            for _, r in candidates(b, a.estimate):
                w = to_exposure(np.clip(r, 1e-6, 1).astype(np.float64), POLICY.log_range)
                gy, gx = np.gradient(r)
                gm = np.hypot(gx, gy)[8:-8, 8:-8]
                m = {
                    "tv": float(gm.mean()),
                    "l1l2": float(gm.sum() / math.sqrt((gm**2).sum())),
                    "overshoot": float(np.mean((w < eb.min()) | (w > eb.max()))),
                    "negative": float(np.clip(eb.min() - w, 0, None).mean()),
                }
                scored.append((psnr(r, g) - pb, m))
            res["straight"].append(scored[STRAIGHT][0])
            res["best"].append(max(s for s, _ in scored))
            res["true"].append(psnr(restore(b, k), g) - pb)
            for n in names:
                res[n].append(min(scored, key=lambda s, n=n: s[1][n])[0])
    print({k: round(float(np.mean(v)), 3) for k, v in res.items()})


def _patient_of() -> dict[str, str]:
    with (DATA / "metadata.csv").open(newline="", encoding="utf-8") as f:
        return {r["path"]: r["patient_id"] for r in csv.DictReader(f)}


def is_validation(patient: str) -> bool:
    return int(hashlib.sha1(patient.encode()).hexdigest(), 16) % 6 == 0


def _bank_cases(job: tuple[str, int, int, bool]) -> list[dict[str, Any]]:
    rel, seed, n, turn = job
    rng = np.random.default_rng(seed)
    full = load_gray(DATA / rel).astype(np.float32) / 255.0
    out = []
    for _ in range(n):
        up = int(rng.choice([1, 1, 2]))
        g0 = zoom(full, up, order=3) if up > 1 else full
        y = int(rng.integers(0, g0.shape[0] - CROP + 1))
        x = int(rng.integers(0, g0.shape[1] - CROP + 1))
        g = np.clip(g0[y : y + CROP, x : x + CROP], 0, 1)
        length = float(rng.uniform(5, 14) * (1.0 if up == 1 else 1.6))
        if rng.random() < 0.65:
            k, kind = trajectory_kernel(length, rng, curvature=float(rng.uniform(0.3, 1))), "curved"
        else:
            k, kind = linear_kernel(length, float(rng.uniform(0, 180))), "straight"
        photons = float(np.exp(rng.uniform(np.log(3e3), np.log(5e4))))
        b = simulate_motion_blur(g, k, rng, noise=NoiseSpec(photons))
        a = assess_motion(b, 0.6 / up, POLICY)
        if not a.blurred:
            continue
        o = (CROP - KEEP) // 2
        c = np.stack([r for _, r in candidates(b, a.estimate)])
        if turn:  # the estimated motion along x: one orientation to learn

            def along_x(im: np.ndarray, angle: float = a.estimate.angle_deg) -> np.ndarray:
                return rotate(im, -angle, axes=(-1, -2), reshape=False, order=1, mode="reflect")

            g, b, c = along_x(g), along_x(b), along_x(c)
        cut = (slice(o, o + KEEP), slice(o, o + KEEP))
        out.append(
            {
                "sharp": g[cut].astype(np.float16),
                "blurred": b[cut].astype(np.float16),
                "cands": c[(slice(None), *cut)].astype(np.float16),
                "kind": kind,
            }
        )
    return out


def bank(args: argparse.Namespace) -> None:
    patient = _patient_of()
    args.out.mkdir(parents=True, exist_ok=True)
    for which, n in (("train", 5), ("val", 12)):
        rels = [
            r for r in split_by_patient(DATA).train if is_validation(patient[r]) == (which == "val")
        ]
        jobs = [(r, 1000 * (which == "val") + i, n, args.turn) for i, r in enumerate(rels)]
        cases: list[dict[str, Any]] = []
        with Pool(2) as p:
            for r in p.imap_unordered(_bank_cases, jobs):
                cases.extend(r)
        np.savez(
            args.out / f"bank_{which}.npz",
            **{k: np.stack([c[k] for c in cases]) for k in ("sharp", "blurred", "cands")},
            kind=np.array([c["kind"] for c in cases]),
        )
        print(which, len(rels), "images", len(cases), "cases the gate flags")


def train(args: argparse.Namespace) -> None:
    import torch
    from torch import nn

    torch.set_num_threads(2)

    class Chooser(nn.Module):
        def __init__(self, ch: int = 24) -> None:
            super().__init__()
            layers: list[nn.Module] = [nn.Conv2d(3, ch, 3, padding=1), nn.ReLU()]
            for d in (1, 2, 4, 8, 16):
                layers += [nn.Conv2d(ch, ch, 3, padding=d, dilation=d), nn.ReLU()]
            self.net = nn.Sequential(*layers, nn.Conv2d(ch, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    def inputs(cands: np.ndarray, blurred: np.ndarray, straight: int) -> torch.Tensor:
        x = np.stack(
            [
                (cands - blurred) * 10,
                (cands - cands[straight]) * 10,
                np.broadcast_to(blurred - 0.5, cands.shape),
            ],
            axis=1,
        )
        return torch.from_numpy(x.astype(np.float32)).to(memory_format=torch.channels_last)

    def local_psnr(cands: np.ndarray, sharp: np.ndarray) -> np.ndarray:
        mse = ((cands.astype(np.float64) - sharp) ** 2).mean(axis=(1, 2))
        return -10 * np.log10(np.maximum(mse, 1e-12))

    tr, va = (dict(np.load(args.bank / f"bank_{w}.npz")) for w in ("train", "val"))
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = Chooser().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=args.steps, pct_start=0.05)
    p, m, k_per_case = args.crop, 16, 6
    others = [j for j in range(len(BENDS) * len(RAMPS)) if j != STRAIGHT]
    for step in range(1, args.steps + 1):
        xs, ts = [], []
        for _ in range(args.batch):
            i = int(rng.integers(len(tr["sharp"])))
            y, x = rng.integers(0, KEEP - p + 1, size=2)
            turn = 2 * int(rng.integers(2)) if args.turned else int(rng.integers(4))
            flip = bool(rng.integers(2))
            pick = np.concatenate([[STRAIGHT], rng.choice(others, k_per_case - 1, replace=False)])

            def cut(a: np.ndarray, y: int = y, x: int = x, turn: int = turn, flip: bool = flip):
                a = np.rot90(a[..., y : y + p, x : x + p].astype(np.float32), turn, axes=(-2, -1))
                return (a[..., ::-1] if flip else a).copy()

            c, b, s = cut(tr["cands"][i][pick]), cut(tr["blurred"][i]), cut(tr["sharp"][i])
            xs.append(inputs(c, b, 0))
            ts.append(local_psnr(c[:, m:-m, m:-m], s[m:-m, m:-m]))
        t = torch.from_numpy(np.stack(ts)).float()
        sc = model(torch.cat(xs))[:, 0, m:-m, m:-m].mean(dim=(1, 2)).view(args.batch, -1)
        if args.pair:  # each candidate against the straight one
            loss = (((sc[:, 1:] - sc[:, :1]) - (t[:, 1:] - t[:, :1])) ** 2).mean()
        else:  # each candidate against the mean of the draw
            d = (sc - sc.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
            loss = (d**2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 1250 == 0 or step == args.steps:
            model.eval()
            rows = []
            with torch.no_grad():
                for i in range(len(va["sharp"])):
                    c, b = va["cands"][i].astype(np.float32), va["blurred"][i].astype(np.float32)
                    s = va["sharp"][i].astype(np.float32)
                    score = model(inputs(c, b, STRAIGHT))[:, 0, m:-m, m:-m].mean(dim=(1, 2))
                    ps = local_psnr(c[:, m:-m, m:-m], s[m:-m, m:-m])
                    alt = max(others, key=lambda j, sc=score: float(sc[j]))
                    chosen = int(score.argmax())
                    rows.append((va["kind"][i], ps[STRAIGHT], ps[chosen], ps.max(), ps[alt]))
            model.train()
            for kind in ("curved", "straight"):
                r = np.array([x[1:] for x in rows if x[0] == kind])
                print(
                    step,
                    kind,
                    len(r),
                    f"chosen - straight {np.mean(r[:, 1] - r[:, 0]):+.3f}",
                    f"best - straight {np.mean(r[:, 2] - r[:, 0]):+.3f}",
                    f"top non-straight - straight {np.mean(r[:, 3] - r[:, 0]):+.3f}",
                    f"({time.strftime('%H:%M')})",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("oracle").set_defaults(fn=oracle)
    sub.add_parser("criteria").set_defaults(fn=criteria)
    b = sub.add_parser("bank")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--turn", action="store_true", help="turn crops so the motion runs along x")
    b.set_defaults(fn=bank)
    t = sub.add_parser("train")
    t.add_argument("--bank", type=Path, required=True)
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--crop", type=int, default=192)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--pair", action="store_true")
    t.add_argument("--turned", action="store_true", help="a --turn bank: flips only, no 90° turns")
    t.set_defaults(fn=train)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
