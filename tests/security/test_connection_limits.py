"""Strangers cannot lock the DICOM port: half-open TCP connections, stalled A-ASSOCIATE-RQs, idle
TLS connections and a 4 GiB PDU header from one address, while a modality on another address
stores 20 images with success; the node's memory stays bounded and every refusal is counted.

Real sockets on loopback only: the attacker binds 127.0.0.2 (Linux routes all of 127/8 to lo),
the modality (dcmtk storescu) comes from 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.security.test_dimse_tls import pki  # noqa: F401  (fixture)
from tests.support.attacks import ATTACKER, connect, flood, rss_mib
from tests.support.dcmtk import require
from tests.support.node_proc import NodeProcess, node_config
from tests.support.ports import wait_for
from tests.support.synthetic import make_cr

pytestmark = pytest.mark.e2e


def _storescu(port: int, files: list[Path], *extra: str) -> subprocess.CompletedProcess[str]:
    require("storescu")
    return subprocess.run(
        ["storescu", *extra, "-aet", "XRAY_ROOM_1", "-aec", "SHARPRAY", "127.0.0.1", str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_flood_from_one_address_does_not_lock_out_a_modality(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    cfg = node_config(tmp_path, tiny_models, None)
    cfg["node"].update(association_timeout_s=3, max_pending_per_peer=16)
    cfg["workers"]["count"] = 0  # the receiver alone: nothing competes with it
    node = NodeProcess(tmp_path, cfg).start()
    try:
        assert node.proc is not None
        files = [tmp_path / f"{i}.dcm" for i in range(20)]
        uids = {str(make_cr(f, 128, 128, seed=i).SOPInstanceUID) for i, f in enumerate(files)}
        with flood(node.dimse_port):
            r = _storescu(node.dimse_port, files)
            assert r.returncode == 0, r.stderr[-2000:]
            assert uids <= node.received_uids()
            assert rss_mib(node.proc.pid) < 1024
        metrics = httpx.get(f"{node.http_url}/metrics").text
        assert 'sharpray_connections_refused_total{reason="per_peer_limit"}' in metrics
        # the held connections that got in are closed after association_timeout_s
        wait_for(
            lambda: (
                'reason="association_timeout"' in httpx.get(f"{node.http_url}/metrics").text or None
            ),
            30,
            "pending connections closed by the time limit",
        )
        log = node.log_text()
        assert f"connection from {ATTACKER} closed" in log
    finally:
        node.stop()


def test_idle_tls_connections_do_not_block_tls_clients(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    pki: Path,  # noqa: F811
) -> None:
    """pynetdicom did the TLS handshake on its accept thread: one idle TLS connection blocked
    every other TLS client until it closed. Now 5 idle ones, with the flood of the test above on
    the same TLS port, do not stop a TLS modality from storing 20 images."""
    cfg = node_config(tmp_path, tiny_models, None)
    cfg["node"].update(association_timeout_s=3)
    cfg["node"]["tls"] = {
        "enabled": True,
        "certificate": str(pki / "node.pem"),
        "private_key": str(pki / "node.key"),
        "ca_certificates": str(pki / "ca.pem"),
        "require_client_certificate": True,
    }
    cfg["workers"]["count"] = 0
    node = NodeProcess(tmp_path, cfg).start()
    try:
        assert node.proc is not None
        files = [tmp_path / f"{i}.dcm" for i in range(20)]
        uids = {str(make_cr(f, 128, 128, seed=i).SOPInstanceUID) for i, f in enumerate(files)}
        tls = ["+tls", str(pki / "modality.key"), str(pki / "modality.pem"), "+cf"]
        tls += [str(pki / "ca.pem")]
        with ExitStack() as stack:
            idle = [s for _ in range(5) if (s := connect(node.dimse_port, stack)) is not None]
            assert len(idle) == 5
            with flood(node.dimse_port):  # and the rest of the attack on the TLS port
                r = _storescu(node.dimse_port, files, *tls)
                assert r.returncode == 0, r.stderr[-2000:]
                assert uids <= node.received_uids()
                assert rss_mib(node.proc.pid) < 1024
        wait_for(
            lambda: 'reason="tls_handshake"' in httpx.get(f"{node.http_url}/metrics").text or None,
            30,
            "the idle TLS connections closed and counted",
        )
    finally:
        node.stop()
