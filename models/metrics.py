"""Binary classification metrics (numpy only): accuracy, ROC AUC, sensitivity, specificity."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
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
