"""A look after the forty-third round: the noise measured in each flagged case of its fitting look.

The forty-third round's candidates lost on the Kermany scenes at 10⁵ quanta per pixel (open
straight 2 mm −1.31 dB), a level its "quiet" threshold (5·10⁴) counted as quiet. Here each
flagged case of that look (the rows of ``quiet_consistency_round.py``, regenerated from their
seeds) gets the noise the node measures in it (:func:`models.deblur.wiener_balance`'s quanta per
pixel), so that the check's gains and losses can be read by the frame's measured noise — how a
threshold on it would have fared on these (seen) cases.

Run: ``PYTHONPATH=. python docs/experiments/quiet_threshold_look.py --rows runs/qc-k*.json --out
runs/qt-k.json`` (and the MHH rows, ``--look``), then ``--summary runs/qt-*.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from fitting_cases import read_rows
from look_rows import by_set, case_groups, rows_by_image, rows_look_main, worst_group
from quiet_consistency_round import NODE, ROUND
from round_design import cases_of

from models.blur import to_exposure
from models.deblur import wiener_balance

THRESHOLDS = (5e4, 1e5, 2e5, 5e5, 1e6, 1e7)


def run(rows_paths: list[Path], look: bool, out: Path) -> None:
    mode = "mhh" if look else "kermany"
    by_image = rows_by_image(rows_paths, mode)
    done: list[dict[str, Any]] = []
    for name, image_rows in by_image.items():
        cases = list(cases_of(name, mode, ROUND.seed_key))
        assert len(cases) == len(image_rows), name
        for c, r in zip(cases, image_rows, strict=True):
            assert (c.kind, c.mm, c.noise, c.scene) == (r["kind"], r["mm"], r["noise"], r["scene"])
            quanta = None
            if r["flagged"]:
                e = to_exposure(np.asarray(c.blurred, dtype=np.float64), NODE.log_range)
                _, quanta = wiener_balance(e, NODE)
            done.append({**r, "quanta": quanta})
        out.write_text(json.dumps(done))
        print(name, "done", flush=True)


def summary(paths: list[Path]) -> None:
    rows = read_rows(paths)
    for mode, sel in by_set(rows):
        groups = case_groups(sel)
        node = np.array([r["node"] for r in sel])
        print(
            f"{mode}: {len(sel)} cases; node mean {node.mean():+.3f} harmed {int(np.sum(node < -0.1))}"
        )
        for t in THRESHOLDS:
            v = np.array(
                [
                    r["c70"] if r["quanta"] is not None and r["quanta"] >= t else r["node"]
                    for r in sel
                ]
            )
            d, k = worst_group(v, node, groups)
            print(
                f"  quanta ≥ {t:.0e}: mean {v.mean():+.3f} harmed {int(np.sum(v < -0.1))} "
                f"worst group {d:+.3f} ({k})"
            )
        q = [r["quanta"] for r in sel if r["quanta"] is not None]
        for noise in ("none", "1e5", "2e4", "1e4"):
            qn = [r["quanta"] for r in sel if r["quanta"] is not None and r["noise"] == noise]
            if qn:
                print(
                    f"  measured at {noise}: median {np.median(qn):.2e}, min {min(qn):.2e}, max {max(qn):.2e}"
                )
        print(f"  ({len(q)} flagged)")


if __name__ == "__main__":
    rows_look_main(run, summary)
