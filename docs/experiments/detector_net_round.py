"""The sixty-second round: a second native-pixel magnitude network at detector scale.

``sharpray-kernel-magnitude-detector`` 0.1.0 (the sixteenth round) was trained on two banks of
8,000 detector-like scenes for 4,000 steps; its holdout error stopped falling at 0.173 while its
training loss still fell (the 0.6 mm networks went from 0.163 to 0.112 with more banks and
steps). The candidate, 0.2.0: two more banks of 12,000 (seeds 23, 24), 6,000 steps from 0.1.0;
in the node everything else as shipped (quiet frames only, the straight fit's specificity under
0.177). Rule and figures: docs/models.md, "A second native-pixel network: sixty-second round".

Per case, the PSNR gain over the blurred input of the node as ``sharpray process`` builds it
(``models.evaluate.shipped_node``) and of the same with the candidate network
(``SHARPRAY_MODELS__KERNEL_SHAPE_DETECTOR``), every case counted (0 where the gate leaves it).

Sets (noise none: the network reads only frames of at least 5·10⁵ quanta per pixel):
``--set kermany``: Kermany train images, every 200th from the 35th (fresh), the first 16, as
672² scenes at 0.2 mm/px (``consistency_balance.kermany_frames``); ``--set mhh``: the first 8 of
``models.tune_balance``'s validation images (held out from every bank; seen by earlier rounds)
as 1024² scenes (``detector_scenes.frames``). Open and collimated, straight / curved / shake,
1 / 2 / 4 mm.

Run: ``PYTHONPATH=../.. python detector_net_round.py --set kermany --candidate FOLDER --out
runs/r62-kermany.json`` (and ``--set mhh``), then ``--summary runs/r62-*.json``. ``--round 63``:
the sixty-third round's images, and the candidate is the mean of the two corrections;
``--round 64`` the same candidate on the sixty-fourth round's images (fresh Kermany from the
55th, ``tune_balance``'s validation images 17-24), whose rule counts curved and shake on the
open scenes (the summary prints both). ``--round 65``: the sixty-fifth round — the candidate is
the node with ``blur_gate.shape_detector_fallback_kernel_mean`` on (no ``--candidate``), on
fresh Kermany from the 65th and ``tune_balance``'s validation images 1-8; the summary prints the
changed cases' mean too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames
from detector_scenes import DATA, SPACING_MM, frames, image_cases, parser
from fitting_cases import read_rows
from outside_blur import gain
from round_design import kermany_train_every_200th

from models.evaluate import Case as EvalCase
from models.evaluate import shipped_node
from models.tune_balance import image_lists

KINDS = ("straight", "curved", "shake")
MOTION_MM = (1.0, 2.0, 4.0)
NOISES: dict[str, float | None] = {"none": None}
KERMANY_OFFSET = 35
HARMED_DB = -0.1


#: each round's images: (Kermany train images every 200th from this one, the first of
#: tune_balance's validation images); the sixty-third read none of the sixty-second's, the
#: sixty-fourth none of either, the sixty-fifth fresh Kermany and the sixty-second's MHH images
ROUND_IMAGES = {62: (KERMANY_OFFSET, 0), 63: (45, 8), 64: (55, 16), 65: (65, 0)}
KERNEL_MEAN = {"SHARPRAY_BLUR_GATE__SHAPE_DETECTOR_FALLBACK_KERNEL_MEAN": "true"}


def names_of(which: str, round_no: int = 62) -> list[str]:
    offset, first = ROUND_IMAGES[round_no]
    if which == "kermany":
        return kermany_train_every_200th(offset)[:16]
    return image_lists(DATA)[1][first : first + 8]


def run(which: str, candidate: Path | None, out: Path, round_no: int = 62) -> None:
    """Rows of the node as shipped and the candidate: the node with the ``candidate`` network
    (the sixty-second round) or, ``round_no`` 63 and 64, the pixel-wise mean of the node's correction
    and that one (where the network read no frame the two are the same, and so the mean)."""
    node_mm: list[float] = []
    node_said: list[str] = []
    node, version = shipped_node(node_mm, node_said)
    cand_mm: list[float] = []
    cand_said: list[str] = []
    if round_no == 65:
        overrides = KERNEL_MEAN
    else:
        assert candidate is not None, "--candidate: the second network's folder"
        overrides = {"SHARPRAY_MODELS__KERNEL_SHAPE_DETECTOR": str(candidate.resolve())}
    cand, cand_version = shipped_node(cand_mm, cand_said, overrides)
    print("candidate", cand_version, flush=True)
    print(version, "and the candidate network", candidate, flush=True)
    scenes = kermany_frames if which == "kermany" else frames
    rows: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names_of(which, round_no):
        for c in image_cases(name, scenes, "detector-net-round", KINDS, MOTION_MM, NOISES):
            case = EvalCase(
                name, "detector", c.kind, "", c.mm, SPACING_MM, c.kernel, c.sharp, c.blurred
            )
            a, b = node(case, None), cand(case, None)
            if round_no in (63, 64):
                b = ((a.astype(np.float64) + b) / 2).astype(np.float32)
            if node_mm[-1] != cand_mm[-1]:
                raise AssertionError(f"the candidate estimated otherwise: {c.row()}")
            rows.append(
                c.row(
                    set=which,
                    flagged=node_mm[-1] > 0,
                    node=gain(c.sharp, c.blurred, a),
                    candidate=gain(c.sharp, c.blurred, b),
                    node_said=node_said[-1],
                    candidate_said=cand_said[-1],
                )
            )
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    print(f"{len(rows)} cases, {sum(r['flagged'] for r in rows)} flagged")
    for which in sorted({r["set"] for r in rows}):
        part = [r for r in rows if r["set"] == which]
        n, c = (np.array([r[k] for r in part]) for k in ("node", "candidate"))
        changed = sum(
            r["node_said"] != r["candidate_said"] or r["node"] != r["candidate"] for r in part
        )
        print(
            f"{which}: {len(part)} cases, changed {changed}; node {n.mean():+.3f} harmed "
            f"{(n < HARMED_DB).sum()} | candidate {c.mean():+.3f} harmed {(c < HARMED_DB).sum()}"
        )
    moving = [r for r in rows if r["kind"] != "straight"]
    print(
        "curved and shake, both sets: node "
        f"{np.mean([r['node'] for r in moving]):+.3f} candidate "
        f"{np.mean([r['candidate'] for r in moving]):+.3f} "
        f"(Δ {np.mean([r['candidate'] - r['node'] for r in moving]):+.3f})"
    )
    changed_rows = [
        r for r in rows if r["node_said"] != r["candidate_said"] or r["node"] != r["candidate"]
    ]
    if changed_rows:
        print(
            f"changed cases, both sets: {len(changed_rows)}, node "
            f"{np.mean([r['node'] for r in changed_rows]):+.3f} candidate "
            f"{np.mean([r['candidate'] for r in changed_rows]):+.3f}"
        )
    open_moving = [r for r in moving if r["scene"] == "open"]
    print(
        "curved and shake, open scenes, both sets: node "
        f"{np.mean([r['node'] for r in open_moving]):+.3f} candidate "
        f"{np.mean([r['candidate'] for r in open_moving]):+.3f} "
        f"(Δ {np.mean([r['candidate'] - r['node'] for r in open_moving]):+.3f})"
    )
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in rows:
        groups[(r["set"], r["scene"], r["kind"], r["mm"])].append(r["candidate"] - r["node"])
    print("groups (set, scene, kind, mm): mean Δ")
    for key in sorted(groups):
        print(f"  {' '.join(map(str, key)):32s} {np.mean(groups[key]):+.3f}")
    worst = min(groups, key=lambda k: float(np.mean(groups[k])))
    print(f"worst group {worst}: {np.mean(groups[worst]):+.3f}")


def main() -> None:
    ap = parser()
    ap.add_argument("--set", choices=("kermany", "mhh"), default="kermany")
    ap.add_argument("--candidate", type=Path)
    ap.add_argument("--round", type=int, choices=(62, 63, 64, 65), default=62)
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    run(args.set, args.candidate, args.out, args.round)


if __name__ == "__main__":
    main()
