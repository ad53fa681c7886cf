"""Access and resource guards at the DICOM edge: unknown calling AE titles are rejected at
association; below the free-disk watermark C-STORE answers 0xA700 and keeps nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pydicom
import pytest
from pynetdicom import AE

from tests.support.node_proc import NodeProcess, node_config
from tests.support.synthetic import make_cr

pytestmark = pytest.mark.e2e


def _send(port: int, calling: str, ds: pydicom.Dataset) -> tuple[bool, int | None]:
    ae = AE(ae_title=calling)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="SHARPRAY")
    if not assoc.is_established:
        return False, None
    status = assoc.send_c_store(ds)
    assoc.release()
    return True, int(status.Status)


def test_unknown_calling_ae_is_rejected_at_association(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    cfg = node_config(tmp_path, tiny_models, None)
    cfg["node"]["allowed_calling_aes"] = ["XRAY_ROOM_1"]
    node = NodeProcess(tmp_path, cfg).start()
    try:
        ds = make_cr(tmp_path / "a.dcm", 64, 64)
        assert _send(node.dimse_port, "STRANGER", ds) == (False, None)
        assert _send(node.dimse_port, "XRAY_ROOM_1", ds) == (True, 0x0000)
        assert node.received_uids() == {str(ds.SOPInstanceUID)}
    finally:
        node.stop()


def test_below_disk_watermark_store_is_refused_with_a700(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    cfg = node_config(tmp_path, tiny_models, None)
    cfg["storage"]["min_free_mb"] = 1_000_000_000  # more than any disk: always below the mark
    node = NodeProcess(tmp_path, cfg).start()
    try:
        ds = make_cr(tmp_path / "a.dcm", 64, 64)
        assert _send(node.dimse_port, "MODALITY", ds) == (True, 0xA700)
        assert node.received_uids() == set()
        metrics = httpx.get(f"{node.http_url}/metrics").text
        assert 'sharpray_rejected_total{reason="out_of_resources",source="dimse"} 1.0' in metrics
        assert "free disk space is below the configured watermark" in node.log_text()
    finally:
        node.stop()
