"""What the looks on the thirty-sixth round's cases share (``lowpass_guard_look``,
``domain_look``, ``shorter_kernel_look``, ``dip_support_look``, ``noise_aware_template_gains``):
the node's flagged cases of one image with its assessment and correction, saving the rows after
each image, and the summaries' groups (scene × kind × motion × noise), worst group and means
by motion length; and for the looks over a round's saved rows (``quiet_threshold_look``,
``consistency_measure_look``) those rows by image and their command line.

Imported by those scripts as a sibling module (``python docs/experiments/NAME.py`` puts this
folder first on the path)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from consistency_balance import round_cases
from detector_scenes import SPACING_MM, Case, parser
from fitting_cases import read_rows

from models.deblur import Deconvolution, MotionAssessment, MotionPolicy, assess_motion, deconvolve


def flagged_corrections(
    name: str, look: bool, policy: MotionPolicy
) -> Iterator[tuple[Case, MotionAssessment, Deconvolution]]:
    """One image's cases (:func:`consistency_balance.round_cases`) that ``policy`` flags, each
    with its assessment and correction."""
    for c in round_cases(name, look):
        a = assess_motion(c.blurred, SPACING_MM, policy)
        if a.blurred:
            yield c, a, deconvolve(c.blurred, a, policy)


def save(out: Path, rows: list[dict[str, Any]], name: str) -> None:
    """The rows so far to ``out`` (after each image, so a stopped run keeps what it did)."""
    out.write_text(json.dumps(rows))
    print(name, "done", flush=True)


def by_set(rows: Sequence[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The rows of each set (their ``set`` key: ``kermany``, ``mhh``, …), sets in order."""
    for name in sorted({r["set"] for r in rows}):
        yield name, [r for r in rows if r["set"] == name]


def case_groups(rows: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    """Row indices by scene × kind × motion × noise."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(f"{r['scene']} {r['kind']} {r['mm']:g} mm {r['noise']}", []).append(i)
    return groups


def worst_group(
    values: np.ndarray, reference: np.ndarray, groups: dict[str, list[int]]
) -> tuple[float, str]:
    """The group whose mean of ``values`` lies lowest against ``reference``: (difference, key)."""
    return min((float(np.mean(values[ix] - reference[ix])), k) for k, ix in groups.items())


def against_node(values: np.ndarray, node: np.ndarray, groups: dict[str, list[int]]) -> str:
    """``values``' mean, harmed cases (under the blurred input by more than 0.1 dB), worst case
    and worst group against ``node`` ("mean +1.234 harmed 5 worst -2.10 worst group …")."""
    worst = worst_group(values, node, groups)
    return (
        f"mean {values.mean():+.3f} harmed {int(np.sum(values < -0.1))} worst "
        f"{values.min():+.2f} worst group {worst[0]:+.3f} ({worst[1]})"
    )


def means_by(
    values: Sequence[float], rows: Sequence[dict[str, Any]], key: str, order: Sequence[Any]
) -> str:
    """``values``' mean for each of the rows' ``key`` in ``order`` ("straight +0.123 …")."""
    return " ".join(
        f"{k} {np.mean([v for v, r in zip(values, rows, strict=True) if r[key] == k]):+.3f}"
        for k in order
    )


def by_mm(values: Sequence[float], rows: Sequence[dict[str, Any]]) -> str:
    """``values``' mean for each motion length ("1mm +0.123 2mm …")."""
    return " ".join(
        f"{m:g}mm {np.mean([v for v, r in zip(values, rows, strict=True) if r['mm'] == m]):+.3f}"
        for m in sorted({r["mm"] for r in rows})
    )


def rows_by_image(paths: Sequence[Path], set_name: str) -> dict[str, list[dict[str, Any]]]:
    """A round's saved rows of one set, by image (each image's rows in the order its cases are
    drawn), for a look that regenerates those cases from their seeds."""
    by_image: dict[str, list[dict[str, Any]]] = {}
    for r in read_rows(list(paths)):
        if r["set"] == set_name:
            by_image.setdefault(r["image"], []).append(r)
    return by_image


def rows_look_main(
    run: Callable[[list[Path], bool, Path], None], summarise: Callable[[list[Path]], None]
) -> None:
    """The command line of a look over a round's saved rows: ``--rows`` (the round's),
    ``--look`` (its MHH rows), ``--out``, or ``--summary`` of the look's own rows."""
    ap = parser()
    ap.add_argument("--rows", nargs="+", type=Path, default=[])
    ap.add_argument("--look", action="store_true", help="the MHH rows")
    args = ap.parse_args()
    if args.summary:
        summarise(args.summary)
        return
    run(args.rows, args.look, args.out)
