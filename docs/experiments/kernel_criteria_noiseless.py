"""Can a blind criterion choose a curved path's kernel when the blur comes without noise?

``kernel_choice.py`` found that no hand-made criterion chose among path kernels at Poisson 10⁴,
where the candidates' restorations differ little. Without added noise the true kernel is worth
far more (+4–6 dB against +2–3 for the straight estimate, ``kernel_magnitude.py``), so wrong
kernels leave far more visible ghosts. This script asks, on MHH *training* images only (the
fitting images of ``models.tune_balance``), whether the criteria see them: candidates are the
node's straight estimate, arcs and speed ramps around it (``kernel_choice.path_kernel``), and —
to see whether a criterion would recognise it at all — the true kernel and its mirror image.
Restorations use the node's own noise-following λ.

Run: ``PYTHONPATH=. python docs/experiments/kernel_criteria_noiseless.py --images 10``.
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel_choice import BENDS, RAMPS, path_kernel  # noqa: E402

from models.blur import (  # noqa: E402
    NoiseSpec,
    from_exposure,
    simulate_motion_blur,
    to_exposure,
    trajectory_kernel,
)
from models.deblur import MotionPolicy, assess_motion, wiener_balance  # noqa: E402
from models.deblur_data import load_gray  # noqa: E402
from models.deconvolve import wiener_exposure  # noqa: E402
from models.tune_balance import image_lists, scenes  # noqa: E402

POLICY = MotionPolicy()
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def scores(r: np.ndarray, eb: np.ndarray, w: np.ndarray, angle: float) -> dict[str, float]:
    gy, gx = np.gradient(r)
    gm = np.hypot(gx, gy)[8:-8, 8:-8]
    c, s = math.cos(math.radians(angle)), -math.sin(math.radians(angle))
    ga = np.abs(gx * c + gy * s)[8:-8, 8:-8]
    lap = np.abs(np.gradient(gx, axis=1) + np.gradient(gy, axis=0))[8:-8, 8:-8]
    return {
        "tv": float(gm.mean()),
        "l1l2": float(gm.sum() / math.sqrt((gm**2).sum())),
        "l1l2_along": float(ga.sum() / math.sqrt((ga**2).sum())),
        "laplacian": float(lap.mean()),
        "overshoot": float(np.mean((w < eb.min()) | (w > eb.max()))),
        "negative": float(np.clip(eb.min() - w, 0, None).mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--noise", type=float, default=0.0, help="quanta per pixel; 0 = none")
    args = p.parse_args()
    fit, _ = image_lists(DATA)
    names = ("tv", "l1l2", "l1l2_along", "laplacian", "overshoot", "negative")
    res: dict[str, dict[str, list[float]]] = {}
    truth_picked: dict[str, list[int]] = {n: [] for n in names}
    pair_picked: dict[str, list[int]] = {}
    for name in fit[: args.images]:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        base = load_gray(DATA / name).astype(np.float32) / 255.0
        for scene, spacing, sharp in scenes(base, rng, collimated=False):
            if scene.startswith("0.2"):
                continue
            for px in (6.0, 10.0):
                k = trajectory_kernel(px, rng)
                b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(args.noise or None))
                a = assess_motion(b, spacing, POLICY)
                if not a.blurred:
                    continue
                e = to_exposure(b.astype(np.float64), POLICY.log_range)
                lam, _ = wiener_balance(e, POLICY, a.estimate.angle_deg)
                pb = psnr(sharp, b)
                kernels = {"straight": a.estimate.kernel(), "true": k, "mirror": k[::-1, ::-1]}
                for bend in BENDS:
                    for ramp in RAMPS:
                        if bend or ramp:
                            kernels[f"{bend}/{ramp}"] = path_kernel(
                                a.estimate.length_px, a.estimate.angle_deg, bend, ramp
                            )
                scored = {}
                for label, psf in kernels.items():
                    w = wiener_exposure(e, psf, lam, POLICY.power)
                    r = np.clip(from_exposure(w, POLICY.log_range), 0, 1)
                    scored[label] = (psnr(sharp, r) - pb, scores(r, e, w, a.estimate.angle_deg))
                g = res.setdefault(f"{px:g}px", {})
                for label in ("straight", "true", "mirror"):
                    g.setdefault(label, []).append(scored[label][0])
                cands = {k_: v for k_, v in scored.items() if k_ not in ("true", "mirror")}
                g.setdefault("best_candidate", []).append(max(v[0] for v in cands.values()))
                for n in names:
                    pick = min(cands, key=lambda k_, n=n: cands[k_][1][n])
                    g.setdefault(n, []).append(cands[pick][0])
                    with_truth = min(scored, key=lambda k_, n=n: scored[k_][1][n])
                    truth_picked[n].append(int(with_truth == "true"))
                    pair_picked.setdefault(n, []).append(
                        int(scored["true"][1][n] < scored["mirror"][1][n])
                    )
        print(name, flush=True)
    for grp, g in res.items():
        print(grp, len(g["straight"]), {k_: round(float(np.mean(v)), 2) for k_, v in g.items()})
    print(
        "true kernel over its mirror image:",
        {n: f"{sum(v)}/{len(v)}" for n, v in pair_picked.items()},
    )
    print(
        "true kernel scored best (of all):",
        {n: f"{sum(v)}/{len(v)}" for n, v in truth_picked.items()},
    )


if __name__ == "__main__":
    main()
