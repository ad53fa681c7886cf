"""The gate's 1 mm decision at detector scale, a look: what a lower "blurred from" would correct.

At detector scale the node's straight 1 mm row is behind the ungated blind baseline (test split,
0.25.0: +1.21 against +1.56 dB): where the node's estimate of 1 mm motion comes out a little
short, or not specific enough, the gate leaves the frame as it is. Here, on the thirty-sixth
round's detector-like scenes (seen; its seeds; 0.2 mm/px), each case's two estimates (the first,
and the second look with the frame's noise taken out) are recorded with their length,
specificity and confidence, and for each threshold ``t`` of :data:`THRESHOLDS_MM` the case is
decided as the node would with ``blurred_from_mm = t`` (second look included) and, where
flagged, corrected by the node (0.25.0) with the estimate that decision used. Cases: the round's
1 mm cases (straight / curved / shake, noise none / 10⁵ / 2·10⁴ / 10⁴, open and collimated), and
of the same scenes (their own seeds, key ``short-motion``) 0.5 mm motion and the sharp scene
itself with the same noise (where correcting is harm: the PSNR of the output against its input
is recorded, the issue's do-no-harm bound is 45 dB).

Run: ``PYTHONPATH=. python docs/experiments/short_motion_threshold_look.py --out runs/sm-k0.json
--part 0/2`` (``--look``: the 21 MHH images), then ``--summary runs/sm-*.json``.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames, round_cases, round_images
from detector_scenes import SPACING_MM, Case, frames, parser, part_of
from fitting_cases import psnr, read_rows
from kernel_consistency import VALIDATION_NOISES
from look_rows import save
from outside_blur import KINDS, gain

from models.blur import NoiseSpec, motion_kernel, simulate_motion_blur
from models.blur_estimate import MotionEstimate
from models.deblur import MotionAssessment, MotionPolicy, assess_motion, decide, deconvolve
from models.jpeg_history import decoded_jpeg

THRESHOLDS_MM = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
#: the node as the look ran against it (sharpray-blind-wiener 0.25.0: the forty-second round's
#: strong short fit, the default since 0.27.0, off)
NODE = replace(MotionPolicy(), strong_short_from_mm=None)


def extra_cases(name: str, look: bool) -> list[Case]:
    """0.5 mm motion and no motion on the image's scenes, the noise levels of the round."""
    seed = zlib.crc32(f"short-motion/{name}".encode())
    rng = np.random.default_rng(seed)
    scenes = frames(name, seed) if look else kermany_frames(name, seed)
    out: list[Case] = []
    for scene, sharp in scenes:
        point = np.ones((1, 1))
        for noise, quanta in VALIDATION_NOISES.items():
            b = simulate_motion_blur(sharp, point, rng, noise=NoiseSpec(quanta))
            out.append(Case(name, scene, sharp, "none", 0.0, noise, point, b))
        for kind in KINDS:
            k = motion_kernel(kind, 0.5 / SPACING_MM, rng)
            for noise, quanta in VALIDATION_NOISES.items():
                b = simulate_motion_blur(sharp, k, rng, noise=NoiseSpec(quanta))
                out.append(Case(name, scene, sharp, kind, 0.5, noise, k, b))
    return out


def said(e: MotionEstimate) -> list[float]:
    return [e.length_px * SPACING_MM, e.angle_deg, e.specificity, e.confidence]


def case_row(c: Case, look: bool) -> dict[str, Any]:
    first = assess_motion(c.blurred, SPACING_MM, replace(NODE, estimate_noise_subtraction="never"))
    second = assess_motion(
        c.blurred, SPACING_MM, replace(NODE, estimate_noise_subtraction="always")
    )
    second_allowed = not (NODE.noise_subtraction_skips_jpeg and decoded_jpeg(c.blurred))
    row: dict[str, Any] = c.row(set="mhh" if look else "kermany")
    row["first"], row["second"] = said(first.estimate), said(second.estimate)
    done: dict[str, float] = {}
    for t in THRESHOLDS_MM:
        policy = replace(NODE, blurred_from_mm=t)
        used = None
        if decide(first.estimate, SPACING_MM, policy) != "sharp":
            used = "first"
        elif second_allowed and decide(second.estimate, SPACING_MM, policy) != "sharp":
            used = "second"
        row[f"t{t:g}"] = used
        if used is not None and used not in done:
            est = (first if used == "first" else second).estimate
            d = deconvolve(c.blurred, MotionAssessment(est, SPACING_MM, "blurred"), NODE)
            if c.mm > 0:
                done[used] = gain(c.sharp, c.blurred, d.image)
            else:
                done[used] = psnr(c.blurred, d.image)
    row.update({f"g_{k}": v for k, v in done.items()})
    return row


def run(names: list[str], look: bool, out: Path) -> None:
    rows: list[dict[str, Any]] = []
    for name in names:
        cases = [c for c in round_cases(name, look) if c.mm == 1.0] + extra_cases(name, look)
        rows.extend(case_row(c, look) for c in cases)
        save(out, rows, name)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for s in ("kermany", "mhh"):
        sel = [r for r in rows if r["set"] == s]
        if not sel:
            continue
        print(f"{s}: {len({r['image'] for r in sel})} images")
        for t in THRESHOLDS_MM:
            key = f"t{t:g}"
            parts = [f"  t {t:.1f} mm:"]
            for mm in (0.0, 0.5, 1.0):
                part = [r for r in sel if r["mm"] == mm]
                flagged = [r for r in part if r[key] is not None]
                if mm == 0.0:
                    worst = min((r[f"g_{r[key]}"] for r in flagged), default=float("inf"))
                    parts.append(
                        f"sharp {len(flagged)}/{len(part)} corrected (least {worst:.1f} dB)"
                    )
                    continue
                g = np.array([r[f"g_{r[key]}"] if r[key] is not None else 0.0 for r in part])
                parts.append(
                    f"{mm:g} mm {len(flagged)}/{len(part)} mean {g.mean():+.3f} "
                    f"harmed {int(np.sum(g < -0.1))}"
                )
            print(" | ".join(parts))


def main() -> None:
    ap = parser()
    ap.add_argument("--look", action="store_true", help="the 21 MHH images instead of Kermany")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(part_of(round_images(args.look), args.part, args.out), args.look, args.out)


if __name__ == "__main__":
    main()
