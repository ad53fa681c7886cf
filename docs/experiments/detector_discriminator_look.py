"""What tells a straight path the native-pixel network misread as curved apart from a curved one
it read rightly, on *both* spectra (Kermany's steep ones, MHH's flatter ones): a look on the
forty-eighth round's look sets (seen), thirty-fourth session.

The forty-eighth round's look after it found that ``q5_kept`` (the native-pixel step in frames
whose measured noise reads at least 5·10⁵ quanta per pixel, λ left alone where the straight
kernel is kept) gains on MHH scenes (+1.578 → +1.821 dB) and on Kermany ones (+1.694 → +2.015)
but loses −0.60 dB on Kermany's open straight 4 mm; the fixed consistency limit that removed that
loss also removed the MHH gains, and a comparative one never acted. Here, for every case where
``q5_kept`` retrieved a kernel, the case drawn again (the same seeds) and measured:

- the straight fit's confidence, specificity and length (mm); the magnitude's distance from the
  straight kernel's, the retrieved kernel's fit; :func:`models.deblur.kernel_consistency` of the
  straight and of the retrieved kernel;
- **held out**: the network read on one half of the frame (left / right), its kernel checked on
  the other half against the straight one (the consistency of each there), both ways: a curved
  path is the same in both halves, a misreading of one half's anatomy need not be;
- the retrieved kernel's spread across the motion (its second moment perpendicular to the
  estimated direction, over the estimated length): how far from a line it is.

Then, per measure, the ROC AUC for "the replacement lost against the node" on each set, and the
mean over all cases of each set and its worst group against the node for a limit at each of a
grid of thresholds (the retrieved kernel kept only on one side of it).

Run: ``PYTHONPATH=../.. python detector_discriminator_look.py --rows runs/dd-k0.json
runs/dd-k1.json --out runs/dd-why-k0.json --part 0/2`` (rows of ``quiet_detector_shape_round.py
--forty-fourth --validation --candidates q5_kept``; the MHH rows likewise), then ``--summary
runs/dd-why-*.json --rows runs/dd-*[01].json``. docs/models.md, the thirty-fourth session.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from fitting_cases import read_rows
from quiet_detector_shape_round import CANDIDATES, LOOK, networks
from round_design import cases_of, round_parser

from models.blur import to_exposure
from models.deblur import assess_motion, find_shape, kernel_consistency
from models.kernel_shape import MagnitudeEstimator
from models.metrics import roc_auc

LABEL = "q5_kept"
MEASURES = (
    "confidence",
    "specificity",
    "estimated_mm",
    "distance",
    "fit",
    "consistency",
    "consistency_gain",
    "heldout_gain",
    "heldout_agree",
    "spread",
)


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["image"], r["scene"], r["kind"], r["mm"], r["noise"])


def spread(kernel: np.ndarray, angle_deg: float) -> float:
    """The kernel's RMS extent (px) perpendicular to ``angle_deg`` (the image's x to the right,
    y down, as :func:`models.blur.linear_kernel` draws it)."""
    k = np.clip(np.asarray(kernel, dtype=np.float64), 0.0, None)
    k = k / k.sum()
    yy, xx = np.indices(k.shape, dtype=np.float64)
    cy, cx = float((k * yy).sum()), float((k * xx).sum())
    t = math.radians(angle_deg)
    # the unit normal to the motion direction (cos t, −sin t)
    across = (xx - cx) * math.sin(t) + (yy - cy) * math.cos(t)
    return float(math.sqrt((k * across**2).sum()))


def _heldout(
    image01: np.ndarray,
    a: Any,
    straight: np.ndarray,
    read: slice,
    check: slice,
    nets: tuple[MagnitudeEstimator, MagnitudeEstimator | None],
) -> tuple[float, bool]:
    """The networks ``nets`` read on ``image01[:, read]``; the kernel's consistency on
    ``[:, check]`` over the straight kernel's there (0 where the read half keeps the straight
    kernel)."""
    policy = CANDIDATES[LABEL]
    shape = find_shape(image01[:, read], a, policy, *nets)
    if shape is None or not shape.replaced:
        return 0.0, False
    e = to_exposure(np.asarray(image01[:, check], dtype=np.float64), policy.log_range)
    return kernel_consistency(e, shape.kernel) - kernel_consistency(e, straight), True


def read(rows: list[dict[str, Any]], part: str) -> Iterator[dict[str, Any]]:
    """The measures of every case of ``rows`` where ``q5_kept`` retrieved a kernel (every K-th
    image from the I-th, ``part`` "I/K")."""
    policy = CANDIDATES[LABEL]
    first, detector = networks()[LABEL]
    assert first is not None
    nets = (first, detector)
    keyed = {_key(r): r for r in rows}
    modes = {r["image"]: r["set"] for r in rows}
    i, k = (int(x) for x in part.split("/"))
    for name in sorted(modes)[i::k]:
        mode = modes[name]
        for c in cases_of(name, mode, LOOK.seed_key):
            r = keyed.get((name, c.scene, c.kind, c.mm, c.noise))
            if r is None or not r.get(f"{LABEL}_retrieved"):
                continue
            a = assess_motion(c.blurred, 0.2, policy)
            shape = find_shape(c.blurred, a, policy, first, detector)
            assert shape is not None and shape.replaced
            straight = a.estimate.kernel()
            e = to_exposure(np.asarray(c.blurred, dtype=np.float64), policy.log_range)
            w = c.blurred.shape[1] // 2
            left, right = slice(0, w), slice(w, 2 * w)
            g1, r1 = _heldout(c.blurred, a, straight, left, right, nets)
            g2, r2 = _heldout(c.blurred, a, straight, right, left, nets)
            follows = kernel_consistency(e, straight)
            yield c.row(set=mode) | {
                "gain_over_node": r[LABEL] - r["node"],
                "confidence": a.estimate.confidence,
                "specificity": a.estimate.specificity,
                "estimated_mm": a.estimate.length_px * 0.2,
                "distance": shape.distance,
                "fit": shape.fit,
                "consistency": follows,
                "consistency_gain": kernel_consistency(e, shape.kernel) - follows,
                "heldout_gain": (g1 + g2) / 2,
                "heldout_agree": float(r1) + float(r2),
                "spread": spread(shape.kernel, a.estimate.angle_deg)
                / max(a.estimate.length_px, 1.0),
            }


def _limited(
    rows: list[dict[str, Any]], measured: dict[tuple[Any, ...], dict[str, Any]], keep: Any
) -> tuple[float, float, float]:
    """(node's mean, the limited candidate's mean, its worst group against the node) over all
    cases without noise of ``rows``; ``keep(m)``: whether a retrieved case keeps its kernel."""
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    node, cand = [], []
    for r in rows:
        if r["noise"] != "none" or LABEL not in r:
            continue
        m = measured.get(_key(r))
        value = r[LABEL] if (m is None or keep(m)) else r["node"]
        node.append(r["node"])
        cand.append(value)
        groups[(r["scene"], r["kind"], r["mm"])].append(value - r["node"])
    worst = min(float(np.mean(v)) for v in groups.values())
    return float(np.mean(node)), float(np.mean(cand)), worst


def summary(measured_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    measured = {_key(m): m for m in measured_rows}
    for mode in sorted({m["set"] for m in measured_rows}):
        sel = [m for m in measured_rows if m["set"] == mode]
        set_rows = [r for r in rows if r.get("set") == mode]
        lost = np.array([m["gain_over_node"] < 0 for m in sel])
        node, q5, worst = _limited(set_rows, measured, lambda m: True)
        print(f"{mode}: {len(sel)} replaced, {int(lost.sum())} lost; node {node:+.3f}, ", end="")
        print(f"{LABEL} {q5:+.3f} (worst group {worst:+.3f})")
        for kind in ("straight", "curved", "shake"):
            d = np.array([m["gain_over_node"] for m in sel if m["kind"] == kind])
            if len(d):
                print(f"  {kind}: {len(d)}, mean {d.mean():+.2f}, lost {int((d < 0).sum())}")
        for name in MEASURES:
            v = np.array([m[name] for m in sel], dtype=float)
            ok = np.isfinite(v)
            auc = roc_auc(lost[ok], v[ok]) if lost[ok].any() and (~lost[ok]).any() else math.nan
            lo, hi = np.percentile(v[ok], [5, 95])
            print(f"  {name:16s} AUC (high = lost) {auc:.3f}; range {lo:.3f} … {hi:.3f}")
    print("limits (mean over all / worst group, per set):")
    sets = sorted({m["set"] for m in measured_rows})
    rows_of = {mode: [r for r in rows if r.get("set") == mode] for mode in sets}
    for name in MEASURES:
        values = np.array([m[name] for m in measured_rows], dtype=float)
        values = values[np.isfinite(values)]
        for t in np.unique(np.round(np.percentile(values, np.arange(10, 100, 10)), 3)):
            for side, keep in (
                ("<", lambda m, t=t, n=name: not m[n] >= t),
                (">=", lambda m, t=t, n=name: m[n] >= t),
            ):
                cells = []
                for mode in sets:
                    _, mean, worst = _limited(rows_of[mode], measured, keep)
                    cells.append(f"{mode} {mean:+.3f} / {worst:+.3f}")
                print(f"  keep where {name} {side} {t:g}: " + "; ".join(cells))


def main() -> None:
    ap = round_parser()
    ap.add_argument("--rows", nargs="+", type=Path, default=[])
    args = ap.parse_args()
    if args.summary:
        summary(read_rows(args.summary), read_rows(args.rows))
        return
    out: list[dict[str, Any]] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for row in read(read_rows(args.rows), args.part):
        out.append(row)
        args.out.write_text(json.dumps(out))
    print(len(out), "replaced cases read")


if __name__ == "__main__":
    main()
