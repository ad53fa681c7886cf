"""Do detector-like fitting scenes reproduce what the test split showed at detector scale?

On the test split's real CR/DX frames the node's noise-following λ lost to 0.5.0's fixed λ (docs/
models.md, "The test split at every strength"); on ``tune_balance``'s 0.2 mm scenes (MHH training
frames upsampled ×3 with a faint white texture) it had won. Those scenes are empty above a third
of the Nyquist frequency, where a real detector frame still holds anatomy. Here the upsampled
frame gets its own spectrum's power law continued into that band: a Gaussian field whose radial
power follows the fit ``P(f) ∝ f^−β`` of the 640 px frame (0.05–0.45 cycles/px), moved to the
0.2 mm grid and kept only above the upsampled content's cut-off, added in linear exposure. Then
straight and curved motion of 1 / 2 / 4 mm (5 / 10 / 20 px), with Poisson 10⁴ and without noise,
and three corrections on the node's own estimate: the node (noise-following λ), the node with
λ fixed at 0.1 (0.5.0) and the blind baseline (fixed λ, no gate). *Fitting* images of
``models.tune_balance`` only; nothing here is tuned, it only asks whether such scenes behave
like the real frames did.

Run: ``PYTHONPATH=. python docs/experiments/detector_proxy.py --first 0 --last 4``
"""

from __future__ import annotations

import argparse
import dataclasses
import zlib
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.deblur import MotionPolicy, assess_motion, correct
from models.deblur_data import load_gray
from models.deconvolve import wiener
from models.detector_texture import continued
from models.tune_balance import image_lists

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--last", type=int, default=4)
    ap.add_argument("--side", type=int, default=1024)
    args = ap.parse_args()
    fit, _ = image_lists(DATA)
    node = MotionPolicy()
    fixed = dataclasses.replace(node, balance_follows_noise=False)
    res: dict[str, list[list[float]]] = {}
    for name in fit[args.first : args.last]:
        seed = zlib.crc32(f"detector-proxy/{name}".encode())
        rng = np.random.default_rng(seed)
        base = load_gray(DATA / name).astype(np.float32) / 255.0
        sharp = continued(base, args.side, seed)
        for kind in ("straight", "curved"):
            for mm in (1.0, 2.0, 4.0):
                for q in (None, 1e4):
                    k = motion_kernel(kind, mm / 0.2, rng)
                    b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                    a = assess_motion(b, 0.2, node)
                    p0 = float(peak_signal_noise_ratio(sharp, b, data_range=1.0))

                    def gain(o: np.ndarray, sharp: np.ndarray = sharp, p0: float = p0) -> float:
                        return float(peak_signal_noise_ratio(sharp, o, data_range=1.0)) - p0

                    base_fixed = wiener(b, a.estimate.kernel(), fixed.balance, 1.0, 3.0)
                    row = [
                        float(a.blurred),
                        gain(correct(b, a, node)),
                        gain(correct(b, a, fixed)),
                        gain(np.clip(base_fixed, 0.0, 1.0)),
                    ]
                    res.setdefault(f"{kind} {mm:g} mm q={q}", []).append(row)
        print(name, "done", flush=True)
    print("case: flagged share | node | node, fixed λ | blind baseline (dB)")
    for key, v in sorted(res.items()):
        m = np.array(v).mean(axis=0)
        print(f"{key}: n={len(v)} {m[0]:.2f} | {m[1]:+.2f} | {m[2]:+.2f} | {m[3]:+.2f}")
    every = np.array([g for v in res.values() for g in v]).mean(axis=0)
    print("all:", " | ".join(f"{x:+.2f}" for x in every))


if __name__ == "__main__":
    main()
