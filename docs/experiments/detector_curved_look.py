"""Curved motion at detector scale without noise, a look: where does the node as shipped lose?

The test split's table for ``sharpray-blind-wiener 0.46.0`` (docs/models.md, "Where the shipped
correction stands") has the node behind the blind baseline at one row only without noise:
curved 4 mm at detector scale (+0.84 dB against +1.99; the Wiener oracle +3.39). That row must not
be tuned on. This look asks whether detector-like scenes of *training* images show the same, and
which of the node's paths the lost frames took (its correction's own description), so that a
round could be written before any fresh image is read.

Scenes (``detector_scenes``: a training image continued to 1024² at 0.2 mm/px with its power law,
open and collimated): ``--set mhh`` the unnamed MHH training images (every third from the first;
seen by the forty-second round), ``--set kermany`` Kermany train images from the 190th (seen by
the forty-ninth round), 672² as there. Straight and curved 2 / 4 mm (``models.blur``), without
noise and with Poisson 2·10⁴. Per case, PSNR gain over the blurred input: the node as
``sharpray process`` builds it (``models.evaluate.shipped_node``), the blind baseline (the node's
straight estimate, Wiener at the fixed λ 0.1, no gate), the Wiener filter with the true kernel at
that λ; the gate's decision, the straight fit's specificity, and the correction's description.

Run: ``PYTHONPATH=../.. python detector_curved_look.py --set mhh --images 8 --out
runs/dcl-mhh.json`` (and ``--set kermany``), then ``--summary runs/dcl-*.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import kermany_frames
from detector_scenes import SPACING_MM, frames, image_cases, parser
from fitting_cases import read_rows
from outside_blur import gain
from round_design import kermany_train_every_200th, unnamed_mhh_images

from models.deblur import MotionPolicy, assess_motion
from models.evaluate import Case as EvalCase
from models.evaluate import shipped_node, wiener_blind

KINDS = ("straight", "curved")
MOTION_MM = (2.0, 4.0)
NOISES = {"none": None, "2e4": 2e4}
LOOK_KERMANY_OFFSET = 190


def path_of(text: str) -> str:
    """The correction's path, from its description."""
    if text.startswith("not corrected"):
        return "not corrected"
    shaped = "retrieved" in text
    rl = "Richardson" in text
    return f"{'RL' if rl else 'Wiener'}{' retrieved' if shaped else ' straight'}"


def run(which: str, names: list[str], out: Path) -> None:
    motion_mm: list[float] = []
    texts: list[str] = []
    node, version = shipped_node(motion_mm, texts)
    print(version, flush=True)
    pol = MotionPolicy()
    scenes = frames if which == "mhh" else kermany_frames
    rows: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        for c in image_cases(name, scenes, "detector-curved-look", KINDS, MOTION_MM, NOISES):
            a = assess_motion(c.blurred, SPACING_MM, pol)
            case = EvalCase(
                name, "detector", c.kind, "", c.mm, SPACING_MM, c.kernel, c.sharp, c.blurred
            )
            texts.clear()
            corrected = node(case, None)

            rows.append(
                c.row(
                    flagged=a.blurred,
                    specificity=round(a.estimate.specificity, 3),
                    length_mm=round(a.motion_mm, 2),
                    path=path_of(texts[0]),
                    mean=texts[0].startswith("mean of two"),
                    node=gain(c.sharp, c.blurred, corrected),
                    baseline=gain(
                        c.sharp, c.blurred, wiener_blind(c.blurred, a.estimate.kernel(), pol)
                    ),
                    oracle=gain(c.sharp, c.blurred, wiener_blind(c.blurred, c.kernel, pol)),
                )
            )
        out.write_text(json.dumps(rows))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    print(f"{len(rows)} cases, {len({r['image'] for r in rows})} images")
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["scene"], r["kind"], r["mm"], r["noise"])].append(r)
    print("group: n, flagged, node / baseline / oracle, node below baseline by >0.5 dB: paths")
    for key in sorted(groups):
        g = groups[key]
        lost = [r for r in g if r["node"] < r["baseline"] - 0.5]
        paths: dict[str, int] = defaultdict(int)
        for r in lost:
            paths[r["path"]] += 1
        print(
            f"{' '.join(map(str, key)):32s} {len(g):3d} {np.mean([r['flagged'] for r in g]):.2f} "
            f"{np.mean([r['node'] for r in g]):+.2f} / {np.mean([r['baseline'] for r in g]):+.2f}"
            f" / {np.mean([r['oracle'] for r in g]):+.2f}  lost {len(lost)}: {dict(paths)}"
        )


def main() -> None:
    ap = parser()
    ap.add_argument("--set", choices=("mhh", "kermany"), default="mhh")
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    names = (
        unnamed_mhh_images()[::3]
        if args.set == "mhh"
        else kermany_train_every_200th(LOOK_KERMANY_OFFSET)
    )[: args.images]
    run(args.set, names, args.out)


if __name__ == "__main__":
    main()
