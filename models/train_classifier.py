"""Train the pneumonia classifier (EfficientNet-B3, 1 channel, from scratch) on Kermany CXRs.

Data: a ``labels.csv`` with ``path``, ``label`` (NORMAL / PNEUMONIA), ``patient_id`` and ``split``
columns: ``kermany-full/labels.csv`` (the whole Kermany set: 5,037 train / 417 test images, the
data set's own split) or ``cxr-labeled/labels.csv`` (rows with ``dataset == kermany_pediatric``).
Training uses ``split == train`` only, divided again **by patient** into train and validation
(``--val-fraction``, seeded); validation picks the checkpoint, the temperature and the operating
point. ``split == test`` is not touched unless ``--report-test`` asks for the best epoch's
figures at the end; a model chosen for shipping is measured once by ``models.evaluate``, after the
choice. No pretrained weights
(nothing may be downloaded): the network starts random.

Input: :func:`models.intensity.classifier_unit` (squash to ``--size``², 0.5–99.5 percentile
stretch), the same function the node and ``models.evaluate`` use, then ``(x − mean) / std``.

Augmentation (on the fly): **motion blur** from :mod:`models.blur` (probability ``--p-blur``,
linear or trajectory kernels up to ``--max-blur-px`` at 224 px, in linear exposure, with Poisson
noise; the blurred image is stretched again, as the node would), then :func:`augment`
(``--aug strong``, the default: flips, affine, gamma/contrast/brightness, blur or sharpening,
noise, cut-out; ``basic``: the first run's mild set), mixup (``--mixup``) and class-balanced
sampling (``--balanced``). ``--init`` starts from a checkpoint's weights (a fine-tune).

Speed on a CPU: bfloat16 autocast and channels_last (``--bf16``: on CPUs with native bfloat16,
AVX-512 BF16 or AMX, it roughly halves a step; elsewhere it is emulated and tens of times slower,
so the default is on only where ``/proc/cpuinfo`` lists ``avx512_bf16`` or ``amx_bf16``). An exponential moving average of the weights (``--ema``)
is what is validated and kept.

Checkpoints: ``OUT/last.pt`` (model, EMA, optimiser, epoch, position in the epoch, RNG;
``--resume``) every ``--checkpoint-minutes``, every epoch, on SIGTERM/SIGINT and when
``--max-minutes`` runs out; ``OUT/best.pt`` (best validation AUC + accuracy, with metrics) for
calibration and export::

    python -m models.calibrate --checkpoint OUT/best.pt --labels LABELS
    python -m models.export classify --checkpoint OUT/best.pt --out DIR
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from models.blur import NoiseSpec, random_kernel, simulate_motion_blur
from models.classifier import ARCHITECTURES, DEFAULT_ARCH, DEFAULT_SIZE, build_classifier
from models.deblur_data import load_gray
from models.intensity import classifier_unit, percentile_stretch
from models.kermany import CITATION, Sample, read_kermany
from models.metrics import binary_metrics, softmax_p1
from models.shortcut import read_weights
from models.training import TrainingRun, add_run_arguments, save_atomic


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX); False where unknown."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def split_patients(
    samples: list[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    patients = sorted({s.patient for s in samples})
    order = np.random.default_rng(seed).permutation(len(patients))
    n_val = max(1, int(round(fraction * len(patients))))
    val_p = {patients[i] for i in order[:n_val]}
    return [s for s in samples if s.patient not in val_p], [
        s for s in samples if s.patient in val_p
    ]


def load_array(root: Path, samples: list[Sample], size: int) -> NDArray[np.float32]:
    """[N, size, size] float32 classifier units (:func:`models.intensity.classifier_unit`)."""
    arrs = [
        classifier_unit(load_gray(root / s.path).astype(np.float32) / 255.0, size) for s in samples
    ]
    return np.stack(arrs).astype(np.float32) if arrs else np.zeros((0, size, size), np.float32)


def blur_batch(
    x: NDArray[np.float32], rng: np.random.Generator, p_blur: float, max_len: float
) -> NDArray[np.float32]:
    """Motion-blur a random part of the batch in exposure, then stretch again as the node does."""
    out = x.copy()
    for i in range(len(out)):
        if rng.random() < p_blur:
            k = random_kernel(rng, 1.0, max_len)
            photons = float(math.exp(rng.uniform(math.log(2000.0), math.log(50000.0))))
            b = simulate_motion_blur(out[i], k, rng, noise=NoiseSpec(photons=photons))
            out[i] = percentile_stretch(b)
    return out


def augment(x: torch.Tensor, gen: torch.Generator, strong: bool = True) -> torch.Tensor:
    """Random geometry and acquisition changes on a [N,1,S,S] batch in [0, 1].

    ``strong=False`` is the first run's mild set (rotation ±10°, scale 0.9–1.1, shift ±6 %,
    gamma 0.8–1.25, contrast ±15 %, brightness ±0.06). ``strong=True`` widens it to what differs
    between hospitals and between Kermany's train and test years: left-right flip, rotation ±15°,
    zoom 0.8–1.25 with aspect 0.85–1.15, shift ±10 %, gamma 0.6–1.6, contrast ±30 %, brightness
    ±0.1, Gaussian blur or unsharp sharpening, additive noise and one erased rectangle (cut-out).
    """
    n = x.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    def coin(p: float) -> torch.Tensor:
        return torch.rand(n, generator=gen) < p

    rot, zoom, aspect, shift = (
        (15.0, (0.8, 1.25), 0.15, 0.10) if strong else (10.0, (0.9, 1.1), 0.0, 0.06)
    )
    ang = u(-rot, rot) * math.pi / 180
    sc = u(*zoom)
    asp = u(1 - aspect, 1 + aspect)
    sx, sy = sc * asp.sqrt(), sc / asp.sqrt()
    flip = torch.where(coin(0.5 if strong else 0.0), -1.0, 1.0)
    tx, ty = u(-shift, shift), u(-shift, shift)
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.stack(
        [
            torch.stack([flip * cos / sx, -sin / sy, tx], 1),
            torch.stack([flip * sin / sx, cos / sy, ty], 1),
        ],
        1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    g_lo, g_hi, c, b = (0.6, 1.6, 0.3, 0.10) if strong else (0.8, 1.25, 0.15, 0.06)
    gamma = torch.exp(u(math.log(g_lo), math.log(g_hi)))[:, None, None, None]
    x = x.clamp(0, 1) ** gamma
    contrast = u(1 - c, 1 + c)[:, None, None, None]
    bright = u(-b, b)[:, None, None, None]
    m = x.mean(dim=(2, 3), keepdim=True)
    x = (x - m) * contrast + m + bright
    if strong:
        # Blur (sigma up to 1.2 px) or unsharp sharpening (amount up to 1), each on a third.
        sigma = u(0.4, 1.2)
        r = torch.arange(-3, 4, dtype=x.dtype)
        k1 = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None] ** 2))
        k1 = k1 / k1.sum(1, keepdim=True)
        pad = F.pad(x, (3, 3, 3, 3), mode="replicate")
        sm = F.conv2d(pad.transpose(0, 1), k1[:, None, None, :], groups=n)
        sm = F.conv2d(sm, k1[:, None, :, None], groups=n).transpose(0, 1)
        kind = torch.rand(n, generator=gen)
        amount = u(0.3, 1.0)[:, None, None, None]
        x = torch.where((kind < 1 / 3)[:, None, None, None], sm, x)
        x = torch.where((kind > 2 / 3)[:, None, None, None], x + amount * (x - sm), x)
        noise = (
            torch.randn(x.shape, generator=gen, dtype=x.dtype) * u(0.0, 0.03)[:, None, None, None]
        )
        x = x + noise
        # Cut-out: one rectangle of 10–30 % of each side set to the image mean, on half the batch.
        s = x.shape[-1]
        hh, ww = (u(0.1, 0.3) * s).long(), (u(0.1, 0.3) * s).long()
        y0 = (torch.rand(n, generator=gen) * (s - hh)).long()
        x0 = (torch.rand(n, generator=gen) * (s - ww)).long()
        yy = torch.arange(s)[None, :, None]
        xx = torch.arange(s)[None, None, :]
        box = (
            (yy >= y0[:, None, None])
            & (yy < (y0 + hh)[:, None, None])
            & (xx >= x0[:, None, None])
            & (xx < (x0 + ww)[:, None, None])
            & coin(0.5)[:, None, None]
        )[:, None]
        x = torch.where(box, x.mean(dim=(2, 3), keepdim=True), x)
    return x.clamp(0, 1)


def parse_oversample(specs: list[str]) -> list[tuple[str, float]]:
    """``GLOB=FACTOR`` pairs (file-name patterns, e.g. ``NORMAL2-*=2``), checked."""
    out = []
    for spec in specs:
        pattern, sep, factor = spec.rpartition("=")
        try:
            value = float(factor)
        except ValueError:
            value = -1.0
        if not sep or not pattern or not value > 0:
            raise ValueError(f"--oversample wants GLOB=FACTOR with FACTOR > 0, got {spec!r}")
        out.append((pattern, value))
    return out


def sample_weights(paths: list[str], oversample: list[tuple[str, float]]) -> NDArray[np.float64]:
    """Per-image draw weight: the product of the factors of the patterns its file name matches."""
    w = np.ones(len(paths))
    for i, p in enumerate(paths):
        name = Path(p).name
        for pattern, factor in oversample:
            if fnmatch.fnmatch(name, pattern):
                w[i] *= factor
    return w


def balanced_order(
    labels: NDArray[np.int64],
    rng: np.random.Generator,
    weights: NDArray[np.float64] | None = None,
) -> NDArray[np.int64]:
    """One epoch of indices (as many as there are images), each class drawn equally often;
    within a class, images in proportion to ``weights`` (default: equally)."""
    base = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    classes = np.unique(labels)
    w = np.zeros(len(labels))
    for c in classes:
        m = labels == c
        w[m] = base[m] / base[m].sum() / len(classes)
    return np.asarray(rng.choice(len(labels), size=len(labels), replace=True, p=w), dtype=np.int64)


def weighted_order(weights: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.int64]:
    """One epoch of indices drawn with replacement in proportion to ``weights``."""
    p = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    return np.asarray(rng.choice(len(p), size=len(p), replace=True, p=p), dtype=np.int64)


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: NDArray[np.float32], mean: float, std: float, batch: int = 64
) -> NDArray[np.float64]:
    """[N, 2] logits for [N,S,S] classifier units, in float32 (as exported)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        t = (torch.from_numpy(x[i : i + batch])[:, None] - mean) / std
        out.append(model(t.contiguous(memory_format=torch.channels_last)).float().double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2))


def predict(
    model: nn.Module, x: NDArray[np.float32], mean: float, std: float, batch: int = 64
) -> NDArray[np.float64]:
    """P(PNEUMONIA) for [N,S,S] classifier units."""
    return softmax_p1(predict_logits(model, x, mean, std, batch), 1.0)


@torch.no_grad()
def recompute_batchnorm(
    model: nn.Module, x: NDArray[np.float32], mean: float, std: float, batch: int = 32
) -> None:
    """Reset every BatchNorm's running statistics and recompute them over ``x`` (float32).

    Averaged weights (SWA) need statistics of their own: the average of each snapshot's running
    statistics is not the statistics of the averaged network.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    was_training = model.training
    model.train()
    for i in range(0, len(x), batch):
        t = (torch.from_numpy(x[i : i + batch])[:, None] - mean) / std
        model(t.contiguous(memory_format=torch.channels_last))
    for m in norms:
        m.momentum = momenta[m]
    model.train(was_training)


class _AveragedCopy:
    """A frozen copy of a model whose weights follow the model's as a running average."""

    def __init__(self, model: nn.Module) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def _blend(self, model: nn.Module, keep: float) -> None:
        """copy ← keep·copy + (1 − keep)·model for floating tensors; others copied."""
        own = self.module.state_dict()
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                own[k].mul_(keep).add_(v.detach(), alpha=1 - keep)
            else:
                own[k].copy_(v)


class WeightAverage(_AveragedCopy):
    """Stochastic weight averaging: the plain mean of the weights at the end of each epoch."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.count = 0

    def update(self, model: nn.Module) -> None:
        self.count += 1
        self._blend(model, (self.count - 1) / self.count)


class Ema(_AveragedCopy):
    """Exponential moving average of a model's parameters and buffers (warm-up on the step)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__(model)
        self.decay = decay
        self.steps = 0

    def update(self, model: nn.Module) -> None:
        self.steps += 1
        self._blend(model, min(self.decay, (1 + self.steps) / (10 + self.steps)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--labels", type=Path, required=True, help="kermany-full/labels.csv")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--arch", default=DEFAULT_ARCH, choices=ARCHITECTURES)
    ap.add_argument("--size", type=int, default=DEFAULT_SIZE)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--label-smoothing", type=float, default=0.05)
    ap.add_argument("--p-blur", type=float, default=0.4)
    ap.add_argument("--max-blur-px", type=float, default=6.0)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the patient split into train and validation (default: --seed); keep it "
        "when training another member of an ensemble so all members share one validation split",
    )
    ap.add_argument(
        "--aug",
        choices=("strong", "basic"),
        default="strong",
        help="augmentation set (see augment(); basic = the first run's mild one)",
    )
    ap.add_argument(
        "--balanced",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw both classes equally often (Kermany's train split is 3:1 pneumonia)",
    )
    ap.add_argument("--mixup", type=float, default=0.2, help="mixup Beta(a, a) (0 = off)")
    ap.add_argument(
        "--oversample",
        action="append",
        default=[],
        metavar="GLOB=FACTOR",
        help="draw training images whose file name matches GLOB FACTOR times as often (within "
        "their class when --balanced); repeatable. E.g. 'NORMAL2-*=2' for the batch of normal "
        "images the validation errors fall in (docs/models.md)",
    )
    ap.add_argument(
        "--draw-weights",
        type=Path,
        default=None,
        metavar="CSV",
        help="per-image draw weights (columns path, weight; e.g. written by models.shortcut): "
        "multiplied into --oversample's; images not listed keep 1",
    )
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from these weights (a best.pt or models/checkpoints/*.pt) instead of random",
    )
    ap.add_argument("--ema", type=float, default=0.998, help="EMA decay (0 = off)")
    ap.add_argument(
        "--swa",
        action="store_true",
        help="stochastic weight averaging: constant lr after a 5%% warm-up, the weights averaged "
        "at the end of every epoch, BatchNorm statistics recomputed; the final average is kept",
    )
    ap.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast on the CPU (default: only where the CPU has native bfloat16)",
    )
    add_run_arguments(ap)
    ap.add_argument(
        "--report-test",
        action="store_true",
        help="at the end, also measure the best epoch on the data set's test split (off by "
        "default: a run's choices must not see it; models.evaluate measures a chosen model once)",
    )
    ap.add_argument("--smoke", action="store_true", help="two tiny steps, to test the pipeline")
    args = ap.parse_args(argv)
    try:
        oversample = parse_oversample(args.oversample)
    except ValueError as e:
        ap.error(str(e))
    listed_w: dict[str, float] | None = None
    if args.draw_weights is not None:
        try:
            listed_w = read_weights(args.draw_weights)
        except (OSError, ValueError, KeyError) as e:
            ap.error(f"--draw-weights: {e}")
    if args.smoke:
        args.size, args.batch, args.epochs = 64, 2, 1

    if args.bf16 is None:
        args.bf16 = cpu_has_native_bf16()
    run = TrainingRun.from_args(args)
    device, out, log = run.device, run.out, run.log

    root = args.labels.parent
    train_all = read_kermany(args.labels, "train")
    test = read_kermany(args.labels, "test")
    split_seed = args.seed if args.split_seed is None else args.split_seed
    train, val = split_patients(train_all, args.val_fraction, split_seed)
    if args.smoke:

        def two_per_class(items: list[Sample]) -> list[Sample]:
            return [s for c in (0, 1) for s in [t for t in items if t.label == c][:2]]

        train, val, test = two_per_class(train), two_per_class(val), two_per_class(test)
    xtr = load_array(root, train, args.size)
    ytr = np.array([s.label for s in train], dtype=np.int64)
    xva = load_array(root, val, args.size)
    yva = np.array([s.label for s in val], dtype=np.int64)
    mean, std = float(xtr.mean()), float(xtr.std())
    log(
        f"{args.arch} at {args.size}px: train {len(train)} ({int(ytr.sum())} pneumonia), "
        f"val {len(val)}, test {len(test)}; mean {mean:.4f} std {std:.4f}; device {device}, "
        f"bfloat16 autocast {'on' if args.bf16 and device.type == 'cpu' else 'off'}"
    )

    model = build_classifier(args.arch)
    if args.init is not None:
        init = torch.load(args.init, map_location="cpu", weights_only=False)
        model.load_state_dict({k: v.float() for k, v in init["state_dict"].items()})
        log(f"initialised from {args.init}")
    model = model.to(device).to(memory_format=torch.channels_last)
    ema = Ema(model, args.ema) if args.ema > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(train) // args.batch)
    total = steps_per_epoch * args.epochs
    sched: torch.optim.lr_scheduler.LRScheduler
    if args.swa:
        warmup = max(1, total // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=args.lr, total_steps=total, pct_start=0.1
        )
    swa = WeightAverage(model) if args.swa else None
    # BatchNorm statistics of the average: a fixed, unaugmented sample of the training images.
    bn_sample = xtr[np.random.default_rng(args.seed + 1).permutation(len(xtr))[:800]]
    rng = np.random.default_rng(args.seed)

    draw_w = sample_weights([s.path for s in train], oversample) if oversample else None
    if draw_w is not None:
        log(f"oversampling {args.oversample}: {int((draw_w != 1).sum())} training images affected")
    if listed_w is not None:
        factors = np.array([listed_w.get(s.path, 1.0) for s in train])
        draw_w = factors if draw_w is None else draw_w * factors
        log(
            f"draw weights from {args.draw_weights}: {int((factors != 1).sum())} training images "
            f"weighted, {factors.min():.2f}..{factors.max():.2f}"
        )

    def new_order() -> NDArray[np.int64]:
        if args.balanced:
            return balanced_order(ytr, rng, draw_w)
        if draw_w is not None:
            return weighted_order(draw_w, rng)
        return np.asarray(rng.permutation(len(train)), dtype=np.int64)

    tgen = torch.Generator().manual_seed(args.seed)
    epoch, step_in_epoch, best_sel, history = 0, 0, -1.0, []
    order = new_order()
    losses: list[float] = []
    if args.resume and (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["state_dict"])
        if ema is not None and ck.get("ema") is not None:
            ema.module.load_state_dict(ck["ema"])
            ema.steps = int(ck.get("ema_steps", 0))
        if swa is not None and ck.get("swa") is not None:
            swa.module.load_state_dict(ck["swa"])
            swa.count = int(ck.get("swa_count", 0))
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        epoch, best_sel, history = ck["epoch"], ck["best_sel"], ck["history"]
        step_in_epoch, order = int(ck.get("step_in_epoch", 0)), np.asarray(ck["order"])
        losses = list(ck.get("losses", []))
        run.resumed(ck["elapsed_s"])
        rng.bit_generator.state = ck["rng"]
        tgen.set_state(ck["tgen"])
        log(f"resumed at epoch {epoch} step {step_in_epoch}")
    elapsed = run.elapsed

    def training_info() -> dict[str, Any]:
        return {
            "dataset": f"{args.labels.parent.name} (Kermany, split=train only)",
            "citation": CITATION,
            "train_images": len(train),
            "val_images": len(val),
            "train_patients": len({s.patient for s in train}),
            "split": f"labels.csv split=train divided by patient, val fraction "
            f"{args.val_fraction}, seed {split_seed}",
            "input_size": args.size,
            "intensity": "models.intensity.classifier_unit (squash, 0.5-99.5 percentile stretch)",
            "epochs": epoch,
            "batch": args.batch,
            "optimizer": f"AdamW lr {args.lr} "
            f"{'constant (SWA)' if args.swa else 'one-cycle'}, wd {args.weight_decay}",
            "label_smoothing": args.label_smoothing,
            "ema_decay": args.ema,
            "weight_average": f"SWA of {swa.count} epoch ends, BatchNorm recomputed"
            if swa is not None
            else None,
            "precision": "bfloat16 autocast, channels_last" if args.bf16 else "float32",
            "augmentation": f"motion blur p={args.p_blur} up to {args.max_blur_px}px "
            f"(models.blur, re-stretched), {args.aug} set (models.train_classifier.augment), "
            f"mixup {args.mixup}",
            "sampling": ("class-balanced" if args.balanced else "uniform")
            + (f", oversampled {args.oversample}" if args.oversample else "")
            + (f", draw weights {args.draw_weights.name}" if args.draw_weights else ""),
            "initialised_from": str(args.init) if args.init else None,
            "pretrained": False,
            "device": str(device),
            "train_seconds": round(elapsed(), 1),
        }

    def kept_model() -> nn.Module:
        if swa is not None and swa.count > 0:
            return swa.module
        return ema.module if ema is not None else model

    def save_last() -> None:
        save_atomic(
            {
                "state_dict": model.state_dict(),
                "ema": ema.module.state_dict() if ema is not None else None,
                "ema_steps": ema.steps if ema is not None else 0,
                "swa": swa.module.state_dict() if swa is not None else None,
                "swa_count": swa.count if swa is not None else 0,
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "order": order,
                "losses": losses,
                "best_sel": best_sel,
                "history": history,
                "elapsed_s": elapsed(),
                "rng": rng.bit_generator.state,
                "tgen": tgen.get_state(),
            },
            out / "last.pt",
        )

    def save_best(metrics: dict[str, Any]) -> None:
        torch.save(
            {
                "arch": args.arch,
                "architecture": f"timm {args.arch}, 1 input channel, 2 classes, GAP->linear head, "
                f"random init (no pretraining)"
                if args.arch != "tiny"
                else "TinyCNN (tests)",
                "num_classes": 2,
                "size": args.size,
                "mean": mean,
                "std": std,
                "state_dict": kept_model().state_dict(),
                "training": training_info(),
                "metrics": metrics,
                "val_paths": [s.path for s in val],
            },
            out / "best.pt",
        )

    use_bf16 = args.bf16 and device.type == "cpu"
    stopped = False
    with run.stop_on_signals():
        while epoch < args.epochs:
            model.train()
            while step_in_epoch < steps_per_epoch:
                if run.should_stop():
                    stopped = True
                    break
                b = step_in_epoch
                idx = order[b * args.batch : (b + 1) * args.batch]
                xb = blur_batch(xtr[idx], rng, args.p_blur, args.max_blur_px)
                x = augment(torch.from_numpy(xb)[:, None], tgen, strong=args.aug == "strong")
                y = torch.from_numpy(ytr[idx])
                lam, perm = 1.0, torch.arange(len(idx))
                if args.mixup > 0:
                    lam = float(rng.beta(args.mixup, args.mixup))
                    perm = torch.randperm(len(idx), generator=tgen)
                    x = lam * x + (1 - lam) * x[perm]
                x = ((x - mean) / std).to(device).contiguous(memory_format=torch.channels_last)
                y, y2 = y.to(device), y[perm].to(device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = model(x).float()
                ls = args.label_smoothing
                loss = lam * F.cross_entropy(logits, y, label_smoothing=ls) + (
                    1 - lam
                ) * F.cross_entropy(logits, y2, label_smoothing=ls)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if ema is not None:
                    ema.update(model)
                losses.append(float(loss.item()))
                step_in_epoch += 1
                if step_in_epoch % 20 == 0:
                    log(
                        f"epoch {epoch + 1} step {step_in_epoch}/{steps_per_epoch} "
                        f"loss {np.mean(losses[-20:]):.4f} ({elapsed():.0f} s)"
                    )
                if run.checkpoint_due():
                    save_last()
                if args.smoke and step_in_epoch >= 2:
                    step_in_epoch = steps_per_epoch
            if stopped:
                break
            epoch += 1
            if swa is not None:
                swa.update(model)
                recompute_batchnorm(swa.module, bn_sample, mean, std)
            pv = predict(kept_model(), xva, mean, std)
            vm = binary_metrics(yva, pv)
            history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val": vm})
            log(
                f"epoch {epoch}/{args.epochs} loss {np.mean(losses):.4f} val acc "
                f"{vm['accuracy']} auc {vm['auc']} sens {vm['sensitivity']} "
                f"spec {vm['specificity']} ({elapsed():.0f} s)"
            )
            # Selection: validation AUC + accuracy at 0.5 (AUC alone picked an early, badly
            # calibrated epoch once).
            # With --swa the latest average is kept (decided before training, not by validation).
            sel = (vm["auc"] if not math.isnan(vm["auc"]) else 0.0) + vm["accuracy"]
            if sel > best_sel or swa is not None or not (out / "best.pt").exists():
                best_sel = sel
                save_best({"validation": vm, "epoch": epoch})
            step_in_epoch, losses = 0, []
            order = new_order()
            save_last()
    if stopped:
        save_last()
        log(f"stopped at epoch {epoch} step {step_in_epoch}: checkpoint saved, use --resume")
        return 3

    ck = torch.load(out / "best.pt", map_location=device, weights_only=False)
    metrics: dict[str, Any] = {
        "validation": ck["metrics"].get("validation"),
        "best_epoch": ck["metrics"].get("epoch"),
    }
    tm: dict[str, Any] | None = None
    if args.report_test:
        # Test figures of the best checkpoint (uncalibrated; models.calibrate adds the temperature).
        model.load_state_dict(ck["state_dict"])
        xte = load_array(root, test, args.size)
        yte = np.array([s.label for s in test], dtype=np.int64)
        tm = binary_metrics(yte, predict(model, xte, mean, std))
        split = f"{args.labels.parent.name} split=test (the data set's own)"
        metrics = {"test": {**tm, "split": split}, **metrics}
    ck["metrics"] = metrics
    ck["training"] = training_info()
    torch.save(ck, out / "best.pt")
    (out / "metrics.json").write_text(
        json.dumps({"metrics": metrics, "history": history}, indent=1), encoding="utf-8"
    )
    log(
        f"test: {json.dumps(tm)}"
        if tm is not None
        else "test split not evaluated (--report-test to measure it; models.evaluate for a model "
        "that is shipped)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
