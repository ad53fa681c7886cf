"""The durable job queue in the database.

``claim`` takes one due job with a lease. On PostgreSQL the candidate row is locked with
``FOR UPDATE SKIP LOCKED`` so several processes on several machines share the queue without
taking the same job; on SQLite the claim runs inside ``BEGIN IMMEDIATE`` (one writer at a time).
A job whose lease expired (its worker died) is claimable again, and counts the attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.tables import AuditEvent, Job, utcnow

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between attempts: initial * factor**(attempt-1), capped."""

    initial_s: float = 5.0
    factor: float = 2.0
    max_s: float = 600.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1)))


def enqueue(
    session: Session,
    kind: str,
    instance_id: int,
    *,
    max_attempts: int,
    destination: str | None = None,
    parent_id: int | None = None,
    rule: str | None = None,
    detail: dict[str, object] | None = None,
    not_before: dt.datetime | None = None,
) -> Job:
    """Add a job in the caller's transaction (so it commits with whatever created it)."""
    job = Job(
        kind=kind,
        state=QUEUED,
        instance_id=instance_id,
        destination=destination,
        parent_id=parent_id,
        rule=rule,
        max_attempts=max_attempts,
        detail=dict(detail or {}),
        not_before=not_before or utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def _claimable(kinds: Sequence[str], now: dt.datetime):  # type: ignore[no-untyped-def]
    return and_(
        Job.kind.in_(list(kinds)),
        or_(
            and_(Job.state == QUEUED, Job.not_before <= now),
            and_(Job.state == RUNNING, Job.lease_expires_at < now),
        ),
    )


def claim(
    sessions: sessionmaker[Session], kinds: Sequence[str], owner: str, lease_s: float
) -> Job | None:
    """Take the oldest due job of one of ``kinds`` with a lease of ``lease_s`` seconds, or None.

    A job that was RUNNING with an expired lease and has used all its attempts is failed instead
    (its worker died each time: a poison job must not loop forever).
    """
    with sessions.begin() as s:
        while True:
            now = utcnow()
            stmt = (
                select(Job)
                .where(_claimable(kinds, now))
                .order_by(Job.not_before, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            job = s.scalars(stmt).first()
            if job is None:
                return None
            if job.state == RUNNING and job.attempts >= job.max_attempts:
                job.state = FAILED
                job.finished_at = now
                job.last_error = (
                    f"lease expired {job.attempts} times (worker died or hung); "
                    f"last owner {job.lease_owner}"
                )
                job.lease_owner = None
                s.add(
                    AuditEvent(
                        event=f"{job.kind}.failed",
                        job_id=job.id,
                        outcome="failed",
                        detail=job.last_error,
                    )
                )
                continue
            job.state = RUNNING
            job.attempts += 1
            job.lease_owner = owner
            job.lease_expires_at = now + dt.timedelta(seconds=lease_s)
            s.flush()
            s.expunge(job)
            return job


def renew(sessions: sessionmaker[Session], job_id: int, owner: str, lease_s: float) -> bool:
    """Extend a lease we still hold; False if it was taken from us."""
    with sessions.begin() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.state == RUNNING)
            .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_s))
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]


def _owned(s: Session, job_id: int, owner: str) -> Job | None:
    job = s.get(Job, job_id, with_for_update=True)
    if job is None or job.state != RUNNING or job.lease_owner != owner:
        return None
    return job


def complete(s: Session, job_id: int, owner: str, detail: dict[str, object] | None = None) -> bool:
    """Mark our job done in the caller's transaction; False if we lost the lease meanwhile."""
    job = _owned(s, job_id, owner)
    if job is None:
        return False
    job.state = DONE
    job.finished_at = utcnow()
    job.lease_owner = None
    job.last_error = None
    if detail:
        job.detail = {**job.detail, **detail}
    return True


def fail(
    s: Session,
    job_id: int,
    owner: str,
    error: str,
    *,
    permanent: bool,
    backoff: Backoff,
) -> str | None:
    """Record a failed attempt: retry later with backoff, or fail for good. Returns the new state."""
    job = _owned(s, job_id, owner)
    if job is None:
        return None
    job.last_error = error[:2000]
    job.lease_owner = None
    job.lease_expires_at = None
    if permanent or job.attempts >= job.max_attempts:
        job.state = FAILED
        job.finished_at = utcnow()
    else:
        job.state = QUEUED
        job.not_before = utcnow() + dt.timedelta(seconds=backoff.delay(job.attempts))
    return job.state


def retry(s: Session, job_ids: Sequence[int] | None = None) -> int:
    """Put failed (or cancelled) jobs back in the queue with fresh attempts; None = all failed."""
    cond = Job.state == FAILED if job_ids is None else Job.id.in_(list(job_ids))
    res = s.execute(
        update(Job)
        .where(cond, Job.state.in_([FAILED, CANCELLED]))
        .values(state=QUEUED, attempts=0, not_before=utcnow(), finished_at=None)
    )
    return int(res.rowcount)  # type: ignore[attr-defined]


def cancel(s: Session, job_ids: Sequence[int]) -> int:
    res = s.execute(
        update(Job)
        .where(Job.id.in_(list(job_ids)), Job.state.in_([QUEUED, FAILED]))
        .values(state=CANCELLED, finished_at=utcnow())
    )
    return int(res.rowcount)  # type: ignore[attr-defined]


def depth(s: Session) -> dict[tuple[str, str], int]:
    rows = s.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))
    return {(k, st): int(n) for k, st, n in rows}


def release_orphans(s: Session, host: str, is_alive: Callable[[int], bool]) -> int:
    """Re-queue RUNNING jobs leased by processes of this host that no longer exist.

    Lease owners are ``host:pid:thread``; after a crash and restart the dead process's jobs need
    not wait for their leases to expire. Jobs of other hosts are left to lease expiry.
    """
    n = 0
    for job in s.scalars(select(Job).where(Job.state == RUNNING).with_for_update(skip_locked=True)):
        parts = (job.lease_owner or "").split(":")
        if len(parts) >= 2 and parts[0] == host and parts[1].isdigit():
            if not is_alive(int(parts[1])):
                job.state = QUEUED
                job.lease_owner = None
                job.lease_expires_at = None
                job.not_before = utcnow()
                n += 1
    return n
