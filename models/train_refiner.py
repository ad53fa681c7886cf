"""Train the RRDBNet refiner of the blind Wiener correction (issue #15), resumably.

The node corrects motion blur blind: it estimates straight motion from the whole image's spectrum
and deconvolves in linear exposure (:mod:`models.deblur`). What that leaves (ringing along the
motion, amplified noise, the part of a curved path a straight kernel misses) is what this network
learns to remove. Its input has two channels, the blurred image and the node's own correction of
it; its output is a residual added to the correction (:class:`models.rrdbnet.RRDBNet` with
``in_channels=2``), so it starts as the node's correction and learns only what improves on it.

Data: a bank of crops (:mod:`models.refiner_bank`) made from ``cxr-radiographs-mhh`` training
patients only (the evaluation's test patients are never seen), each correction computed by the
node's functions on the whole image, only where the node corrects. One patient in ten of the bank
is kept apart as **validation** (never the evaluation's test split): every ``--val-every`` steps
the refiner's PSNR there, against the correction's, and ``best.pt`` keeps the best. Loss: L1 plus
L1 of image gradients (rewards restored edges). Random 90° rotations and flips.

Checkpoints: ``OUT/last.pt`` every ``--checkpoint-minutes`` and on SIGTERM (``--resume``)::

    python -m models.refiner_bank --data ../shared/data/cxr-radiographs-mhh --out runs/refiner-bank
    python -m models.train_refiner --bank runs/refiner-bank --out runs/refiner \\
        --steps 20000 --max-minutes 120        # --resume continues; --device cuda on a GPU
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from models.deblur import MotionPolicy
from models.refiner_bank import load_bank, read_description
from models.rrdbnet import CONFIGS, build_generator
from models.training import TrainingRun, add_run_arguments, save_atomic

F32 = NDArray[np.float32]


def is_validation(name: str) -> bool:
    """One training patient's image in ten (by a hash of its name) is kept for validation."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 == 0


def bank_names(bank: Path) -> list[str]:
    return sorted(
        {p.stem.rsplit("_x", 1)[0] for p in bank.glob("*_x*.npz") if ".tmp" not in p.name}
    )


def batch_from(
    crops: NDArray[np.float16], rng: np.random.Generator, size: int, patch: int
) -> tuple[F32, F32]:
    """Random patches, rotated/flipped alike in all channels: ([B,C-1,p,p] input, [B,1,p,p]
    target; the correction is the input's last channel)."""
    idx = rng.integers(0, len(crops), size)
    out = np.empty((size, crops.shape[1], patch, patch), np.float32)
    s = crops.shape[-1]
    for j, i in enumerate(idx):
        y, x = (int(v) for v in rng.integers(0, s - patch + 1, 2))
        a = crops[i, :, y : y + patch, x : x + patch].astype(np.float32)
        a = np.rot90(a, int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            a = a[:, :, ::-1]
        out[j] = a
    return out[:, :-1], out[:, -1:]


def gradient_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    dx = (out[..., :, 1:] - out[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (out[..., 1:, :] - out[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def per_crop_mse(
    model: torch.nn.Module, val: NDArray[np.float16], device: torch.device
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean squared error against the sharp image of the refiner's output and of the correction
    alone, per validation crop (floored at 1e-12)."""
    refined, alone = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(val), 8):
            a = torch.from_numpy(val[i : i + 8].astype(np.float32)).to(device)
            pred = model(a[:, :-1]).clamp(0, 1)
            for p, w, t in zip(pred, a[:, -2:-1], a[:, -1:], strict=True):
                refined.append(max(float(F.mse_loss(p, t)), 1e-12))
                alone.append(max(float(F.mse_loss(w, t)), 1e-12))
    model.train()
    return np.asarray(refined), np.asarray(alone)


def validation_psnr(
    model: torch.nn.Module, val: NDArray[np.float16], device: torch.device
) -> tuple[float, float]:
    """Mean PSNR (dB, range 1) of the refiner and of the correction alone on the validation crops."""
    refined, alone = per_crop_mse(model, val, device)
    return float(np.mean(-10 * np.log10(refined))), float(np.mean(-10 * np.log10(alone)))


def validation_gains(
    model: torch.nn.Module, val: NDArray[np.float16], device: torch.device
) -> dict[str, float]:
    """Per-crop PSNR gain (dB) of the refiner over the correction on every validation crop: its
    mean, median, and the share of crops it made worse (the twentieth round's rule)."""
    refined, alone = per_crop_mse(model, val, device)
    g = 10 * np.log10(alone / refined)
    return {
        "crops": len(g),
        "mean_gain_db": round(float(g.mean()), 4),
        "median_gain_db": round(float(np.median(g)), 4),
        "share_worse": round(float((g < 0).mean()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bank", type=Path, required=True, help="folder of models.refiner_bank")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", default="refiner", choices=sorted(CONFIGS))
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--w-grad", type=float, default=1.0, help="weight of the gradient L1")
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument(
        "--reload-every", type=int, default=0, help="re-read a bank still being built (steps)"
    )
    add_run_arguments(ap)
    ap.add_argument("--smoke", action="store_true", help="two tiny steps, to test the pipeline")
    ap.add_argument(
        "--validate",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="no training: the checkpoint's gain on every validation crop, to OUT/validation.json",
    )
    args = ap.parse_args(argv)
    if args.smoke:
        args.config, args.patch, args.batch, args.steps, args.val_every = "tiny", 64, 2, 2, 1

    run = TrainingRun.from_args(args)
    device, out, log = run.device, run.out, run.log

    def read_bank() -> tuple[list[str], NDArray[np.float16], NDArray[np.float16], int]:
        names = bank_names(args.bank)
        val_names = {n for n in names if is_validation(n)} or set(names[:1])
        train, _ = load_bank(args.bank, set(names) - val_names or val_names)
        val, _ = load_bank(args.bank, val_names)
        val = val[np.random.default_rng(1).permutation(len(val))[:64]]
        return names, train, val, len(val_names)

    if args.validate is not None:
        ck = torch.load(args.validate, map_location=device, weights_only=False)
        model = build_generator(str(ck["config"]), in_channels=int(ck["in_channels"])).to(device)
        model.load_state_dict(ck["state_dict"])
        names = bank_names(args.bank)
        every, _ = load_bank(args.bank, {n for n in names if is_validation(n)} or set(names[:1]))
        result = {"checkpoint": str(args.validate), "step": ck["step"]}
        result.update(validation_gains(model, every, device))
        (out / "validation.json").write_text(json.dumps(result, indent=1) + "\n")
        log(json.dumps(result))
        return 0

    names, train_crops, val_crops, n_val = read_bank()
    in_channels = int(train_crops.shape[1]) - 1
    model = build_generator(args.config, in_channels=in_channels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps, eta_min=args.lr / 20)
    rng = np.random.default_rng(args.seed)
    step, losses, best = 0, [], -math.inf
    if args.resume and (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step = int(ck["step"])
        run.resumed(float(ck["elapsed_s"]))
        best = float(ck.get("best_val_psnr", -math.inf))
        rng.bit_generator.state = ck["rng"]
        log(f"resumed at step {step}")
    log(
        f"refiner {args.config} ({in_channels} channels): {len(train_crops)} training crops, "
        f"{len(val_crops)} validation crops ({n_val} images); patch {args.patch}, "
        f"batch {args.batch}, device {device}"
    )

    bank = read_description(args.bank)
    refines = str(bank["refines"])
    factors = [float(f) for f in bank.get("variant_balance_factors", [])]  # type: ignore[attr-defined]
    scales = [float(v) for v in bank["scales_mm_per_px"]]  # type: ignore[attr-defined]

    def checkpoint(val_psnr: float | None = None) -> dict[str, object]:
        return {
            "state_dict": model.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "step": step,
            "elapsed_s": run.elapsed(),
            "rng": rng.bit_generator.state,
            "config": args.config,
            "in_channels": in_channels,
            "best_val_psnr": best,
            "val_psnr": val_psnr,
            "training": {
                "data": "cxr-radiographs-mhh training patients (models.refiner_bank), at "
                + "/".join(f"{v:g}" for v in scales)
                + " mm/px; validation: 1 image in 10 by name hash",
                "kernels": "0.5-6 mm through the pixel spacing, straight or curved, 10% none; "
                "only exposures the node corrects",
                "input": "blurred + "
                + "".join(f"the deconvolution at Wiener λ x{f:g} + " for f in factors)
                + (
                    "the node's correction as shipped (shape step, fallback) on the whole image"
                    if refines == "node_correction"
                    else "the Wiener filter alone (no fallback) on the whole image"
                ),
                # which correction it refines: "wiener" (the filter alone) or "node_correction"
                # (the node's, with the kernel shape step of kernel_magnitude)
                "refines": refines,
                # the deconvolutions at other Wiener λ given beside the correction
                **({"variant_balance_factors": factors} if factors else {}),
                **(
                    {"kernel_magnitude": bank["kernel_magnitude"]}
                    if "kernel_magnitude" in bank
                    else {}
                ),
                "loss": f"L1 + {args.w_grad} gradient L1",
                # the correction it refines: the node's must use the same parameters
                "correction_policy": asdict(MotionPolicy()),
                "steps": step,
            },
        }

    def save(name: str, val_psnr: float | None = None) -> None:
        save_atomic(checkpoint(val_psnr), out / name)

    with run.stop_on_signals():
        model.train()
        while step < args.steps and not run.should_stop():
            xb, yb = batch_from(train_crops, rng, args.batch, args.patch)
            x, y = torch.from_numpy(xb).to(device), torch.from_numpy(yb).to(device)
            pred = model(x)
            loss = F.l1_loss(pred, y) + args.w_grad * gradient_l1(pred, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append((float(loss.item()), F.l1_loss(x[:, -1:], y).item()))
            if step % 50 == 0 or args.smoke:
                arr = np.asarray(losses[-50:])
                log(
                    f"step {step}/{args.steps} loss {arr[:, 0].mean():.5f} "
                    f"(L1 of the correction alone {arr[:, 1].mean():.5f}) "
                    f"({run.elapsed():.0f} s)"
                )
            if (
                args.reload_every
                and step % args.reload_every == 0
                and bank_names(args.bank) != names
            ):
                # The bank is still being built: take what is new; the validation set may grow,
                # so the best score so far starts over.
                names, train_crops, val_crops, n_val = read_bank()
                best = -math.inf
                log(
                    f"bank reloaded: {len(train_crops)} training, {len(val_crops)} validation crops"
                )
            if step % args.val_every == 0:
                vp, vb = validation_psnr(model, val_crops, device)
                log(f"validation at step {step}: refiner {vp:.3f} dB, correction alone {vb:.3f} dB")
                if vp > best:
                    best = vp
                    save("best.pt", vp)
            if run.checkpoint_due():
                save("last.pt")
    save("last.pt")
    (out / "status.json").write_text(
        json.dumps(
            {"step": step, "of": args.steps, "done": step >= args.steps, "best_val_psnr": best}
        )
        + "\n",
        encoding="utf-8",
    )
    log(f"saved at step {step}" + ("" if step >= args.steps else ": --resume continues"))
    return 0 if step >= args.steps else 3


if __name__ == "__main__":
    raise SystemExit(main())
