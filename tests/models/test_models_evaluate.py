from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LABELED, MHH

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"
BUNDLED_MAGNITUDE = WEIGHTS / "kernel-magnitude"


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
            "--shrinkage-factor",
            "0.7",
            "--checked-balance-factor",
            "0.5",
            "--subtract-noise",
            "second_look",
            "--consistency-min",
            "0.7",
            "--kernel-shape-candidate",
            str(BUNDLED_MAGNITUDE),
            "--candidate-tau",
            "0.25",
            "0.3",
            "--detector-shape-candidate",
            str(WEIGHTS / "kernel-magnitude-detector"),
            "--detector-min-quanta",
            "1e6",
            "--detector-max-consistency",
            "0.65",
            "--detector-max-specificity",
            "0.177",
            "--detector-kept-unhalved",
            "--node-as-shipped",
            "--figure-methods",
            "blurred_input",
            "wiener_oracle_kernel",
            "node_as_shipped",
            "--figures",
            str(tmp_path / "figures"),
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    # a picture of every strength, not only the severe one: sharp, then one panel per method
    from PIL import Image

    sheets = sorted((tmp_path / "figures").glob("*.png"))
    assert [p.name for p in sheets] == sorted(
        f"deblur-0.6mm-{kind}-{strength}.png"
        for kind in ("straight", "curved")
        for strength in ("mild", "moderate", "severe")
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    methods = m["deblur"]["methods"]
    assert {
        "blurred_input",
        "unsharp_mask",
        "wiener_oracle_kernel",
        "richardson_lucy_oracle_kernel",
        "blind_wiener_gated",
        "blind_wiener_node",
        "blind_wiener_node_shape",
        "blind_wiener_node_shrink",
        "blind_wiener_node_checked",
        "blind_wiener_node_subtract",
        "blind_wiener_node_shape_candidate",
        "deblur_demo_generator",
    } <= set(methods)
    # the same network as candidate: the same correction, case for case
    shape, candidate = (
        methods["blind_wiener_node_shape"],
        methods["blind_wiener_node_shape_candidate"],
    )
    assert candidate["all"] == shape["all"]
    # ... at the node's own τ, and so the mean of the two (the twenty-eighth round's) too
    mean = methods["blind_wiener_node_shape_mean"]["all"]
    assert mean == {k: v for k, v in shape["all"].items() if k != "kernel_error_median"}
    node = methods["blind_wiener_node"]
    for kind in ("straight", "curved"):
        for strength in ("mild", "moderate", "severe"):
            assert node[f"0.6mm/{kind}/{strength}"]["n"] == 1
    assert "motion_error_mm_median" in node["all"]
    # the thirty-fifth round's floor acts only at pixels finer than 0.4 mm: none here
    floor = methods["blind_wiener_node_consistency"]["all"]
    assert floor == {k: v for k, v in node["all"].items() if k != "kernel_error_median"}
    # the native-pixel step (the forty-eighth round's form) acts only finer than 0.4 mm: the same
    detector = methods["blind_wiener_node_detector_shape"]["all"]
    assert detector == methods["blind_wiener_node_shape"]["all"]
    # the kernel each blind method used against the true one (models.kernel_shape.kernel_error)
    blind = ("blind_wiener_ungated", "blind_wiener_node", "blind_wiener_node_shape")
    others = ("blind_wiener_node_shrink", "blind_wiener_node_checked", "blind_wiener_node_subtract")
    for name in (*blind, *others):
        assert 0.0 <= methods[name]["all"]["kernel_error_median"] <= 1.0
    # the node as `sharpray process` builds it (its settings, every network it loads) estimates
    # the motion under its own blur-gate policy: the same estimate as models.deblur's defaults
    from node.pipeline.correct import ACROSS_DETECTOR_RL_MEAN_VERSION, WIENER_NAME

    assert m["deblur"]["node_as_shipped"] == f"{WIENER_NAME} {ACROSS_DETECTOR_RL_MEAN_VERSION}"
    shipped = methods["node_as_shipped"]
    rows = {row: scores for row, scores in node.items() if isinstance(scores, dict)}
    assert len(rows) == 8  # the six cases, "0.6mm/all" and "all"
    for row, scores in rows.items():
        assert shipped[row]["n"] == scores["n"]
        assert shipped[row]["motion_error_mm_median"] == scores["motion_error_mm_median"], row
    # the eighth round's candidate estimates the motion itself: its own error column
    assert "motion_error_mm_median" in methods["blind_wiener_node_subtract"]["all"]
    assert "kernel_error_median" not in methods["wiener_oracle_kernel"]["all"]
    assert methods["blurred_input"]["all"]["psnr_gain_db"] == 0.0
    with Image.open(sheets[0]) as sheet:
        # sharp, then the panels asked for
        assert sheet.size[0] == (1 + 3) * (2 * 96 + 4)
    clf = m["classifier"]
    assert {"clean", "blurred", "corrected"} <= set(clf)
    assert len(clf["clean"]["accuracy_ci95"]) == 2


@pytest.mark.skipif(not (MHH / "metadata.csv").is_file(), reason=f"shared data absent: {MHH}")
def test_an_unknown_picture_panel_is_refused_before_the_run(tmp_path: Path) -> None:
    from models import evaluate

    with pytest.raises(ValueError, match="no_such_method"):
        evaluate.main(
            [
                "--radiographs",
                str(MHH),
                "--deblur",
                "/none",
                "--max-images",
                "1",
                "--crop",
                "128",
                "--figure-methods",
                "blurred_input",
                "no_such_method",
                "--figures",
                str(tmp_path / "figures"),
                "--out",
                str(tmp_path),
            ]
        )
    assert not (tmp_path / "figures").exists()
    assert not (tmp_path / "metrics.json").exists()
