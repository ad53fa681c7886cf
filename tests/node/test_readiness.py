"""/healthz says ready only when the node can receive: HTTP opens before the DICOM port, and a
200 in that gap once sent a test (as it would a modality or a load balancer) to a closed port."""

from __future__ import annotations

from pathlib import Path

import httpx
from pynetdicom import AE

from node.app import Node
from node.config import Settings
from tests.support.ports import free_ports


def _settings(folder: Path) -> Settings:
    dimse_port, http_port = free_ports(2)
    return Settings.model_validate(
        {
            "node": {
                "bind": "127.0.0.1",
                "dimse_port": dimse_port,
                "http_port": http_port,
            },
            "storage": {
                "folder": str(folder / "store"),
                "database_url": f"sqlite:///{folder}/index.db",
            },
            "models": {"deblur": None, "classify": None, "providers": "cpu"},
            "workers": {"count": 0},
        }
    )


def test_a_receiver_is_starting_until_its_dicom_port_listens(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    node = Node(settings, roles=["receiver"])
    before = node.health()
    assert before["status"] == "starting" and before["dimse"] == "not listening yet", before
    node.start()
    try:
        r = httpx.get(f"http://127.0.0.1:{settings.node.http_port}/healthz", timeout=5)
        assert r.status_code == 200 and r.json()["dimse"]["port"] == settings.node.dimse_port
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", settings.node.dimse_port, ae_title="SHARPRAY")
        assert assoc.is_established  # the 200 was true: the port takes an association now
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
    finally:
        node.stop()


def test_a_node_without_the_receiver_role_has_no_dicom_port_to_wait_for(tmp_path: Path) -> None:
    node = Node(_settings(tmp_path), roles=["dispatcher"])
    health = node.health()
    assert health["status"] == "ok" and "dimse" not in health, health
