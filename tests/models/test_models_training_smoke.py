"""The training scripts in --smoke mode (a few tiny steps) on the shared data, then export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LABELED, MHH

from models.manifest import load_manifest


@pytest.mark.skipif(not (MHH / "metadata.csv").is_file(), reason=f"shared data absent: {MHH}")
def test_train_deblur_smoke_and_export(tmp_path: Path) -> None:
    from models import export, train_deblur

    out = tmp_path / "run"
    rc = train_deblur.main(
        ["--data", str(MHH), "--out", str(out), "--smoke", "--config", "tiny", "--threads", "1"]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"psnr_final", "gan_final", "blurred"} <= set(metrics)
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train_patients"]) & set(split["test_patients"])
    # Resume after the end is a no-op that still evaluates.
    assert (
        train_deblur.main(
            ["--data", str(MHH), "--out", str(out), "--smoke", "--config", "tiny", "--resume"]
        )
        == 0
    )
    assert (
        export.main(
            ["deblur", "--checkpoint", str(out / "psnr_final.pt"), "--out", str(tmp_path / "m")]
        )
        == 0
    )
    m, _ = load_manifest(tmp_path / "m")
    assert m.task == "deblur" and m.training["dataset"] == "cxr-radiographs-mhh"


@pytest.mark.skipif(not (LABELED / "labels.csv").is_file(), reason=f"shared data absent: {LABELED}")
def test_train_classifier_smoke_and_export(tmp_path: Path) -> None:
    from models import export, train_classifier

    out = tmp_path / "run"
    rc = train_classifier.main(
        ["--labels", str(LABELED / "labels.csv"), "--out", str(out), "--smoke", "--threads", "1"]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["test"]["n"] == 4
    assert (
        export.main(
            ["classify", "--checkpoint", str(out / "best.pt"), "--out", str(tmp_path / "m")]
        )
        == 0
    )
    m, _ = load_manifest(tmp_path / "m")
    assert m.task == "classify" and m.input.size == 64 and len(m.labels) == 2
