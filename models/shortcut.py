"""How far can a diagnosis be read off *global* image statistics alone? (an acquisition shortcut)

Kermany's normal and pneumonia images differ in ways that need not be the disease: how much dark
background and bright soft tissue lie at the frame's sides, the grey-value histogram, edge
density. A classifier that sees only such global statistics (no anatomy, no position inside the
lungs) separates the training split's classes with AUC ≈ 0.97 (out of fold, by patient). A CNN
trained on the same images can lean on the same cues, and those do not carry to other years or
hospitals (docs/models.md, "An acquisition shortcut").

This module measures that shortcut and turns it into three things training and model choice use:

* :func:`shortcut_scores`: for every image of a split, the out-of-fold probability of its label
  from global statistics only (gradient-boosted trees, folds by patient);
* :func:`balancing_weights`: inverse-propensity draw weights ``1 / P(own label | statistics)``,
  clipped, so that in the reweighted training distribution the statistics say little about the
  label (normals that *look like* pneumonia and pneumonias that look normal are drawn more often);
* :func:`adverse_mask`: the "shortcut-adverse" part of a validation split (normals the statistics
  call pneumonia, pneumonias they call normal), where a model must read anatomy to be right.

CLI: ``python -m models.shortcut --labels kermany-full/labels.csv --out runs/shortcut.csv`` writes
``path,label,patient,score,weight`` for the train split (the test split is never read).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.deblur_data import load_gray
from models.intensity import classifier_unit
from models.kermany import Sample, read_kermany

#: Side of the image the statistics are computed on (the classifier's own input size).
FEATURE_SIZE = 224
#: Width of the frame's side strips, as a fraction of the side.
STRIP = 0.055
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
HIST_BINS = 16


def global_features(unit: NDArray[np.floating]) -> NDArray[np.float64]:
    """Global statistics of one classifier-unit image (bright = dense, [0, 1]).

    Mean, spread, near-black and near-white shares, edge strength (mean and 90th percentile of the
    gradient magnitude), nine percentiles, a 16-bin histogram and the mean of the four side strips
    and of the centre. Nothing about where in the lungs anything lies.
    """
    a = np.asarray(unit, dtype=np.float64)
    h, w = a.shape
    sy, sx = max(1, int(round(STRIP * h))), max(1, int(round(STRIP * w)))
    gy, gx = np.gradient(a)
    g = np.hypot(gx, gy)
    hist = np.histogram(a, bins=HIST_BINS, range=(0.0, 1.0))[0] / a.size
    strips = [
        a[:sy].mean(),
        a[-sy:].mean(),
        a[:, :sx].mean(),
        a[:, -sx:].mean(),
        a[h // 2 - h // 7 : h // 2 + h // 7, w // 2 - w // 7 : w // 2 + w // 7].mean(),
    ]
    head = [a.mean(), a.std(), (a > 0.98).mean(), (a < 0.02).mean(), g.mean(), np.percentile(g, 90)]
    return np.concatenate([head, np.percentile(a, PERCENTILES), hist, strips])


def feature_matrix(root: Path, rows: list[Sample], size: int = FEATURE_SIZE) -> NDArray[np.float64]:
    feats = [
        global_features(classifier_unit(load_gray(root / r.path).astype(np.float32) / 255.0, size))
        for r in rows
    ]
    return np.stack(feats)


def shortcut_scores(
    features: NDArray[np.float64],
    labels: NDArray[np.int64],
    patients: list[str],
    folds: int = 5,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Out-of-fold P(pneumonia | global statistics) for every row (folds by patient)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GroupKFold

    if len(set(patients)) < folds:
        raise ValueError(f"need at least {folds} patients for {folds} folds")
    out = np.full(len(labels), np.nan)
    for fit, held in GroupKFold(n_splits=folds).split(features, labels, groups=patients):
        clf = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
        clf.fit(features[fit], labels[fit])
        out[held] = clf.predict_proba(features[held])[:, 1]
    return out


def balancing_weights(
    scores: NDArray[np.float64], labels: NDArray[np.int64], clip: float = 10.0
) -> NDArray[np.float64]:
    """``1 / P(own label | statistics)``, clipped to [1, clip]."""
    if clip < 1:
        raise ValueError("clip must be >= 1")
    p_own = np.where(labels == 1, scores, 1.0 - scores)
    return np.clip(1.0 / np.maximum(p_own, 1e-6), 1.0, clip)


def adverse_mask(
    scores: NDArray[np.float64], labels: NDArray[np.int64], cut: float = 0.3
) -> NDArray[np.bool_]:
    """Images the statistics get wrong by a margin: normals with score > cut, pneumonias with
    score < 1 - cut."""
    adverse = ((labels == 0) & (scores > cut)) | ((labels == 1) & (scores < 1.0 - cut))
    return np.asarray(adverse, dtype=bool)


def read_column(path: Path, column: str) -> dict[str, float]:
    """``path -> value`` of one numeric column of a CSV with a ``path`` column."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", column} <= set(reader.fieldnames):
            raise ValueError(f"{path}: wants columns 'path' and {column!r}")
        return {r["path"]: float(r[column]) for r in reader}


def read_weights(path: Path) -> dict[str, float]:
    """``path -> weight`` from a file written by this module's CLI (or any ``path,weight``)."""
    out = read_column(path, "weight")
    if any(not w > 0 for w in out.values()):
        raise ValueError(f"{path}: every weight must be > 0")
    return out


def read_scores(path: Path) -> dict[str, float]:
    """``path -> score`` (out-of-fold P(pneumonia | statistics)) from this module's CLI."""
    return read_column(path, "score")


def montage(
    root: Path,
    rows: list[Sample],
    scores: NDArray[np.float64],
    out: Path,
    per_row: int = 6,
    tile: int = 112,
    seed: int = 0,
) -> None:
    """A PNG of four rows of random images: normals the statistics call normal (score < 0.1),
    adverse normals (> 0.7), pneumonias they call pneumonia (> 0.9), adverse pneumonias (< 0.3)."""
    from PIL import Image

    y = np.array([r.label for r in rows])
    groups = [
        (y == 0) & (scores < 0.1),
        (y == 0) & (scores > 0.7),
        (y == 1) & (scores > 0.9),
        (y == 1) & (scores < 0.3),
    ]
    rng = np.random.default_rng(seed)
    sheet = np.zeros((len(groups) * tile, per_row * tile), np.uint8)
    for g, mask in enumerate(groups):
        idx = np.flatnonzero(mask)
        chosen = rng.permutation(idx)[:per_row]
        for j, i in enumerate(chosen):
            img = Image.fromarray(load_gray(root / rows[i].path)).resize((tile, tile))
            sheet[g * tile : (g + 1) * tile, j * tile : (j + 1) * tile] = np.asarray(img)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=Path, required=True, help="kermany-full/labels.csv")
    ap.add_argument("--out", type=Path, required=True, help="CSV to write")
    ap.add_argument("--clip", type=float, default=10.0, help="largest draw weight")
    ap.add_argument("--limit", type=int, default=0, help="first N rows only (tests)")
    ap.add_argument(
        "--montage",
        type=Path,
        default=None,
        help="also write a PNG: typical and adverse normals, typical and adverse pneumonias",
    )
    args = ap.parse_args(argv)
    from sklearn.metrics import roc_auc_score

    rows = read_kermany(args.labels, "train")
    if args.limit:
        rows = rows[: args.limit]
    y = np.array([r.label for r in rows], dtype=np.int64)
    if len(set(y.tolist())) < 2:
        ap.error("the train split needs both labels")
    x = feature_matrix(args.labels.parent, rows)
    try:
        s = shortcut_scores(x, y, [r.patient for r in rows])
    except ValueError as e:
        ap.error(str(e))
    w = balancing_weights(s, y, args.clip)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["path", "label", "patient", "score", "weight"])
        for r, si, wi in zip(rows, s, w, strict=True):
            wr.writerow([r.path, r.label, r.patient, f"{si:.6f}", f"{wi:.4f}"])
    if args.montage is not None:
        montage(args.labels.parent, rows, s, args.montage)
    adv = adverse_mask(s, y)
    print(
        f"{len(rows)} train-split images: global statistics alone reach AUC "
        f"{roc_auc_score(y, s):.4f} (out of fold, by patient); adverse: "
        f"{int((adv & (y == 0)).sum())} normals, {int((adv & (y == 1)).sum())} pneumonias; "
        f"weights {w.min():.2f}..{w.max():.2f} (mean {w.mean():.2f}) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
