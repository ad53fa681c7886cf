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
    models = {
        "deblur": BUNDLED_MODELS / "deblur-demo",
        "classify": BUNDLED_MODELS / "classify-demo",
    }
    if not (models["deblur"] / "manifest.json").is_file():
        pytest.fail("the demo models are not in models/weights")
    cfg = node_config(tmp_path / "node", models, (orthanc.aet, orthanc.dicom_port))
    del cfg["models"]["deblur"], cfg["models"]["classify"]  # the defaults: the bundled models
    (tmp_path / "node").mkdir()
    node = NodeProcess(tmp_path / "node", cfg).start()
    try:
        health = node.health()
        assert health["models"]["deblur"]["name"] == "sharpray-deblur-demo"
        assert health["models"]["classify"]["name"] == "sharpray-pneumonia-demo"
        source = TEST_DATA / "sc_chest_jpeg_baseline.dcm"
        storescu([source], node.dimse_port, node.ae_title)
        counts = node.wait_idle(timeout=300)
        assert counts.get(("process", "done")) == 1, counts
        job = next(j for j in node.jobs() if j.kind == "process")
        assert 0.0 <= job.detail["probability"] <= 1.0
        results = [pydicom.dcmread(io.BytesIO(orthanc.file(i))) for i in orthanc.instances()]
        sr = next(d for d in results if d.Modality == "SR")
        text = str(sr)
        assert "sharpray-pneumonia-demo" in text and "NOT FOR DIAGNOSTIC USE" in text.upper()
        sc = next(
            d
            for d in results
            if d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and d.SamplesPerPixel == 1
        )
        assert "sharpray-deblur-demo" in str(sc.get("DerivationDescription", "")) + str(
            sc.ContributingEquipmentSequence
        )
    finally:
        node.stop()
