"""The dashboard is behind the DICOMweb guard: pages are reads, retry/cancel are writes."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from node.config import Settings
from node.dicomweb.auth import Guard
from node.metrics import Metrics
from node.ops.dashboard import DashboardContext
from node.ops.http import create_http_app
from storage import db, queue
from storage.files import FileStore
from storage.tables import AuditEvent, Instance

PAGES = ["/dashboard", "/dashboard/jobs", "/dashboard/routing", "/dashboard/static/dashboard.js"]


def _client(tmp_path: Path, bind: str, auth: dict[str, object]) -> tuple[TestClient, int, object]:
    settings = Settings.model_validate(
        {
            "node": {"http_bind": bind},
            "storage": {"folder": str(tmp_path / "store")},
            "dicomweb": {"auth": auth},
        }
    )
    engine = db.make_engine(f"sqlite:///{tmp_path}/index.db")
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    with sessions.begin() as s:
        inst = Instance(
            sop_instance_uid="1.2.3.4.5",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.1",
            study_instance_uid="1.2.3",
            series_instance_uid="1.2.3.4",
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            path="x.dcm",
            size=1,
            sha256="0" * 64,
        )
        s.add(inst)
        s.flush()
        job = queue.enqueue(s, "dispatch", inst.id, max_attempts=1, destination="pacs")
        job.state = queue.FAILED
        job_id = job.id
    guard = Guard(settings, environ={"DASH_TOKEN": "s3cret"})
    ctx = DashboardContext(
        settings, sessions, FileStore(tmp_path / "store"), lambda: {"status": "ok"}, guard, False
    )
    app = create_http_app(Metrics(), lambda: {"status": "ok"}, None, ctx)
    return TestClient(app), job_id, sessions


def test_pages_and_actions_need_credentials_when_auth_is_on(tmp_path: Path) -> None:
    client, job_id, sessions = _client(
        tmp_path, "127.0.0.1", {"enabled": True, "bearer_token_envs": ["DASH_TOKEN"]}
    )
    good = {"Authorization": "Bearer s3cret"}
    for page in PAGES:
        r = client.get(page)
        assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"], page
        assert client.get(page, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(page, headers=good).status_code == 200, page
    action = f"/dashboard/api/jobs/{job_id}/retry"
    assert client.post(action, headers={"X-SharpRay-Action": "1"}).status_code == 401
    assert client.post(action, headers=good).status_code == 403  # no action header: not a form
    r = client.post(action, headers={**good, "X-SharpRay-Action": "1"})
    assert r.status_code == 200 and r.json() == {"job": job_id, "queued": 1}
    with sessions() as s:  # type: ignore[operator]
        events = [e.event for e in s.query(AuditEvent)]
    assert events == ["admin.retry"]


def test_actions_are_never_open_on_a_non_loopback_address(tmp_path: Path) -> None:
    client, job_id, _ = _client(tmp_path, "0.0.0.0", {"enabled": False})
    assert client.get("/dashboard").status_code == 200  # reads forced open by enabled: false
    r = client.post(f"/dashboard/api/jobs/{job_id}/cancel", headers={"X-SharpRay-Action": "1"})
    assert r.status_code == 401
