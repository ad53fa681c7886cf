from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LABELED, MHH


@pytest.mark.skipif(
    not (MHH / "metadata.csv").is_file() or not (LABELED / "labels.csv").is_file(),
    reason=f"shared data absent: {MHH}, {LABELED}",
)
def test_evaluate_runs_on_test_models(tmp_path: Path, test_models: dict[str, Path]) -> None:
    from models import evaluate

    rc = evaluate.main(
        [
            "--radiographs",
            str(MHH),
            "--labels",
            str(LABELED / "labels.csv"),
            "--deblur",
            str(test_models["deblur"]),
            "--classify",
            str(test_models["classify"]),
            "--max-images",
            "1",
            "--crop",
            "128",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    methods = m["deblur"]["methods"]
    assert {"blurred_input", "unsharp_mask", "generator"} <= set(methods)
    assert set(methods["generator"]) >= {"mild", "moderate", "severe", "all"}
    assert {"clean", "blurred", "corrected"} <= set(m["classifier"])
