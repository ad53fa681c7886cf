"""The shipped demonstration models, end to end: a real chest radiograph from tests/data goes in
by C-STORE, the node's default models (models/weights/*-demo) process it, and Orthanc receives
results that name those models and say they are not for diagnostic use."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from node.config import BUNDLED_MODELS
from tests.support.dcmtk import storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import Orthanc
from tests.support.paths import TEST_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_models_process_a_real_chest_radiograph(tmp_path: Path, orthanc: Orthanc) -> None:
    """The node on its defaults: blind Wiener correction and the bundled classifier. The adult
    chest radiograph of tests/data is outside the classifier's intended use (children): its SR
    says "not analysed" (age); the same image declared a 4-year-old's is analysed."""
    from pydicom.uid import generate_uid

    from models.manifest import load_manifest
    from node.pipeline.correct import WIENER_NAME

    classify = BUNDLED_MODELS / "classify-demo"
    if not (classify / "manifest.json").is_file():
        pytest.fail("the bundled classifier is not in models/weights")
    clf_name = load_manifest(classify)[0].name
    cfg = node_config(tmp_path / "node", {"deblur": classify, "classify": classify}, None)
    cfg["destinations"]["pacs"] = {
        "type": "dimse",
        "ae_title": orthanc.aet,
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
    }
    cfg["routing"]["fallback"]["send_results_to"] = ["pacs"]
    del cfg["models"]["deblur"], cfg["models"]["classify"]  # the defaults
    cfg["scope"] = {"enabled": True}
    (tmp_path / "node").mkdir()
    adult = TEST_DATA / "sc_chest_jpeg_baseline.dcm"
    child = tmp_path / "child.dcm"
    ds = pydicom.dcmread(adult)
    ds.PatientAge = "004Y"
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(child, enforce_file_format=True)
    node = NodeProcess(tmp_path / "node", cfg).start()
    try:
        health = node.health()
        assert health["models"]["deblur"]["name"] == WIENER_NAME
        assert health["models"]["classify"]["name"] == clf_name
        storescu([adult, child], node.dimse_port, node.ae_title)
        counts = node.wait_idle(timeout=300)
        assert counts.get(("process", "done")) == 2, counts
        jobs = {j.detail.get("probability") is None: j for j in node.jobs() if j.kind == "process"}
        assert "patient age outside" in jobs[True].detail["scope"]
        assert 0.0 <= jobs[False].detail["probability"] <= 1.0
        results = [pydicom.dcmread(io.BytesIO(orthanc.file(i))) for i in orthanc.instances()]
        srs = {str(d.SeriesInstanceUID): d for d in results if d.Modality == "SR"}
        assert len(srs) == 2
        texts = [str(sr) for sr in srs.values()]
        assert all(clf_name in t and "NOT FOR DIAGNOSTIC USE" in t.upper() for t in texts)
        assert sum("SR-NOT-ANALYSED" in t and "SR-SCOPE-AGE" in t for t in texts) == 1
        assert sum("Pneumonia" in t for t in texts) == 1
    finally:
        node.stop()
