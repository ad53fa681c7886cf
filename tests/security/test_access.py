"""Access and resource guards at the DICOM edge: unknown calling AE titles are rejected at
association; below the free-disk watermark C-STORE answers 0xA700 and keeps nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pydicom
import pytest
from pynetdicom import AE

from tests.support.node_proc import NodeProcess, node_config
from tests.support.ports import wait_for
from tests.support.synthetic import make_cr

pytestmark = pytest.mark.e2e


def _send(
    port: int, calling: str, ds: pydicom.Dataset, called: str = "SHARPRAY"
) -> tuple[bool, int | None]:
    ae = AE(ae_title=calling)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
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
        assert _send(node.dimse_port, "XRAY_ROOM_1", ds, called="NOT_US") == (False, None)
        assert _send(node.dimse_port, "XRAY_ROOM_1", ds) == (True, 0x0000)
        assert _send(node.dimse_port, "XRAY_ROOM_1", ds) == (True, 0x0000)  # a resend
        assert node.received_uids() == {str(ds.SOPInstanceUID)}
        log = node.log_text()
        assert "refused: calling AE title 'STRANGER' is not allowed (reason 3)" in log
        assert "refused: called AE title 'NOT_US' is not 'SHARPRAY' (reason 7)" in log
        metrics = httpx.get(f"{node.http_url}/metrics").text
        assert 'sharpray_associations_rejected_total{reason="calling_ae"} 1.0' in metrics
        assert 'sharpray_associations_rejected_total{reason="called_ae"} 1.0' in metrics
        # one new instance, one resend: the count the dashboard shows (rows) is the metric's
        assert 'sharpray_received_total{source="dimse"} 1.0' in metrics
        assert 'sharpray_received_duplicates_total{source="dimse"} 1.0' in metrics
        rows = _audit(node)
        rejected = [r for r in rows if r[0] == "association.rejected"]
        assert {r[1] for r in rejected} == {"STRANGER", "XRAY_ROOM_1"}
        assert all("127.0.0.1:" in r[3] for r in rejected)
        received = [r for r in rows if r[0] == "received"]
        assert [r[2] for r in received] == ["ok", "ignored"]  # the duplicate is in the trail
    finally:
        node.stop()


def _audit(node: NodeProcess) -> list[tuple[str, str, str, str]]:
    from sqlalchemy import select

    from storage import db
    from storage.tables import AuditEvent

    engine = db.make_engine(node.database_url)
    try:
        with engine.connect() as c:
            q = select(AuditEvent.event, AuditEvent.actor, AuditEvent.outcome, AuditEvent.detail)
            return [tuple(r) for r in c.execute(q.order_by(AuditEvent.id))]  # type: ignore[misc]
    finally:
        engine.dispose()


def test_a_pdu_claiming_gigabytes_closes_the_connection_before_any_allocation(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """Six bytes (an A-ASSOCIATE-RQ header claiming 4 GiB) once made the node reserve 4 GiB;
    now the connection is closed at once, the node's memory does not move, and it still works."""
    import socket

    cfg = node_config(tmp_path, tiny_models, None)
    node = NodeProcess(tmp_path, cfg).start()
    try:
        assert node.proc is not None
        before = _rss_mib(node.proc.pid)
        with socket.create_connection(("127.0.0.1", node.dimse_port), timeout=10) as s:
            s.sendall(bytes.fromhex("0100FFFFFFFF"))
            s.settimeout(10)
            assert s.recv(1) == b""  # closed by the node, not left waiting for 4 GiB
        assert _rss_mib(node.proc.pid) - before < 64
        assert "a PDU of 4294967295 bytes claimed" in node.log_text()
        ds = make_cr(tmp_path / "a.dcm", 64, 64)
        assert _send(node.dimse_port, "MODALITY", ds) == (True, 0x0000)
    finally:
        node.stop()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


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


@pytest.mark.parametrize(
    ("port_key", "message"),
    [("http_port", "cannot serve HTTP on"), ("dimse_port", "cannot listen for DICOM on")],
)
def test_a_taken_port_stops_the_start_instead_of_running_blind(
    tmp_path: Path, tiny_models: dict[str, Path], port_key: str, message: str
) -> None:
    """Without its HTTP port the node would run without /healthz, /metrics, STOW-RS and the
    dashboard while saying "started"; without its DICOM port it would receive nothing. Either
    way it must refuse to start (exit non-zero), saying which address it could not open."""
    import os
    import socket
    import subprocess
    import sys

    import yaml

    from tests.support.node_proc import REPO

    cfg = node_config(tmp_path, tiny_models, None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg["node"][port_key] = taken.getsockname()[1]
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
        env["PYTHONPATH"] = str(REPO)
        r = subprocess.run(
            [sys.executable, "-m", "node.cli", "--config", str(tmp_path / "config.yaml"), "serve"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode != 0
    assert f"{message} 127.0.0.1:{cfg['node'][port_key]}" in r.stderr
    assert "started (roles" not in r.stderr


def test_serve_logs_every_address_it_listens_on(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    node = NodeProcess(tmp_path, node_config(tmp_path, tiny_models, None)).start()
    try:
        # /healthz answers as soon as the HTTP port is open; the lines that say so may follow it
        dimse_line = f"listening on 127.0.0.1:{node.dimse_port}"
        http_line = f"HTTP listening on {node.http_url} (/healthz, /metrics"
        wait_for(
            lambda: (dimse_line in node.log_text() and http_line in node.log_text()) or None,
            10,
            "the listening lines",
        )
        log = node.log_text()
        assert "alembic" not in log  # migrations are quiet unless -v
        # the HTTP access log: a line per request, never the query string (patient names)
        httpx.get(f"{node.http_url}/healthz", timeout=10)
        httpx.get(f"{node.http_url}/dicom-web/studies?PatientName=DOE%5EJOHN", timeout=10)
        wait_for(
            lambda: "GET /dicom-web/studies 200" in node.log_text() or None, 10, "the access log"
        )
        log = node.log_text()
        assert "127.0.0.1 GET /healthz 200" in log
        assert "DOE" not in log and "PatientName" not in log
    finally:
        node.stop()
