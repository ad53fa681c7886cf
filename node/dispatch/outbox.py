"""The dispatcher loop's job handler: send one result to one destination, record the outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from node.config import Settings
from node.dispatch import dimse
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


def deliver(ctx: DispatchContext, job: Job, owner: str) -> str:
    name = job.destination or ""
    with ctx.sessions() as s:
        inst = s.get(Instance, job.instance_id)
        if inst is None:
            raise RuntimeError(
                f"dispatch job {job.id} names instance {job.instance_id}, which is gone"
            )
        path = ctx.store.abspath(inst.path)
        uid = inst.sop_instance_uid
    dest = ctx.settings.destinations.get(name)
    try:
        if dest is None:
            raise PermanentFailure(f"destination {name!r} is not configured")
        d = ctx.settings.dispatch
        dimse.send_file(dest, path, ctx.settings.node.ae_title, d.timeout_s, d.max_pdu)
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
                    detail=str(e),
                )
            )
        ctx.metrics.dispatched.labels(
            destination=name, outcome="permanent" if permanent else "transient"
        ).inc()
        log.warning("delivery of %s to %s failed (%s): %s", uid, name, state, e)
        return state or "lost"
    with ctx.sessions.begin() as s:
        queue.complete(s, job.id, owner)
        s.add(AuditEvent(event="delivery", instance_uid=uid, job_id=job.id, actor=name))
    ctx.metrics.dispatched.labels(destination=name, outcome="ok").inc()
    log.info("delivered %s to %s", uid, name)
    return queue.DONE
