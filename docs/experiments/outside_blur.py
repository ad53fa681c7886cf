"""Another blur model than ours at detector scale: jittery camera-shake paths on detector-like scenes.

Every figure of the correction so far was measured on motion drawn by ``models.blur``: straight
lines and smooth random trajectories, rasterised to the nearest pixel. An outside evaluator brings
a blur model of its own. Here the node is measured on the camera-shake paths of Boracchi and Foi
(:func:`models.blur.shake_kernel`: abrupt turns, paths that double back, bilinear weights) beside
our own two kinds, on the detector-like scenes of ``detector_scenes.py`` (a 640 px MHH frame ×3
upsampled to 0.2 mm/px with its own power law continued, open and collimated) of
``models.tune_balance``'s **validation** images only (the test patients never): 1 / 2 / 4 mm,
noiseless and Poisson 2·10⁴ quanta/px. Nothing is fitted here.

Per case, PSNR gain over the blurred input: the node at its defaults (``assess_motion`` +
``correct``, as the node runs them below 0.4 mm), the blind baseline (the same estimate, Wiener
with the fixed λ on every case, no gate) and the Wiener filter with the true kernel at the fixed
λ (an oracle); and whether the gate flagged the case.

Run: ``PYTHONPATH=. python docs/experiments/outside_blur.py --out runs/ob-0.json --part 0/2``
(and ``1/2``; ``--images N`` for the first N validation images), then ``--summary runs/ob-*.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from detector_scenes import DATA, SPACING_MM, frames, image_cases, parser, part_of
from fitting_cases import read_rows
from skimage.metrics import peak_signal_noise_ratio

from models.deblur import MotionPolicy, assess_motion, correct
from models.evaluate import wiener_blind
from models.tune_balance import image_lists

MOTION_MM = (1.0, 2.0, 4.0)
KINDS = ("straight", "curved", "shake")
NOISES = {"none": None, "2e4": 2e4}


def gain(sharp: np.ndarray, blurred: np.ndarray, restored: np.ndarray) -> float:
    """PSNR gain of ``restored`` over ``blurred``, against ``sharp`` (dB)."""
    return float(
        peak_signal_noise_ratio(sharp, restored, data_range=1.0)
        - peak_signal_noise_ratio(sharp, blurred, data_range=1.0)
    )


def run(names: list[str], out: Path) -> None:
    node = MotionPolicy()
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in image_cases(name, frames, "outside-blur", KINDS, MOTION_MM, NOISES):
            a = assess_motion(c.blurred, SPACING_MM, node)

            rows.append(
                c.row(
                    flagged=a.blurred,
                    node=gain(c.sharp, c.blurred, correct(c.blurred, a, node)),
                    baseline=gain(
                        c.sharp, c.blurred, wiener_blind(c.blurred, a.estimate.kernel(), node)
                    ),
                    oracle=gain(c.sharp, c.blurred, wiener_blind(c.blurred, c.kernel, node)),
                )
            )
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    print(f"{len(rows)} cases, {len({r['image'] for r in rows})} images")
    print("group: n, flagged, node / baseline / oracle (mean dB), node's worst case")

    def line(label: str, part: list[dict[str, Any]]) -> None:
        node = [r["node"] for r in part]
        print(
            f"{label:28s} {len(part):4d} {np.mean([r['flagged'] for r in part]):.2f} "
            f"{np.mean(node):+.2f} / {np.mean([r['baseline'] for r in part]):+.2f} / "
            f"{np.mean([r['oracle'] for r in part]):+.2f}  worst {min(node):+.2f}"
        )

    for kind in KINDS:
        for noise in NOISES:
            for mm in MOTION_MM:
                part = [r for r in rows if (r["kind"], r["noise"], r["mm"]) == (kind, noise, mm)]
                line(f"{kind} {mm:g} mm {noise}", part)
        line(f"{kind} all", [r for r in rows if r["kind"] == kind])
    line("all", rows)


def main() -> None:
    ap = parser()
    ap.add_argument("--images", type=int, default=0, help="the first N validation images (0: all)")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    validation = image_lists(DATA)[1][: args.images or None]
    run(part_of(validation, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
