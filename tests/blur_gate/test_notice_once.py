"""A job that runs again (after a crash, a lost lease) does not notify the X-ray room twice nor
audit its blur assessment twice."""

from __future__ import annotations

from pathlib import Path

import pydicom
from sqlalchemy import func, select

from node.config import Settings
from node.ingest import Ingestor
from node.instance_index import Received
from node.metrics import Metrics
from node.pipeline.blur_gate import assess
from node.pipeline.results.inputs import Producer
from node.pipeline.worker import WorkerContext, _notify, _Source
from storage import db
from storage.files import FileStore
from storage.tables import AuditEvent, Instance, Job
from tests.support.synthetic import make_cr


def test_blur_assessed_and_notice_once_per_job(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "destinations": {
                "qa": {"type": "dimse", "ae_title": "QA", "host": "127.0.0.1", "port": 1}
            },
            "blur_gate": {"notify_to": ["qa"]},
            "routing": {"rules": [], "fallback": {"name": "fallback", "process": "full"}},
        }
    )
    engine = db.make_engine(f"sqlite:///{tmp_path}/index.db")
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    store = FileStore(tmp_path / "store")
    ingestor = Ingestor(store, sessions, process_max_attempts=3, settings=settings)
    ds = make_cr(tmp_path / "a.dcm", 128, 128, seed=1)
    result = ingestor.ingest((tmp_path / "a.dcm").read_bytes(), Received("dimse", "ROOM"))
    ctx = WorkerContext(settings, sessions, store, Metrics(), None, Producer())  # type: ignore[arg-type]
    with sessions() as s:
        job = s.get(Job, result.job_id)
        inst = s.get(Instance, result.instance_id)
        assert job is not None and inst is not None
        s.expunge_all()
    src = _Source(inst.id, store.abspath(inst.path), inst.sop_instance_uid, Received("dimse"))
    dataset = pydicom.dcmread(src.path)
    blur = assess(dataset, settings.blur_gate)
    for _ in range(2):  # the first attempt, then the re-run
        _notify(ctx, job, "worker-test", src, dataset, blur)
    with sessions() as s:
        assessed = s.scalar(select(func.count()).where(AuditEvent.event == "blur.assessed"))
        notices = s.scalar(
            select(func.count()).where(Job.kind == "dispatch", Job.destination == "qa")
        )
    assert assessed == 1 and notices == 1, (assessed, notices)
    assert str(ds.SOPInstanceUID) == src.uid
