"""The gate behind sharp shadows, a look (thirty-sixth session).

On Kermany's 672² detector-like scenes whose collimation and marker stayed sharp while the
anatomy moved, the gate flagged none of 300 frames (the fifty-third round): in a frame that
small the motion estimate's central spectrum windows take in the collimation, whose sharp edges
hide the motion's dips. ``MotionPolicy.estimate_avoids_shadows`` keeps the windows clear of the
shadows :func:`models.shadows.find_shadows` marks. This look asks, on seen images only:

- the fifty-third round's Kermany scenes (every 200th train image from the 90th, 672², its
  seeds; shadows drawn before and after the blur): how many frames are flagged as built and
  with the windows clear, and the anatomy gain of the node as 0.34.0 built it, of the fallback leaving the
  shadows out (``fallback_leaves_shadows``), and of both with the clear windows;
- (``--sharp``) sharp frames: the same Kermany scenes unblurred (open and collimated), and real
  MHH training frames (every third of :func:`round_design.unnamed_mhh_images`, 0.6 mm/px, as
  they are and collimated): how many the gate flags either way (false alarms).

Run: ``PYTHONPATH=../.. python gate_shadows_look.py --out runs/gs-0.json --part 0/2`` (and
``1/2``; ``--sharp`` for the sharp frames), then ``--summary runs/gs-*.json``.

``--validation [--large]``: the fifty-fifth round's scenes (docs/models.md), 0.40.0 against 0.40.0
with the windows clear of the shadows: Kermany 672² from the 40th (``--large``: 1024² from the
60th); ``--validation --summary``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames
from detector_scenes import DATA, SPACING_MM, parser, part_of
from fitting_cases import read_rows
from fixed_collimation_look import (
    MOTION_MM,
    ORDERS,
    WEIGHTS,
    Scene,
    anatomy_gain,
    compared,
    scenes,
)
from look_rows import save
from round_design import kermany_train_every_200th, unnamed_mhh_images

from models.deblur import MotionAssessment, MotionPolicy, assess_motion, deconvolve
from models.deblur_data import load_gray
from models.kernel_shape import load_magnitude_model
from models.tune_deconvolution import collimate

NODE = replace(
    MotionPolicy(), fallback_leaves_shadows=False, estimate_avoids_shadows=False
)  # 0.34.0
SHADOWS = replace(NODE, fallback_leaves_shadows=True)
CLEAR = replace(NODE, estimate_avoids_shadows=True, clear_windows_from_mm=None)  # the look's form
BOTH = replace(SHADOWS, estimate_avoids_shadows=True)
POLICIES = {"node": NODE, "shadows": SHADOWS, "clear": CLEAR, "both": BOTH}


def _gain(c: Scene, a: MotionAssessment, policy: MotionPolicy, first: Any, detector: Any) -> float:
    """The anatomy gain of ``policy``'s correction of the scene ``c`` (0 where not flagged)."""
    if not a.blurred:
        return 0.0
    d = deconvolve(c.blurred, a, policy, magnitude=first, detector_magnitude=detector)
    return anatomy_gain(c.sharp, c.blurred, d.image, c.anatomy)


def judged_row(
    c: Scene,
    spacing_mm: float,
    policies: dict[str, MotionPolicy],
    first: Any,
    detector: Any,
    **keys: object,
) -> dict[str, Any]:
    """The scene's row (``keys`` added): for each of ``policies``, whether its gate flags the
    scene (``flagged_<label>``) and the anatomy gain of its correction (``<label>``)."""
    row = c.row(**keys)
    for label, policy in policies.items():
        a = assess_motion(c.blurred, spacing_mm, policy)
        row[f"flagged_{label}"] = a.blurred
        row[label] = _gain(c, a, policy, first, detector)
    return row


def run(names: list[str], out: Path) -> None:
    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in scenes(name, kermany_frames, "shadows-fifty-third"):
            row = c.row(set="kermany")
            judged = {"built": assess_motion(c.blurred, SPACING_MM, NODE)}
            judged["clear"] = assess_motion(c.blurred, SPACING_MM, CLEAR)
            for gate, a in judged.items():
                row[f"flagged_{gate}"] = a.blurred
                row[f"mm_{gate}"] = a.estimate.length_px * SPACING_MM
            for label, policy in POLICIES.items():
                a = judged["clear" if policy.estimate_avoids_shadows else "built"]
                row[label] = _gain(c, a, policy, first, detector)
            rows.append(row)
        save(out, rows, name)


def run_sharp(kermany: list[str], mhh: list[str], out: Path) -> None:
    rows: list[dict[str, Any]] = []
    frames: list[tuple[str, str, np.ndarray, float]] = []
    for name in kermany:
        for scene, sharp in kermany_frames(name, 0):
            frames.append(("kermany-672", f"{name}:{scene}", sharp, SPACING_MM))
    for name in mhh:
        img = load_gray(DATA / name).astype(np.float32) / 255.0
        frames.append(("mhh-real", name, img, 0.6))
        frames.append(("mhh-real-collimated", name, collimate(img), 0.6))
    for set_name, name, img, spacing in frames:
        row: dict[str, Any] = {"set": set_name, "image": name}
        for gate, policy in (("built", NODE), ("clear", CLEAR)):
            a = assess_motion(img, spacing, policy)
            row[f"flagged_{gate}"] = a.blurred
            row[f"mm_{gate}"] = a.estimate.length_px * spacing
        rows.append(row)
    save(out, rows, f"{len(rows)} sharp frames")


#: the fifty-fifth round: the node as built (0.40.0) and its candidate
BUILT_040 = replace(MotionPolicy(), estimate_avoids_shadows=False)
CANDIDATE = replace(BUILT_040, estimate_avoids_shadows=True, clear_windows_from_mm=None)


def validate(names: list[str], large: bool, out: Path) -> None:
    from shadows_round import kermany_1024

    first = load_magnitude_model(WEIGHTS / "kernel-magnitude")
    detector = load_magnitude_model(WEIGHTS / "kernel-magnitude-detector")
    frames_of = kermany_1024 if large else kermany_frames
    label = "kermany-1024" if large else "kermany-672"
    policies = {"node": BUILT_040, "clear": CANDIDATE}
    rows: list[dict[str, Any]] = []
    for name in names:
        for c in scenes(name, frames_of, "shadows-fifty-fifth"):
            rows.append(judged_row(c, SPACING_MM, policies, first, detector, set=label))
        save(out, rows, name)


def validation_summary(rows: list[dict[str, Any]]) -> None:
    """Per set and order: the means and harmed counts over all cases, and the rule's parts."""
    for name in sorted({r["set"] for r in rows}):
        for order in ORDERS:
            sel = [r for r in rows if r["set"] == name and r["order"] == order]
            c = compared(sel, "clear")
            hn, hc, delta = c.node_harmed, c.candidate_harmed, c.delta
            if name == "kermany-672" and order == "after":
                met = delta >= 0.5 and hc <= 0.15 * len(sel)
            elif name == "kermany-672":
                met = delta >= 0.0 and hc <= hn + 1
            else:
                met = delta >= -0.1 and hc <= hn + 1
            fn = sum(r["flagged_node"] for r in sel)
            fc = sum(r["flagged_clear"] for r in sel)
            print(
                f"{name} shadows {order} the blur: {len(sel)} cases, flagged {fn} → {fc}; "
                f"0.40.0 {c.node:+.3f} (harmed {hn}), clear {c.candidate:+.3f} "
                f"(harmed {hc}), Δ {delta:+.3f}: met {met}"
            )
            for mm in MOTION_MM:
                m = [r for r in sel if r["mm"] == mm]
                print(
                    f"    {mm:g} mm: 0.40.0 {np.mean([r['node'] for r in m]):+.3f}, clear "
                    f"{np.mean([r['clear'] for r in m]):+.3f} "
                    f"(harmed {sum(r['clear'] < -0.1 for r in m)})"
                )


def summary(rows: list[dict[str, Any]]) -> None:
    blurred = [r for r in rows if "order" in r]
    for order in ORDERS:
        for mm in MOTION_MM:
            sel = [r for r in blurred if r["order"] == order and r["mm"] == mm]
            if not sel:
                continue
            fb = sum(r["flagged_built"] for r in sel)
            fc = sum(r["flagged_clear"] for r in sel)
            gains = ", ".join(
                f"{k} {np.mean([r[k] for r in sel]):+.3f} (harmed {sum(r[k] < -0.1 for r in sel)})"
                for k in POLICIES
            )
            print(f"{order} {mm:g} mm: {len(sel)} cases, flagged {fb} → {fc}; {gains}")
        sel = [r for r in blurred if r["order"] == order]
        if sel:
            gains = ", ".join(f"{k} {np.mean([r[k] for r in sel]):+.3f}" for k in POLICIES)
            print(f"  {order} all: {gains}")
    sharp = [r for r in rows if "order" not in r]
    for name in sorted({r["set"] for r in sharp}):
        sel = [r for r in sharp if r["set"] == name]
        fb = sum(r["flagged_built"] for r in sel)
        fc = sum(r["flagged_clear"] for r in sel)
        print(f"sharp {name}: {len(sel)} frames, flagged {fb} as built, {fc} with clear windows")


def main() -> None:
    ap = parser()
    ap.add_argument("--sharp", action="store_true", help="the sharp frames' false alarms")
    ap.add_argument("--validation", action="store_true", help="the fifty-fifth round's")
    ap.add_argument("--large", action="store_true", help="with --validation: the 1024² scenes")
    args = ap.parse_args()
    if args.summary and args.validation:
        validation_summary(read_rows(args.summary))
        return
    if args.summary:
        summary(read_rows(args.summary))
        return
    if args.validation:
        names = kermany_train_every_200th(60 if args.large else 40)
        validate(part_of(names, args.part, args.out), args.large, args.out)
        return
    kermany = kermany_train_every_200th(90)
    if args.sharp:
        mhh = unnamed_mhh_images()[::3]
        run_sharp(
            part_of(kermany, args.part, args.out), part_of(mhh, args.part, args.out), args.out
        )
        return
    run(part_of(kermany, args.part, args.out), args.out)


if __name__ == "__main__":
    main()
