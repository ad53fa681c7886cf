"""Can the retrieval itself tell a safe replacement from a harmful one? A look on fitting images.

The twenty-fourth to twenty-sixth rounds (docs/models.md) found truer magnitudes that gain on
curved motion overall and lose badly in a few cases, each a straight kernel replaced by a
retrieved one; total variation does not guard them (``replacement_guard``). Here, per flagged
fitting case (``fitting_cases``), the shape step's own evidence where ``--magnitude`` (e.g. the
fifth network read under the eight symmetries, ``runs/kmag5s-onnx``) replaces the kernel:

- ``distance``: the learned magnitude's distance from the straight kernel's (what τ is compared
  with), ``fit``: the retrieved kernel's distance from it (:attr:`KernelShape.fit`);
- ``path``: how far the retrieved path lies from the straight one (:func:`kernel_error`);
- the PSNR gain with the retrieved kernel (``replaced``) and with the straight kernel kept
  (``kept``), beside the bundled (fourth) network's node as built (``fourth``), and how far each
  kernel lies from the true one (``err_replaced``, ``err_straight``).

``PYTHONPATH=. python docs/experiments/retrieval_guard.py --magnitude runs/kmag5s-onnx
--out runs/rtg-0.json --part 0/2`` (and ``1/2``), then ``--summary runs/rtg-*.json``.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

import fitting_cases

from models.deblur import MotionPolicy, deconvolve
from models.kernel_shape import KernelShape, kernel_error
from models.tune_balance import BUNDLED_MAGNITUDE

AS_BUILT_TAU = (0.25, 0.3)


def run(data: Path, part: tuple[int, int], out: Path, magnitude: Path, scenes: bool) -> None:
    policy = MotionPolicy(shape_thresholds=AS_BUILT_TAU)
    fourth, candidate = fitting_cases.fourth_and(magnitude)

    def measure(c: fitting_cases.Case) -> dict[str, Any]:
        if not c.assessment.blurred:
            return {}
        built = deconvolve(c.blurred, c.assessment, policy, magnitude=fourth)
        row: dict[str, Any] = {"fourth": fitting_cases.gain(c, built.image)}
        d = deconvolve(c.blurred, c.assessment, policy, magnitude=candidate)
        row["replaced"] = fitting_cases.gain(c, d.image)
        row["method_replaced"] = d.method
        s = d.shape
        row["is_replaced"] = s is not None and s.replaced
        row["kept"] = row["replaced"]
        if s is None or not s.replaced:
            return row
        straight = c.assessment.estimate.kernel()
        kept = KernelShape(straight, False, s.distance, s.threshold, s.factor, "guard", s.fit)
        dk = deconvolve(c.blurred, c.assessment, policy, shape=kept)
        row["kept"] = fitting_cases.gain(c, dk.image)
        row["method_kept"] = dk.method
        row |= {
            "distance": s.distance,
            "tau": s.threshold,
            "fit": s.fit,
            "path": kernel_error(s.kernel, straight),
            "length": c.assessment.estimate.length_px,
            "err_replaced": kernel_error(s.kernel, c.kernel),
            "err_straight": kernel_error(straight, c.kernel),
        }
        return row

    design = fitting_cases.scene_cases if scenes else fitting_cases.cases
    fitting_cases.collect(data, part, out, policy, measure, design)


def guarded(r: dict[str, Any], ratio: float, path: float) -> float:
    """The gain where the replacement is kept only if ``fit ≤ ratio · distance`` and
    ``path ≤ path``."""
    if not r["is_replaced"]:
        return float(r["replaced"])
    ok = r["fit"] <= ratio * r["distance"] and r["path"] <= path
    return float(r["replaced"] if ok else r["kept"])


def summary(paths: list[Path]) -> None:
    rows = fitting_cases.read_rows(paths)
    fitting_cases.print_means(rows, ("fourth", "replaced", "kept"), 9)
    rep = [r for r in rows if r.get("is_replaced")]
    print(f"replaced {len(rep)}")
    print(" loss  fit/dist   path  err_rep err_str   length  kind")
    for r in sorted(rep, key=lambda r: r["replaced"] - r["kept"]):
        print(
            f"{r['replaced'] - r['kept']:+5.2f} {r['fit'] / r['distance']:8.3f} {r['path']:6.3f}"
            f" {r['err_replaced']:8.3f} {r['err_straight']:7.3f} {r['length']:8.2f}"
            f"  {r['kind']} {r['px']:g} {r['quanta']} {r.get('scene', '')}"
            f" {r.get('method_replaced', '')[:2]}/{r.get('method_kept', '')[:2]}"
        )
    print("ratio  path    all  curved  worst_group  <-1dB")
    for ratio in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 9.0):
        for path in (0.1, 0.2, 0.3, 0.5, 1.0):
            a = fitting_cases.against(
                rows, functools.partial(guarded, ratio=ratio, path=path), "fourth"
            )
            print(
                f"{ratio:5.2f} {path:5.2f} {a.all:+6.3f} {a.curved:+7.3f} {a.worst:+12.3f}"
                f" {a.losses:6d}"
            )


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--magnitude", type=Path, default=BUNDLED_MAGNITUDE, help="the candidate")
    p.add_argument(
        "--scenes", action="store_true", help="the validation's design (fitting_cases.scene_cases)"
    )


if __name__ == "__main__":
    fitting_cases.main(run, summary, options)
