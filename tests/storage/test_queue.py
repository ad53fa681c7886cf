"""The durable queue on SQLite and PostgreSQL: claims, leases, retries, no job taken twice."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select, update

from storage import db, queue
from storage.tables import Instance, Job, utcnow


def _setup(url: str, n_jobs: int = 0):  # type: ignore[no-untyped-def]
    engine = db.make_engine(url)
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    with sessions.begin() as s:
        inst = Instance(
            sop_instance_uid="1.2.3",
            sop_class_uid="1.2",
            study_instance_uid="1.3",
            series_instance_uid="1.4",
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            path="x",
            size=1,
            sha256="0" * 64,
        )
        s.add(inst)
        s.flush()
        for _ in range(n_jobs):
            queue.enqueue(s, "process", inst.id, max_attempts=3)
    return engine, sessions


def test_migrations_are_idempotent(database_url: str) -> None:
    engine, _ = _setup(database_url)
    db.upgrade(engine)
    assert db.current_revision(engine) is not None


def test_claim_complete_and_empty(database_url: str) -> None:
    _, sessions = _setup(database_url, 1)
    job = queue.claim(sessions, ["process"], "w1", lease_s=60)
    assert job is not None and job.attempts == 1 and job.lease_owner == "w1"
    assert queue.claim(sessions, ["process"], "w2", lease_s=60) is None
    assert queue.claim(sessions, ["dispatch"], "w2", lease_s=60) is None
    with sessions.begin() as s:
        assert queue.complete(s, job.id, "w1", {"x": 1})
    with sessions() as s:
        done = s.get(Job, job.id)
        assert done is not None and done.state == "done" and done.detail == {"x": 1}


def test_expired_lease_is_taken_by_another_and_old_owner_loses(database_url: str) -> None:
    _, sessions = _setup(database_url, 1)
    job = queue.claim(sessions, ["process"], "dead-worker", lease_s=60)
    assert job is not None
    with sessions.begin() as s:  # the lease runs out (the worker died)
        s.execute(update(Job).values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    again = queue.claim(sessions, ["process"], "w2", lease_s=60)
    assert again is not None and again.id == job.id and again.attempts == 2
    with sessions.begin() as s:
        assert not queue.complete(s, job.id, "dead-worker")  # too late: not its job any more
    with sessions.begin() as s:
        assert queue.complete(s, job.id, "w2")


def test_poison_job_fails_after_max_attempts_of_dying(database_url: str) -> None:
    _, sessions = _setup(database_url, 1)
    for _ in range(3):
        assert queue.claim(sessions, ["process"], "w", lease_s=60) is not None
        with sessions.begin() as s:
            s.execute(update(Job).values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert queue.claim(sessions, ["process"], "w", lease_s=60) is None
    with sessions() as s:
        job = s.scalars(select(Job)).one()
        assert job.state == "failed" and "lease expired 3 times" in (job.last_error or "")


def test_transient_failure_backs_off_then_fails_for_good(database_url: str) -> None:
    _, sessions = _setup(database_url, 1)
    backoff = queue.Backoff(initial_s=0, factor=2, max_s=0)
    for attempt in (1, 2):
        job = queue.claim(sessions, ["process"], "w", lease_s=60)
        assert job is not None and job.attempts == attempt
        with sessions.begin() as s:
            assert (
                queue.fail(s, job.id, "w", "peer down", permanent=False, backoff=backoff)
                == "queued"
            )
    job = queue.claim(sessions, ["process"], "w", lease_s=60)
    assert job is not None
    with sessions.begin() as s:
        assert queue.fail(s, job.id, "w", "peer down", permanent=False, backoff=backoff) == "failed"
    with sessions.begin() as s:
        assert queue.retry(s, None) == 1
    job = queue.claim(sessions, ["process"], "w", lease_s=60)
    assert job is not None and job.attempts == 1


def test_backoff_delays_the_next_claim(database_url: str) -> None:
    _, sessions = _setup(database_url, 1)
    job = queue.claim(sessions, ["process"], "w", lease_s=60)
    assert job is not None
    with sessions.begin() as s:
        queue.fail(s, job.id, "w", "busy", permanent=False, backoff=queue.Backoff(initial_s=3600))
    assert queue.claim(sessions, ["process"], "w", lease_s=60) is None


def test_permanent_failure_is_not_retried_and_cancel(database_url: str) -> None:
    _, sessions = _setup(database_url, 2)
    job = queue.claim(sessions, ["process"], "w", lease_s=60)
    assert job is not None
    with sessions.begin() as s:
        assert (
            queue.fail(s, job.id, "w", "rejected", permanent=True, backoff=queue.Backoff())
            == "failed"
        )
    other = queue.claim(sessions, ["process"], "w", lease_s=60)
    assert other is not None and other.id != job.id
    with sessions.begin() as s:
        assert queue.cancel(s, [job.id]) == 1


def test_concurrent_claimers_never_share_a_job(database_url: str) -> None:
    n = 60
    _, sessions = _setup(database_url, n)
    taken: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while True:
            job = queue.claim(sessions, ["process"], name, lease_s=60)
            if job is None:
                return
            with sessions.begin() as s:
                assert queue.complete(s, job.id, name)
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(set(taken)) and len(taken) == n


def test_release_orphans_requeues_dead_local_process_jobs(database_url: str) -> None:
    _, sessions = _setup(database_url, 2)
    a = queue.claim(sessions, ["process"], "host1:111:worker-0", lease_s=600)
    b = queue.claim(sessions, ["process"], "host2:222:worker-0", lease_s=600)
    assert a is not None and b is not None
    with sessions.begin() as s:
        n = queue.release_orphans(s, "host1", lambda pid: False)
    assert n == 1
    again = queue.claim(sessions, ["process"], "w", lease_s=60)
    assert again is not None and again.id == a.id
