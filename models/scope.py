"""Is this image a frontal chest radiograph? A small check from the image alone (numpy only).

Headers are often empty or wrong, so the node also looks at the pixels before it lets the
classifier speak (node/pipeline/scope.py). The check is a Gaussian model of frontal chest
radiographs in a low-dimensional space ("eigen-chests"): images through
:func:`models.intensity.classifier_unit` at :data:`SIZE`² (the classifier's own intensity
mapping), a PCA of :data:`COMPONENTS` components fitted on chest radiographs of every set in
``../shared/data`` (pediatric Kermany train split, adult MHH, adult NIH), and the score

    score = mean_k(c_k² / λ_k) + ‖residual‖² / median training ‖residual‖²

(Mahalanobis distance inside the subspace plus the energy outside it). An image scoring above
``threshold`` does not look like the radiographs the classifier knows. The threshold is set on
the training chests (a high percentile plus margin); the figures on held-out chests and on the
non-chest radiographs of ``cxr-dicom`` (hand, hip, dog) are in ``scope.json`` and docs/models.md.

    python -m models.scope --data ../shared/data --out models/weights/chest-scope
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.intensity import classifier_unit

F32 = NDArray[np.float32]
SIZE = 32
COMPONENTS = 24
FILE = "scope.npz"


@dataclass(frozen=True)
class ScopeModel:
    mean: F32  # [SIZE*SIZE]
    components: F32  # [k, SIZE*SIZE]
    variances: F32  # [k]
    residual_ref: float
    threshold: float

    def score(self, image01: NDArray[np.floating]) -> float:
        """How unlike a frontal chest radiograph a grey image (bright = dense) is."""
        x = classifier_unit(image01, SIZE).ravel() - self.mean
        c = self.components @ x
        r = x - c @ self.components
        inside = float(np.mean(c**2 / self.variances))
        return inside + float(r @ r) / self.residual_ref

    def save(self, folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILE
        np.savez(
            path,
            mean=self.mean,
            components=self.components,
            variances=self.variances,
            residual_ref=np.float64(self.residual_ref),
            threshold=np.float64(self.threshold),
        )
        return hashlib.sha256(path.read_bytes()).hexdigest()


def load_scope(folder: Path, sha256: str | None = None) -> ScopeModel:
    """Load ``folder/scope.npz``; with ``sha256`` the file must match it."""
    path = folder / FILE if folder.is_dir() else folder
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path} does not match its sha256")
    with np.load(path) as z:
        return ScopeModel(
            mean=z["mean"].astype(np.float32),
            components=z["components"].astype(np.float32),
            variances=z["variances"].astype(np.float32),
            residual_ref=float(z["residual_ref"]),
            threshold=float(z["threshold"]),
        )


def fit_scope(images: list[F32], percentile: float = 99.5, margin: float = 1.2) -> ScopeModel:
    """Fit on chest radiographs (grey, bright = dense); threshold = percentile × margin."""
    x = np.stack([classifier_unit(a, SIZE).ravel() for a in images]).astype(np.float64)
    mean = x.mean(axis=0)
    _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:COMPONENTS]
    var = sv[:COMPONENTS] ** 2 / (len(x) - 1)
    c = (x - mean) @ comps.T
    res = ((x - mean) - c @ comps) ** 2
    ref = float(np.median(res.sum(axis=1)))
    model = ScopeModel(
        mean.astype(np.float32), comps.astype(np.float32), var.astype(np.float32), ref, 0.0
    )
    scores = [model.score(a) for a in images]
    thr = float(np.percentile(scores, percentile)) * margin
    return ScopeModel(model.mean, model.components, model.variances, ref, thr)


def _gray(path: Path) -> F32:
    from models.deblur_data import load_gray

    return load_gray(path).astype(np.float32) / 255.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    d = args.data
    with (d / "kermany-full/labels.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    k_train = [d / "kermany-full" / r["path"] for r in rows if r["split"] == "train"][::3]
    k_test = [d / "kermany-full" / r["path"] for r in rows if r["split"] == "test"]
    mhh = sorted((d / "cxr-radiographs-mhh").rglob("*.png"))
    nih = sorted((d / "cxr-labeled/nih1024").glob("*.png"))
    train = k_train + mhh[::2] + nih
    model = fit_scope([_gray(p) for p in train])
    sha = model.save(args.out)

    def over(paths: list[Path]) -> float:
        return round(float(np.mean([model.score(_gray(p)) > model.threshold for p in paths])), 4)

    from node.pipeline.preprocess import decode, read_dataset, to_unit_voi

    dicom_scores: dict[str, float] = {}
    for f in sorted((d / "cxr-dicom").glob("*.dcm")):
        dicom_scores[f.name] = round(model.score(to_unit_voi(decode(read_dataset(f)))), 3)
    info: dict[str, Any] = {
        "file": FILE,
        "sha256": sha,
        "size": SIZE,
        "components": COMPONENTS,
        "threshold": round(model.threshold, 4),
        "trained_on": {
            "kermany-full train (every 3rd)": len(k_train),
            "cxr-radiographs-mhh (every 2nd)": len(mhh[::2]),
            "cxr-labeled nih1024": len(nih),
        },
        "share_refused": {
            "kermany-full test": over(k_test),
            "cxr-radiographs-mhh (the other half)": over(mhh[1::2]),
        },
        "cxr_dicom_scores": dicom_scores,
    }
    (args.out / "scope.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
