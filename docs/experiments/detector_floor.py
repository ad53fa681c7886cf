"""The regulariser's floor for a doubtful straight kernel, at detector scale, on detector-like scenes.

At detector scale the node keeps the straight kernel (the shape step does not run below 0.4 mm),
and without noise its λ falls to the range's floor 0.01; where the path is curved the straight
kernel's miss is then amplified like noise (docs/models.md, "The test split at every strength":
curved rows without noise far behind the blind baseline's fixed λ). The floor
``a · (L / 10 px)^p · ((1 − confidence) / 0.2)^q`` (``MotionPolicy.balance_mismatch_floor``) was
fitted on 0.2 mm scenes upsampled with a faint white texture and missed its validation bar by
0.006 dB (the fourth session). Here it is looked at again on the detector-like scenes of
``detector_proxy.py`` (a 640 px frame ×3 upsampled to 0.2 mm with its own spectrum's power law
continued into the band upsampling leaves empty, :func:`models.detector_texture.continued`),
open and collimated, straight and curved motion of 1 / 2 / 4 mm, noise none / 10⁵ / 3·10⁴ / 10⁴ /
3·10³ quanta per pixel: the node as built, the node with λ fixed at 0.1 (0.5.0) and the node with
each floor below (λ = max(the node's λ, the floor); the ringing check and the fallback as built).

Fitting images of ``models.tune_balance`` by default; ``--validation`` runs its validation images
(patients neither the fit nor the magnitude networks saw), with other draws.

Run: ``PYTHONPATH=. python docs/experiments/detector_floor.py --out runs/df-0.json --part 0/2``
(and ``1/2``), then ``--summary runs/df-*.json``; ``--floors LABEL…`` computes only those
floors, ``--validation`` runs the validation images.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, SPACING_MM, frames, parser, part_of
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionEstimate, MotionPolicy, assess_motion, deconvolve
from models.tune_balance import NOISE, image_lists

MOTION_MM = (1.0, 2.0, 4.0)
#: The floors looked at: label -> (a, length exponent p, fit exponent q).
FLOORS: dict[str, tuple[float, float, float]] = {
    "a0.005": (0.005, 2.0, 3.0),
    "a0.01": (0.01, 2.0, 3.0),
    "a0.02": (0.02, 2.0, 3.0),
    "a0.04": (0.04, 2.0, 3.0),
    "a0.01p1": (0.01, 1.0, 3.0),
    "a0.02p1": (0.02, 1.0, 3.0),
    "a0.04p1": (0.04, 1.0, 3.0),
    "a0.02q2": (0.02, 2.0, 2.0),
    "a0.04q2": (0.04, 2.0, 2.0),
}


def floor_of(est: MotionEstimate, how: tuple[float, float, float], top: float) -> float:
    """The floor ``a · (L / 10)^p · ((1 − confidence) / 0.2)^q``, at most ``top``."""
    a, p, q = how
    if not math.isfinite(est.confidence):
        return 0.0
    doubt = max(0.0, 1.0 - est.confidence) / 0.2
    return float(min(a * (est.length_px / 10.0) ** p * doubt**q, top))


def run(names: list[str], validation: bool, out: Path, floors: list[str]) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in names:
        tag = "validation" if validation else "fit"
        seed = zlib.crc32(f"detector-floor/{tag}/{name}".encode())
        rng = np.random.default_rng(seed)
        for scene, sharp in frames(name, seed):
            for kind in ("straight", "curved"):
                for mm in MOTION_MM:
                    for q in NOISE:
                        k = motion_kernel(kind, mm / SPACING_MM, rng)
                        b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                        rows.append(case_row(name, scene, kind, mm, q, sharp, b, node, floors))
        out.write_text(json.dumps(rows))
        print(name, "done", len(rows), flush=True)


def case_row(
    name: str,
    scene: str,
    kind: str,
    mm: float,
    q: float | None,
    sharp: np.ndarray,
    b: np.ndarray,
    node: MotionPolicy,
    floors: list[str],
) -> dict[str, Any]:
    a = assess_motion(b, SPACING_MM, node)
    p0 = float(peak_signal_noise_ratio(sharp, b, data_range=1.0))

    def gain(o: np.ndarray) -> float:
        return float(peak_signal_noise_ratio(sharp, o, data_range=1.0)) - p0

    row: dict[str, Any] = {
        "image": name,
        "scene": scene,
        "kind": kind,
        "mm": mm,
        "quanta": q,
        "flagged": a.blurred,
    }
    if not a.blurred:
        return row
    done = deconvolve(b, a, node)
    lam = float(done.balance) if done.balance is not None else node.balance
    at: dict[float, float] = {lam: gain(done.image)}

    def gain_at(x: float) -> float:
        key = round(x, 6)
        if key not in at:
            fixed = dataclasses.replace(node, balance_follows_noise=False, balance=key)
            at[key] = gain(deconvolve(b, a, fixed).image)
        return at[key]

    top = node.balance_range[1]
    row.update(
        confidence=a.estimate.confidence,
        length_px=a.estimate.length_px,
        balance=lam,
        method=done.method,
        node=at[lam],
        fixed=gain_at(0.1),
        **{
            label: (
                at[lam]
                if floor_of(a.estimate, how, top) <= lam
                else gain_at(floor_of(a.estimate, how, top))
            )
            for label, how in FLOORS.items()
            if label in floors
        },
    )
    return row


def summary(paths: list[Path]) -> None:
    rows = [r for p in paths for r in json.loads(p.read_text()) if r["flagged"]]
    every = [json.loads(p.read_text()) for p in paths]
    total = sum(len(e) for e in every)
    print(f"{len(rows)} flagged of {total} cases")
    labels = ["fixed", *(lab for lab in FLOORS if lab in rows[0])]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        q = "none" if r["quanta"] is None else f"{r['quanta']:.0e}"
        groups[f"{r['scene']} {r['kind']} {r['mm']:g} mm {q}"].append(r)
    print("group: n | node | " + " | ".join(f"Δ {lab}" for lab in labels))
    for key in sorted(groups):
        g = groups[key]
        node = np.mean([r["node"] for r in g])
        deltas = " | ".join(f"{np.mean([r[lab] - r['node'] for r in g]):+.3f}" for lab in labels)
        print(f"{key}: {len(g)} | {node:+.2f} | {deltas}")
    for lab in labels:
        d_all = np.mean([r[lab] - r["node"] for r in rows])
        curved = [r[lab] - r["node"] for r in rows if r["kind"] == "curved"]
        quiet = [
            r[lab] - r["node"] for r in rows if r["kind"] == "curved" and r["quanta"] in (None, 1e5)
        ]
        worst = min(np.mean([r[lab] - r["node"] for r in g]) for g in groups.values())
        print(
            f"{lab}: all {d_all:+.3f}, curved {np.mean(curved):+.3f}, curved none/1e5 "
            f"{np.mean(quiet):+.3f}, worst group {worst:+.3f}"
        )


def main() -> None:
    ap = parser()
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--floors", nargs="+", choices=sorted(FLOORS), default=list(FLOORS))
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    fit, validation = image_lists(DATA)
    names = part_of(validation if args.validation else fit, args.part, args.out)
    run(names, args.validation, args.out, args.floors)


if __name__ == "__main__":
    main()
