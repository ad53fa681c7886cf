"""Train the pneumonia classifier (EfficientNet-B3, 1 channel, from scratch) on Kermany CXRs.

Data: ``cxr-labeled/labels.csv`` rows with ``dataset == kermany_pediatric`` (224×224 pediatric AP
chest radiographs, NORMAL / PNEUMONIA, CC BY 4.0, Kermany et al. 2018). Training uses
``split == train`` only, divided again **by patient** into train and validation (``--val-fraction``,
seeded); the validation AUC + accuracy picks the best epoch. ``split == test`` is used once at the end for the
reported metrics. No pretrained weights (nothing may be downloaded): the network starts random.

Augmentation (on the fly): random affine (rotation ±10°, scale 0.9–1.1, shift ±6 %), brightness /
contrast / gamma jitter, and **motion blur** from :mod:`models.blur` (probability ``--p-blur``,
linear or trajectory kernels up to 5 px at 224 px, i.e. about 1.5–2 mm at this scale, in linear
exposure, with Poisson noise), so the classifier tolerates the blur the node meets.

Input normalisation: grey values in [0, 1] (the JPEGs are already windowed, matching the node's
``voi_window`` mapping), then ``(x − mean) / std`` with the training set's mean and std, stored in
the checkpoint and the manifest.

Checkpoints: ``OUT/last.pt`` (model, optimiser, epoch, RNG; ``--resume``) every epoch and when
``--max-minutes`` runs out; ``OUT/best.pt`` (best validation AUC + accuracy, with metrics) for export::

    python -m models.export classify --checkpoint OUT/best.pt --out DIR
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass
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
from models.metrics import binary_metrics

CLASSES = ("NORMAL", "PNEUMONIA")
DATASET = "kermany_pediatric"
CITATION = (
    "Kermany D., Zhang K., Goldbaum M., Labeled Optical Coherence Tomography (OCT) and Chest X-Ray "
    "Images for Classification, Mendeley Data v2, doi:10.17632/rscbjbr9sj.2 (CC BY 4.0); copies "
    "resized to 224x224 by github waliatushar/ai-pneumonia-detection"
)


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    patient: str


def read_kermany(labels_csv: Path, split: str) -> list[Sample]:
    """Kermany rows of ``labels.csv`` with the given ``split`` column value."""
    out: list[Sample] = []
    with labels_csv.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["dataset"] == DATASET and row["split"] == split:
                out.append(Sample(row["path"], CLASSES.index(row["label"]), row["patient_id"]))
    return out


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
    """[N, size, size] float32 grey values in [0, 1] (resized bilinearly if needed)."""
    arrs = []
    for s in samples:
        a = load_gray(root / s.path).astype(np.float32) / 255.0
        if a.shape != (size, size):
            t = torch.from_numpy(a)[None, None]
            r = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
            a = r[0, 0].numpy()
        arrs.append(a)
    return np.stack(arrs).astype(np.float32)


def blur_batch(
    x: NDArray[np.float32], rng: np.random.Generator, p_blur: float, max_len: float
) -> NDArray[np.float32]:
    out = x.copy()
    for i in range(len(out)):
        if rng.random() < p_blur:
            k = random_kernel(rng, 1.0, max_len)
            photons = float(math.exp(rng.uniform(math.log(2000.0), math.log(50000.0))))
            out[i] = simulate_motion_blur(out[i], k, rng, noise=NoiseSpec(photons=photons))
    return out


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine + brightness/contrast/gamma on a [N,1,S,S] batch in [0, 1]."""
    n = x.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    ang = u(-10, 10) * math.pi / 180
    sc = u(0.9, 1.1)
    tx, ty = u(-0.06, 0.06), u(-0.06, 0.06)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(
        x.dtype
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gamma = u(0.8, 1.25)[:, None, None, None]
    x = x.clamp(0, 1) ** gamma
    contrast = u(0.85, 1.15)[:, None, None, None]
    bright = u(-0.06, 0.06)[:, None, None, None]
    m = x.mean(dim=(2, 3), keepdim=True)
    return ((x - m) * contrast + m + bright).clamp(0, 1)


@torch.no_grad()
def predict(
    model: nn.Module, x: NDArray[np.float32], mean: float, std: float, batch: int = 32
) -> NDArray[np.float64]:
    """P(PNEUMONIA) for [N,S,S] grey images in [0, 1]."""
    model.eval()
    probs = []
    for i in range(0, len(x), batch):
        t = (torch.from_numpy(x[i : i + batch])[:, None] - mean) / std
        probs.append(torch.softmax(model(t), dim=1)[:, 1].double().numpy())
    return np.concatenate(probs) if probs else np.zeros(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--labels", type=Path, required=True, help="cxr-labeled/labels.csv")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--arch", default=DEFAULT_ARCH, choices=ARCHITECTURES)
    ap.add_argument("--size", type=int, default=DEFAULT_SIZE)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--p-blur", type=float, default=0.3)
    ap.add_argument("--max-blur-px", type=float, default=5.0)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--max-minutes", type=float, default=0.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--smoke", action="store_true", help="two tiny steps, to test the pipeline")
    args = ap.parse_args(argv)
    if args.smoke:
        args.size, args.batch, args.epochs = 64, 2, 1

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

    root = args.labels.parent
    train_all = read_kermany(args.labels, "train")
    test = read_kermany(args.labels, "test")
    train, val = split_patients(train_all, args.val_fraction, args.seed)
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
        f"val {len(val)}, test {len(test)}; mean {mean:.4f} std {std:.4f}; device {device}"
    )

    model = build_classifier(args.arch).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(train) // args.batch)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=total, pct_start=0.15
    )
    rng = np.random.default_rng(args.seed)
    tgen = torch.Generator().manual_seed(args.seed)
    epoch, best_auc, history = 0, -1.0, []
    elapsed_before = 0.0
    if args.resume and (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        epoch, best_auc, history = ck["epoch"], ck["best_auc"], ck["history"]
        elapsed_before = ck["elapsed_s"]
        rng.bit_generator.state = ck["rng"]
        tgen.set_state(ck["tgen"])
        log(f"resumed after epoch {epoch}")
    t0 = time.time()

    def elapsed() -> float:
        return elapsed_before + time.time() - t0

    def training_info() -> dict[str, Any]:
        return {
            "dataset": f"cxr-labeled {DATASET} (split=train only)",
            "citation": CITATION,
            "train_images": len(train),
            "val_images": len(val),
            "train_patients": len({s.patient for s in train}),
            "split": f"labels.csv split=train divided by patient, val fraction "
            f"{args.val_fraction}, seed {args.seed}",
            "input_size": args.size,
            "epochs": epoch,
            "batch": args.batch,
            "optimizer": f"AdamW lr {args.lr} one-cycle, wd {args.weight_decay}",
            "label_smoothing": args.label_smoothing,
            "augmentation": f"affine rot10/scale0.9-1.1/shift6%, brightness/contrast/gamma, "
            f"motion blur p={args.p_blur} up to {args.max_blur_px}px (models.blur)",
            "pretrained": False,
            "device": str(device),
            "train_seconds": round(elapsed(), 1),
        }

    def save_last() -> None:
        torch.save(
            {
                "state_dict": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch,
                "best_auc": best_auc,
                "history": history,
                "elapsed_s": elapsed(),
                "rng": rng.bit_generator.state,
                "tgen": tgen.get_state(),
            },
            out / "last.pt.tmp",
        )
        (out / "last.pt.tmp").replace(out / "last.pt")

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
                "state_dict": model.state_dict(),
                "training": training_info(),
                "metrics": metrics,
            },
            out / "best.pt",
        )

    deadline = args.max_minutes * 60 if args.max_minutes > 0 else math.inf
    stopped = False
    while epoch < args.epochs:
        model.train()
        order = rng.permutation(len(train))
        losses = []
        for b in range(steps_per_epoch):
            if elapsed() > deadline:
                stopped = True
                break
            idx = order[b * args.batch : (b + 1) * args.batch]
            xb = blur_batch(xtr[idx], rng, args.p_blur, args.max_blur_px)
            x = augment(torch.from_numpy(xb)[:, None], tgen)
            x = ((x - mean) / std).to(device)
            y = torch.from_numpy(ytr[idx]).to(device)
            loss = F.cross_entropy(model(x), y, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if args.smoke and b >= 1:
                break
        if stopped:
            break
        epoch += 1
        pv = predict(model, xva, mean, std)
        vm = binary_metrics(yva, pv)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val": vm})
        log(
            f"epoch {epoch}/{args.epochs} loss {np.mean(losses):.4f} val acc {vm['accuracy']} "
            f"auc {vm['auc']} ({elapsed():.0f} s)"
        )
        # Selection: validation AUC + accuracy (AUC alone picked an early, badly calibrated epoch
        # with the same AUC; accuracy at 0.5 reflects calibration too).
        sel = (vm["auc"] if not math.isnan(vm["auc"]) else 0.0) + vm["accuracy"]
        if sel > best_auc or not (out / "best.pt").exists():
            best_auc = sel
            save_best({"validation": vm, "epoch": epoch})
        save_last()
    if stopped:
        save_last()
        log(f"time limit reached after epoch {epoch}: checkpoint saved, use --resume")

    # Test metrics of the best checkpoint.
    ck = torch.load(out / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(ck["state_dict"])
    xte = load_array(root, test, args.size)
    yte = np.array([s.label for s in test], dtype=np.int64)
    tm = binary_metrics(yte, predict(model, xte, mean, std))
    metrics = {
        "test": {**tm, "split": "labels.csv kermany_pediatric split=test (patient-disjoint)"},
        "validation": ck["metrics"].get("validation"),
        "best_epoch": ck["metrics"].get("epoch"),
    }
    ck["metrics"] = metrics
    ck["training"] = training_info()
    torch.save(ck, out / "best.pt")
    (out / "metrics.json").write_text(
        json.dumps({"metrics": metrics, "history": history}, indent=1), encoding="utf-8"
    )
    log(f"test: {json.dumps(tm)}")
    return 3 if stopped else 0


if __name__ == "__main__":
    raise SystemExit(main())
