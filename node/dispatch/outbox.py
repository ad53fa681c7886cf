"""The dispatcher loop's job handler: send one result to one destination, record the outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from node.config import (
    DicomwebDestination,
    DimseDestination,
    ReturnToSenderDestination,
    Settings,
)
from node.dispatch import dimse, stow
from node.dispatch.errors import DeliveryError, PermanentFailure
from node.metrics import Metrics
from storage import queue
from storage.files import FileStore
from storage.tables import AuditEvent, Instance, Job

log = logging.getLogger(__name__)


@dataclass
class DispatchContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: FileStore
    metrics: Metrics

    @property
    def backoff(self) -> queue.Backoff:
        d = self.settings.dispatch
        return queue.Backoff(d.backoff_initial_s, d.backoff_factor, d.backoff_max_s)


def resolve_sender(
    dest: ReturnToSenderDestination, inst: Instance, source: Instance | None
) -> DimseDestination:
    """The DICOM peer that sent ``source`` (the instance a result derives from, or the instance
    itself): its calling AE title at the host its association came from."""
    src = source or inst
    if src.source != "dimse" or not src.calling_ae or not src.peer_host:
        raise PermanentFailure(
            f"return to sender: {src.sop_instance_uid} did not arrive by DIMSE, "
            "so there is no DICOM peer to return it to"
        )
    return DimseDestination(
        ae_title=src.calling_ae,
        host=src.peer_host,
        port=dest.ports.get(src.calling_ae, dest.port),
        calling_ae_title=dest.calling_ae_title,
        tls=dest.tls,
    )


def send(
    ctx: DispatchContext, name: str, path: Path, inst: Instance, source: Instance | None
) -> str:
    """Send one file to the destination called ``name``; return where it went (for the audit)."""
    dest = ctx.settings.destinations.get(name)
    d = ctx.settings.dispatch
    if dest is None:
        raise PermanentFailure(f"destination {name!r} is not configured")
    if isinstance(dest, DicomwebDestination):
        stow.send_file(dest, path, d.timeout_s)
        return dest.describe()
    peer = (
        resolve_sender(dest, inst, source) if isinstance(dest, ReturnToSenderDestination) else dest
    )
    dimse.send_file(peer, path, ctx.settings.node.ae_title, d.timeout_s, d.max_pdu)
    return peer.describe()


def deliver(ctx: DispatchContext, job: Job, owner: str) -> str:
    name = job.destination or ""
    with ctx.sessions() as s:
        inst = s.get(Instance, job.instance_id)
        if inst is None:
            raise RuntimeError(
                f"dispatch job {job.id} names instance {job.instance_id}, which is gone"
            )
        source = s.get(Instance, inst.derived_from_id) if inst.derived_from_id else None
        s.expunge_all()
    path = ctx.store.abspath(inst.path)
    uid = inst.sop_instance_uid
    rule = f"rule {job.rule}; " if job.rule else ""
    what = "original" if inst.origin == "received" else (inst.result_kind or "result")
    try:
        where = send(ctx, name, path, inst, source)
    except DeliveryError as e:
        permanent = isinstance(e, PermanentFailure)
        with ctx.sessions.begin() as s:
            state = queue.fail(s, job.id, owner, str(e), permanent=permanent, backoff=ctx.backoff)
            s.add(
                AuditEvent(
                    event="delivery",
                    instance_uid=uid,
                    job_id=job.id,
                    actor=name,
                    outcome="failed" if state == queue.FAILED else "retry",
                    detail=f"{rule}{what}; attempt {job.attempts}: {e}",
                )
            )
        ctx.metrics.dispatched.labels(
            destination=name, outcome="permanent" if permanent else "transient"
        ).inc()
        log.warning("delivery of %s to %s failed (%s): %s", uid, name, state, e)
        return state or "lost"
    with ctx.sessions.begin() as s:
        queue.complete(s, job.id, owner, detail={"sent_to": where})
        s.add(
            AuditEvent(
                event="delivery",
                instance_uid=uid,
                job_id=job.id,
                actor=name,
                detail=f"{rule}{what} -> {where}; attempt {job.attempts}",
            )
        )
    ctx.metrics.dispatched.labels(destination=name, outcome="ok").inc()
    log.info("delivered %s to %s (%s)", uid, name, where)
    return queue.DONE
