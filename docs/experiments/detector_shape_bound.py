"""How much a kernel shape step *could* give at detector scale, on *fitting* images only.

Detector-like scenes of ``docs/experiments/detector_proxy.py`` (fitting MHH images ×3 upsampled to
0.2 mm with their own power law continued), straight and curved motion of 2 / 4 mm, noiseless and
Poisson 10⁴. Each flagged case is deconvolved by the node's own ``deconvolve`` with:

- ``straight``: the node as built (the straight estimate; no shape step at these pixels);
- ``truth``: the true kernel in the shape step's place (λ halved as wherever the step reads a
  frame) — what a perfect step at native pixels would give;
- ``coarse``: the true kernel block-averaged to the network's scale (as ``shape_kernel`` sees the
  frame) and scaled back by ``upscale_kernel`` — what a perfect magnitude *and* retrieval at that
  scale would give, the scaling back being the only loss;
- ``net``: the shape step as built with the bundled network, run everywhere;
- ``coarse f=2``: as ``coarse`` at half the block size;
- ``native 64`` / ``128``: the kernel retrieved (``retrieve_kernel`` + ``choose_orientation``)
  from the true kernel's magnitude on a 64² / 128² grid at the frame's own pixels — what a
  perfect magnitude at native scale would give.

Run: ``PYTHONPATH=. python docs/experiments/detector_shape_bound.py --first 0 --last 6``
"""

from __future__ import annotations

import argparse
import dataclasses
import zlib
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

import models.kernel_shape as ks
from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur, to_exposure
from models.deblur import MotionPolicy, assess_motion, deconvolve, wiener_balance
from models.deblur_data import load_gray
from models.detector_texture import continued
from models.tune_balance import BUNDLED_MAGNITUDE, image_lists

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cxr-radiographs-mhh"


def coarse_roundtrip(kernel: np.ndarray, f: int) -> np.ndarray:
    """The kernel as the network's scale holds it (f×f block sums, centred), scaled back."""
    s = kernel.shape[0]
    n = -(-s // f) * f + f  # a multiple of f with room to centre
    pad = np.zeros((n, n))
    o = (n - s) // 2
    pad[o : o + s, o : o + s] = kernel
    small = pad.reshape(n // f, f, n // f, f).sum(axis=(1, 3))
    return ks.upscale_kernel(small / small.sum(), f)


def shape_with(kernel: np.ndarray, f: int) -> ks.KernelShape:
    return ks.KernelShape(kernel, True, 0.0, float("nan"), f, "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--last", type=int, default=6)
    ap.add_argument("--side", type=int, default=1024)
    args = ap.parse_args()
    fit, _ = image_lists(DATA)
    magnitude = ks.load_magnitude_model(BUNDLED_MAGNITUDE)
    node = MotionPolicy()
    everywhere = dataclasses.replace(
        node, shape_finest_spacing_mm=None, shape_smallest_frame_px=2 * ks.GRID
    )
    res: dict[str, list[list[float]]] = {}
    for name in fit[args.first : args.last]:
        seed = zlib.crc32(f"detector-shape-bound/{name}".encode())
        rng = np.random.default_rng(seed)
        base = load_gray(DATA / name).astype(np.float32) / 255.0
        sharp = continued(base, args.side, seed)
        for kind in ("straight", "curved"):
            for mm in (2.0, 4.0):
                for q in (None, 1e4):
                    k = motion_kernel(kind, mm / 0.2, rng)
                    b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(q))
                    a = assess_motion(b, 0.2, node)
                    if not a.blurred:
                        continue
                    p0 = float(peak_signal_noise_ratio(sharp, b, data_range=1.0))

                    def gain(o: np.ndarray, sharp: np.ndarray = sharp, p0: float = p0) -> float:
                        return float(peak_signal_noise_ratio(sharp, o, data_range=1.0)) - p0

                    f = ks.reduction_factor(a.estimate.length_px, 0.2)
                    e = to_exposure(b.astype(np.float64), node.log_range)
                    lam = wiener_balance(e, node)[0]

                    def native(
                        grid: int, k: np.ndarray = k, e: np.ndarray = e, lam: float = lam
                    ) -> np.ndarray:
                        found, _ = ks.retrieve_kernel(
                            ks.magnitude_of(k, grid), k.shape[0] / 2 + 2, np.random.default_rng(0)
                        )
                        return ks.choose_orientation(e, found, lam, node.log_range)

                    row = [
                        gain(deconvolve(b, a, node).image),
                        gain(deconvolve(b, a, node, shape=shape_with(k, 1)).image),
                        gain(
                            deconvolve(
                                b, a, node, shape=shape_with(coarse_roundtrip(k, f), f)
                            ).image
                        ),
                        gain(deconvolve(b, a, everywhere, magnitude=magnitude).image),
                        gain(
                            deconvolve(
                                b, a, node, shape=shape_with(coarse_roundtrip(k, 2), 2)
                            ).image
                        ),
                        gain(deconvolve(b, a, node, shape=shape_with(native(64), 1)).image),
                        gain(deconvolve(b, a, node, shape=shape_with(native(128), 1)).image),
                    ]
                    res.setdefault(f"{kind} {mm:g} mm q={q}", []).append(row)
        print(name, "done", flush=True)
    print(
        "case: n | straight | truth | coarse truth | net | coarse f=2 | native retrieval 64 | 128 (dB)"
    )
    for key, v in sorted(res.items()):
        m = np.array(v).mean(axis=0)
        print(f"{key}: n={len(v)} " + " | ".join(f"{x:+.2f}" for x in m))
    every = np.array([g for v in res.values() for g in v]).mean(axis=0)
    print("all:", " | ".join(f"{x:+.2f}" for x in every))


if __name__ == "__main__":
    main()
