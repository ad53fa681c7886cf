"""Binary classification metrics (numpy only): accuracy, ROC AUC, sensitivity, specificity."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata


def roc_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties counted half); NaN if one class is absent."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def binary_metrics(
    y_true: ArrayLike, p_positive: ArrayLike, threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, AUC, sensitivity (recall of positives), specificity at ``threshold``."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(p_positive, dtype=np.float64)
    pred = p >= threshold
    tp = int((pred & y).sum())
    tn = int((~pred & ~y).sum())
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return {
        "n": int(y.size),
        "accuracy": round((tp + tn) / max(1, y.size), 4),
        "auc": round(roc_auc(y, p), 4),
        "sensitivity": round(tp / n_pos, 4) if n_pos else float("nan"),
        "specificity": round(tn / n_neg, 4) if n_neg else float("nan"),
        "threshold": threshold,
    }


def expected_calibration_error(y_true: ArrayLike, p_positive: ArrayLike, bins: int = 10) -> float:
    """ECE of P(positive): the bin-size-weighted gap between mean confidence and accuracy.

    Equal-width bins of the predicted class's confidence (max(p, 1 - p)), as Guo et al. 2017.
    """
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(p_positive, dtype=np.float64)
    pred = p >= 0.5
    conf = np.where(pred, p, 1.0 - p)
    correct = pred == y
    edges = np.linspace(0.5, 1.0, bins + 1)
    ece = 0.0
    for i in range(bins):
        lo, hi = edges[i], edges[i + 1]
        m = (conf >= lo) & ((conf < hi) if i < bins - 1 else (conf <= hi))
        if m.any():
            ece += m.mean() * abs(float(conf[m].mean()) - float(correct[m].mean()))
    return float(ece)


def reliability(y_true: ArrayLike, p_positive: ArrayLike, bins: int = 10) -> list[dict[str, float]]:
    """Reliability diagram of P(positive): per bin of p, mean p and observed positive rate."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(p_positive, dtype=np.float64)
    out = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i in range(bins):
        m = (p >= edges[i]) & ((p < edges[i + 1]) if i < bins - 1 else (p <= edges[i + 1]))
        if m.any():
            out.append(
                {
                    "bin": round(float(edges[i]), 2),
                    "n": int(m.sum()),
                    "mean_p": round(float(p[m].mean()), 4),
                    "positive_rate": round(float(y[m].mean()), 4),
                }
            )
    return out


def bootstrap_ci(
    y_true: ArrayLike,
    p_positive: ArrayLike,
    key: str,
    threshold: float = 0.5,
    n: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of ``binary_metrics(...)[key]`` (resampling images)."""
    y = np.asarray(y_true)
    p = np.asarray(p_positive, dtype=np.float64)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        v = binary_metrics(y[i], p[i], threshold)[key]
        if not np.isnan(v):
            vals.append(v)
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def softmax_p1(logits: NDArray[np.float64], temperature: float) -> NDArray[np.float64]:
    """P(class 1) of [N, 2] logits at ``temperature`` (numerically stable softmax)."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e[:, 1] / e.sum(axis=1), dtype=np.float64)
