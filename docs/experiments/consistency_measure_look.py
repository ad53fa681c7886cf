"""A look after the forty-fourth round: which reading of "the spectrum follows the kernel" tells
where λ 0.1 helps.

:func:`models.deblur.kernel_consistency` correlates the blurred frame's raw log Welch power with
the kernel's log |K|² over radial frequencies 0.03–0.3 cycles/px. On a steep spectrum the
anatomy's fall with frequency dominates both, so a right straight kernel can read as
inconsistent (the forty-fourth round's Kermany straight 2 mm frames). ``rings``: the same
correlation after each ring's mean is removed from both (as the motion estimate's template
does), so only how the power varies with the direction is compared.

Cases: the forty-fourth round's validation cases without noise (seen now; its seeds), every
flagged one whose Wiener result the node keeps: the node's gain (the round's rows), the gain
with λ at least 0.1 (``ALWAYS``), and both readings of the estimated kernel's consistency.

Run: ``PYTHONPATH=. python docs/experiments/consistency_measure_look.py --rows runs/nc-vk*.json
--out runs/cm-k.json`` (and ``--look --rows runs/nc-vm*.json --out runs/cm-m.json``), then
``--summary runs/cm-*.json``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from fitting_cases import read_rows
from look_rows import by_set, case_groups, rows_by_image, rows_look_main, worst_group
from noiseless_consistency_round import ROUND
from outside_blur import gain
from quiet_consistency_round import NODE
from round_design import cases_of

from models.blur import to_exposure
from models.deblur import (
    CONSISTENCY_PATCH,
    assess_motion,
    consistency_spectra,
    deconvolve,
    kernel_consistency,
)

#: λ at least 0.1 wherever the Wiener filter is kept (a threshold no correlation reaches)
ALWAYS = replace(NODE, kernel_consistency_min=1.01, kernel_consistency_balance=0.1)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def ring_consistency(exposure: np.ndarray, psf: np.ndarray) -> float:
    """:func:`models.deblur.kernel_consistency` with each ring's mean removed from the frame's
    log power and the kernel's log transfer before they are correlated."""
    spectra = consistency_spectra(exposure, psf)
    if spectra is None:
        return float("nan")
    band = spectra.band
    ring = np.round(spectra.radius * CONSISTENCY_PATCH).astype(int)
    a, b = spectra.log_power.copy(), spectra.log_transfer.copy()
    for x in (a, b):
        for k in np.unique(ring[band]):
            m = band & (ring == k)
            x[m] -= x[m].mean()
    if np.std(a[band]) == 0 or np.std(b[band]) == 0:
        return float("nan")
    return float(np.corrcoef(a[band], b[band])[0, 1])


def run(rows_paths: list[Path], look: bool, out: Path) -> None:
    mode = "validation-mhh" if look else "validation"
    by_image = rows_by_image(rows_paths, mode)
    done: list[dict[str, Any]] = []
    for name, image_rows in by_image.items():
        cases = [c for c in cases_of(name, mode, ROUND.seed_key) if c.noise == "none"]
        for c, r in zip(cases, image_rows, strict=True):
            assert (c.kind, c.mm, c.scene) == (r["kind"], r["mm"], r["scene"])
            if not r["flagged"]:
                continue
            a = assess_motion(c.blurred, 0.2, NODE)
            d = deconvolve(c.blurred, a, ALWAYS)
            if d.method != "wiener":
                continue  # the fallback's frames: no floor acts there
            e = to_exposure(np.asarray(c.blurred, dtype=np.float64), NODE.log_range)
            k = a.estimate.kernel()
            done.append(
                {
                    **r,
                    "raised": gain(c.sharp, c.blurred, d.image),
                    "quanta": d.noise_quanta,
                    "raw": kernel_consistency(e, k),
                    "rings": ring_consistency(e, k),
                }
            )
        out.write_text(json.dumps(done))
        print(name, "done", flush=True)


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of a low ``score`` for ``positive``."""
    pos, neg = score[positive], score[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return float(np.mean([(p < neg).mean() + 0.5 * (p == neg).mean() for p in pos]))


def summary(paths: list[Path]) -> None:
    rows = [r for r in read_rows(paths) if np.isfinite(r["raw"]) and np.isfinite(r["rings"])]
    for mode, sel in by_set(rows):
        node = np.array([r["node"] for r in sel])
        raised = np.array([r["raised"] for r in sel])
        helps = raised - node > 0.1
        groups = case_groups(sel)
        print(
            f"{mode}: {len(sel)} Wiener cases; raising λ helps {helps.sum()}, harms "
            f"{int(np.sum(raised - node < -0.1))}; node mean {node.mean():+.3f} harmed "
            f"{int(np.sum(node < -0.1))}"
        )
        for key in ("raw", "rings"):
            s = np.array([r[key] for r in sel])
            print(f"  {key}: AUC (low score, raising helps) {auc(s, helps):.3f}")
            for t in THRESHOLDS:
                v = np.where(s < t, raised, node)
                d, g = worst_group(v, node, groups)
                print(
                    f"    under {t:.1f}: acts {int(np.sum(s < t))} mean {v.mean():+.3f} harmed "
                    f"{int(np.sum(v < -0.1))} worst group {d:+.3f} ({g})"
                )


if __name__ == "__main__":
    rows_look_main(run, summary)
