"""``sharpray process`` on many inputs: files and folders, models loaded once, one JSON line per
input and a summary, a non-zero exit when any input was refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from node.cli import main
from tests.support.node_proc import node_config
from tests.support.synthetic import make_cr


def test_many_inputs_one_line_each_and_a_summary(
    tmp_path: Path, tiny_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(node_config(tmp_path, tiny_models, None)))
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    make_cr(folder / "a.dcm", 128, 128, seed=1)
    make_cr(folder / "sub" / "b", 128, 128, seed=2)  # no suffix: found by its DICM preamble
    (folder / "notes.txt").write_text("not an image")  # not DICOM: not an input of the folder
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    out = tmp_path / "out"

    code = main(["--config", str(cfg), "process", str(folder), str(bad), "--out", str(out)])

    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    *records, summary = lines
    assert [Path(r["file"]).name for r in records] == ["a.dcm", "b", "broken.dcm"]
    ok = [r for r in records if r["status"] == "processed"]
    assert len(ok) == 2
    for r in ok:
        assert r["rule"] == "fallback" and r["pipeline"] == "full"
        assert r["blur"]["decision"] in ("sharp", "blurred", "severe")
        assert set(r["findings"]) and all(Path(w).is_file() for w in r["written"])
        assert {Path(w).name.split("-")[0] for w in r["written"]} >= {"sr"}
    (refused,) = [r for r in records if r["status"] == "refused"]
    assert refused["reason"]
    assert summary["summary"]["inputs"] == 3
    assert summary["summary"]["processed"] == 2 and summary["summary"]["refused"] == 1
    assert summary["summary"]["models_load_s"] >= 0 and summary["summary"]["seconds_per_image"] > 0
    assert code == 1  # one input refused
    assert captured.err.count("sharpray: cannot process") == 1


def test_pipeline_flag_overrides_the_routing(
    tmp_path: Path, tiny_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.yaml"
    conf = node_config(tmp_path, tiny_models, None)
    conf["routing"]["fallback"] = {"name": "fallback", "ignore": True}
    cfg.write_text(yaml.safe_dump(conf))
    make_cr(tmp_path / "a.dcm", 128, 128, seed=1)
    out = tmp_path / "out"

    assert main(["--config", str(cfg), "process", str(tmp_path / "a.dcm"), "--out", str(out)]) == 0
    (record, _) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert record["status"] == "not processed" and not out.exists()

    args = ["--config", str(cfg), "process", str(tmp_path / "a.dcm"), "--out", str(out)]
    assert main([*args, "--pipeline", "report_only"]) == 0
    (record, _) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert record["status"] == "processed"
    assert [Path(w).name.split("-")[0] for w in record["written"]] == ["sr"]


def test_results_switches_and_pipeline_lists_must_both_agree() -> None:
    from node.config import Settings
    from node.pipeline.run import Plan

    default = Settings()
    assert Plan.for_pipeline(default, "full").results.kinds() == ["sc", "overlay", "gsps", "sr"]
    assert "seg" in Plan.for_pipeline(default, "full_with_seg").results.kinds()
    no_seg = Settings.model_validate({"results": {"seg": False}})
    assert "seg" not in Plan.for_pipeline(no_seg, "full_with_seg").results.kinds()
    with pytest.raises(KeyError):
        Plan.for_pipeline(default, "no-such-pipeline")
