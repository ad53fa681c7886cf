"""The sixty-sixth round: more Richardson–Lucy steps in the detector-scale fallback, quiet frames.

At pixels finer than ``blur_gate.rl_follows_noise_from_mm`` (0.4 mm) the node's Richardson–Lucy
fallback takes a fixed 10 steps. The forty-first session's look (docs/models.md, "The fallback's
steps at detector scale, a look") found the thirtieth round's steps-by-noise law there gaining
+0.53 dB over all noiseless scenes and losing with Poisson 2·10⁴. The candidate and its rule:
docs/models.md, "More fallback steps in quiet detector frames: sixty-sixth round".

Per case, the PSNR gain over the blurred input of the node as ``sharpray process`` builds it
(``models.evaluate.shipped_node``) and of the same with the candidate's settings (environment
overrides), every case counted (0 where the gate leaves it); with the motion the gate found and
what each correction says it did.

``--stage look``: seen images (the sixty-fourth round's: Kermany train images every 200th from
the 55th, the first 16, as 672² scenes; ``models.tune_balance``'s validation images 17-24 as
1024²), new seeds, the look's overrides (``--overrides look``: the law at every pixel size) or
the candidate's. ``--stage round``: fresh Kermany images (every 200th from the 85th, the first
16) and validation images 9-16, the candidate's overrides. Noise none and Poisson 2·10⁴ quanta
per pixel; open and collimated; straight / curved / shake 1 / 2 / 4 mm.

Run (from docs/experiments): ``PYTHONPATH=../.. python detector_steps_round.py --stage round
--set kermany --out runs/r66-kermany.json`` (and ``--set mhh``; ``--part I/K`` splits the
images), then ``--summary runs/r66-*.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames
from detector_scenes import DATA, SPACING_MM, frames, image_cases, parser, part_of
from fitting_cases import read_rows
from outside_blur import gain
from round_design import kermany_train_every_200th

from models.evaluate import Case as EvalCase
from models.evaluate import shipped_node
from models.tune_balance import image_lists

KINDS = ("straight", "curved", "shake")
MOTION_MM = (1.0, 2.0, 4.0)
NOISES: dict[str, float | None] = {"none": None, "2e4": 2e4}
HARMED_DB = -0.1
#: (Kermany every 200th from, first validation image, seed key) of each stage
STAGES = {
    "look": (55, 16, "detector-steps-look"),
    "round": (85, 8, "detector-steps-round"),
}
OVERRIDES = {
    "look": {"SHARPRAY_BLUR_GATE__RL_FOLLOWS_NOISE_FROM_MM": "0.1"},
    "candidate": {"SHARPRAY_BLUR_GATE__RL_FALLBACK_QUIET_FROM_QUANTA": "5e5"},
}


def names_of(which: str, stage: str) -> list[str]:
    offset, first, _ = STAGES[stage]
    if which == "kermany":
        return kermany_train_every_200th(offset)[:16]
    return image_lists(DATA)[1][first : first + 8]


def run(which: str, stage: str, overrides: str, out: Path, part: str) -> None:
    node_mm: list[float] = []
    node_said: list[str] = []
    node, version = shipped_node(node_mm, node_said)
    cand_mm: list[float] = []
    cand_said: list[str] = []
    cand, cand_version = shipped_node(cand_mm, cand_said, OVERRIDES[overrides])
    print(version, "against", cand_version, flush=True)
    scenes = kermany_frames if which == "kermany" else frames
    rows: list[dict[str, Any]] = []
    for name in part_of(names_of(which, stage), part, out):
        for c in image_cases(name, scenes, STAGES[stage][2], KINDS, MOTION_MM, NOISES):
            case = EvalCase(
                name, "detector", c.kind, "", c.mm, SPACING_MM, c.kernel, c.sharp, c.blurred
            )
            a, b = node(case, None), cand(case, None)
            if node_mm[-1] != cand_mm[-1]:
                raise AssertionError(f"the candidate estimated otherwise: {c.row()}")
            rows.append(
                c.row(
                    set=which,
                    side=int(c.sharp.shape[0]),
                    estimated_mm=node_mm[-1],
                    node=gain(c.sharp, c.blurred, a),
                    candidate=gain(c.sharp, c.blurred, b),
                    node_said=node_said[-1],
                    candidate_said=cand_said[-1],
                )
            )
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def _line(label: str, part: list[dict[str, Any]]) -> str:
    n, c = (np.array([r[k] for r in part]) for k in ("node", "candidate"))
    changed = [r for r in part if r["node"] != r["candidate"]]
    moved = (
        f"; changed {len(changed)}: {np.mean([r['node'] for r in changed]):+.3f} → "
        f"{np.mean([r['candidate'] for r in changed]):+.3f}"
        if changed
        else "; none changed"
    )
    return (
        f"{label}: {len(part)} cases, node {n.mean():+.3f} harmed {(n < HARMED_DB).sum()} | "
        f"candidate {c.mean():+.3f} harmed {(c < HARMED_DB).sum()}{moved}"
    )


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    print(f"{len(rows)} cases, {sum(r['estimated_mm'] > 0 for r in rows)} flagged")
    for noise in sorted({r["noise"] for r in rows}):
        for which in sorted({r["set"] for r in rows}):
            part = [r for r in rows if r["set"] == which and r["noise"] == noise]
            print(_line(f"{which} noise {noise}", part))
        print(_line(f"both sets noise {noise}", [r for r in rows if r["noise"] == noise]))
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in rows:
        key = (r["noise"], r["set"], r["scene"], r["kind"], r["mm"])
        groups[key].append(r["candidate"] - r["node"])
    print("groups (noise, set, scene, kind, mm): mean Δ")
    for key in sorted(groups):
        print(f"  {' '.join(map(str, key)):36s} {np.mean(groups[key]):+.3f}")
    worst = min(groups, key=lambda k: float(np.mean(groups[k])))
    print(f"worst group {worst}: {np.mean(groups[worst]):+.3f}")


def main() -> None:
    ap = parser()
    ap.add_argument("--set", choices=("kermany", "mhh"), default="kermany")
    ap.add_argument("--stage", choices=tuple(STAGES), default="round")
    ap.add_argument("--overrides", choices=tuple(OVERRIDES), default="candidate")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(args.set, args.stage, args.overrides, args.out, args.part)


if __name__ == "__main__":
    main()
