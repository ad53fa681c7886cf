"""Processing worker: claim a job -> analyse -> build results -> store them -> queue their dispatch.

Runs in its own thread, never on an association. A radiograph the pipeline cannot process is not
retried: its job fails with the reason and the received file stays in the store.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from sqlalchemy.orm import Session, sessionmaker

from node.config import Settings
from node.metrics import Metrics
from node.pipeline.analyse import Models, analyse
from node.pipeline.outputs import build_results
from node.pipeline.preprocess import UnsupportedImage, read_dataset
from node.pipeline.results.inputs import Producer
from storage import queue
from storage.files import FileStore
from storage.tables import AuditEvent, Instance, Job

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: FileStore
    metrics: Metrics
    models: Models
    producer: Producer


def encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def process_job(ctx: WorkerContext, job: Job, owner: str) -> str:
    """Run one claimed processing job to its end state; returns that state."""
    backoff = queue.Backoff()
    with ctx.sessions() as s:
        inst = s.get(Instance, job.instance_id)
        if inst is None:
            raise RuntimeError(f"job {job.id} names instance {job.instance_id}, which is gone")
        path = ctx.store.abspath(inst.path)
        source_uid = inst.sop_instance_uid
    t0 = time.perf_counter()
    try:
        ds = read_dataset(path)
        analysis = analyse(ds, ctx.models)
        results = build_results(analysis, ctx.settings.results, ctx.producer)
        encoded = [(kind, r, encode(r)) for kind, r in results]
    except UnsupportedImage as e:
        return _give_up(ctx, job, owner, source_uid, f"cannot process: {e}", backoff)
    except Exception as e:  # a bug or a resource problem: retried up to max_attempts
        log.exception("processing job %s (%s) failed", job.id, source_uid)
        with ctx.sessions.begin() as s:
            state = queue.fail(
                s, job.id, owner, f"{type(e).__name__}: {e}", permanent=False, backoff=backoff
            )
        ctx.metrics.processed.labels(outcome="error").inc()
        return state or "lost"
    elapsed = time.perf_counter() - t0

    # Write the result files first (durably), then index them and queue dispatch in one commit.
    written: list[tuple[str, Dataset, str, int, str]] = []
    for kind, r, data in encoded:
        rel = ctx.store.relpath_for(
            str(r.StudyInstanceUID), str(r.SeriesInstanceUID), str(r.SOPInstanceUID)
        )
        size = ctx.store.write_durably(rel, data)
        written.append((kind, r, rel, size, hashlib.sha256(data).hexdigest()))
    with ctx.sessions.begin() as s:
        ids: list[int] = []
        for kind, r, rel, size, digest in written:
            row = (
                s.query(Instance).filter(Instance.sop_instance_uid == str(r.SOPInstanceUID)).first()
            )
            if row is None:
                row = Instance(sop_instance_uid=str(r.SOPInstanceUID))
                s.add(row)
            row.sop_class_uid = str(r.SOPClassUID)
            row.study_instance_uid = str(r.StudyInstanceUID)
            row.series_instance_uid = str(r.SeriesInstanceUID)
            row.transfer_syntax_uid = str(r.file_meta.TransferSyntaxUID)
            row.path = rel
            row.size = size
            row.sha256 = digest
            row.origin = "result"
            row.source = "local"
            row.derived_from_id = job.instance_id
            row.result_kind = kind
            s.flush()
            ids.append(row.id)
        top = analysis.top_finding
        ok = queue.complete(
            s,
            job.id,
            owner,
            detail={
                "seconds": round(elapsed, 2),
                "finding": top.label,
                "probability": round(top.probability, 4),
                "sharpness_before": analysis.sharpness_before,
                "sharpness_after": analysis.sharpness_after,
                "results": [str(r.SOPInstanceUID) for _, r, *_ in written],
            },
        )
        if not ok:
            s.rollback()
            log.warning("job %s lost its lease while processing; another worker has it", job.id)
            return "lost"
        for result_id in ids:
            for dest in ctx.settings.routing.send_results_to:
                queue.enqueue(
                    s,
                    "dispatch",
                    result_id,
                    destination=dest,
                    parent_id=job.id,
                    max_attempts=ctx.settings.dispatch.max_attempts,
                )
        s.add(
            AuditEvent(
                event="processed",
                instance_uid=source_uid,
                job_id=job.id,
                actor=owner,
                detail=f"{top.label} p={top.probability:.3f}; {len(written)} result(s)",
            )
        )
    ctx.metrics.processed.labels(outcome="ok").inc()
    ctx.metrics.process_seconds.observe(elapsed)
    log.info(
        "processed %s in %.1f s: %s p=%.3f, %d result(s)",
        source_uid,
        elapsed,
        top.label,
        top.probability,
        len(written),
    )
    return queue.DONE


def _give_up(
    ctx: WorkerContext, job: Job, owner: str, uid: str, reason: str, backoff: queue.Backoff
) -> str:
    log.warning("job %s (%s) failed for good: %s", job.id, uid, reason)
    with ctx.sessions.begin() as s:
        state = queue.fail(s, job.id, owner, reason, permanent=True, backoff=backoff)
        s.add(
            AuditEvent(
                event="process.failed",
                instance_uid=uid,
                job_id=job.id,
                actor=owner,
                outcome="failed",
                detail=reason,
            )
        )
    ctx.metrics.processed.labels(outcome="unsupported").inc()
    return state or "lost"


Handler = Callable[[Job, str], object]


class Loop(threading.Thread):
    """Claims jobs of one kind and runs ``handle`` on each until stopped."""

    def __init__(
        self,
        name: str,
        sessions: sessionmaker[Session],
        kinds: list[str],
        lease_s: float,
        poll_s: float,
        handle: Handler,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.sessions = sessions
        self.kinds = kinds
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.handle = handle
        self.stop_event = stop
        self.owner = f"{_host()}:{_pid()}:{name}"

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                job = queue.claim(self.sessions, self.kinds, self.owner, self.lease_s)
            except Exception:
                log.exception("%s: claiming a job failed; retrying", self.name)
                self.stop_event.wait(max(self.poll_s, 1.0))
                continue
            if job is None:
                self.stop_event.wait(self.poll_s)
                continue
            try:
                self.handle(job, self.owner)
            except Exception:
                log.exception("%s: job %s failed unexpectedly", self.name, job.id)


def _host() -> str:
    return socket.gethostname()


def _pid() -> int:
    return os.getpid()
