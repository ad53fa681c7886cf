"""Combine classifier checkpoints into one ensemble checkpoint (the mean of their logits).

Members must share the architecture, input size, intensity normalisation (mean, std) and the
validation images (train them with the same ``--split-seed``): the ensemble is then calibrated and
its operating point chosen on that validation split like a single network, and exported as one
ONNX graph whose ``probabilities`` and ``cam`` are those of the averaged logit
(:class:`models.classifier.LogitAverage`)::

    python -m models.ensemble_classifier --members A.pt B.pt --out runs/ensemble/best.pt
    python -m models.calibrate --checkpoint runs/ensemble/best.pt --labels LABELS
    python -m models.export classify --checkpoint runs/ensemble/best.pt --out DIR

With ``--labels`` it also reports, on the shared validation split, each member's and the
ensemble's AUC and negative log-likelihood after temperature scaling (what a ship rule compares).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

from models.training import save_atomic

#: What every member must agree on.
SHARED_KEYS = ("arch", "num_classes", "size")


class IncompatibleMembers(ValueError):
    """The checkpoints cannot be averaged (different input, classes or validation split)."""


def combine(checkpoints: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One ensemble checkpoint from member checkpoints (dicts as torch.load returns them)."""
    if len(checkpoints) < 2:
        raise IncompatibleMembers("an ensemble needs at least two members")
    first = checkpoints[0]
    for ck, name in zip(checkpoints[1:], names[1:], strict=True):
        for key in SHARED_KEYS:
            default = 2 if key == "num_classes" else None  # older checkpoints omit num_classes
            if ck.get(key, default) != first.get(key, default):
                raise IncompatibleMembers(f"{name}: {key} differs from {names[0]}'s")
        for key in ("mean", "std"):
            if not math.isclose(float(ck[key]), float(first[key]), rel_tol=1e-6):
                raise IncompatibleMembers(f"{name}: input {key} differs from {names[0]}'s")
        if sorted(ck.get("val_paths") or []) != sorted(first.get("val_paths") or []):
            raise IncompatibleMembers(
                f"{name}: validation images differ from {names[0]}'s (train with one --split-seed)"
            )
    members = []
    for ck, name in zip(checkpoints, names, strict=True):
        members.append(
            {
                "source": name,
                "state_dict": {
                    k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()
                },
                "training": ck.get("training", {}),
                "metrics": ck.get("metrics", {}),
            }
        )
    return {
        **{k: first[k] for k in (*SHARED_KEYS, "mean", "std") if k in first},
        "architecture": f"mean of {len(members)} {first.get('architecture', first['arch'])}",
        "val_paths": first.get("val_paths"),
        "members": members,
        "training": {
            # what the members share (the input they were trained on) ...
            **{
                k: v
                for k, v in first.get("training", {}).items()
                if k in ("dataset", "citation", "split", "input_size", "intensity", "pretrained")
            },
            "ensemble": f"mean of the logits of {len(members)} networks",
            # ... and how each was trained
            "members": [m["training"] for m in members],
        },
        "metrics": {},
    }


def validation_report(
    checkpoint: Path, labels: Path, shortcut: Path | None = None
) -> dict[str, dict[str, float]]:
    """AUC, fitted temperature and NLL at it, on the validation split, per member and together;
    with ``shortcut`` (a ``models.shortcut`` CSV) also the AUC on the shortcut-adverse part."""
    import numpy as np

    from models.calibrate import fit_temperature, nll
    from models.classifier import members_of
    from models.export import load_classifier_checkpoint
    from models.kermany import read_kermany
    from models.metrics import roc_auc, softmax_p1
    from models.train_classifier import load_array, predict_logits

    model, ck = load_classifier_checkpoint(checkpoint)
    val_paths = set(ck.get("val_paths") or [])
    samples = [s for s in read_kermany(labels, "train") if s.path in val_paths]
    x = load_array(labels.parent, samples, int(ck["size"]))
    y = np.array([s.label for s in samples], dtype=np.int64)
    adverse = None
    if shortcut is not None:
        from models.shortcut import adverse_mask, read_scores

        scores = read_scores(shortcut)
        missing = [s.path for s in samples if s.path not in scores]
        if missing:
            raise ValueError(f"{shortcut}: no score for {len(missing)} validation images")
        adverse = adverse_mask(np.array([scores[s.path] for s in samples]), y)
    per_member = [
        predict_logits(m, x, float(ck["mean"]), float(ck["std"])) for m in members_of(model)
    ]
    names = [str(m.get("source", i)) for i, m in enumerate(ck.get("members", [{}]))]
    report = {}
    for name, logits in [
        *zip(names, per_member, strict=True),
        ("ensemble", np.mean(per_member, 0)),
    ]:
        t = fit_temperature(logits, y)
        report[name] = {
            "n": int(len(y)),
            "auc": round(roc_auc(y, softmax_p1(logits, 1.0)), 5),
            "temperature": round(t, 4),
            "nll_after": round(nll(logits, y, t), 5),
        }
        if adverse is not None:
            report[name]["adverse_n"] = int(adverse.sum())
            report[name]["adverse_auc"] = round(
                roc_auc(y[adverse], softmax_p1(logits[adverse], 1.0)), 5
            )
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=Path, nargs="+", required=True, help="checkpoints (.pt)")
    ap.add_argument("--out", type=Path, required=True, help="the ensemble checkpoint to write")
    ap.add_argument(
        "--labels", type=Path, default=None, help="labels.csv: report on the validation split"
    )
    ap.add_argument(
        "--shortcut",
        type=Path,
        default=None,
        help="with --labels: a models.shortcut CSV; also report the AUC on the validation "
        "images the global statistics get wrong (the shortcut-adverse part)",
    )
    args = ap.parse_args(argv)
    cks = [torch.load(p, map_location="cpu", weights_only=False) for p in args.members]
    try:
        ens = combine(cks, [str(p) for p in args.members])
    except IncompatibleMembers as e:
        raise SystemExit(f"ensemble_classifier: {e}") from e
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(ens, args.out)
    print(json.dumps({"out": str(args.out), "members": [m["source"] for m in ens["members"]]}))
    if args.labels is not None:
        torch.set_num_threads(2)
        try:
            report = validation_report(args.out, args.labels, args.shortcut)
        except (OSError, ValueError) as e:
            raise SystemExit(f"ensemble_classifier: {e}") from e
        print(json.dumps({"validation": report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
