"""Train the deblurring generator (RRDBNet) as in ESRGAN, on synthetic motion blur of real CXRs.

Two phases, as in ESRGAN:

1. **PSNR phase**: L1 loss between the corrected and the sharp patch (Adam, cosine-decayed lr).
2. **Adversarial phase** (from the PSNR model): a relativistic average discriminator (RaGAN, a
   VGG-style patch classifier) and a perceptual loss. ESRGAN's perceptual loss uses ImageNet VGG19
   features; nothing may be downloaded here, so the features come from a **fixed, randomly
   initialised** multi-scale conv net (seeded, frozen; :class:`RandomFeatures`). Random conv
   features are a known, weaker stand-in (they still respond to edges and texture at several scales,
   which is what a blur changes). Generator loss = ``w_l1``·L1 + ``w_perc``·perceptual +
   ``w_adv``·RaGAN (defaults 1, 1, 5e-3: L1 is weighted higher than in ESRGAN's 1e-2, which keeps the
   correction faithful — this is a medical image, hallucinated texture is worse than a bit of blur).

Checkpoints (``OUT/checkpoint.pt``: both networks, optimisers, step, phase, RNG states) are written
every ``--save-every`` steps and when ``--max-minutes`` runs out; ``--resume`` continues from it.
At the end the generator of each phase is saved (``psnr_final.pt``, ``gan_final.pt``) and both are
evaluated on held-out patients (``metrics.json``). Export to ONNX with ``python -m models.export``.

Example::

    python -m models.train_deblur --data ../shared/data/cxr-radiographs-mhh --out runs/deblur \
        --config light --psnr-steps 600 --gan-steps 100
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from models.deblur_data import (
    BlurSampler,
    EvalItem,
    load_images,
    make_eval_set,
    sample_batch,
    split_by_patient,
)
from models.rrdbnet import CONFIGS, RRDBNet, build_generator, count_parameters
from models.training import TrainingRun, add_run_arguments, save_atomic

DATASET_NAME = "cxr-radiographs-mhh"
DATASET_CITATION = (
    "COVID-19 Image Repository, Institute for Diagnostic and Interventional Radiology, Hannover "
    "Medical School; Winther H. et al., doi:10.6084/m9.figshare.12275009; CC BY 3.0"
)


class RandomFeatures(nn.Module):
    """A fixed, randomly initialised conv net whose activations serve as 'perceptual' features.

    Three stages (16, 32, 64 channels; 3×3 convs, ReLU, stride-2 between stages), Kaiming init
    from a fixed seed, frozen. Returns the activations of each stage.
    """

    def __init__(self, seed: int = 12345) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        chans = [1, 16, 32, 64]
        self.stages = nn.ModuleList()
        for i in range(3):
            stride = 1 if i == 0 else 2
            conv_a = nn.Conv2d(chans[i], chans[i + 1], 3, stride, 1)
            conv_b = nn.Conv2d(chans[i + 1], chans[i + 1], 3, 1, 1)
            for c in (conv_a, conv_b):
                fan_in = c.in_channels * 9
                with torch.no_grad():
                    c.weight.copy_(
                        torch.randn(c.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in)
                    )
                    assert c.bias is not None
                    c.bias.zero_()
            self.stages.append(nn.Sequential(conv_a, nn.ReLU(), conv_b, nn.ReLU()))
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        h = x
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return feats


def perceptual_loss(net: RandomFeatures, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    fo, ft = net(out), net(target)
    return sum((F.l1_loss(a, b) for a, b in zip(fo, ft, strict=True)), torch.zeros(()))


class Discriminator(nn.Module):
    """VGG-style discriminator (no batch norm, LeakyReLU 0.2) ending in a global logit."""

    def __init__(self, nf: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = [1, nf, nf * 2, nf * 4, nf * 4, nf * 8]
        for i in range(5):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(chans[i + 1], chans[i + 1], 4, 2, 1),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(chans[-1], 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


def ragan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic average discriminator loss (ESRGAN eq. 2)."""
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real - fake.mean(), torch.ones_like(real))
        + F.binary_cross_entropy_with_logits(fake - real.mean(), torch.zeros_like(fake))
    )


def ragan_g_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic average generator loss (symmetric form, ESRGAN eq. 3)."""
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real - fake.mean(), torch.zeros_like(real))
        + F.binary_cross_entropy_with_logits(fake - real.mean(), torch.ones_like(fake))
    )


@torch.no_grad()
def run_generator(
    model: nn.Module, images: list[np.ndarray], device: torch.device, batch: int = 4
) -> list[np.ndarray]:
    """Apply the generator to same-sized or varied images (H, W multiples of 4 are padded)."""
    model.eval()
    outs: list[np.ndarray] = []
    for img in images:
        h, w = img.shape
        ph, pw = (-h) % 4, (-w) % 4
        a = np.pad(img, ((0, ph), (0, pw)), mode="reflect") if ph or pw else img
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None].to(device)
        o = model(t)[0, 0, :h, :w].clamp(0, 1).cpu().numpy()
        outs.append(o)
    return outs


def score(items: list[EvalItem], outputs: list[np.ndarray] | None) -> dict[str, Any]:
    """Mean PSNR/SSIM (data range 1) per blur strength and overall, of outputs (or the inputs)."""
    per: dict[str, list[tuple[float, float]]] = {}
    for i, it in enumerate(items):
        est = it.blurred if outputs is None else outputs[i]
        p = float(peak_signal_noise_ratio(it.sharp, est.astype(np.float32), data_range=1.0))
        s = float(structural_similarity(it.sharp, est.astype(np.float32), data_range=1.0))
        per.setdefault(it.strength, []).append((p, s))
        per.setdefault("all", []).append((p, s))
    return {
        k: {
            "psnr_db": round(float(np.mean([v[0] for v in vals])), 3),
            "ssim": round(float(np.mean([v[1] for v in vals])), 4),
            "n": len(vals),
        }
        for k, vals in per.items()
    }


def evaluate(model: nn.Module, items: list[EvalItem], device: torch.device) -> dict[str, Any]:
    outs = run_generator(model, [it.blurred for it in items], device)
    return {"blurred": score(items, None), "corrected": score(items, outs)}


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="cxr-radiographs-mhh folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", default="light", choices=sorted(CONFIGS))
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--psnr-steps", type=int, default=600)
    ap.add_argument("--gan-steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--gan-lr", type=float, default=5e-5)
    ap.add_argument("--w-l1", type=float, default=1.0)
    ap.add_argument("--w-perc", type=float, default=1.0)
    ap.add_argument("--w-adv", type=float, default=5e-3)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-crop", type=int, default=256)
    ap.add_argument(
        "--eval-images", type=int, default=12, help="held-out images for in-training eval"
    )
    ap.add_argument(
        "--final-crop", type=int, default=384, help="crop for the final evaluation (0 = whole)"
    )
    ap.add_argument("--save-every", type=int, default=50, help="checkpoint every N steps too")
    add_run_arguments(ap)
    ap.add_argument("--smoke", action="store_true", help="a few tiny steps, to test the pipeline")
    args = ap.parse_args(argv)

    if args.smoke:
        args.patch, args.batch, args.psnr_steps, args.gan_steps = 32, 2, 2, 2
        args.eval_every, args.eval_crop, args.eval_images, args.final_crop = 2, 64, 2, 64
        args.save_every = 1

    run = TrainingRun.from_args(args)
    device, out, log = run.device, run.out, run.log

    split = split_by_patient(args.data, args.test_fraction, args.seed)
    (out / "split.json").write_text(json.dumps(split.__dict__, indent=1), encoding="utf-8")
    train_imgs = load_images(args.data, split.train)
    test_names = split.test[: 2 if args.smoke else None]
    test_imgs = load_images(args.data, test_names)
    sampler = BlurSampler()
    eval_items = make_eval_set(
        test_imgs[: args.eval_images], test_names[: args.eval_images], seed=99, crop=args.eval_crop
    )
    log(
        f"train {len(split.train)} images / {len(split.train_patients)} patients, test "
        f"{len(split.test)} / {len(split.test_patients)}; device {device}; config {args.config}"
    )

    gen = build_generator(args.config).to(device)
    disc = Discriminator().to(device)
    feat_net = RandomFeatures().to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.gan_lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(args.seed)
    phase, step = "psnr", 0
    history: list[dict[str, Any]] = []
    ckpt_path = out / "checkpoint.pt"
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        gen.load_state_dict(ck["G"])
        disc.load_state_dict(ck["D"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        phase, step, history = ck["phase"], ck["step"], ck["history"]
        run.resumed(ck["elapsed_s"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed at phase {phase} step {step}")
    elapsed = run.elapsed

    def save() -> None:
        save_atomic(
            {
                "G": gen.state_dict(),
                "D": disc.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "phase": phase,
                "step": step,
                "history": history,
                "elapsed_s": elapsed(),
                "rng": _rng_state(rng),
                "torch_rng": torch.get_rng_state(),
                "config": args.config,
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            ckpt_path,
        )

    def save_generator(path: Path, metrics: dict[str, Any] | None = None) -> None:
        torch.save(
            {
                "config": args.config,
                "config_values": CONFIGS[args.config].as_dict(),
                "state_dict": gen.state_dict(),
                "training": training_info(),
                "metrics": metrics or {},
            },
            path,
        )

    def training_info() -> dict[str, Any]:
        return {
            "dataset": DATASET_NAME,
            "citation": DATASET_CITATION,
            "train_images": len(split.train),
            "train_patients": len(split.train_patients),
            "test_images": len(split.test),
            "test_patients": split.test_patients,
            "split": f"by patient, seed {args.seed}, test fraction {args.test_fraction}",
            "degradation": sampler.as_dict(),
            "patch": args.patch,
            "batch": args.batch,
            "psnr_steps": args.psnr_steps,
            "gan_steps": args.gan_steps,
            "losses": {
                "psnr_phase": "L1",
                "gan_phase": f"{args.w_l1}*L1 + {args.w_perc}*perceptual(random fixed conv "
                f"features) + {args.w_adv}*RaGAN",
            },
            "device": str(device),
            "torch_threads": args.threads,
            "parameters": count_parameters(gen),
            "train_seconds": round(elapsed(), 1),
        }

    def lr_at(s: int, total: int, base: float) -> float:
        return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1))))

    def to_t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    def maybe_eval(label: str) -> None:
        res = evaluate(gen, eval_items, device)
        gen.train()
        history.append({"phase": phase, "step": step, "elapsed_s": round(elapsed(), 1), **res})
        b, c = res["blurred"]["all"], res["corrected"]["all"]
        log(
            f"eval {label} step {step}: blurred {b['psnr_db']:.2f} dB / {b['ssim']:.4f}, "
            f"corrected {c['psnr_db']:.2f} dB / {c['ssim']:.4f}"
        )

    gen.train()
    disc.train()
    running = 0.0
    stopped = False
    with run.stop_on_signals():
        if phase == "psnr":
            while step < args.psnr_steps:
                if run.should_stop():
                    stopped = True
                    break
                for g in opt_g.param_groups:
                    g["lr"] = lr_at(step, args.psnr_steps, args.lr)
                xb, yb = sample_batch(train_imgs, rng, args.batch, args.patch, sampler)
                x, y = to_t(xb), to_t(yb)
                loss = F.l1_loss(gen(x), y)
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                opt_g.step()
                step += 1
                lv = loss.item()
                running = 0.98 * running + 0.02 * lv if running > 0 else lv
                if step % 10 == 0 or args.smoke:
                    log(f"psnr step {step}/{args.psnr_steps} L1 {running:.5f} ({elapsed():.0f} s)")
                if step % args.eval_every == 0:
                    maybe_eval("psnr")
                if step % args.save_every == 0 or run.checkpoint_due():
                    save()
            if not stopped:
                maybe_eval("psnr-final")
                save_generator(out / "psnr_final.pt", history[-1])
                phase, step = "gan", 0
                save()
        if phase == "gan" and not stopped:
            for g in opt_g.param_groups:
                g["lr"] = args.gan_lr
            while step < args.gan_steps:
                if run.should_stop():
                    stopped = True
                    break
                xb, yb = sample_batch(train_imgs, rng, args.batch, args.patch, sampler)
                x, y = to_t(xb), to_t(yb)
                fake = gen(x)
                # Discriminator step.
                d_loss = ragan_d_loss(disc(y), disc(fake.detach()))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                # Generator step.
                real_logits = disc(y).detach()
                g_adv = ragan_g_loss(real_logits, disc(fake))
                g_l1 = F.l1_loss(fake, y)
                g_perc = perceptual_loss(feat_net, fake, y)
                g_loss = args.w_l1 * g_l1 + args.w_perc * g_perc + args.w_adv * g_adv
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                step += 1
                if step % 10 == 0 or args.smoke:
                    log(
                        f"gan step {step}/{args.gan_steps} L1 {g_l1.item():.5f} perc "
                        f"{g_perc.item():.4f} adv {g_adv.item():.3f} D {d_loss.item():.3f} "
                        f"({elapsed():.0f} s)"
                    )
                if step % args.eval_every == 0:
                    maybe_eval("gan")
                if step % args.save_every == 0 or run.checkpoint_due():
                    save()
            if not stopped:
                maybe_eval("gan-final")
                save_generator(out / "gan_final.pt", history[-1])
                phase = "done"
                save()
    if stopped:
        save()
        log(f"stopped at phase {phase} step {step}: checkpoint saved, use --resume")
        return 3

    # Final evaluation of both phases' generators on held-out patients.
    final_items = make_eval_set(
        test_imgs, test_names, seed=2024, crop=args.final_crop if args.final_crop > 0 else None
    )
    final: dict[str, Any] = {"eval": {"crop": args.final_crop, "images": len(test_imgs)}}
    for tag in ("psnr_final", "gan_final"):
        p = out / f"{tag}.pt"
        if not p.exists():
            continue
        g2: RRDBNet = build_generator(args.config).to(device)
        g2.load_state_dict(torch.load(p, map_location=device, weights_only=False)["state_dict"])
        final[tag] = evaluate(g2, final_items, device)
        log(f"final {tag}: {json.dumps(final[tag]['corrected']['all'])}")
    final["blurred"] = score(final_items, None)
    log(f"final blurred input: {json.dumps(final['blurred']['all'])}")
    final["training"] = training_info()
    (out / "metrics.json").write_text(json.dumps(final, indent=1), encoding="utf-8")
    log(f"done in {elapsed():.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
