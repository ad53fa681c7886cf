"""Roles: a receiver process (SCP + HTTP + dispatch) and a worker process (processing) sharing one
database and one store process a batch end to end, with a real Orthanc as the PACS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dcmtk import storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.orthanc import start_orthanc
from tests.support.synthetic import make_cr


def test_receiver_and_worker_as_separate_processes(
    tmp_path: Path, tiny_models: dict[str, Path], database_url: str
) -> None:
    orthanc = start_orthanc(tmp_path / "orthanc")
    receiver = worker = None
    try:
        files = []
        for i in range(6):
            files.append(tmp_path / f"{i}.dcm")
            make_cr(files[-1], 128, 112, seed=i)
        rdir, wdir = tmp_path / "receiver", tmp_path / "worker"
        rdir.mkdir()
        wdir.mkdir()
        rcfg = node_config(
            rdir, tiny_models, (orthanc.aet, orthanc.dicom_port), database_url=database_url
        )
        wcfg = node_config(
            wdir, tiny_models, (orthanc.aet, orthanc.dicom_port), database_url=database_url
        )
        for cfg in (rcfg, wcfg):
            cfg["storage"]["folder"] = str(tmp_path / "store")
            if database_url.startswith("sqlite"):
                cfg["storage"]["database_url"] = f"sqlite:///{tmp_path}/index.db"
        receiver = NodeProcess(rdir, rcfg).start(roles=["receiver", "dispatcher"])
        worker = NodeProcess(wdir, wcfg).start(roles=["worker"])
        storescu(files, receiver.dimse_port, receiver.ae_title)
        counts = receiver.wait_idle(timeout=180)
        assert counts == {("process", "done"): 6, ("dispatch", "done"): 12}, counts
        owners = {
            j.detail.get("worker", "").split(":")[1] for j in receiver.jobs() if j.kind == "process"
        }
        assert worker.proc is not None and owners == {str(worker.proc.pid)}
        assert len(orthanc.instances()) == 12
        health = receiver.health()
        assert health["roles"] == ["dispatcher", "receiver"] and "models" not in health
    finally:
        for p in (receiver, worker):
            if p is not None:
                p.stop()
        orthanc.stop()


pytestmark = pytest.mark.e2e
