"""``sharpray process`` is the node: the same DICOMs sent to a running node (storescu) and given to
``sharpray process`` with the same configuration give the same decisions, findings, result UIDs and
pixel data. Both call ``node.pipeline.run.run_image``; this test keeps it so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from node.pipeline.preprocess import decode, to_unit_voi
from tests.blur_gate.radiographs import blurred, write_cr
from tests.support.dcmtk import storescu
from tests.support.node_proc import REPO, NodeProcess, node_config
from tests.support.paths import TEST_DATA

pytestmark = pytest.mark.e2e


def _content(ds: Dataset) -> list[tuple[str, str]]:
    """What an SR says (codes, numbers, texts, references), in order."""
    keep = {"CodeValue", "NumericValue", "TextValue", "ReferencedSOPInstanceUID", "GraphicData"}
    return [(e.keyword, str(e.value)) for e in ds.iterall() if e.keyword in keep]


def _sharpray(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_process_gives_what_the_node_sends(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    chest = to_unit_voi(decode(pydicom.dcmread(TEST_DATA / "sc_chest_jpeg_baseline.dcm")))
    img = np.asarray(chest, dtype=np.float32)[:512, :512]
    study = generate_uid()
    (tmp_path / "in").mkdir()
    sharp = write_cr(tmp_path / "in" / "sharp.dcm", img, study_uid=study)
    blur = write_cr(tmp_path / "in" / "blurred.dcm", blurred(img, 12), study_uid=study)
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = node_config(
        folder,
        tiny_models,
        None,
        pipelines={"gated": {"results": ["sc", "overlay", "sr"], "correct": "when_blurred"}},
        routing={"rules": [], "fallback": {"name": "fallback", "process": "gated"}},
    )
    node = NodeProcess(folder, cfg).start()
    try:
        storescu(sorted((tmp_path / "in").glob("*.dcm")), node.dimse_port, node.ae_title)
        counts = node.wait_idle(timeout=300)
        assert counts.get(("process", "done")) == 2, (counts, node.log_text()[-3000:])
        jobs = node.process_details()
        sent = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, node.result_paths())}
    finally:
        node.stop()

    out = tmp_path / "out"
    r = _sharpray(folder / "config.yaml", "process", str(tmp_path / "in"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    *records, summary = lines
    assert summary["summary"]["inputs"] == 2 and summary["summary"]["processed"] == 2
    by_file = {Path(rec["file"]).name: rec for rec in records}
    for name, src in (("sharp.dcm", sharp), ("blurred.dcm", blur)):
        rec, detail = by_file[name], jobs[str(src.SOPInstanceUID)]
        assert rec["blur"]["decision"] == detail["blur"]["decision"]
        assert rec["classified"] == detail["classified"]
        top = max(rec["findings"], key=rec["findings"].get)
        assert top == detail["finding"]
        assert rec["findings"][top] == pytest.approx(detail["probability"], abs=1e-4)
    assert by_file["sharp.dcm"]["blur"]["decision"] == "sharp"
    assert by_file["blurred.dcm"]["blur"]["decision"] in ("blurred", "severe")

    made = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, sorted(out.glob("*.dcm")))}
    assert set(made) == set(sent), "the same objects, with the same stable UIDs"
    kinds = sorted(str(d.Modality) for d in made.values())
    assert kinds.count("SR") == 2 and len(made) >= 3, kinds  # a report each, the blurred one's SC
    for uid, ours in made.items():
        theirs = sent[uid]
        assert ours.SOPClassUID == theirs.SOPClassUID
        if "PixelData" in ours:
            assert np.array_equal(ours.pixel_array, theirs.pixel_array), uid
        else:
            assert _content(ours) == _content(theirs), uid
