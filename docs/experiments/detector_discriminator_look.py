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

``--fiftieth`` (the thirty-fifth session): the same measures (no held-out check) for every case
where the fiftieth round's ``rl`` took the Richardson-Lucy fallback with the retrieved kernel
(rows of ``quiet_detector_shape_round.py --fiftieth --look-sets --validation [--look]``), the
limits for ``rl`` and ``rl10`` alike, and how much farther the retrieved kernel lies from the
true one than the straight kernel (``kernel_error_gain``: a diagnosis, never a limit);
``--summary … --pairs fit estimated_mm``: limits on two measures together (the fifty-second round).
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fitting_cases import read_rows
from quiet_detector_shape_round import CANDIDATES, FALLBACK_CANDIDATES, LOOK, networks
from round_design import cases_of, round_parser

from models.blur import to_exposure
from models.deblur import MotionPolicy, assess_motion, find_shape, kernel_consistency
from models.kernel_shape import MagnitudeEstimator, kernel_error
from models.metrics import roc_auc


@dataclass(frozen=True)
class Target:
    """Whose cases are measured: the candidate ``labels`` (the first's policy finds the shape),
    the rows' key that marks a case as acted on (``{label}_{flag}``), whether the held-out
    check runs."""

    labels: tuple[str, ...]
    policy: MotionPolicy
    flag: str
    heldout: bool


#: the thirty-fourth session's look: where ``q5_kept`` retrieved a kernel
RETRIEVED = Target(("q5_kept",), CANDIDATES["q5_kept"], "retrieved", True)
#: the fiftieth round's look (``--fiftieth``): where ``rl`` / ``rl10`` (0.34.0 with the retrieved
#: kernel in the Richardson-Lucy fallback) took the fallback with the retrieved kernel; with the
#: retrieved and the straight kernel's error against the true one (what no limit can read)
IN_FALLBACK = Target(("rl", "rl10"), FALLBACK_CANDIDATES["rl"], "fallback", False)
TARGET = RETRIEVED
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
    "kernel_error_gain",
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
    policy = TARGET.policy
    shape = find_shape(image01[:, read], a, policy, *nets)
    if shape is None or not shape.replaced:
        return 0.0, False
    e = to_exposure(np.asarray(image01[:, check], dtype=np.float64), policy.log_range)
    return kernel_consistency(e, shape.kernel) - kernel_consistency(e, straight), True


def read(rows: list[dict[str, Any]], part: str) -> Iterator[dict[str, Any]]:
    """The measures of every case of ``rows`` the target's first candidate acted on (every K-th
    image from the I-th, ``part`` "I/K")."""
    policy = TARGET.policy
    first, detector = networks()["q5_kept"]  # both networks, as every candidate has them
    assert first is not None
    nets = (first, detector)
    keyed = {_key(r): r for r in rows}
    modes = {r["image"]: r["set"] for r in rows}
    label = TARGET.labels[0]
    i, k = (int(x) for x in part.split("/"))
    for name in sorted(modes)[i::k]:
        mode = modes[name]
        for c in cases_of(name, mode, LOOK.seed_key):
            r = keyed.get((name, c.scene, c.kind, c.mm, c.noise))
            if r is None or not r.get(f"{label}_{TARGET.flag}"):
                continue
            a = assess_motion(c.blurred, 0.2, policy)
            shape = find_shape(c.blurred, a, policy, first, detector)
            assert shape is not None and shape.replaced
            straight = a.estimate.kernel()
            e = to_exposure(np.asarray(c.blurred, dtype=np.float64), policy.log_range)
            held: dict[str, float] = {"heldout_gain": math.nan, "heldout_agree": math.nan}
            if TARGET.heldout:
                w = c.blurred.shape[1] // 2
                left, right = slice(0, w), slice(w, 2 * w)
                g1, r1 = _heldout(c.blurred, a, straight, left, right, nets)
                g2, r2 = _heldout(c.blurred, a, straight, right, left, nets)
                held = {"heldout_gain": (g1 + g2) / 2, "heldout_agree": float(r1) + float(r2)}
            follows = kernel_consistency(e, straight)
            yield c.row(set=mode) | {
                **{f"gain_over_node_{x}": r[x] - r["node"] for x in TARGET.labels},
                "gain_over_node": r[label] - r["node"],
                "confidence": a.estimate.confidence,
                "specificity": a.estimate.specificity,
                "estimated_mm": a.estimate.length_px * 0.2,
                "distance": shape.distance,
                "fit": shape.fit,
                "consistency": follows,
                "consistency_gain": kernel_consistency(e, shape.kernel) - follows,
                **held,
                "spread": spread(shape.kernel, a.estimate.angle_deg)
                / max(a.estimate.length_px, 1.0),
                # a diagnosis, not a limit: how much worse the retrieved kernel is than the
                # straight one against the true kernel
                "kernel_error_gain": kernel_error(shape.kernel, c.kernel)
                - kernel_error(straight, c.kernel),
            }


def _limited(
    rows: list[dict[str, Any]],
    measured: dict[tuple[Any, ...], dict[str, Any]],
    keep: Any,
    label: str,
) -> tuple[float, float, float, int, int]:
    """(node's mean, the limited ``label``'s mean, its worst group against the node, cases the
    node and the limited ``label`` harm) over all cases without noise of ``rows``; ``keep(m)``:
    whether a measured case keeps the candidate's correction (else the node's)."""
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    node, cand = [], []
    for r in rows:
        if r["noise"] != "none" or label not in r:
            continue
        m = measured.get(_key(r))
        value = r[label] if (m is None or keep(m)) else r["node"]
        node.append(r["node"])
        cand.append(value)
        groups[(r["scene"], r["kind"], r["mm"])].append(value - r["node"])
    worst = min(float(np.mean(v)) for v in groups.values())
    harmed = (int(np.sum(np.array(node) < -0.1)), int(np.sum(np.array(cand) < -0.1)))
    return float(np.mean(node)), float(np.mean(cand)), worst, *harmed


def _over_sets(
    rows_of: dict[str, list[dict[str, Any]]],
    measured: dict[tuple[Any, ...], dict[str, Any]],
    keep: Any,
    label: str,
) -> tuple[bool, float, str]:
    """A limit on every set: whether it meets the go-on rule on each (mean not lower than the
    node's, no group lower by more than 0.1 dB, harmed not more), its mean over all sets' cases
    without noise, and each set's mean / worst group / harmed for the printout."""
    cells, met, total, count = [], True, 0.0, 0
    for mode, set_rows in rows_of.items():
        node_mean, mean, worst, node_harmed, harmed = _limited(set_rows, measured, keep, label)
        cells.append(f"{mode} {mean:+.3f} / {worst:+.3f} / {node_harmed}→{harmed}")
        met &= mean >= node_mean and worst >= -0.1 and harmed <= node_harmed
        n = sum(1 for r in set_rows if r["noise"] == "none" and label in r)
        total, count = total + mean * n, count + n
    return met, total / count, "; ".join(cells)


def summary(measured_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    measured = {_key(m): m for m in measured_rows}
    names = [n for n in MEASURES if any(math.isfinite(m[n]) for m in measured_rows)]
    admissible: list[tuple[float, str]] = []
    for label in TARGET.labels:
        admissible += _summary_of(label, measured_rows, measured, rows, names)
    print("meeting the go-on rule on every set, by the mean over all sets' cases (best five):")
    for mean, what in sorted(admissible, reverse=True)[:5]:
        print(f"  {mean:+.4f}  {what}")


def _summary_of(
    label: str,
    measured_rows: list[dict[str, Any]],
    measured: dict[tuple[Any, ...], dict[str, Any]],
    rows: list[dict[str, Any]],
    names: list[str],
) -> list[tuple[float, str]]:
    """A label's summary printed; its limits that meet the go-on rule on every set (mean not
    lower than the node's, no group lower by more than 0.1 dB, harmed not more than the
    node's), each with its mean over all sets' cases without noise."""
    admissible: list[tuple[float, str]] = []
    print(f"== {label}")
    for mode in sorted({m["set"] for m in measured_rows}):
        sel = [m for m in measured_rows if m["set"] == mode]
        set_rows = [r for r in rows if r.get("set") == mode]
        gain = (
            f"gain_over_node_{label}" if f"gain_over_node_{label}" in sel[0] else "gain_over_node"
        )
        lost = np.array([m[gain] < 0 for m in sel])
        node, cand, worst, node_harmed, harmed = _limited(set_rows, measured, lambda m: True, label)
        print(f"{mode}: {len(sel)} acted on, {int(lost.sum())} lost; node {node:+.3f}, ", end="")
        print(f"{label} {cand:+.3f} (worst group {worst:+.3f}; harmed {node_harmed} → {harmed})")
        for kind in ("straight", "curved", "shake"):
            d = np.array([m[gain] for m in sel if m["kind"] == kind])
            if len(d):
                print(f"  {kind}: {len(d)}, mean {d.mean():+.2f}, lost {int((d < 0).sum())}")
        for name in names:
            v = np.array([m[name] for m in sel], dtype=float)
            ok = np.isfinite(v)
            auc = roc_auc(lost[ok], v[ok]) if lost[ok].any() and (~lost[ok]).any() else math.nan
            lo, hi = np.percentile(v[ok], [5, 95])
            print(f"  {name:17s} AUC (high = lost) {auc:.3f}; range {lo:.3f} … {hi:.3f}")
    print("limits (mean over all / worst group / harmed node→limited, per set):")
    sets = sorted({m["set"] for m in measured_rows})
    rows_of = {mode: [r for r in rows if r.get("set") == mode] for mode in sets}
    for name in names:
        if name == "kernel_error_gain":
            continue  # reads the true kernel: no limit
        values = np.array([m[name] for m in measured_rows], dtype=float)
        values = values[np.isfinite(values)]
        for t in np.unique(np.round(np.percentile(values, np.arange(10, 100, 10)), 3)):
            for side, keep in (
                ("<", lambda m, t=t, n=name: not m[n] >= t),
                (">=", lambda m, t=t, n=name: m[n] >= t),
            ):
                met, mean, cells = _over_sets(rows_of, measured, keep, label)
                what = f"{label}, keep where {name} {side} {t:g}"
                print(f"  {what}: {cells}")
                if met:
                    admissible.append((mean, what))
    return admissible


def pairs(
    measured_rows: list[dict[str, Any]], rows: list[dict[str, Any]], first: str, second: str
) -> None:
    """For each label, the limits on two measures together (kept where ``first`` is under one of
    its deciles and ``second`` under one of its): those meeting the go-on rule on every set, by
    the mean over all sets' cases (ties: the fewer cases kept)."""
    measured = {_key(m): m for m in measured_rows}
    sets = sorted({m["set"] for m in measured_rows})
    rows_of = {mode: [r for r in rows if r.get("set") == mode] for mode in sets}

    def deciles(name: str) -> np.ndarray:
        v = np.array([m[name] for m in measured_rows], dtype=float)
        return np.unique(np.round(np.percentile(v[np.isfinite(v)], np.arange(10, 101, 10)), 3))

    admissible: list[tuple[float, int, str]] = []
    for label in TARGET.labels:
        for a in deciles(first):
            for b in deciles(second):

                def keep(m: dict[str, Any], a: float = a, b: float = b) -> bool:
                    return bool(m[first] < a and m[second] < b)

                met, mean, cells = _over_sets(rows_of, measured, keep, label)
                kept = sum(1 for m in measured_rows if keep(m))
                what = f"{label}, {first} < {a:g} and {second} < {b:g} ({kept} kept): "
                if met:
                    admissible.append((mean, -kept, what + cells))
    print(f"pairs meeting the go-on rule on every set ({len(admissible)}), best ten:")
    for mean, _, what in sorted(admissible, reverse=True)[:10]:
        print(f"  {mean:+.4f}  {what}")


def main() -> None:
    global TARGET
    if "--fiftieth" in sys.argv:
        sys.argv.remove("--fiftieth")
        TARGET = IN_FALLBACK
    ap = round_parser()
    ap.add_argument("--rows", nargs="+", type=Path, default=[])
    ap.add_argument("--pairs", nargs=2, metavar=("FIRST", "SECOND"), help="two measures' limits")
    args = ap.parse_args()
    if args.summary and args.pairs:
        pairs(read_rows(args.summary), read_rows(args.rows), *args.pairs)
        return
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
