"""Scale-out: jobs/s with 1, 2 and 3 worker processes on one PostgreSQL queue (issue #9).

For each worker count: a throwaway database, N radiographs ingested (each a "process" job), then
K ``sharpray serve --role worker`` processes sharing the store and the queue (FOR UPDATE SKIP
LOCKED). Throughput is measured from the jobs' own finish times, between the first and the last
job finished, so process start-up (imports, model load) is not counted. Each worker process runs
ONNX Runtime with one intra-op thread (one worker per core); no results are dispatched.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from bench import pg
from bench.common import Json, Sizes
from bench.data import make_set
from node.ingest import Ingestor
from node.instance_index import Received
from storage import db
from storage.files import FileStore
from storage.tables import Job
from tests.support.node_proc import NodeProcess, node_config
from tests.support.ports import wait_for


def _ingest(store: Path, url: str, files: list[Path]) -> None:
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        ingestor = Ingestor(FileStore(store), db.make_sessionmaker(engine), process_max_attempts=3)
        for f in files:
            ingestor.ingest(f.read_bytes(), Received(source="local"))
    finally:
        engine.dispose()


def _jobs(url: str) -> list[tuple[str, dt.datetime | None, str]]:
    engine = db.make_engine(url)
    try:
        with db.make_sessionmaker(engine)() as s:
            rows = s.execute(
                select(Job.state, Job.finished_at, Job.detail).where(Job.kind == "process")
            )
            return [(st, fin, str((det or {}).get("worker", ""))) for st, fin, det in rows]
    finally:
        engine.dispose()


def _one(work: Path, models: dict[str, Path], k: int, files: list[Path]) -> Json:
    with pg.throwaway_database() as url:
        store = work / f"store-{k}"
        _ingest(store, url, files)
        procs: list[NodeProcess] = []
        t0 = time.time()
        try:
            for i in range(k):
                folder = work / f"w{k}-{i}"
                folder.mkdir(parents=True, exist_ok=True)
                cfg = node_config(folder, models, None, database_url=url)
                cfg["storage"]["folder"] = str(store)
                cfg["models"]["intra_op_threads"] = 1
                cfg["workers"].update({"count": 1, "dispatchers": 0, "poll_s": 0.1})
                procs.append(NodeProcess(folder, cfg).start(roles=["worker"]))

            def done() -> list[tuple[str, dt.datetime | None, str]] | None:
                jobs = _jobs(url)
                return jobs if all(st in ("done", "failed") for st, _, _ in jobs) else None

            jobs = wait_for(done, 1800, f"{len(files)} jobs done by {k} workers", interval=0.3)
            wall = time.time() - t0
        finally:
            for p in procs:
                p.stop()
    finished = sorted(f for st, f, _ in jobs if st == "done" and f is not None)
    span = (finished[-1] - finished[0]).total_seconds() if len(finished) > 1 else float("nan")
    per_worker = Counter(w.split(":")[1] if ":" in w else w for _, _, w in jobs)
    return {
        "workers": k,
        "jobs": len(jobs),
        "done": len(finished),
        "span_s": round(span, 2),
        "jobs_s": round((len(finished) - 1) / span, 3) if span and span > 0 else None,
        "wall_s_with_startup": round(wall, 2),
        "jobs_per_worker": sorted(per_worker.values(), reverse=True),
    }


def run(sizes: Sizes, work: Path, models: dict[str, Path]) -> Json:
    if not pg.available():
        return {"skipped": "PostgreSQL is not running on 127.0.0.1:5432"}
    data = make_set(work / "data", "w", sizes.worker_jobs, sizes.worker_px, seed=5)
    levels = [_one(work, models, k, data.files) for k in sizes.worker_counts]
    base = levels[0]["jobs_s"] or 0
    for lv in levels:
        lv["speedup_vs_1"] = round(lv["jobs_s"] / base, 2) if base and lv["jobs_s"] else None
    return {
        "database": "postgresql",
        "px": sizes.worker_px,
        "models": "tiny test models",
        "intra_op_threads": 1,
        "levels": levels,
    }
