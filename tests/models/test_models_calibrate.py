"""The operating point: the middle of the plateau of near-best balanced accuracy, not the edge of
a cliff; the temperature that fits."""

from __future__ import annotations

import numpy as np

from models.calibrate import calibrate, choose_threshold, fit_temperature
from models.metrics import binary_metrics


def test_threshold_is_the_middle_of_the_plateau_not_its_edge() -> None:
    # Pneumonia scores well above most normals, with a few normals on the high side: every
    # threshold from ~0.05 to ~0.5 separates about as well, below 0.05 normals flood in.
    rng = np.random.default_rng(0)
    normal = np.concatenate([rng.uniform(0.0, 0.04, 180), rng.uniform(0.5, 0.9, 6)])
    sick = np.concatenate([rng.uniform(0.55, 1.0, 500), rng.uniform(0.05, 0.5, 4)])
    p = np.concatenate([normal, sick]).astype(np.float64)
    y = np.concatenate([np.zeros(len(normal)), np.ones(len(sick))]).astype(np.int64)
    t = choose_threshold(y, p)
    assert 0.1 < t < 0.4, t  # not at 0.04-0.05, where one step down loses specificity
    best = max(
        (
            binary_metrics(y, p, float(c))["sensitivity"]
            + binary_metrics(y, p, float(c))["specificity"]
        )
        / 2
        for c in np.unique(p)
    )
    m = binary_metrics(y, p, t)
    assert (m["sensitivity"] + m["specificity"]) / 2 >= best - 0.01


def test_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000).astype(np.int64)
    true_logit = rng.normal(0, 1.5, 2000) + (2 * y - 1) * 1.0
    noisy = np.where(rng.random(2000) < 1 / (1 + np.exp(-true_logit)), 1, 0)
    logits = np.stack([np.zeros(2000), 3.0 * true_logit], axis=1)  # 3x overconfident
    t = fit_temperature(logits, noisy.astype(np.int64))
    assert 2.4 < t < 3.6, t
    cal = calibrate(logits, noisy.astype(np.int64))
    assert cal["validation"]["ece_after"] < cal["validation"]["ece_before"]
