"""The eighth and ninth rounds (docs/models.md, "Short motion in noisy frames"): the motion
estimate with the frame's measured white noise subtracted from its spectrum (``subtract``: always;
``second_look``: only where the estimate without it finds no motion), against
sharpray-blind-wiener 0.8.0's estimate (``built``: no subtraction).

Everything the node does follows from its estimate (the gate's decision, the kernel, the
correction), so the candidates are compared **whole**: each assesses and corrects every case with its own
estimate, and a case it leaves uncorrected gains 0 dB (the node returns it unchanged). Cases: the
fitting or validation images of :mod:`models.tune_balance`, or fresh training images neither uses
(:func:`images`), its scenes (384² at 0.6 mm/px and ×3 upsampled 768² at 0.2 mm/px, open and collimated),
sharp and blurred by straight and curved motion of :data:`LENGTHS` pixels, at :data:`NOISE`.

Usage: ``python -m models.tune_estimate run --data ../shared/data/cxr-radiographs-mhh --out
runs/estimate/rows-0.json --part 0/2 [--images fit|validation|fresh]``, then ``python -m
models.tune_estimate summary --rows runs/estimate/rows-*.json [--candidate second_look]``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray, split_by_patient
from models.kernel_shape import MagnitudeEstimator, load_magnitude_model
from models.tune_balance import BUNDLED_MAGNITUDE, VALIDATION_IMAGES, image_lists, scenes

#: Motion lengths (px) per scale; 0 is the sharp scene (do no harm).
LENGTHS = {"0.6": (0.0, 3.0, 6.0, 10.0), "0.2": (0.0, 5.0, 10.0, 20.0)}
NOISE: tuple[float | None, ...] = (None, 3e4, 1e4, 3e3)
#: The rule, written before the figures: mean gain over the blurred cases at least this much
#: higher, no group lower by more than MAX_GROUP_LOSS, no more sharp scenes flagged.
MIN_MEAN_GAIN = 0.1
MAX_GROUP_LOSS = 0.15


def candidates() -> dict[str, MotionPolicy]:
    """0.8.0's estimate (``built``) and the two candidates."""
    # sharpray-blind-wiener 0.8.0: the estimate without any noise subtraction
    built = MotionPolicy(estimate_noise_subtraction="never")
    return {
        "built": built,
        "subtract": dataclasses.replace(built, estimate_noise_subtraction="always"),
        "second_look": dataclasses.replace(built, estimate_noise_subtraction="second_look"),
    }


def _psnr(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def _seed(name: str) -> int:
    return int(hashlib.sha256(f"estimate:{name}".encode()).hexdigest()[:8], 16)


def case_row(
    sharp: NDArray[np.float32],
    blurred: NDArray[np.float32],
    spacing: float,
    policies: dict[str, MotionPolicy],
    magnitude: MagnitudeEstimator | None,
) -> dict[str, Any]:
    """Each policy's decision, estimate and PSNR gain (0 where it leaves the frame as it is)."""
    base = _psnr(sharp, blurred)
    row: dict[str, Any] = {}
    for label, pol in policies.items():
        a = assess_motion(blurred, spacing, pol)
        row[f"flagged_{label}"] = a.blurred
        row[f"estimated_px_{label}"] = a.estimate.length_px
        gain = 0.0
        if a.blurred:
            d = deconvolve(blurred, a, pol, magnitude=magnitude)
            gain = _psnr(sharp, d.image) - base
            row[f"method_{label}"] = d.method
        row[f"gain_{label}"] = gain
    return row


def images(data: Path, which: str) -> list[str]:
    """``fit``: tune_balance's fitting images; ``validation``: its validation images; ``fresh``:
    the training images of patients outside the fit that neither uses (a second validation)."""
    fit, validation = image_lists(data)
    if which == "fit":
        return fit
    if which == "validation":
        return validation
    train = split_by_patient(data, 0.2, 0).train
    with (data / "metadata.csv").open(newline="", encoding="utf-8") as f:
        patient = {row["path"]: row["patient_id"] for row in csv.DictReader(f)}
    seen = {patient[n] for n in fit}
    used = set(validation)
    return [n for n in train if patient[n] not in seen and n not in used][:VALIDATION_IMAGES]


def run(
    data: Path, part: tuple[int, int], out: Path, magnitude_folder: Path, which: str = "validation"
) -> list[dict[str, Any]]:
    names = images(data, which)[part[0] :: part[1]]
    policies = candidates()
    magnitude = load_magnitude_model(magnitude_folder)
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for name in names:
        rng = np.random.default_rng(_seed(name))
        base = load_gray(data / name).astype(np.float32) / 255.0
        for scene, spacing, sharp in scenes(base, rng, True):
            for px in LENGTHS[scene.split("/")[0]]:
                for kind in ("straight", "curved") if px else ("sharp",):
                    k = np.ones((1, 1)) if not px else motion_kernel(kind, px, rng)
                    for q in NOISE:
                        b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q) if q else None)
                        row = {"image": name, "scene": scene, "kind": kind, "px": px, "quanta": q}
                        row.update(case_row(sharp, b, spacing, policies, magnitude))
                        rows.append(row)
        print(f"{name}: {len(rows)} cases, {time.time() - t0:.0f} s", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows))
    return rows


def with_second_look(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the ninth round's candidate added (``second_look``): the estimate as built,
    and only where it finds no motion the noise-subtracted one (each case's outcome follows
    from the two candidates' own)."""
    out = []
    for r in rows:
        look = not r["flagged_built"]
        out.append(
            {
                **r,
                "flagged_second_look": r["flagged_subtract"] if look else True,
                "gain_second_look": r["gain_subtract"] if look else r["gain_built"],
            }
        )
    return out


def summarise(rows: list[dict[str, Any]], candidate: str = "subtract") -> dict[str, Any]:
    """Mean gains over the blurred cases, the groups' differences, sharp scenes flagged, and
    whether the rule is met, for ``candidate`` against the node as built."""
    if candidate == "second_look" and rows and "gain_second_look" not in rows[0]:
        rows = with_second_look(rows)  # the eighth round's rows: derived from its two candidates
    labels = ("built", candidate)
    blurred = [r for r in rows if r["px"]]
    sharp = [r for r in rows if not r["px"]]
    groups: dict[str, list[float]] = {}
    for r in blurred:
        key = f"{r['scene']}/{r['kind']}/{r['px']:g}px/{r['quanta'] or 0:g}"
        groups.setdefault(key, []).append(r[f"gain_{candidate}"] - r["gain_built"])
    delta = {k: round(float(np.mean(v)), 3) for k, v in sorted(groups.items())}
    mean = {
        label: round(float(np.mean([r[f"gain_{label}"] for r in blurred])), 3) for label in labels
    }
    flagged = {
        label: {
            "sharp": sum(bool(r[f"flagged_{label}"]) for r in sharp),
            "blurred": sum(bool(r[f"flagged_{label}"]) for r in blurred),
        }
        for label in labels
    }
    gain = mean[candidate] - mean["built"]
    worst = min(delta.values(), default=0.0)
    met = (
        gain >= MIN_MEAN_GAIN
        and worst >= -MAX_GROUP_LOSS
        and flagged[candidate]["sharp"] <= flagged["built"]["sharp"]
    )
    return {
        "candidate": candidate,
        "cases": {"blurred": len(blurred), "sharp": len(sharp)},
        "mean_gain_db": mean,
        "delta_db": round(gain, 3),
        "lowest_group_delta_db": worst,
        "flagged": flagged,
        "group_delta_db": delta,
        "rule_met": met,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("run", "summary"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data/cxr-radiographs-mhh"))
    ap.add_argument("--out", type=Path, default=Path("runs/estimate/rows.json"))
    ap.add_argument("--part", default="0/1", help="I/K: every K-th validation image from the I-th")
    ap.add_argument("--magnitude", type=Path, default=BUNDLED_MAGNITUDE)
    ap.add_argument("--rows", nargs="*", type=Path, default=[])
    ap.add_argument("--images", choices=("fit", "validation", "fresh"), default="validation")
    ap.add_argument("--candidate", choices=("subtract", "second_look"), default="subtract")
    args = ap.parse_args(argv)
    if args.command == "summary":
        rows: list[dict[str, Any]] = []
        for f in args.rows:
            rows += json.loads(f.read_text(encoding="utf-8"))
        print(json.dumps(summarise(rows, args.candidate), indent=1))
        return 0
    i, k = (int(x) for x in args.part.split("/"))
    run(args.data, (i, k), args.out, args.magnitude, args.images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
