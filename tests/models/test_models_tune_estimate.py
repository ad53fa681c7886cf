"""The eighth round's comparison (models.tune_estimate): each candidate judged on its own estimate,
an uncorrected case gaining 0, and the rule written before the figures."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.blur import NoiseSpec, linear_kernel, simulate_motion_blur
from models.tune_estimate import candidates, case_row, summarise
from tests.support.synthetic import chest_like, power_law_field


def _row(scene: str, px: float, built: float, sub: float, flag_b: bool, flag_s: bool) -> Any:
    return {
        "scene": scene,
        "kind": "straight" if px else "sharp",
        "px": px,
        "quanta": 1e4,
        "gain_built": built,
        "gain_subtract": sub,
        "flagged_built": flag_b,
        "flagged_subtract": flag_s,
    }


def test_the_rule_needs_a_mean_gain_no_group_loss_and_no_more_sharp_frames_flagged() -> None:
    rows = [
        _row("0.6/open", 3.0, 0.0, 0.4, False, True),
        _row("0.6/open", 6.0, 1.0, 1.0, True, True),
    ]
    rows.append(_row("0.6/open", 0.0, 0.0, 0.0, False, False))
    s = summarise(rows)
    assert s["delta_db"] == 0.2 and s["rule_met"]
    assert s["flagged"]["subtract"] == {"sharp": 0, "blurred": 2}
    losing = [*rows, _row("0.2/open", 10.0, 1.0, 0.7, True, True)]
    assert summarise(losing)["lowest_group_delta_db"] == -0.3
    assert not summarise(losing)["rule_met"]
    alarm = [*rows, _row("0.2/open", 0.0, 0.0, 0.0, False, True)]
    assert not summarise(alarm)["rule_met"]


def test_a_case_is_corrected_by_each_candidate_with_its_own_estimate() -> None:
    mixed = 0.5 * chest_like(512, 512, 2) + 0.5 * power_law_field(512, 2, 1.25, 0.0, 1.0)
    sharp = np.clip(mixed, 0.0, 1.0).astype(np.float32)
    rng = np.random.default_rng(5)
    blurred = simulate_motion_blur(sharp, linear_kernel(4.0, 70.0), rng, noise=NoiseSpec(3e3))
    row = case_row(sharp, blurred, 0.6, candidates(), None)
    # the built estimate misses this short motion in the noise: unchanged, 0 dB
    assert not row["flagged_built"] and row["gain_built"] == 0.0
    assert row["flagged_subtract"] and row["estimated_px_subtract"] == 4.0
    assert row["gain_subtract"] > 0.3 and row["method_subtract"] == "wiener"
