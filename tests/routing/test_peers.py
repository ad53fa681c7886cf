"""Routing and dispatch with real peers: Orthanc (DICOM C-STORE and DICOMweb STOW-RS), dcmtk
storescp, the node as a real process, dcmtk storescu as the modalities, the CLI as a process.

Orthanc counts every arrival with a Lua filter (tests/routing/peers.py), so "exactly once" is
measured at the destination, not inferred from the node's own bookkeeping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from sqlalchemy import select

from storage import db
from storage.tables import AuditEvent, Instance
from tests.routing.peers import (
    CountingOrthanc,
    StoreScp,
    sharpray,
    start_counting_orthanc,
)
from tests.support.dcmtk import storescu
from tests.support.node_proc import NodeProcess, node_config
from tests.support.ports import wait_for
from tests.support.synthetic import PATIENT_ID, PATIENT_NAME, make_cr

pytestmark = pytest.mark.e2e

DIMSE, STOW = "DicomProtocol", "Plugins"


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[CountingOrthanc]:
    o = start_counting_orthanc(tmp_path / "orthanc")
    try:
        yield o
    finally:
        o.stop()


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StoreScp]:
    s = StoreScp(tmp_path / "storescp").start()
    try:
        yield s
    finally:
        s.stop()


def _dimse(aet: str, port: int) -> dict[str, Any]:
    return {"type": "dimse", "ae_title": aet, "host": "127.0.0.1", "port": port}


def _start_node(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    destinations: dict[str, Any],
    routing: dict[str, Any],
    **dispatch: Any,
) -> NodeProcess:
    folder = tmp_path / "node"
    folder.mkdir()
    cfg = node_config(
        folder,
        tiny_models,
        None,
        destinations=destinations,
        routing=routing,
        dispatch={"backoff_initial_s": 0.5, "backoff_max_s": 2, "timeout_s": 10, **dispatch},
    )
    return NodeProcess(folder, cfg).start()


def _config(node: NodeProcess) -> Path:
    return node.folder / "config.yaml"


def _results(node: NodeProcess) -> dict[str, dict[str, str]]:
    """Source SOP Instance UID -> {result kind: result SOP Instance UID}, from the node's index."""
    engine = db.make_engine(node.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            rows = s.scalars(select(Instance)).all()
            by_id = {r.id: r for r in rows}
            out: dict[str, dict[str, str]] = {}
            for r in rows:
                if r.origin == "result" and r.derived_from_id is not None:
                    src = by_id[r.derived_from_id].sop_instance_uid
                    out.setdefault(src, {})[r.result_kind or "?"] = r.sop_instance_uid
            return out
    finally:
        engine.dispose()


def _audit(node: NodeProcess) -> list[AuditEvent]:
    engine = db.make_engine(node.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    finally:
        engine.dispose()


def _image(folder: Path, name: str, seed: int, **attrs: Any) -> tuple[Path, str]:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.dcm"
    ds = make_cr(path, 96, 80, seed=seed)
    if attrs:
        for k, v in attrs.items():
            setattr(ds, k, v)
        ds.save_as(path, enforce_file_format=True)
    return path, str(ds.SOPInstanceUID)


def test_rules_send_some_sources_to_one_destination_and_some_to_both(
    tmp_path: Path, tiny_models: dict[str, Path], orthanc: CountingOrthanc, storescp: StoreScp
) -> None:
    modality_r = StoreScp(tmp_path / "modality-r", aet="MOD_R").start()  # a modality's own SCP
    destinations = {
        "orthanc": _dimse(orthanc.aet, orthanc.dicom_port),
        "orthanc-web": {"type": "dicomweb", "url": orthanc.web_url},
        "storescp": _dimse(storescp.aet, storescp.port),
        "sender": {"type": "return_to_sender", "port": 104, "ports": {"MOD_R": modality_r.port}},
    }
    routing = {
        "rules": [
            {
                "name": "no-laterals",
                "match": {"attributes": [{"tag": "ViewPosition", "equals": "LL"}]},
                "ignore": True,
            },
            {
                "name": "room-a",
                "match": {"calling_ae": "MOD_A", "source": "dimse"},
                "process": "full",
                "send_results_to": ["orthanc", "storescp"],
            },
            {
                "name": "room-b",
                "match": {"calling_ae": ["MOD_B"]},
                "process": "report_only",
                "send_results_to": ["orthanc-web"],
            },
            {
                "name": "back-to-r",
                "match": {"calling_ae": "MOD_R", "called_ae": "SHARPRAY"},
                "process": "report_only",
                "send_results_to": ["sender"],
            },
        ],
        "fallback": {"name": "pass-through", "forward_original_to": ["storescp"]},
    }
    node = _start_node(tmp_path, tiny_models, destinations, routing)
    try:
        data = tmp_path / "in"
        a, a_uid = _image(data, "a", 1)
        b, b_uid = _image(data, "b", 2)
        r, r_uid = _image(data, "r", 3)
        c, c_uid = _image(data, "c", 4)
        lat, lat_uid = _image(data, "lat", 5, ViewPosition="LL")
        storescu([a, lat], node.dimse_port, node.ae_title, aet="MOD_A")
        storescu([b], node.dimse_port, node.ae_title, aet="MOD_B")
        storescu([r], node.dimse_port, node.ae_title, aet="MOD_R")
        storescu([c], node.dimse_port, node.ae_title, aet="MOD_C")
        counts = node.wait_idle(timeout=120)
        assert not any(st == "failed" for (_, st) in counts), (counts, node.log_text()[-3000:])
        assert counts[("process", "done")] == 3 and counts[("dispatch", "done")] == 4 + 1 + 1 + 1

        res = _results(node)
        assert set(res[a_uid]) == {"sc", "sr"} and set(res[b_uid]) == {"sr"}
        assert set(res[r_uid]) == {"sr"} and c_uid not in res and lat_uid not in res
        # Orthanc: A's two results by C-STORE, B's report by STOW-RS, each exactly once
        assert orthanc.arrivals() == {
            (res[a_uid]["sc"], DIMSE): 1,
            (res[a_uid]["sr"], DIMSE): 1,
            (res[b_uid]["sr"], STOW): 1,
        }
        # storescp: A's two results and C's original, unchanged
        assert storescp.uids() == {res[a_uid]["sc"]: 1, res[a_uid]["sr"]: 1, c_uid: 1}
        stored = next(f for f, d in storescp.files().items() if str(d.SOPInstanceUID) == c_uid)
        original, passed_on = pydicom.dcmread(c), pydicom.dcmread(stored)
        assert passed_on.PixelData == original.PixelData
        assert (
            passed_on.PatientID == original.PatientID
            and passed_on.SOPClassUID == original.SOPClassUID
        )
        # return to sender: R's report went back to MOD_R's own SCP, nowhere else
        wait_for(lambda: modality_r.uids() == {res[r_uid]["sr"]: 1}, 10, "MOD_R's report")

        # the audit table says who sent what, which rule, where it went
        events = _audit(node)
        routed = {e.instance_uid: e for e in events if e.event == "routed"}
        assert routed[lat_uid].outcome == "ignored" and "no-laterals" in (
            routed[lat_uid].detail or ""
        )
        assert routed[c_uid].actor == "MOD_C" and "pass-through (fallback)" in str(
            routed[c_uid].detail
        )
        deliveries = [e for e in events if e.event == "delivery"]
        assert sorted((e.actor, e.outcome) for e in deliveries) == sorted(
            [("orthanc", "ok")] * 2
            + [("storescp", "ok")] * 3
            + [("orthanc-web", "ok"), ("sender", "ok")]
        )
        to_r = next(e for e in deliveries if e.actor == "sender")
        assert f"MOD_R@127.0.0.1:{modality_r.port}" in str(to_r.detail)

        # the administrator's view of the same
        out = sharpray(_config(node), "audit", "--event", "delivery", "--json")
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)) == 7
        out = sharpray(_config(node), "jobs", "--rule", "room-a", "--kind", "dispatch")
        assert out.returncode == 0 and out.stdout.count(" done ") == 4, out.stdout
        dry = sharpray(
            _config(node), "route", "--dry-run", str(lat), str(c), "--calling-ae", "MOD_C"
        )
        assert dry.returncode == 0, dry.stderr
        assert f"{lat}: rule no-laterals: ignore" in dry.stdout
        assert f"{c}: rule pass-through (fallback): forward original -> storescp" in dry.stdout
        assert "rule room-a matches none of these 2 file(s)" in dry.stdout
        for name in ("orthanc", "orthanc-web", "storescp"):
            echo = sharpray(_config(node), "echo", name)
            assert echo.returncode == 0 and "succeeded" in echo.stdout, (name, echo.stderr)
        assert sharpray(_config(node), "echo", "sender").returncode == 2
        log = node.log_text()
        assert PATIENT_NAME not in log and PATIENT_ID not in log
    finally:
        node.stop()
        modality_r.stop()


def test_destination_down_then_up_delivers_every_result_exactly_once(
    tmp_path: Path, tiny_models: dict[str, Path], orthanc: CountingOrthanc
) -> None:
    orthanc.stop()  # the PACS is down (both its DICOM and its DICOMweb side)
    destinations = {
        "pacs": _dimse(orthanc.aet, orthanc.dicom_port),
        "pacs-web": {"type": "dicomweb", "url": orthanc.web_url},
    }
    routing = {
        "fallback": {"name": "all", "process": "full", "send_results_to": ["pacs", "pacs-web"]}
    }
    node = _start_node(tmp_path, tiny_models, destinations, routing, max_attempts=1000)
    try:
        batch = [_image(tmp_path / "in", f"img{i}", 10 + i)[0] for i in range(4)]
        storescu(batch, node.dimse_port, node.ae_title, aet="MODALITY")
        n_dispatch = 4 * 2 * 2  # images x results x destinations

        def all_retried() -> bool:
            retried = {e.job_id for e in _audit(node) if e.event == "delivery"}
            return len(retried) == n_dispatch

        wait_for(all_retried, 120, "every delivery to have failed once", interval=0.5)
        assert all(e.outcome == "retry" for e in _audit(node) if e.event == "delivery")
        assert orthanc.arrivals() == {}

        orthanc.start()  # the same Orthanc, the same ports; nobody touches the node
        counts = node.wait_idle(timeout=120)
        assert counts == {("process", "done"): 4, ("dispatch", "done"): n_dispatch}, counts
        res = _results(node)
        expected = {
            (uid, way): 1 for r in res.values() for uid in r.values() for way in (DIMSE, STOW)
        }
        assert len(expected) == n_dispatch
        assert orthanc.arrivals() == expected  # every result once per destination
        attempts = [j.attempts for j in node.jobs() if j.kind == "dispatch"]
        assert min(attempts) >= 2  # each was retried with backoff, none gave up
    finally:
        node.stop()


def test_permanent_rejection_fails_after_one_try_and_retry_delivers(
    tmp_path: Path, tiny_models: dict[str, Path], orthanc: CountingOrthanc
) -> None:
    orthanc.stop()
    # Our AE title is not a known modality, and Orthanc allows nothing to unknown ones: it rejects
    # the association ("calling AE title not recognised", permanent). (With echo still allowed
    # it would accept the association and abort on the C-STORE, which reads as transient.)
    orthanc.extra = {"DicomAlwaysAllowStore": False, "DicomAlwaysAllowEcho": False}
    orthanc.start()
    destinations = {"pacs": _dimse(orthanc.aet, orthanc.dicom_port)}
    routing = {"fallback": {"name": "all", "process": "full", "send_results_to": ["pacs"]}}
    node = _start_node(tmp_path, tiny_models, destinations, routing, max_attempts=1000)
    try:
        img, _ = _image(tmp_path / "in", "img", 7)
        storescu([img], node.dimse_port, node.ae_title, aet="MODALITY")
        counts = node.wait_idle(timeout=120)
        assert counts == {("process", "done"): 1, ("dispatch", "failed"): 2}, counts
        failed = [j for j in node.jobs() if j.kind == "dispatch"]
        assert all(j.attempts == 1 for j in failed)  # not retried in a loop
        assert all("Calling AE title not recognised" in (j.last_error or "") for j in failed)
        out = sharpray(_config(node), "jobs", "--failed")
        assert out.returncode == 0, out.stderr
        for j in failed:
            assert f"\n{j.id:>6} dispatch  failed" in out.stdout, out.stdout
        assert "rejected the association" in out.stdout
        assert orthanc.arrivals() == {}

        orthanc.stop()
        orthanc.extra = {}  # the administrator fixes the PACS ...
        orthanc.start()
        out = sharpray(_config(node), "retry", "--failed")  # ... and retries
        assert out.returncode == 0 and "2 job(s) queued again" in out.stdout, out
        counts = node.wait_idle(timeout=60)
        assert counts == {("process", "done"): 1, ("dispatch", "done"): 2}, counts
        res = _results(node)
        assert orthanc.arrivals() == {(uid, DIMSE): 1 for r in res.values() for uid in r.values()}
        events = [(e.event, e.outcome) for e in _audit(node)]
        assert events.count(("delivery", "failed")) == 2 and events.count(("delivery", "ok")) == 2
        assert ("admin.retry", "ok") in events
    finally:
        node.stop()


def test_idle_timeout_processes_two_series_of_a_study_as_one_job(
    tmp_path: Path, tiny_models: dict[str, Path], storescp: StoreScp
) -> None:
    destinations = {"storescp": _dimse(storescp.aet, storescp.port)}
    routing = {
        "fallback": {
            "name": "per-study",
            "process": "full",
            "send_results_to": ["storescp"],
            "trigger": {"group": "study", "idle_s": 3},
        }
    }
    node = _start_node(tmp_path, tiny_models, destinations, routing)
    try:
        from pydicom.uid import generate_uid

        study = generate_uid()
        pa, lat = tmp_path / "pa.dcm", tmp_path / "lat.dcm"
        make_cr(pa, 96, 80, seed=1, study_uid=study, series_uid=generate_uid())
        make_cr(lat, 96, 80, seed=2, study_uid=study, series_uid=generate_uid())
        storescu([pa], node.dimse_port, node.ae_title, aet="MODALITY")
        time.sleep(1)  # the lateral view comes a second later, as a series of its own
        storescu([lat], node.dimse_port, node.ae_title, aet="MODALITY")
        counts = node.wait_idle(timeout=60)
        assert counts == {("process", "done"): 1, ("dispatch", "done"): 4}, counts
        (job,) = [j for j in node.jobs() if j.kind == "process"]
        assert len(job.detail["group"]["instances"]) == 2 and job.attempts == 1
        assert job.detail["group"]["key"] == study
        assert len(job.detail["processed"]) == 2
        assert len(storescp.uids()) == 4 and set(storescp.uids().values()) == {1}
    finally:
        node.stop()


def test_dicomweb_source_is_routed_by_its_own_rule_and_cannot_be_returned_to_sender(
    tmp_path: Path, tiny_models: dict[str, Path], storescp: StoreScp
) -> None:
    from dicomweb_client.api import DICOMwebClient

    destinations = {
        "storescp": _dimse(storescp.aet, storescp.port),
        "sender": {"type": "return_to_sender", "port": 104},
    }
    routing = {
        "rules": [
            {
                "name": "web-in",
                "match": {"source": "dicomweb"},
                "process": "report_only",
                "send_results_to": ["storescp", "sender"],
                "forward_original_to": ["storescp"],
            }
        ],
        "fallback": {"name": "dimse-in", "ignore": True},
    }
    node = _start_node(tmp_path, tiny_models, destinations, routing)
    try:
        path, uid = _image(tmp_path / "in", "web", 21)
        web = DICOMwebClient(url=f"{node.http_url}/dicom-web")
        web.store_instances([pydicom.dcmread(path)])
        dimse_path, dimse_uid = _image(tmp_path / "in", "dimse", 22)
        storescu([dimse_path], node.dimse_port, node.ae_title, aet="MODALITY")
        counts = node.wait_idle(timeout=60)
        assert counts == {
            ("process", "done"): 1,
            ("dispatch", "done"): 2,  # the original and the report to storescp
            ("dispatch", "failed"): 1,  # the report to "sender": nobody to return it to
        }, counts
        res = _results(node)
        assert storescp.uids() == {uid: 1, res[uid]["sr"]: 1} and dimse_uid not in res
        (failed,) = [j for j in node.jobs() if j.state == "failed"]
        assert failed.attempts == 1 and "did not arrive by DIMSE" in (failed.last_error or "")
        routed = {e.instance_uid: e for e in _audit(node) if e.event == "routed"}
        assert routed[uid].actor == "dicomweb" and routed[dimse_uid].outcome == "ignored"

        # the administrator gives up on it; the audit table says who did
        out = sharpray(_config(node), "cancel", str(failed.id))
        assert out.returncode == 0 and "1 job(s) cancelled" in out.stdout, out
        assert [j.state for j in node.jobs() if j.id == failed.id] == ["cancelled"]
        out = sharpray(_config(node), "audit", "--event", "admin.cancel", "--json")
        (event,) = json.loads(out.stdout)
        assert (
            event["actor"].startswith("cli") and f"jobs {failed.id}: 1 cancelled" in event["detail"]
        )
    finally:
        node.stop()
