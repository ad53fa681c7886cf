"""Turn a routing decision into jobs, in the caller's transaction, and record it in the audit table.

* process, per instance: one "process" job, due now.
* process, per series/study: one "process" job per group, debounced: each new instance of the
  group joins the queued job (``detail["group"]["instances"]``) and moves its ``not_before`` to
  ``now + idle_s``, so the job runs once the group has been quiet for ``idle_s`` seconds. An
  instance that arrives after the job was claimed starts a new group job.
* forward the original: one "dispatch" job per destination for the received instance itself.
* ignore: no job; a log line and an audit row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from node.route import Decision
from storage import queue
from storage.tables import AuditEvent, Instance, Job, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheduled:
    process_job_id: int | None
    joined_group: bool
    dispatch_job_ids: tuple[int, ...]


def schedule(
    s: Session,
    decision: Decision,
    inst: Instance,
    *,
    actor: str | None,
    process_max_attempts: int,
    dispatch_max_attempts: int,
    now: dt.datetime | None = None,
) -> Scheduled:
    """Create (or extend) the jobs ``decision`` calls for; add the "routed" audit row."""
    now = now or utcnow()
    process_id: int | None = None
    joined = False
    dispatch_ids: list[int] = []
    if decision.ignore:
        log.info("ignored %s: %s", inst.sop_instance_uid, decision.summary())
    if decision.pipeline:
        job, joined = _process_job(s, decision, inst, process_max_attempts, now)
        process_id = job.id
    for dest in decision.forward_original_to:
        dispatch_ids.append(
            queue.enqueue(
                s,
                "dispatch",
                inst.id,
                destination=dest,
                rule=decision.rule,
                max_attempts=dispatch_max_attempts,
                detail={"original": True},
            ).id
        )
    s.add(
        AuditEvent(
            event="routed",
            instance_uid=inst.sop_instance_uid,
            job_id=process_id or (dispatch_ids[0] if dispatch_ids else None),
            actor=actor,
            outcome="ignored" if decision.ignore else "ok",
            detail=decision.summary() + ("; joined queued group job" if joined else ""),
        )
    )
    return Scheduled(process_id, joined, tuple(dispatch_ids))


def _process_job(
    s: Session, decision: Decision, inst: Instance, max_attempts: int, now: dt.datetime
) -> tuple[Job, bool]:
    detail: dict[str, object] = {"route": decision.to_detail()}
    if decision.group == "instance":
        not_before = now + dt.timedelta(seconds=decision.idle_s)
        job = queue.enqueue(
            s,
            "process",
            inst.id,
            rule=decision.rule,
            max_attempts=max_attempts,
            detail=detail,
            not_before=not_before,
        )
        return job, False
    key = inst.study_instance_uid if decision.group == "study" else inst.series_instance_uid
    column = (
        Instance.study_instance_uid if decision.group == "study" else Instance.series_instance_uid
    )
    not_before = now + dt.timedelta(seconds=decision.idle_s)
    if s.get_bind().dialect.name == "postgresql":
        # two associations delivering one study at once must not both start a group job
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(decision.rule, key)})
    existing = s.scalars(
        select(Job)
        .join(Instance, Instance.id == Job.instance_id)
        .where(
            Job.kind == "process",
            Job.state == queue.QUEUED,
            Job.rule == decision.rule,
            column == key,
        )
        .order_by(Job.id)
        .limit(1)
        .with_for_update(of=Job)
    ).first()
    if existing is not None:
        group = dict(existing.detail.get("group") or {})
        members = [int(i) for i in group.get("instances", [existing.instance_id])]
        if inst.id not in members:
            members.append(inst.id)
        group["instances"] = members
        existing.detail = {**existing.detail, "group": group, "route": decision.to_detail()}
        existing.not_before = max(existing.not_before, not_before)
        s.flush()
        return existing, True
    detail["group"] = {"by": decision.group, "key": key, "instances": [inst.id]}
    job = queue.enqueue(
        s,
        "process",
        inst.id,
        rule=decision.rule,
        max_attempts=max_attempts,
        detail=detail,
        not_before=not_before,
    )
    return job, False


def _lock_key(rule: str, key: str) -> int:
    digest = hashlib.sha256(f"{rule}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
