"""Decisions become jobs through the real ingest, on SQLite and PostgreSQL: grouping by an idle
timeout, forwarding the original, ignoring, and the audit rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import select

from node.config import Settings
from node.ingest import Ingestor
from node.instance_index import Received
from storage import db, queue
from storage.files import FileStore
from storage.tables import AuditEvent, Job
from tests.support.synthetic import make_cr

FROM_A = Received(source="dimse", calling_ae="MOD_A", called_ae="SHARPRAY", peer_host="127.0.0.1")
FROM_B = Received(source="dimse", calling_ae="MOD_B", called_ae="SHARPRAY", peer_host="127.0.0.1")
FROM_X = Received(source="dimse", calling_ae="MOD_X", called_ae="SHARPRAY", peer_host="127.0.0.1")


def _settings() -> Settings:
    data: dict[str, Any] = {
        "destinations": {
            "pacs": {"type": "dimse", "ae_title": "PACS", "host": "127.0.0.1", "port": 4242},
            "archive": {"type": "dicomweb", "url": "http://127.0.0.1:1/dicom-web"},
        },
        "routing": {
            "rules": [
                {
                    "name": "study",
                    "match": {"calling_ae": "MOD_A"},
                    "process": "full",
                    "send_results_to": ["pacs"],
                    "forward_original_to": ["archive"],
                    "trigger": {"group": "study", "idle_s": 30},
                },
                {
                    "name": "series",
                    "match": {"calling_ae": "MOD_B"},
                    "process": "report_only",
                    "send_results_to": ["pacs"],
                    "trigger": {"group": "series", "idle_s": 30},
                },
            ],
            "fallback": {"name": "nothing", "ignore": True},
        },
    }
    return Settings.model_validate(data)


def _ingestor(tmp_path: Path, url: str) -> tuple[Ingestor, Any]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    ing = Ingestor(
        FileStore(tmp_path / "store"), sessions, process_max_attempts=3, settings=_settings()
    )
    return ing, sessions


def _cr(tmp_path: Path, study: str, series: str, seed: int) -> bytes:
    f = tmp_path / f"in{seed}.dcm"
    make_cr(f, 32, 32, seed=seed, study_uid=study, series_uid=series)
    return f.read_bytes()


def test_idle_timeout_groups_a_study_and_forwards_each_original(
    tmp_path: Path, database_url: str
) -> None:
    ing, sessions = _ingestor(tmp_path, database_url)
    study, s1, s2 = generate_uid(), generate_uid(), generate_uid()
    r1 = ing.ingest(_cr(tmp_path, study, s1, 1), FROM_A)
    with sessions() as s:
        first_due = s.get(Job, r1.job_id).not_before
    r2 = ing.ingest(_cr(tmp_path, study, s2, 2), FROM_A)  # another series of the same study
    assert r1.job_id == r2.job_id  # one study job
    other = ing.ingest(_cr(tmp_path, generate_uid(), generate_uid(), 3), FROM_A)
    assert other.job_id != r1.job_id  # another study: another job
    with sessions() as s:
        job = s.get(Job, r1.job_id)
        assert job is not None and job.kind == "process" and job.rule == "study"
        assert job.detail["group"]["by"] == "study"
        assert job.detail["group"]["instances"] == [r1.instance_id, r2.instance_id]
        assert job.detail["route"]["send_results_to"] == ["pacs"]
        assert job.not_before >= first_due  # the timer moved with the second instance
        assert job.not_before > dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(
            seconds=20
        )
        forwards = s.scalars(select(Job).where(Job.kind == "dispatch")).all()
        assert sorted((j.instance_id, j.destination) for j in forwards) == sorted(
            [(r.instance_id, "archive") for r in (r1, r2, other)]
        )
        assert all(j.detail == {"original": True} and j.rule == "study" for j in forwards)
        routed = s.scalars(select(AuditEvent).where(AuditEvent.event == "routed")).all()
        assert len(routed) == 3 and "joined queued group job" in (routed[1].detail or "")


def test_a_claimed_group_job_is_not_extended(tmp_path: Path, database_url: str) -> None:
    ing, sessions = _ingestor(tmp_path, database_url)
    study, series = generate_uid(), generate_uid()
    r1 = ing.ingest(_cr(tmp_path, study, series, 1), FROM_B)
    with sessions.begin() as s:  # make it due, as if the idle time had passed
        job = s.get(Job, r1.job_id)
        assert job is not None
        job.not_before = dt.datetime(2000, 1, 1)
    claimed = queue.claim(sessions, ["process"], "test:1:w", 60)
    assert claimed is not None and claimed.id == r1.job_id
    r2 = ing.ingest(_cr(tmp_path, study, series, 2), FROM_B)
    assert r2.job_id != r1.job_id  # the running job keeps its members; a new group starts
    with sessions() as s:
        assert s.get(Job, r1.job_id).detail["group"]["instances"] == [r1.instance_id]
        assert s.get(Job, r2.job_id).detail["group"]["instances"] == [r2.instance_id]


def test_ignore_creates_no_job_but_an_audit_row(tmp_path: Path, database_url: str) -> None:
    ing, sessions = _ingestor(tmp_path, database_url)
    r = ing.ingest(_cr(tmp_path, generate_uid(), generate_uid(), 1), FROM_X)
    assert r.job_id is None and not r.duplicate
    with sessions() as s:
        assert s.scalars(select(Job)).all() == []
        events = [(e.event, e.outcome, e.actor) for e in s.scalars(select(AuditEvent))]
    assert events == [("received", "ok", "MOD_X"), ("routed", "ignored", "MOD_X")]
