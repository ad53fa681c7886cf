"""Processing worker: claim a job -> run the pipeline -> store the results -> queue their dispatch.

The per-image work is :func:`node.pipeline.run.run_image` (the same function ``sharpray process``
calls); this module only claims, commits, audits and queues. Runs in its own thread, never on an
association. A radiograph the pipeline cannot process is not
retried: its job fails with the reason and the received file stays in the store.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.config import Settings
from node.instance_index import Received, apply_index, index_attributes
from node.metrics import Metrics
from node.pipeline.analyse import Models
from node.pipeline.blur_gate import BlurAssessment, build_notice_sc, build_notice_sr
from node.pipeline.preprocess import UnsupportedImage, read_dataset
from node.pipeline.results.inputs import Analysis, Producer
from node.pipeline.run import Outcome, Plan, run_image
from node.route import Decision, decide
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


@dataclass(frozen=True)
class _Source:
    id: int
    path: Path
    uid: str
    received: Received


@dataclass
class _Produced:
    source: _Source
    outcome: Outcome
    encoded: list[tuple[str, Dataset, bytes]]

    @property
    def analysis(self) -> Analysis:
        return self.outcome.analysis

    @property
    def seconds(self) -> float:
        return self.outcome.seconds


def index_result(
    s: Session, ds: Dataset, rel: str, size: int, digest: str, source_id: int, kind: str
) -> Instance:
    """Index (insert or replace) one object the node wrote, derived from ``source_id``.

    Result UIDs are stable across retries, so a re-run job updates the row it wrote before.
    Results are searchable by QIDO-RS like received instances.
    """
    uid = str(ds.SOPInstanceUID)
    row = s.query(Instance).filter(Instance.sop_instance_uid == uid).first()
    if row is None:
        row = Instance(sop_instance_uid=uid)
        s.add(row)
    row.sop_class_uid = str(ds.SOPClassUID)
    row.study_instance_uid = str(ds.StudyInstanceUID)
    row.series_instance_uid = str(ds.SeriesInstanceUID)
    row.transfer_syntax_uid = str(ds.file_meta.TransferSyntaxUID)
    row.path = rel
    row.size = size
    row.sha256 = digest
    row.origin = "result"
    row.source = "local"
    row.derived_from_id = source_id
    row.result_kind = kind
    apply_index(row, index_attributes(ds))
    s.flush()
    return row


_ResultFile = tuple[str, Dataset, str, int, str, Path]  # kind, dataset, relpath, size, sha256, tmp


@contextlib.contextmanager
def _result_files(
    store: FileStore, produced: list[_Produced]
) -> Iterator[list[tuple[_Produced, list[_ResultFile]]]]:
    """Each result written durably to a temporary file of the store; on the way out, the ones
    not placed (the commit did not happen) are removed."""
    written: list[tuple[_Produced, list[_ResultFile]]] = []
    try:
        for p in produced:
            files = []
            for kind, r, data in p.encoded:
                rel = store.relpath_for(
                    str(r.StudyInstanceUID), str(r.SeriesInstanceUID), str(r.SOPInstanceUID)
                )
                tmp, size = store.write_temp(data)
                files.append((kind, r, rel, size, hashlib.sha256(data).hexdigest(), tmp))
            written.append((p, files))
        yield written
    finally:
        for _, files in written:
            for *_, tmp in files:
                tmp.unlink(missing_ok=True)  # left only when nothing was placed


def _queue_dispatch(
    s: Session,
    ctx: WorkerContext,
    job: Job,
    instance_id: int,
    destinations: Iterable[str],
    rule: str | None,
    detail: dict[str, object] | None = None,
) -> None:
    """Queue the delivery of one stored instance to each destination, as children of ``job``."""
    for dest in destinations:
        queue.enqueue(
            s,
            "dispatch",
            instance_id,
            destination=dest,
            parent_id=job.id,
            rule=rule,
            max_attempts=ctx.settings.dispatch.max_attempts,
            detail=detail,
        )


def finding_text(a: Analysis) -> str:
    """The top finding with its probability, or why there is none (no patient data)."""
    if a.analysed:
        top = a.top_finding
        return f"{top.label} p={top.probability:.3f}"
    return a.scope.summary() if a.scope is not None else "not analysed"


def _decision(ctx: WorkerContext, job: Job, first: _Source) -> tuple[Decision, bool]:
    """The routing decision stored with the job, or (a job queued without one) decided now."""
    stored = (job.detail or {}).get("route")
    if stored:
        return Decision.from_detail(stored), False
    header = pydicom.dcmread(first.path, stop_before_pixels=True)
    return decide(ctx.settings, header, first.received), True


def process_job(ctx: WorkerContext, job: Job, owner: str) -> str:
    """Run one claimed processing job to its end state; returns that state.

    A job covers one instance, or every instance of a series/study grouped by an idle-timeout
    trigger (``detail["group"]["instances"]``); each is analysed and its results are queued for
    the destinations of the job's routing decision.
    """
    backoff = queue.Backoff()
    group = (job.detail or {}).get("group") or {}
    member_ids = [int(i) for i in group.get("instances", [])] or [job.instance_id]
    sources: list[_Source] = []
    with ctx.sessions() as s:
        for iid in member_ids:
            inst = s.get(Instance, iid)
            if inst is None:
                if iid == job.instance_id:
                    raise RuntimeError(f"job {job.id} names instance {iid}, which is gone")
                continue
            sources.append(
                _Source(
                    inst.id,
                    ctx.store.abspath(inst.path),
                    inst.sop_instance_uid,
                    Received(inst.source, inst.calling_ae, inst.called_ae, inst.peer_host),
                )
            )
    first_uid = sources[0].uid
    t0 = time.perf_counter()
    produced: list[_Produced] = []
    skipped: list[tuple[str, str]] = []
    try:
        decision, decided_now = _decision(ctx, job, sources[0])
        plan = Plan.for_pipeline(ctx.settings, decision.pipeline, decision.results)
        for src in sources if decision.pipeline else []:
            try:
                ds = read_dataset(src.path)
                outcome = run_image(
                    ds,
                    ctx.models,
                    plan,
                    ctx.producer,
                    on_blur=functools.partial(_notify, ctx, job, owner, src, ds),
                )
                encoded = [(kind, r, encode(r)) for kind, r in outcome.results]
            except UnsupportedImage as e:
                skipped.append((src.uid, f"cannot process: {e}"))
                continue
            produced.append(_Produced(src, outcome, encoded))
    except Exception as e:  # a bug or a resource problem: retried up to max_attempts
        log.exception("processing job %s (%s) failed", job.id, first_uid)
        with ctx.sessions.begin() as s:
            state = queue.fail(
                s, job.id, owner, f"{type(e).__name__}: {e}", permanent=False, backoff=backoff
            )
        ctx.metrics.processed.labels(outcome="error").inc()
        return state or "lost"
    if decision.pipeline and not produced:
        reason = (
            "; ".join(r for _, r in skipped)
            if len(skipped) == 1
            else (f"cannot process any of {len(skipped)} instances: {skipped[0][1]}")
        )
        return _give_up(ctx, job, owner, first_uid, reason, backoff)
    elapsed = time.perf_counter() - t0

    try:
        return _commit(ctx, job, owner, decision, sources, group, produced, skipped, elapsed)
    except OSError as e:  # a full disk (ENOSPC) or a store gone: transient, retried with backoff
        log.warning("job %s (%s): results not written: %s", job.id, first_uid, e.strerror or e)
        with ctx.sessions.begin() as s:
            state = queue.fail(
                s,
                job.id,
                owner,
                f"results not written ({e.strerror or type(e).__name__}); retried",
                permanent=False,
                backoff=backoff,
            )
        ctx.metrics.processed.labels(outcome="error").inc()
        return state or "lost"


def _commit(
    ctx: WorkerContext,
    job: Job,
    owner: str,
    decision: Decision,
    sources: list[_Source],
    group: dict[str, object],
    produced: list[_Produced],
    skipped: list[tuple[str, str]],
    elapsed: float,
) -> str:
    """Write, place and index the results, queue their dispatch, audit: one commit."""
    first_uid = sources[0].uid
    decided_now = not (job.detail or {}).get("route")
    # Write the result files first (durably, to temporary files), then place them, index them and
    # queue their dispatch in one commit: a crash before the commit leaves only temporary files
    # (removed at start) and the job, still leased, runs again.
    with _result_files(ctx.store, produced) as written, ctx.sessions.begin() as s:
        ids: list[int] = []
        for p, files in written:
            for kind, r, rel, size, digest, tmp in files:
                ctx.store.place(tmp, rel)
                ids.append(index_result(s, r, rel, size, digest, p.source.id, kind).id)
        detail: dict[str, object] = {"seconds": round(elapsed, 2), "worker": owner}
        if produced:
            a = produced[0].analysis
            detail.update(
                finding=a.top_finding.label if a.analysed else None,
                probability=round(a.top_finding.probability, 4) if a.analysed else None,
                scope=a.scope.summary() if a.scope is not None else None,
                sharpness_before=a.sharpness_before,
                sharpness_after=a.sharpness_after,
                classified=a.classified,
            )
            if a.motion is not None:
                detail["blur"] = {
                    "motion_mm": round(a.motion.motion_mm, 3),
                    "decision": a.motion.decision,
                    "correction": a.correction,
                }
        detail["results"] = [str(r.SOPInstanceUID) for _, files in written for _, r, *_ in files]
        if len(sources) > 1 or group:
            detail["processed"] = [p.source.uid for p in produced]
        if skipped:
            detail["skipped"] = [{"instance": u, "reason": r} for u, r in skipped]
        if decided_now:
            detail["route"] = decision.to_detail()
        ok = queue.complete(s, job.id, owner, detail=detail)
        if not ok:
            s.rollback()
            log.warning("job %s lost its lease while processing; another worker has it", job.id)
            return "lost"
        for result_id in ids:
            _queue_dispatch(s, ctx, job, result_id, decision.send_results_to, decision.rule)
        if decided_now:  # the ingest did not queue the forwards: do it now
            for src in sources:
                _queue_dispatch(
                    s,
                    ctx,
                    job,
                    src.id,
                    decision.forward_original_to,
                    decision.rule,
                    {"original": True},
                )
            s.add(
                AuditEvent(
                    event="routed",
                    instance_uid=first_uid,
                    job_id=job.id,
                    actor=owner,
                    outcome="ignored" if decision.ignore else "ok",
                    detail=decision.summary(),
                )
            )
        for p, files in written:
            s.add(
                AuditEvent(
                    event="processed",
                    instance_uid=p.source.uid,
                    job_id=job.id,
                    actor=owner,
                    detail=f"rule {decision.rule}, pipeline {decision.pipeline}: "
                    f"{finding_text(p.analysis)} on the {p.analysis.classified} image"
                    + (
                        f" (blur {p.analysis.motion.decision} {p.analysis.motion.motion_mm:.2f} mm)"
                        if p.analysis.motion is not None
                        else ""
                    )
                    + f"; {len(files)} result(s)",
                )
            )
        for uid, reason in skipped:
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
    for p, files in written:
        ctx.metrics.processed.labels(outcome="ok").inc()
        ctx.metrics.process_seconds.observe(p.seconds)
        log.info(
            "processed %s in %.1f s: %s, %d result(s)%s",
            p.source.uid,
            p.seconds,
            finding_text(p.analysis),
            len(files),
            f" (job {job.id}, {decision.group} group of {len(sources)})" if group else "",
        )
    for uid, reason in skipped:
        ctx.metrics.processed.labels(outcome="unsupported").inc()
        log.warning("job %s: %s not processed: %s", job.id, uid, reason)
    if not decision.pipeline:
        log.info("job %s (%s): %s", job.id, first_uid, decision.summary())
    return queue.DONE


def _notify(
    ctx: WorkerContext, job: Job, owner: str, src: _Source, ds: Dataset, blur: BlurAssessment
) -> None:
    """The blur gate has judged the image: before any correction, queue the notice for the room.

    The notice SR is written durably, indexed and its dispatch jobs committed at once, so the
    dispatchers send it while this worker goes on correcting and classifying.
    """
    gate = ctx.settings.blur_gate
    with ctx.sessions() as s:  # a re-run of the job (after a crash): notified already
        earlier = s.scalar(
            select(AuditEvent.id)
            .where(
                AuditEvent.event == "blur.assessed",
                AuditEvent.instance_uid == src.uid,
                AuditEvent.job_id == job.id,
            )
            .limit(1)
        )
    if earlier is not None:
        log.info("blur gate %s: assessed and notified in an earlier attempt", src.uid)
        return
    ctx.metrics.blur_score.labels(decision=blur.decision).observe(blur.score)
    notices: list[tuple[Dataset, bytes, str, int]] = []
    if gate.notify_to:
        objects = [build_notice_sr(ds, blur, ctx.producer, series_number=gate.notice_series_number)]
        if gate.notice_sc:
            objects.append(
                build_notice_sc(ds, blur, ctx.producer, series_number=gate.notice_series_number + 1)
            )
        for notice in objects:
            data = encode(notice)
            rel = ctx.store.relpath_for(
                str(notice.StudyInstanceUID),
                str(notice.SeriesInstanceUID),
                str(notice.SOPInstanceUID),
            )
            notices.append((notice, data, rel, ctx.store.write_durably(rel, data)))
    with ctx.sessions.begin() as s:
        for notice, data, rel, size in notices:
            kind = "notice" if notice.Modality == "SR" else "notice_sc"
            digest = hashlib.sha256(data).hexdigest()
            row = index_result(s, notice, rel, size, digest, src.id, kind)
            _queue_dispatch(s, ctx, job, row.id, gate.notify_to, None, {"notice": True})
        s.add(
            AuditEvent(
                event="blur.assessed",
                instance_uid=src.uid,
                job_id=job.id,
                actor=owner,
                outcome=blur.decision,
                detail=f"estimated motion {blur.score:.2f} mm: {blur.decision} in "
                f"{blur.seconds:.2f} s; "
                f"notice -> {', '.join(gate.notify_to) or 'nowhere'}",
            )
        )
    log.info(
        "blur gate %s: motion %.2f mm -> %s (%.2f s)",
        src.uid,
        blur.score,
        blur.decision,
        blur.seconds,
    )


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
        paused: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        # None, or why no job may be claimed now (e.g. the disk is below the watermark): the
        # loop waits and claims again by itself once the reason is gone.
        self.paused = paused
        self.pause_reason: str | None = None
        self.sessions = sessions
        self.kinds = kinds
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.handle = handle
        self.stop_event = stop
        self.owner = f"{_host()}:{_pid()}:{name}"

    def run(self) -> None:
        while not self.stop_event.is_set():
            reason = self.paused() if self.paused is not None else None
            if reason != self.pause_reason:
                if reason:
                    log.warning("%s paused: %s", self.name, reason)
                else:
                    log.info("%s resumed", self.name)
                self.pause_reason = reason
            if reason:
                self.stop_event.wait(max(self.poll_s, 1.0))
                continue
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
