"""What tells a straight path the native-pixel network wrongly replaced from a curved one it
rightly replaced, a look on the forty-eighth round's look rows (seen).

For every case of the rows where the candidate (``quiet``) retrieved a kernel, the case drawn
again (the same seeds), the node's assessment (the straight fit's confidence and specificity),
the shape step's finding (the magnitude's distance from the straight kernel's, the retrieved
kernel's fit), :func:`models.deblur.kernel_consistency` of the straight kernel, with the gain
over the node; then, per measure, the ROC AUC for "the replacement lost against the node".

Run: ``PYTHONPATH=../.. python quiet_detector_shape_look.py --rows runs/qd-lk0.json
runs/qd-lk1.json --out runs/qd-why-k.json`` (``--summary runs/qd-why-*.json``).
docs/models.md, the forty-eighth round.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from fitting_cases import read_rows
from quiet_detector_shape_round import CANDIDATES, LOOK, networks
from round_design import cases_of, round_parser

from models.blur import to_exposure
from models.deblur import assess_motion, find_shape, kernel_consistency
from models.metrics import roc_auc

MEASURES = ("confidence", "specificity", "distance", "fit", "consistency", "estimated_px")


def _keyed(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(r["image"], r["scene"], r["kind"], r["mm"], r["noise"]): r for r in rows}


def read(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The measures of every case of ``rows`` where ``quiet`` retrieved a kernel."""
    policy = CANDIDATES["quiet"]
    first, detector = networks()["quiet"]
    assert first is not None
    keyed = _keyed(rows)
    modes = {r["image"]: r["set"] for r in rows}
    for name, mode in modes.items():
        for c in cases_of(name, mode, LOOK.seed_key):
            r = keyed.get((name, c.scene, c.kind, c.mm, c.noise))
            if r is None or not r.get("quiet_retrieved"):
                continue
            a = assess_motion(c.blurred, 0.2, policy)
            shape = find_shape(c.blurred, a, policy, first, detector)
            assert shape is not None and shape.replaced
            e = to_exposure(np.asarray(c.blurred, dtype=np.float64), policy.log_range)
            yield {
                "image": name,
                "set": mode,
                "scene": c.scene,
                "kind": c.kind,
                "mm": c.mm,
                "gain_over_node": r["quiet"] - r["node"],
                "confidence": a.estimate.confidence,
                "specificity": a.estimate.specificity,
                "estimated_px": a.estimate.length_px,
                "distance": shape.distance,
                "fit": shape.fit,
                "consistency": kernel_consistency(e, a.estimate.kernel()),
            }


def summary(rows: list[dict[str, Any]]) -> None:
    for mode in sorted({r["set"] for r in rows}):
        sel = [r for r in rows if r["set"] == mode]
        lost = np.array([r["gain_over_node"] < 0 for r in sel])
        print(f"{mode}: {len(sel)} replaced, {int(lost.sum())} lost against the node")
        for kind in ("straight", "curved", "shake"):
            k = [r for r in sel if r["kind"] == kind]
            d = np.array([r["gain_over_node"] for r in k])
            if len(d):
                print(f"  {kind}: {len(k)}, mean {d.mean():+.2f}, lost {int((d < 0).sum())}")
        for m in MEASURES:
            v = np.array([r[m] for r in sel], dtype=float)
            ok = np.isfinite(v)
            auc = roc_auc(lost[ok], v[ok])
            lo, hi = np.percentile(v[ok][lost[ok]], [10, 90]) if lost[ok].any() else (0, 0)
            print(f"  {m:13s} AUC (high = lost) {auc:.3f}; lost 10–90 % {lo:.3f} … {hi:.3f}")


def main() -> None:
    ap = round_parser()
    ap.add_argument("--rows", nargs="+", type=Path, default=[])
    args = ap.parse_args()
    if args.summary:
        summary(read_rows(args.summary))
        return
    out: list[dict[str, Any]] = []
    for row in read(read_rows(args.rows)):
        out.append(row)
        args.out.write_text(json.dumps(out))
    print(len(out), "replaced cases read")


if __name__ == "__main__":
    main()
