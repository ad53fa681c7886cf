"""Calibrate a trained classifier on its validation split: temperature, operating point, ECE.

Reads ``best.pt`` of :mod:`models.train_classifier` (it names its validation images), computes the
validation logits, fits one temperature ``T`` (Guo et al. 2017: minimise the negative
log-likelihood of ``softmax(logits / T)``), and picks the operating point on the calibrated
validation probabilities: the threshold with the highest balanced accuracy (mean of sensitivity and
specificity). Never looks at the test split. Writes ``temperature``, ``threshold`` and
``calibration`` (validation ECE and metrics before and after) into the checkpoint, which
:mod:`models.export` bakes into the ONNX graph (probabilities = softmax(logits / T)) and the
manifest (``operating_threshold``)::

    python -m models.calibrate --checkpoint runs/classify/best.pt --labels LABELS
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from models.metrics import binary_metrics, expected_calibration_error, softmax_p1

F64 = NDArray[np.float64]


def fit_temperature(logits: F64, y: NDArray[np.int64]) -> float:
    """The temperature minimising the validation NLL (searched in log space, 0.05–20)."""

    def nll(log_t: float) -> float:
        p = np.clip(softmax_p1(logits, float(np.exp(log_t))), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def choose_threshold(y: NDArray[np.int64], p: F64) -> float:
    """The threshold with the best balanced accuracy (ties: closest to 0.5)."""
    best, best_t = -1.0, 0.5
    for t in np.unique(np.round(p, 4)):
        m = binary_metrics(y, p, float(t))
        bal = (m["sensitivity"] + m["specificity"]) / 2
        if bal > best + 1e-9 or (abs(bal - best) <= 1e-9 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = bal, float(t)
    return best_t


def calibrate(logits: F64, y: NDArray[np.int64]) -> dict[str, Any]:
    t = fit_temperature(logits, y)
    raw, cal = softmax_p1(logits, 1.0), softmax_p1(logits, t)
    thr = choose_threshold(y, cal)
    return {
        "temperature": round(t, 4),
        "threshold": round(thr, 4),
        "validation": {
            "n": int(len(y)),
            "ece_before": round(expected_calibration_error(y, raw), 4),
            "ece_after": round(expected_calibration_error(y, cal), 4),
            "at_0.5": binary_metrics(y, cal),
            "at_threshold": binary_metrics(y, cal, thr),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--labels", type=Path, required=True, help="the labels.csv it was trained on")
    args = ap.parse_args(argv)
    import torch

    from models.export import load_classifier_checkpoint
    from models.train_classifier import CLASSES, load_array, predict_logits, read_kermany

    model, ck = load_classifier_checkpoint(args.checkpoint)
    val_paths = set(ck.get("val_paths") or [])
    if not val_paths:
        raise SystemExit("the checkpoint names no validation images (train it again)")
    samples = [s for s in read_kermany(args.labels, "train") if s.path in val_paths]
    x = load_array(args.labels.parent, samples, int(ck["size"]))
    y = np.array([s.label for s in samples], dtype=np.int64)
    torch.set_num_threads(2)
    logits = predict_logits(model, x, float(ck["mean"]), float(ck["std"]))
    cal = calibrate(logits, y)
    ck["temperature"], ck["threshold"], ck["calibration"] = (
        cal["temperature"],
        cal["threshold"],
        cal,
    )
    ck.setdefault("metrics", {})["calibration"] = cal
    torch.save(ck, args.checkpoint)
    print(json.dumps({"classes": CLASSES, **cal}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
