"""Scale out: several worker processes share one queue in PostgreSQL (FOR UPDATE SKIP LOCKED).

Real processes (`sharpray serve --role worker`), the real PostgreSQL on 127.0.0.1:5432, tiny models.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from node.ingest import Ingestor
from node.instance_index import Received
from storage import db
from storage.files import FileStore
from storage.tables import AuditEvent, Job
from tests.support.node_proc import NodeProcess, node_config
from tests.support.ports import wait_for
from tests.support.synthetic import make_cr

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("this test is about several processes on PostgreSQL")
    return database_url


def _ingest(folder: Path, url: str, n: int, size: int = 96) -> list[int]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    ingestor = Ingestor(
        FileStore(folder / "store"), db.make_sessionmaker(engine), process_max_attempts=3
    )
    job_ids = []
    src = folder / "src"
    src.mkdir(exist_ok=True)
    for i in range(n):
        make_cr(src / f"{i}.dcm", size, size, seed=i)
        r = ingestor.ingest((src / f"{i}.dcm").read_bytes(), Received(source="local"))
        assert r.job_id is not None
        job_ids.append(r.job_id)
    engine.dispose()
    return job_ids


def _jobs(url: str) -> list[Job]:
    engine = db.make_engine(url)
    try:
        with db.make_sessionmaker(engine)() as s:
            return list(s.scalars(select(Job).where(Job.kind == "process").order_by(Job.id)))
    finally:
        engine.dispose()


def _processed_events(url: str) -> Counter[int]:
    engine = db.make_engine(url)
    try:
        with db.make_sessionmaker(engine)() as s:
            q = select(AuditEvent.job_id).where(AuditEvent.event == "processed")
            return Counter(int(j) for j in s.scalars(q) if j is not None)
    finally:
        engine.dispose()


def _worker(
    folder: Path, models: dict[str, Path], url: str, name: str, **workers: object
) -> NodeProcess:
    wdir = folder / name
    wdir.mkdir()
    cfg = node_config(wdir, models, None, database_url=url)
    cfg["storage"]["folder"] = str(folder / "store")  # one shared store
    cfg["workers"].update(workers)
    return NodeProcess(wdir, cfg).start(roles=["worker"])


def test_three_worker_processes_share_100_jobs_none_twice(
    tmp_path: Path, tiny_models: dict[str, Path], pg_url: str
) -> None:
    ids = _ingest(tmp_path, pg_url, 100)
    workers = [_worker(tmp_path, tiny_models, pg_url, f"w{i}") for i in range(3)]
    try:

        def all_done() -> bool:
            return all(j.state == "done" for j in _jobs(pg_url))

        wait_for(all_done, 300, "100 jobs done by 3 workers", interval=0.5)
    finally:
        for w in workers:
            w.stop()
    jobs = _jobs(pg_url)
    assert sorted(j.id for j in jobs) == sorted(ids)
    assert all(j.attempts == 1 for j in jobs), Counter(j.attempts for j in jobs)
    events = _processed_events(pg_url)
    assert set(events) == set(ids) and set(events.values()) == {1}, "a job was processed twice"
    # every process took part (owners are host:pid:thread)
    owners = Counter(j.detail.get("worker", "") for j in jobs)
    pids = {o.split(":")[1] for o in owners if o}
    assert len(pids) == 3, owners


def test_killed_worker_job_is_finished_by_another_after_the_lease(
    tmp_path: Path, tiny_models: dict[str, Path], pg_url: str
) -> None:
    # A large image makes the job last long enough to be killed in the middle of it.
    ids = _ingest(tmp_path, pg_url, 1, size=1536)
    a = _worker(tmp_path, tiny_models, pg_url, "a", lease_s=4)
    b = None
    try:

        def running_on_a() -> Job | None:
            jobs = _jobs(pg_url)
            return next((j for j in jobs if j.state == "running"), None)

        job = wait_for(running_on_a, 60, "worker a to take the job", interval=0.05)
        owner_a = job.lease_owner
        # b starts while a is alive, so b's start-up finds no orphan: only the lease frees the job
        b = _worker(tmp_path, tiny_models, pg_url, "b", lease_s=4)
        a.kill()

        def done() -> Job | None:
            j = _jobs(pg_url)[0]
            return j if j.state == "done" else None

        finished = wait_for(done, 120, "worker b to finish a's job after the lease", interval=0.2)
        assert finished.id == ids[0]
        assert finished.attempts == 2
        assert finished.detail.get("worker") != owner_a
        assert _processed_events(pg_url)[ids[0]] == 1
    finally:
        a.kill()
        if b is not None:
            b.stop()
