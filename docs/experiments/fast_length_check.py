"""Does padding the FFT frame to a fast length change the correction? A neutrality check.

``models.deconvolve.pad_for_fft`` pads each side of a frame after the image by the few pixels
that make its length 5-smooth (:func:`scipy.fft.next_fast_len`), so the FFTs of a 2048² frame's
padded 2148² run at 2160² — two to three times faster. The fade after the image is then a few
pixels longer than before it, so the correction is not bit-identical. This check runs the node
as ``sharpray process`` builds it (``models.evaluate.shipped_node``) on the same cases twice in
one process: with the padding as built and with the padding of every version up to 0.46.0
(symmetric, :func:`symmetric_pad`), and compares the PSNR gains case by case. Nothing is chosen
on it.

Cases: the sixty-fourth round's (``detector_net_round.py --round 64``: Kermany from the 55th as
672² scenes and ``tune_balance``'s validation images 17-24 as 1024² scenes at 0.2 mm/px, open and
collimated, straight / curved / shake, 1 / 2 / 4 mm; seen) with no noise and with Poisson 2·10⁴.

Run: ``PYTHONPATH=../.. python fast_length_check.py --set kermany --out runs/fl-kermany.json``
(and ``--set mhh``), then ``--summary runs/fl-*.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames
from detector_net_round import KINDS, MOTION_MM, names_of
from detector_scenes import SPACING_MM, frames, image_cases, parser
from fitting_cases import read_rows
from outside_blur import gain

import models.deconvolve as deconvolve_module
from models.evaluate import Case as EvalCase
from models.evaluate import shipped_node

NOISES: dict[str, float | None] = {"none": None, "2e4": 2e4}
FAST = deconvolve_module.pad_for_fft


def symmetric_pad(exposure: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, int]:
    """``pad_for_fft`` as every version up to 0.46.0 had it: the same padding on both sides."""
    e = np.asarray(exposure, dtype=np.float64)
    pad = 2 * max(psf.shape) + 8
    ep = np.pad(e, pad, mode="reflect")
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(pad) / pad)

    def profile(n: int) -> np.ndarray:
        w = np.ones(n + 2 * pad)
        w[:pad], w[n + pad :] = fade, fade[::-1]
        return w

    mean = float(e.mean())
    return mean + (ep - mean) * np.outer(profile(e.shape[0]), profile(e.shape[1])), pad


def run(which: str, out: Path) -> None:
    motion: list[float] = []
    node, version = shipped_node(motion)
    print(version, flush=True)
    scenes = kermany_frames if which == "kermany" else frames
    rows: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names_of(which, 64):
        for c in image_cases(name, scenes, "detector-net-round", KINDS, MOTION_MM, NOISES):
            case = EvalCase(
                name, "detector", c.kind, "", c.mm, SPACING_MM, c.kernel, c.sharp, c.blurred
            )
            deconvolve_module.pad_for_fft = FAST
            fast = node(case, None)
            deconvolve_module.pad_for_fft = symmetric_pad
            before = node(case, None)
            deconvolve_module.pad_for_fft = FAST
            rows.append(
                c.row(
                    set=which,
                    flagged=motion[-1] > 0,
                    node=gain(c.sharp, c.blurred, before),
                    candidate=gain(c.sharp, c.blurred, fast),
                )
            )
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    d = np.array([r["candidate"] - r["node"] for r in rows])
    print(
        f"{len(rows)} cases: mean difference {d.mean():+.4f} dB, |difference| over 0.1 dB: "
        f"{(np.abs(d) > 0.1).sum()}, largest {d.min():+.3f} / {d.max():+.3f}"
    )
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r, x in zip(rows, d, strict=True):
        groups[(r["set"], r["noise"], r["scene"])].append(x)
        groups[(r["kind"], r["mm"])].append(x)
    for key in sorted(groups, key=str):
        g = np.array(groups[key])
        print(f"  {' '.join(map(str, key)):28s} n={len(g):3d} {g.mean():+.4f}")
    for which in sorted({r["set"] for r in rows}):
        part = [r for r in rows if r["set"] == which]
        for k in ("node", "candidate"):
            v = np.array([r[k] for r in part])
            print(f"{which} {k}: mean {v.mean():+.3f}, harmed {(v < -0.1).sum()}")


def main() -> None:
    ap = parser()
    ap.add_argument("--set", choices=("kermany", "mhh"), default="kermany")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(args.set, args.out)


if __name__ == "__main__":
    main()
