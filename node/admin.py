"""What an administrator can see and do, in one place: the CLI (``sharpray jobs``, ``retry``,
``cancel``, ``audit``, ``quarantine``) and the dashboard both call these functions, so the two
cannot disagree (the same filters, the same audit rows). Plain functions on a session; no I/O
beyond the database and the store's quarantine folder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import queue
from storage.tables import AuditEvent, Instance, Job


@dataclass(frozen=True)
class JobFilter:
    state: str | None = None
    kind: str | None = None
    destination: str | None = None
    rule: str | None = None
    instance: str | None = None  # SOP Instance UID
    created: tuple[dt.datetime, dt.datetime] | None = None  # [from, to)
    limit: int = 100


def list_jobs(s: Session, f: JobFilter) -> list[tuple[Job, Instance]]:
    """Jobs matching ``f``, newest first, with their instance."""
    if f.state and f.state not in queue.STATES:
        raise ValueError(f"state must be one of {', '.join(queue.STATES)}")
    q = select(Job, Instance).join(Instance, Instance.id == Job.instance_id)
    if f.state:
        q = q.where(Job.state == f.state)
    if f.kind:
        q = q.where(Job.kind == f.kind)
    if f.destination:
        q = q.where(Job.destination == f.destination)
    if f.rule:
        q = q.where(Job.rule == f.rule)
    if f.instance:
        q = q.where(Instance.sop_instance_uid == f.instance)
    if f.created:
        q = q.where(Job.created_at >= f.created[0], Job.created_at < f.created[1])
    q = q.order_by(Job.id.desc()).limit(max(1, min(f.limit, 2000)))
    return [(job, inst) for job, inst in s.execute(q).all()]


def job_summary(job: Job, uid: str) -> dict[str, Any]:
    """One job as the CLI's --json and the dashboard's API show it."""
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "destination": job.destination,
        "rule": job.rule,
        "instance": uid,
        "parent": job.parent_id,
        "not_before": job.not_before.isoformat(),
        "error": job.last_error,
        "instances": len((job.detail.get("group") or {}).get("instances", [])) or 1,
    }


def retry_jobs(s: Session, ids: Sequence[int] | None, actor: str) -> int:
    """Queue failed or cancelled jobs again (None: every failed job); audited."""
    n = queue.retry(s, None if ids is None else list(ids))
    what = "all failed jobs" if ids is None else "jobs " + ", ".join(map(str, ids))
    s.add(AuditEvent(event="admin.retry", actor=actor[:64], detail=f"{what}: {n} queued"))
    return n


def cancel_jobs(s: Session, ids: Sequence[int], actor: str) -> int:
    """Cancel queued or failed jobs; audited."""
    n = queue.cancel(s, list(ids))
    what = "jobs " + ", ".join(map(str, ids))
    s.add(AuditEvent(event="admin.cancel", actor=actor[:64], detail=f"{what}: {n} cancelled"))
    return n


@dataclass(frozen=True)
class AuditFilter:
    instance: str | None = None
    event: str | None = None
    job: int | None = None
    actor: str | None = None
    outcome: str | None = None
    limit: int = 100


def audit_events(s: Session, f: AuditFilter) -> list[AuditEvent]:
    """Audit rows matching ``f``, oldest first (the newest ``limit``)."""
    q = select(AuditEvent)
    if f.instance:
        q = q.where(AuditEvent.instance_uid == f.instance)
    if f.event:
        q = q.where(AuditEvent.event == f.event)
    if f.job:
        q = q.where(AuditEvent.job_id == f.job)
    if f.actor:
        q = q.where(AuditEvent.actor == f.actor)
    if f.outcome:
        q = q.where(AuditEvent.outcome == f.outcome)
    rows = list(s.scalars(q.order_by(AuditEvent.id.desc()).limit(f.limit)))
    rows.reverse()
    return rows


def quarantine(s: Session, store_folder: Path) -> list[dict[str, object]]:
    """What was kept but cannot be processed: received instances whose processing job failed
    (the bytes stay in the store) and files set aside at start-up (store/quarantine/)."""
    q = (
        select(Job.id, Instance.sop_instance_uid, Instance.path, Job.last_error)
        .join(Instance, Instance.id == Job.instance_id)
        .where(Job.kind == "process", Job.state == "failed")
        .order_by(Job.id)
    )
    entries: list[dict[str, object]] = [
        {"kind": "failed_job", "job": job_id, "instance": uid, "path": path, "reason": error}
        for job_id, uid, path, error in s.execute(q).all()
    ]
    folder = store_folder / "quarantine"
    for reason in sorted(folder.glob("*.reason.txt")) if folder.is_dir() else []:
        data = reason.with_name(reason.name.removesuffix(".reason.txt") + ".dcm")
        entries.append(
            {
                "kind": "quarantined_file",
                "path": str(data),
                "size": data.stat().st_size if data.exists() else None,
                "reason": reason.read_text(encoding="utf-8").strip(),
            }
        )
    return entries
