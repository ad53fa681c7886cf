"""Train the learned kernel magnitude (:class:`models.kernel_magnitude_net.KernelMagnitudeNet`).

Two commands:

- ``bank``: simulated cases from the radiographs of ``../shared/data`` — MHH training patients
  (``cxr-radiographs-mhh``, 256–384 px crops and whole 640 px frames, 3–14 px of motion) and
  Kermany's official *train* split (``kermany-full``, whole 224 px frames, 3–10 px) — curved
  (70 %) and straight paths, noise none / 10⁵ / 3·10⁴ / 10⁴ / 3·10³ quanta per pixel; input the
  blurred frame's :func:`models.kernel_shape.spectrum_input`, target the kernel's centred |K|.
  Held out of the bank: the patients of ``models.tune_balance``'s fitting and validation images
  and of :func:`kermany_validation` (the images the shape step is validated on), and every test
  split.
- ``train``: Adam, cosine schedule, batch 32, the spectrum's point symmetry as augmentation; a
  checkpoint (weights and optimiser) every 200 steps, resumed when it exists.

``python -m models.train_kernel_magnitude bank --out runs/kmag-bank.npz`` then
``python -m models.train_kernel_magnitude train --bank runs/kmag-bank.npz --out runs/kmag.pt``,
then ``python -m models.kernel_magnitude_net --checkpoint runs/kmag.pt --out FOLDER``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from models.blur import (
    NoiseSpec,
    linear_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.deblur_data import load_gray, split_by_patient
from models.kernel_magnitude_net import KernelMagnitudeNet
from models.kernel_shape import magnitude_of, spectrum_input
from models.tune_balance import image_lists

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
NOISE: tuple[float | None, ...] = (None, 1e5, 3e4, 1e4, 3e3)
LOG_RANGE = 3.0
#: Every KERMANY_VALIDATION_STEP-th Kermany training image (from the offset) is a validation image.
KERMANY_VALIDATION_STEP = 50
KERMANY_VALIDATION_OFFSET = 25


def _kermany_train(data: Path) -> list[tuple[str, str]]:
    with (data / "labels.csv").open(newline="", encoding="utf-8") as f:
        return [(r["path"], r["patient_id"]) for r in csv.DictReader(f) if r["split"] == "train"]


def kermany_validation(data: Path) -> list[str]:
    """Kermany training images kept for validating the shape step (their patients never banked)."""
    rows = _kermany_train(data)
    return [p for p, _ in rows[KERMANY_VALIDATION_OFFSET::KERMANY_VALIDATION_STEP]]


def bank_sources(shared: Path) -> tuple[list[Path], list[Path]]:
    """(MHH images, Kermany images) the bank may use."""
    mhh = shared / "cxr-radiographs-mhh"
    fit, validation = image_lists(mhh)
    with (mhh / "metadata.csv").open(newline="", encoding="utf-8") as f:
        patient = {row["path"]: row["patient_id"] for row in csv.DictReader(f)}
    held = {patient[n] for n in fit + validation}
    mhh_names = [mhh / n for n in split_by_patient(mhh, 0.2, 0).train if patient[n] not in held]
    kermany = shared / "kermany-full"
    rows = _kermany_train(kermany)
    kept_apart = set(kermany_validation(kermany))
    held_k = {p for path, p in rows if path in kept_apart}
    k_names = [kermany / path for path, p in rows if p not in held_k]
    return mhh_names, k_names


def bank(shared: Path, samples: int, out: Path, seed: int = 11) -> None:
    mhh, kermany = bank_sources(shared)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    t0 = time.time()
    for i in range(samples):
        if i % 2 == 0:
            img = load_gray(mhh[int(rng.integers(len(mhh)))]).astype(np.float32) / 255.0
            if rng.random() < 0.7:
                c = int(rng.integers(256, 385))
                y0 = int(rng.integers(0, img.shape[0] - c + 1))
                x0 = int(rng.integers(0, img.shape[1] - c + 1))
                img = img[y0 : y0 + c, x0 : x0 + c]
            length = float(rng.uniform(3.0, 14.0))
        else:
            img = load_gray(kermany[int(rng.integers(len(kermany)))]).astype(np.float32) / 255.0
            length = float(rng.uniform(3.0, 10.0))
        k = (
            trajectory_kernel(length, rng)
            if rng.random() < 0.7
            else linear_kernel(length, float(rng.uniform(0, 180)))
        )
        q = NOISE[int(rng.integers(len(NOISE)))]
        b = simulate_motion_blur(img, k, rng, noise=NoiseSpec(q))
        xs.append(spectrum_input(to_exposure(b.astype(np.float64), LOG_RANGE)))
        ys.append(np.fft.fftshift(magnitude_of(k)).astype(np.float32))
        if i % 1000 == 0:
            print(f"bank {i}/{samples} {time.time() - t0:.0f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, x=np.stack(xs), y=np.stack(ys))


def holdout_error(net: KernelMagnitudeNet, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean relative L2 error of the predicted magnitudes on held-out bank cases."""
    with torch.no_grad():
        p = net(x)
        err = torch.linalg.vector_norm(p - y, dim=(1, 2, 3)) / torch.linalg.vector_norm(
            y, dim=(1, 2, 3)
        )
    return float(err.mean())


def train(bank_file: Path, out: Path, steps: int, seed: int = 0) -> dict[str, float]:
    d = np.load(bank_file)
    x = torch.from_numpy(d["x"])[:, None]
    y = torch.from_numpy(d["y"])[:, None]
    nval = len(x) // 10
    torch.manual_seed(seed)
    net = KernelMagnitudeNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    state_file = out.with_suffix(".state.pt")
    start = 0
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = int(state["step"]) + 1
        print(f"resumed at step {start}", flush=True)
    rel = float("nan")
    t0 = time.time()
    for step in range(start, steps):
        idx = torch.randint(nval, len(x), (32,))
        xb, yb = x[idx], y[idx]
        if step % 2:  # the spectrum is point-symmetric: a flip is a valid other case
            xb, yb = xb.flip(-1), yb.flip(-1)
        loss = torch.mean((net(xb) - yb) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == steps - 1:
            rel = holdout_error(net, x[:nval], y[:nval])
            print(
                f"{step} loss {loss.item():.4f} val rel {rel:.3f} {time.time() - t0:.0f} s",
                flush=True,
            )
            torch.save(net.state_dict(), out)
            torch.save(
                {
                    "net": net.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "step": step,
                },
                state_file,
            )
    if start >= steps:  # finished before: the checkpoint's own figure
        rel = holdout_error(net, x[:nval], y[:nval])
    return {"bank_holdout_magnitude_error": round(rel, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bank")
    b.add_argument("--shared", type=Path, default=SHARED)
    b.add_argument("--samples", type=int, default=12000)
    b.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("--bank", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int, default=3000)
    args = ap.parse_args(argv)
    if args.cmd == "bank":
        bank(args.shared, args.samples, args.out)
    else:
        print(json.dumps(train(args.bank, args.out, args.steps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
