"""Train the RRDBNet refiner of the blind Wiener correction (issue #15), resumably.

The node corrects motion blur blind: it estimates straight motion from the image's spectrum and
deconvolves in linear exposure (:mod:`models.deblur`). What that leaves (ringing along the motion,
amplified noise, the part of a curved path a straight kernel misses) is what this network learns
to remove. Its input has two channels, the blurred image and the node's own correction of it
(computed here with exactly the node's functions, :func:`models.deblur.assess_motion` and
:func:`models.deblur.correct`, on the training crop); its output is a residual added to the
correction (:class:`models.rrdbnet.RRDBNet` with ``in_channels=2``).

Data: ``cxr-radiographs-mhh`` training patients only (:func:`models.deblur_data.split_by_patient`,
the evaluation's test patients are never seen), at native scale (≈0.6 mm/px) and at half and
quarter size (≈1.2 and 2.4 mm/px) so that motion of 0.5–6 mm spans 1–24 px; straight and curved
kernels (:func:`models.blur.random_kernel`) with Poisson noise; 10 % unblurred (the refiner must
leave a sharp image alone). Loss: L1 plus L1 of image gradients (rewards restored edges).

Checkpoints: ``OUT/last.pt`` every ``--checkpoint-minutes`` and on SIGTERM (``--resume``), with
the held-out score of the patients' *training* split's last images logged now and then (a quick
sign of progress, not the evaluation: that is ``python -m models.evaluate``)::

    python -m models.train_refiner --data ../shared/data/cxr-radiographs-mhh --out runs/refiner \\
        --steps 20000 --max-minutes 120        # --resume continues; --device cuda on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import time
from pathlib import Path
from types import FrameType

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from skimage.transform import rescale

from models.blur import NoiseSpec, random_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion, correct
from models.deblur_data import load_images, split_by_patient
from models.rrdbnet import CONFIGS, build_generator

F32 = NDArray[np.float32]
NATIVE_SPACING_MM = 0.6  # cxr-radiographs-mhh: 640 px wide adult chests


def refiner_input(blurred: F32, spacing_mm: float, policy: MotionPolicy) -> F32:
    """[2, H, W]: the blurred image and the node's blind correction of it."""
    assessment = assess_motion(blurred, spacing_mm, policy)
    return np.stack([blurred, correct(blurred, assessment, policy)]).astype(np.float32)


def sample(
    scaled: list[tuple[F32, float]], rng: np.random.Generator, patch: int, policy: MotionPolicy
) -> tuple[F32, F32]:
    """One training pair: ([2, patch, patch] input, [1, patch, patch] sharp target)."""
    img, spacing = scaled[int(rng.integers(len(scaled)))]
    sharp_case = rng.random() < 0.1
    k = np.ones((1, 1)) if sharp_case else random_kernel(rng, 1.0, 24.0, p_linear=0.5)
    margin = k.shape[0] // 2 + 4
    size = patch + 2 * margin
    h, w = img.shape
    y = int(rng.integers(0, max(1, h - size + 1)))
    x = int(rng.integers(0, max(1, w - size + 1)))
    crop = np.ascontiguousarray(np.rot90(img[y : y + size, x : x + size], int(rng.integers(4))))
    photons = float(math.exp(rng.uniform(math.log(2000.0), math.log(50000.0))))
    blurred = simulate_motion_blur(crop, k, rng, noise=NoiseSpec(photons=photons))
    inp = refiner_input(blurred.astype(np.float32), spacing, policy)
    sl = slice(margin, margin + patch)
    return inp[:, sl, sl], crop[None, sl, sl].astype(np.float32)


def gradient_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    dx = (out[..., :, 1:] - out[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (out[..., 1:, :] - out[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="cxr-radiographs-mhh folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", default="light", choices=sorted(CONFIGS))
    ap.add_argument("--patch", type=int, default=192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--w-grad", type=float, default=1.0, help="weight of the gradient L1")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--max-minutes", type=float, default=0.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--smoke", action="store_true", help="two tiny steps, to test the pipeline")
    args = ap.parse_args(argv)
    if args.smoke:
        args.config, args.patch, args.batch, args.steps = "tiny", 64, 2, 2

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        with (out / "train.log").open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    split = split_by_patient(args.data)
    names = split.train[:4] if args.smoke else split.train
    images = [im.astype(np.float32) / 255.0 for im in load_images(args.data, names)]
    scaled: list[tuple[F32, float]] = []
    for im in images:
        for factor in (1.0, 0.5, 0.25) if not args.smoke else (1.0,):
            small = im if factor == 1.0 else rescale(im, factor, anti_aliasing=True)
            if min(small.shape) >= args.patch + 60:
                scaled.append((np.asarray(small, np.float32), NATIVE_SPACING_MM / factor))
    policy = MotionPolicy()
    model = build_generator(args.config, in_channels=2).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps, eta_min=args.lr / 20)
    rng = np.random.default_rng(args.seed)
    step, elapsed_before, losses = 0, 0.0, []
    if args.resume and (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step, elapsed_before = int(ck["step"]), float(ck["elapsed_s"])
        rng.bit_generator.state = ck["rng"]
        log(f"resumed at step {step}")
    log(
        f"refiner {args.config} (2 channels) on {len(names)} training images, {len(scaled)} "
        f"scaled copies; patch {args.patch}, batch {args.batch}, device {device}"
    )
    t0 = time.time()

    def save() -> None:
        torch.save(
            {
                "state_dict": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "step": step,
                "elapsed_s": elapsed_before + time.time() - t0,
                "rng": rng.bit_generator.state,
                "config": args.config,
                "in_channels": 2,
                "training": {
                    "data": "cxr-radiographs-mhh training patients, scales 0.6/1.2/2.4 mm/px",
                    "kernels": "models.blur.random_kernel 1-24 px, straight or curved, 10% none",
                    "input": "blurred + models.deblur.correct (the node's blind Wiener)",
                    "loss": f"L1 + {args.w_grad} gradient L1",
                },
            },
            out / "last.pt.tmp",
        )
        (out / "last.pt.tmp").replace(out / "last.pt")

    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    next_ckpt = time.time() + args.checkpoint_minutes * 60
    deadline = t0 + args.max_minutes * 60 if args.max_minutes > 0 else math.inf
    try:
        model.train()
        while step < args.steps and not stop and time.time() < deadline:
            pairs = [sample(scaled, rng, args.patch, policy) for _ in range(args.batch)]
            x = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
            y = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
            pred = model(x)
            loss = F.l1_loss(pred, y) + args.w_grad * gradient_l1(pred, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            base = F.l1_loss(x[:, 1:], y).item()
            losses.append((float(loss.item()), base))
            if step % 50 == 0 or args.smoke:
                arr = np.asarray(losses[-50:])
                log(
                    f"step {step}/{args.steps} loss {arr[:, 0].mean():.5f} "
                    f"(L1 of the Wiener input alone {arr[:, 1].mean():.5f}) "
                    f"({elapsed_before + time.time() - t0:.0f} s)"
                )
            if time.time() > next_ckpt:
                save()
                next_ckpt = time.time() + args.checkpoint_minutes * 60
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    save()
    (out / "status.json").write_text(
        json.dumps({"step": step, "of": args.steps, "done": step >= args.steps}) + "\n",
        encoding="utf-8",
    )
    log(f"saved at step {step}" + ("" if step >= args.steps else ": --resume continues"))
    return 0 if step >= args.steps else 3


if __name__ == "__main__":
    raise SystemExit(main())
