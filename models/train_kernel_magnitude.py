"""Train the learned kernel magnitude (:class:`models.kernel_magnitude_net.KernelMagnitudeNet`).

Commands:

- ``bank``: simulated cases from the radiographs of ``../shared/data`` — MHH training patients
  (``cxr-radiographs-mhh``, 256–384 px crops and whole 640 px frames, 3–14 px of motion) and
  Kermany's official *train* split (``kermany-full``, whole 224 px frames, 3–10 px), a third of
  them with random collimation bands and a marker (:func:`random_collimation`) — curved
  (70 %) and straight paths, noise none / 10⁵ / 3·10⁴ / 10⁴ / 3·10³ quanta per pixel; input the
  blurred frame's :func:`models.kernel_shape.spectrum_input`, target the kernel's centred |K|.
  Held out of the bank: the patients of ``models.tune_balance``'s fitting and validation images
  and of :func:`kermany_validation` (the images the shape step is validated on), and every test
  split.
- ``validate-kermany``: the shape step against the straight kernel on Kermany training images
  never banked; ``summary`` the rule's figures for these rows or ``models.tune_balance
  shape-validate``'s.
- ``train``: Adam, cosine schedule, batch 32, the spectrum's point symmetry as augmentation; a
  checkpoint (weights and optimiser) every 200 steps, resumed when it exists.

``python -m models.train_kernel_magnitude bank --out runs/kmag-bank.npz`` then
``python -m models.train_kernel_magnitude train --bank runs/kmag-bank.npz --out runs/kmag.pt``,
then ``python -m models.kernel_magnitude_net --checkpoint runs/kmag.pt --out FOLDER``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio

from models.blur import (
    NoiseSpec,
    linear_kernel,
    motion_kernel,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray, split_by_patient
from models.detector_texture import continued
from models.kernel_magnitude_net import KernelMagnitudeNet, dihedral
from models.kernel_shape import (
    DETECTOR_MAX_LENGTH_PX,
    GRID,
    effective_thresholds,
    load_magnitude_model,
    magnitude_of,
    shape_threshold,
    spectrum_input,
)
from models.noise_level import quanta_per_pixel
from models.tune_balance import image_lists
from models.tune_deconvolution import collimate

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
NOISE: tuple[float | None, ...] = (None, 1e5, 3e4, 1e4, 3e3)
LOG_RANGE = 3.0
#: Share of bank cases with collimation bands and a marker (hard edges the spectrum must look past).
COLLIMATED_SHARE = 0.35


#: Every KERMANY_VALIDATION_STEP-th Kermany training image (from the offset) is a validation image.
KERMANY_VALIDATION_STEP = 50
KERMANY_VALIDATION_OFFSET = 25
#: The least frame side the step was validated with on Kermany's 224 px frames (the node's
#: default, 384, keeps all of them straight: validate-kermany would measure nothing).
AS_BUILT_SMALLEST_FRAME_PX = 2 * GRID


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


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


def random_collimation(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What real radiographs have and clean crops lack: unexposed bands (flat, near 0) on one to
    three sides, 4-20 % wide, and sometimes a dense marker (grey 1); hard edges."""
    out = img.copy()
    h, w = out.shape
    level = float(rng.uniform(0.0, 0.05))
    for side in rng.choice(4, size=int(rng.integers(1, 4)), replace=False):
        f = float(rng.uniform(0.04, 0.2))
        if side == 0:
            out[: int(f * h), :] = level
        elif side == 1:
            out[h - int(f * h) :, :] = level
        elif side == 2:
            out[:, : int(f * w)] = level
        else:
            out[:, w - int(f * w) :] = level
    if rng.random() < 0.5:
        mh, mw = int(rng.uniform(0.03, 0.08) * h), int(rng.uniform(0.05, 0.12) * w)
        y0, x0 = int(rng.integers(0, h - mh)), int(rng.integers(0, w - mw))
        out[y0 : y0 + mh, x0 : x0 + mw] = 1.0
    return out


def bank_case(
    img: np.ndarray, length: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One bank case of a (collimated or not) frame: a curved (70 %) or straight path of
    ``length`` px, one of the noise levels; (the blurred frame's spectrum input, the kernel's
    centred |K|)."""
    k = (
        trajectory_kernel(length, rng)
        if rng.random() < 0.7
        else linear_kernel(length, float(rng.uniform(0, 180)))
    )
    q = NOISE[int(rng.integers(len(NOISE)))]
    b = simulate_motion_blur(img, k, rng, noise=NoiseSpec(q))
    x = spectrum_input(to_exposure(b.astype(np.float64), LOG_RANGE))
    return x, np.fft.fftshift(magnitude_of(k)).astype(np.float32)


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
        if rng.random() < COLLIMATED_SHARE:
            img = random_collimation(img, rng)
        x, y = bank_case(img, length, rng)
        xs.append(x)
        ys.append(y)
        if i % 1000 == 0:
            print(f"bank {i}/{samples} {time.time() - t0:.0f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, x=np.stack(xs), y=np.stack(ys))


def bank_detector(
    shared: Path, samples: int, out: Path, seed: int = 21, cases_per_scene: int = 40
) -> None:
    """Cases at detector scale for the native-pixel network: the MHH images :func:`bank` may use,
    as detector-like scenes (:func:`models.detector_texture.continued`: ×3 upsampled to 0.2 mm,
    one scene in three ×2 to 0.3 mm, 1536² at most), ``cases_per_scene`` cases from each: a
    512–1024 px crop, a third with collimation bands, 4–32 px of curved (70 %) or straight
    motion, noise as :func:`bank`; input and target as there."""
    mhh, _ = bank_sources(shared)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    t0 = time.time()
    scene: np.ndarray | None = None
    for i in range(samples):
        if i % cases_per_scene == 0:
            name = mhh[int(rng.integers(len(mhh)))]
            up = 2 if rng.random() < 1 / 3 else 3
            base = load_gray(name).astype(np.float32) / 255.0
            scene = continued(base, 1536, int(rng.integers(2**31)), up=up)
        assert scene is not None
        c = int(rng.integers(512, min(1024, *scene.shape) + 1))
        y0 = int(rng.integers(0, scene.shape[0] - c + 1))
        x0 = int(rng.integers(0, scene.shape[1] - c + 1))
        img = scene[y0 : y0 + c, x0 : x0 + c]
        if rng.random() < COLLIMATED_SHARE:
            img = random_collimation(img, rng)
        length = float(rng.uniform(4.0, DETECTOR_MAX_LENGTH_PX))
        x, y = bank_case(img, length, rng)
        xs.append(x)
        ys.append(y)
        if i % 500 == 0:
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


def load_banks(banks: list[Path]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(x, y, n_holdout): the banks concatenated; the first tenth of the *first* bank is the
    holdout (so a bank added later leaves the earlier holdout, and its figure, as they were)."""
    xs, ys = [], []
    for f in banks:
        d = np.load(f)
        xs.append(torch.from_numpy(d["x"])[:, None])
        ys.append(torch.from_numpy(d["y"])[:, None])
    return torch.cat(xs), torch.cat(ys), len(xs[0]) // 10


def train(
    banks: list[Path],
    out: Path,
    steps: int,
    seed: int = 0,
    lr: float = 1e-3,
    init: Path | None = None,
    augment: str = "flip",
) -> dict[str, float]:
    """Train (or resume) the magnitude network on ``banks``: Adam at ``lr``, cosine to 0 over
    ``steps``, batch 32, MSE on |K|; ``init``: start from those weights (a warm start);
    ``augment``: ``flip`` (the second network's: every other batch mirrored, as a plain flip)
    or ``dihedral`` (each batch one of the 8 symmetries, the frequencies negated exactly)."""
    x, y, nval = load_banks(banks)
    torch.manual_seed(seed)
    net = KernelMagnitudeNet()
    if init is not None:
        net.load_state_dict(torch.load(init, weights_only=True))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
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
        if augment == "dihedral":
            which = int(torch.randint(8, ()))
            xb, yb = dihedral(xb, which), dihedral(yb, which)
        elif step % 2:  # the spectrum is point-symmetric: a flip is a valid other case
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


def validate_kermany(
    shared: Path,
    magnitude_folder: Path,
    images: int,
    out: Path,
    spacing_mm: float = 0.6,
    first: int = 0,
    arbitrate: bool = False,
    smallest_frame_px: int = AS_BUILT_SMALLEST_FRAME_PX,
) -> list[dict[str, Any]]:
    """The shape step against the straight kernel on :func:`kermany_validation` images (whole
    224 px frames; ``spacing_mm`` assumed, as the node assumes a spacing for a header without
    one): straight and curved paths of 4 / 7 px, the noise levels of the bank. Rows as
    ``models.tune_balance shape-validate``'s (``gain_fixed`` straight, ``gain_noise`` shaped)."""
    policy = MotionPolicy()
    shaping = dataclasses.replace(
        policy, shape_arbitrate=arbitrate, shape_smallest_frame_px=smallest_frame_px
    )
    magnitude = load_magnitude_model(magnitude_folder)
    data = shared / "kermany-full"
    rows: list[dict[str, Any]] = []
    for name in kermany_validation(data)[first : first + images]:
        rng = np.random.default_rng(zlib.crc32(f"kermany-validate/{name}".encode()))
        sharp = load_gray(data / name).astype(np.float32) / 255.0
        for kind in ("straight", "curved"):
            for px in (4.0, 7.0):
                k = motion_kernel(kind, px, rng)
                for q in NOISE:
                    b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                    a = assess_motion(b, spacing_mm, policy)
                    row: dict[str, Any] = {
                        "image": name,
                        "scene": "kermany",
                        "kind": kind,
                        "px": px,
                        "quanta": q,
                        "flagged": a.blurred,
                        "estimated_px": a.estimate.length_px,
                    }
                    if a.blurred:
                        base = psnr(sharp, b)
                        plain = deconvolve(b, a, policy)
                        shaped = deconvolve(b, a, shaping, magnitude=magnitude)
                        row["gain_fixed"] = psnr(sharp, plain.image) - base
                        row["gain_noise"] = psnr(sharp, shaped.image) - base
                        row["shape_replaced"] = shaped.curved
                    rows.append(row)
        out.write_text(json.dumps(rows))
        print(name, len(rows), flush=True)
    return rows


DETECTOR_LENGTHS_MM = (1.0, 2.0, 4.0)
DETECTOR_NOISE: tuple[float | None, ...] = (None, 3e4, 1e4)


def validate_detector(
    shared: Path,
    detector_folder: Path,
    images: int,
    out: Path,
    *,
    fitting: bool = False,
    first: int = 0,
    side: int = 1024,
    collimated: bool = True,
) -> list[dict[str, Any]]:
    """The native-pixel shape step at detector scale on ``models.tune_balance``'s validation (or,
    ``fitting``, fitting) images as detector-like scenes (:func:`models.detector_texture.
    continued`, ×3 to 0.2 mm, ``side``² centre; open and, ``collimated``, with
    :func:`models.tune_deconvolution.collimate`): straight and curved motion of 1 / 2 / 4 mm
    (5 / 10 / 20 px), noise none / 3·10⁴ / 10⁴. Per flagged case the node as built (no shape
    step at these pixels: ``gain_fixed``), the straight kernel with the step's λ (read, kept:
    ``gain_checked``) and the retrieved kernel (``gain_retrieved``), with the predicted
    magnitude's distance from the straight kernel's and the frame's τ class (``quiet``), so that
    :func:`detector_summary` can score any τ."""
    policy = MotionPolicy()
    magnitude = load_magnitude_model(detector_folder)
    # every read frame's kernel replaced, whatever path it then takes (the summary applies τ and
    # the eighteenth round's fallback rule)
    always = dataclasses.replace(
        policy,
        shape_thresholds=(0.0, 0.0),
        shape_detector_thresholds=(0.0, 0.0),
        shape_detector_fallback_unshaped=False,
        # the step as the sixteenth round ran it: every frame, no limit, λ halved where read
        shape_detector_min_quanta=None,
        shape_detector_max_specificity=None,
        shape_detector_kept_halved=True,
    )
    mhh = shared / "cxr-radiographs-mhh"
    fit, validation = image_lists(mhh)
    names = (fit if fitting else validation)[first : first + images]
    rows: list[dict[str, Any]] = []
    for name in names:
        seed = zlib.crc32(f"detector-validate/{name}".encode())
        rng = np.random.default_rng(seed)
        base = load_gray(mhh / name).astype(np.float32) / 255.0
        open_scene = continued(base, side, seed)
        scenes = [("0.2/open", open_scene)]
        if collimated:
            scenes.append(("0.2/collimated", collimate(open_scene)))
        for scene, sharp in scenes:
            for kind in ("straight", "curved"):
                for mm in DETECTOR_LENGTHS_MM:
                    k = motion_kernel(kind, mm / 0.2, rng)
                    for q in DETECTOR_NOISE:
                        b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                        a = assess_motion(b, 0.2, policy)
                        row: dict[str, Any] = {
                            "image": name,
                            "scene": scene,
                            "kind": kind,
                            "px": mm / 0.2,
                            "quanta": q,
                            "flagged": a.blurred,
                            "estimated_px": a.estimate.length_px,
                        }
                        if a.blurred:
                            p0 = psnr(sharp, b)
                            built = deconvolve(b, a, policy)
                            forced = deconvolve(
                                b, a, always, magnitude=magnitude, detector_magnitude=magnitude
                            )
                            row["gain_fixed"] = psnr(sharp, built.image) - p0
                            shape = forced.shape
                            if shape is not None and shape.checked:
                                kept = dataclasses.replace(
                                    shape, kernel=a.estimate.kernel(), replaced=False
                                )
                                checked = deconvolve(b, a, policy, shape=kept)
                                row["gain_checked"] = psnr(sharp, checked.image) - p0
                                row["gain_retrieved"] = psnr(sharp, forced.image) - p0
                                row["retrieved_method"] = forced.method
                                row["distance"] = shape.distance
                                row["quiet"] = shape_threshold(_frame_quanta(b)) == shape_threshold(
                                    None
                                )
                        rows.append(row)
        out.write_text(json.dumps(rows))
        print(name, len(rows), flush=True)
    return rows


def _frame_quanta(image01: np.ndarray) -> float | None:
    try:
        return quanta_per_pixel(to_exposure(image01.astype(np.float64), LOG_RANGE))
    except ValueError:
        return None


def detector_summary(
    rows: list[dict[str, Any]],
    thresholds: tuple[float, float] | None = None,
    least_px: float = 0.0,
    fallback_unshaped: bool = False,
) -> dict[str, Any]:
    """:func:`validate_detector`'s rows scored as the step with τ ``thresholds`` (quiet, noisy;
    the validated rule's where None) would run: the retrieved kernel where the distance is
    above τ, the straight one with the step's λ where the step read the frame and kept it, the
    node as built where it did not run (and, ``least_px``, where the estimated motion is
    shorter than that; and, ``fallback_unshaped``, where the retrieved kernel's Wiener result
    rang: ``MotionPolicy.shape_detector_fallback_unshaped``); then :func:`shape_summary`'s
    figures."""
    quiet, noisy = effective_thresholds(thresholds)
    scored = []
    for r in rows:
        r = dict(r)
        if r.get("flagged"):
            if "distance" in r:
                tau = quiet if r["quiet"] else noisy
                retrieved = r["gain_retrieved"]
                if fallback_unshaped and r.get("retrieved_method") == "richardson-lucy":
                    retrieved = r["gain_fixed"]
                r["gain_noise"] = retrieved if r["distance"] > tau else r["gain_checked"]
            else:
                r["gain_noise"] = r["gain_fixed"]
        scored.append(r)
    return shape_summary(scored, least_px)


TAU_GRID = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)


def detector_tau_choice(
    rows: list[dict[str, Any]],
    grid: tuple[float, ...] = TAU_GRID,
    max_fall: float = 0.05,
    least_grid: tuple[float, ...] = (0.0,),
    fallback_unshaped: bool = False,
) -> dict[str, Any]:
    """Every τ pair (quiet, noisy) of ``grid`` (and least estimated motion of ``least_grid``)
    scored by :func:`detector_summary`; the choice of the sixteenth round's rule: the best mean
    over the flagged cases among the pairs whose largest group fall is at most ``max_fall`` dB
    (None: no such pair)."""
    scores = []
    for least in least_grid:
        for quiet in grid:
            for noisy in grid:
                summary = detector_summary(rows, (quiet, noisy), least, fallback_unshaped)
                scores.append(
                    {
                        "thresholds": [quiet, noisy],
                        "least_px": least,
                        "all": summary["all"],
                        "curved": summary["curved"],
                        "largest_group_fall": summary["largest_group_fall"],
                    }
                )
    admissible = [x for x in scores if x["largest_group_fall"] >= -max_fall]
    best = max(admissible, key=lambda x: x["all"]) if admissible else None
    return {"chosen": best, "pairs": sorted(scores, key=lambda x: -x["all"])}


def shape_summary(rows: list[dict[str, Any]], least_px: float = 0.0) -> dict[str, Any]:
    """Per group (scene, kind, length, noise) the straight and the shaped mean gain; overall,
    the curved-without-noise difference and the largest fall of a group (the rule's figures).
    ``least_px``: the shape step as if it kept the straight kernel for an estimated motion
    shorter than this (at 0.6 mm/px the network's scale: ``MIN_NET_LENGTH_PX``)."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r.get("flagged") and "gain_noise" in r:
            key = f"{r['scene']} {r['kind']} {r['px']:g}px q={r['quanta']}"
            short = least_px > 0 and float(r["estimated_px"]) < least_px
            shaped = r["gain_fixed"] if short else r["gain_noise"]
            groups.setdefault(key, []).append((r["gain_fixed"], shaped))
    table = {
        k: {
            "cases": len(v),
            "straight": round(float(np.mean([a for a, _ in v])), 3),
            "shape": round(float(np.mean([b for _, b in v])), 3),
        }
        for k, v in sorted(groups.items())
    }
    every = [x for v in groups.values() for x in v]
    curved = [x for k, v in groups.items() if " curved " in k and k.endswith("q=None") for x in v]
    curved_all = [x for k, v in groups.items() if " curved " in k for x in v]

    def diff(v: list[tuple[float, float]]) -> float:
        return round(float(np.mean([b - a for a, b in v])), 3) if v else float("nan")

    return {
        "groups": table,
        "cases": len(every),
        "all": diff(every),
        "curved_noiseless": diff(curved),
        "curved": diff(curved_all),
        "largest_group_fall": min((diff(v) for v in groups.values()), default=float("nan")),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bank")
    b.add_argument("--shared", type=Path, default=SHARED)
    b.add_argument("--samples", type=int, default=12000)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--seed", type=int, default=11, help="another seed draws other cases")
    b.add_argument(
        "--detector",
        action="store_true",
        help="detector-scale cases for the native-pixel network (bank_detector; seed 21 default)",
    )
    t = sub.add_parser("train")
    t.add_argument(
        "--bank", nargs="+", type=Path, required=True, help="the first one's first tenth: holdout"
    )
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--init", type=Path, default=None, help="start from these weights")
    t.add_argument("--augment", choices=("flip", "dihedral"), default="flip")
    v = sub.add_parser("validate-kermany")
    v.add_argument("--shared", type=Path, default=SHARED)
    v.add_argument("--magnitude", type=Path, required=True, help="kernel_magnitude model folder")
    v.add_argument("--images", type=int, default=24)
    v.add_argument("--first", type=int, default=0, help="from this validation image on")
    v.add_argument("--arbitrate", action="store_true", help="MotionPolicy.shape_arbitrate")
    v.add_argument(
        "--smallest-frame",
        type=int,
        default=AS_BUILT_SMALLEST_FRAME_PX,
        help="the step's least frame side (px; default 128, as the step was built: the node's "
        "384 keeps every 224 px Kermany frame straight)",
    )
    v.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("validate-detector")
    d.add_argument("--shared", type=Path, default=SHARED)
    d.add_argument("--magnitude", type=Path, required=True, help="the native-pixel model folder")
    d.add_argument("--images", type=int, default=24)
    d.add_argument("--first", type=int, default=0)
    d.add_argument("--fitting", action="store_true", help="tune_balance's fitting images")
    d.add_argument("--open-only", action="store_true", help="no collimated scenes")
    d.add_argument("--out", type=Path, required=True)
    ds = sub.add_parser("detector-summary")
    ds.add_argument("--rows", nargs="+", type=Path, required=True)
    ds.add_argument("--thresholds", nargs=2, type=float, default=None, help="τ quiet, noisy")
    ds.add_argument("--choose", action="store_true", help="every τ pair and the round's choice")
    ds.add_argument(
        "--fallback-unshaped",
        action="store_true",
        help="where the retrieved kernel's Wiener result rang, as without the step",
    )
    ds.add_argument(
        "--least-px",
        nargs="+",
        type=float,
        default=[0.0],
        help="straight kernel, unread, below this estimated motion (several: --choose over them)",
    )
    m = sub.add_parser("summary")
    m.add_argument("--rows", nargs="+", type=Path, required=True)
    m.add_argument(
        "--least-px", type=float, default=0.0, help="straight kernel below this estimated motion"
    )
    args = ap.parse_args(argv)
    if args.cmd == "validate-kermany":
        validate_kermany(
            args.shared,
            args.magnitude,
            args.images,
            args.out,
            first=args.first,
            arbitrate=args.arbitrate,
            smallest_frame_px=args.smallest_frame,
        )
    elif args.cmd == "validate-detector":
        validate_detector(
            args.shared,
            args.magnitude,
            args.images,
            args.out,
            fitting=args.fitting,
            first=args.first,
            collimated=not args.open_only,
        )
    elif args.cmd == "detector-summary":
        rows_d: list[dict[str, Any]] = []
        for f in args.rows:
            rows_d += json.loads(f.read_text(encoding="utf-8"))
        th = tuple(args.thresholds) if args.thresholds else None
        found = (
            detector_tau_choice(
                rows_d, least_grid=tuple(args.least_px), fallback_unshaped=args.fallback_unshaped
            )
            if args.choose
            else detector_summary(rows_d, th, args.least_px[0], args.fallback_unshaped)
        )
        print(json.dumps(found, indent=1))
    elif args.cmd == "summary":
        rows: list[dict[str, Any]] = []
        for f in args.rows:
            rows += json.loads(f.read_text(encoding="utf-8"))
        print(json.dumps(shape_summary(rows, args.least_px), indent=1))
    elif args.cmd == "bank":
        if args.detector:
            bank_detector(args.shared, args.samples, args.out, seed=args.seed)
        else:
            bank(args.shared, args.samples, args.out, seed=args.seed)
    else:
        result = train(
            args.bank, args.out, args.steps, lr=args.lr, init=args.init, augment=args.augment
        )
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
