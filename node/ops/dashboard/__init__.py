"""The administrator's web dashboard at /dashboard: server-rendered pages (Jinja2), local CSS/JS.

Pages: overview (counts, throughput, queue depth, disk, models), jobs (filterable, retry/cancel
through the same :mod:`storage.queue` functions as ``sharpray retry``/``cancel``), a study page
(source, corrected and overlay images rendered by the node's own WADO-RS ``/rendered``, finding,
probability, blur before/after, delivery history) and routing (rules, destinations and a
"test a file" dry run, as ``sharpray route --dry-run``).

Authentication is the DICOMweb :class:`node.dicomweb.auth.Guard`: pages are reads, actions are
writes (never open on a non-loopback address). Actions also need the ``X-SharpRay-Action`` header,
which a cross-site form cannot send (no CSRF with browser-cached credentials). Pages show UIDs,
never patient names or IDs.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import yaml
from fastapi import APIRouter, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from node import __version__, admin
from node.config import Settings
from node.dicomweb.auth import Guard
from storage import queue
from storage.files import FileStore
from storage.tables import AuditEvent, Instance, Job, utcnow

PREFIX = "/dashboard"
HERE = Path(__file__).resolve().parent
STATIC_FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
ACTION_HEADER = "x-sharpray-action"
MAX_UPLOAD = 64 * 1024 * 1024


@dataclass
class DashboardContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: FileStore
    health: Callable[[], dict[str, Any]]
    guard: Guard
    dicomweb: bool  # whether /dicom-web (and so /rendered) is served by this process


def _since(hours: float) -> dt.datetime:
    return utcnow() - dt.timedelta(hours=hours)


def counts(s: Session, since: dt.datetime) -> dict[str, int]:
    """Received / processed / delivered / failed since ``since``."""
    received = s.scalar(
        select(func.count())
        .select_from(Instance)
        .where(Instance.origin == "received", Instance.received_at >= since)
    )

    def jobs(kind: str | None, state: str) -> int:
        q = (
            select(func.count())
            .select_from(Job)
            .where(Job.state == state, Job.finished_at >= since)
        )
        if kind:
            q = q.where(Job.kind == kind)
        return int(s.scalar(q) or 0)

    return {
        "received": int(received or 0),
        "processed": jobs("process", queue.DONE),
        "delivered": jobs("dispatch", queue.DONE),
        "failed": jobs(None, queue.FAILED),
    }


def _rendered_url(inst: Instance) -> str:
    return (
        f"/dicom-web/studies/{inst.study_instance_uid}/series/{inst.series_instance_uid}"
        f"/instances/{inst.sop_instance_uid}/rendered"
    )


def _date_filter(value: str) -> tuple[dt.datetime, dt.datetime] | None:
    if not value:
        return None
    try:
        day = dt.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise HTTPException(400, "date must be YYYY-MM-DD") from None
    return day, day + dt.timedelta(days=1)


def dashboard_router(ctx: DashboardContext) -> APIRouter:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    router = APIRouter(include_in_schema=False)

    def page(request: Request, name: str, **values: Any) -> Response:
        ctx.guard.check(request, write=False)
        values.update(version=__version__, active=name)
        return templates.TemplateResponse(request, f"{name}.html", values)

    def action(request: Request) -> str:
        ctx.guard.check(request, write=True)
        if request.headers.get(ACTION_HEADER) != "1":
            raise HTTPException(403, f"dashboard actions need the {ACTION_HEADER} header")
        auth = request.headers.get("authorization", "")
        user = ""
        if auth.lower().startswith("basic "):
            import base64

            try:
                user = base64.b64decode(auth[6:]).decode("utf-8").partition(":")[0]
            except Exception:
                user = ""
        return f"dashboard:{user}"[:64] if user else "dashboard"

    @router.get("/static/{name}")
    def static(request: Request, name: str) -> Response:
        ctx.guard.check(request, write=False)
        if name not in STATIC_FILES:
            raise HTTPException(404, "no such file")
        return FileResponse(HERE / "static" / name, media_type=STATIC_FILES[name])

    @router.get("")
    def overview(request: Request) -> Response:
        with ctx.sessions() as s:
            hour, day = counts(s, _since(1)), counts(s, _since(24))
            depth = queue.depth(s)
            studies = s.execute(
                select(
                    Instance.study_instance_uid,
                    func.count(),
                    func.max(Instance.received_at),
                )
                .where(Instance.origin == "received")
                .group_by(Instance.study_instance_uid)
                .order_by(func.max(Instance.received_at).desc())
                .limit(20)
            ).all()
        health = ctx.health()
        free = int(health.get("disk_free_bytes") or ctx.store.free_bytes())
        watermark = ctx.settings.storage.min_free_mb * 1024 * 1024
        pending = {
            kind: sum(
                n for (k, st), n in depth.items() if k == kind and st in ("queued", "running")
            )
            for kind in ("process", "dispatch")
        }
        return page(
            request,
            "overview",
            hour=hour,
            day=day,
            per_hour_day={k: round(v / 24, 1) for k, v in day.items()},
            depth=sorted(depth.items()),
            pending=pending,
            free_mb=free // (1024 * 1024),
            watermark_mb=watermark // (1024 * 1024),
            disk_ok=free >= watermark,
            health=health,
            models=health.get("models") or {},
            studies=studies,
        )

    @router.get("/jobs")
    def jobs(
        request: Request,
        state: str = "",
        kind: str = "",
        rule: str = "",
        destination: str = "",
        date: str = "",
        limit: int = 200,
    ) -> Response:
        if state and state not in queue.STATES:
            raise HTTPException(400, f"state must be one of {', '.join(queue.STATES)}")
        window = _date_filter(date)
        f = admin.JobFilter(
            state=state or None,
            kind=kind or None,
            rule=rule or None,
            destination=destination or None,
            created=window,
            limit=limit,
        )
        with ctx.sessions() as s:
            rows = admin.list_jobs(s, f)
            rules = sorted(r for (r,) in s.execute(select(Job.rule).distinct()) if r)
            dests = sorted(d for (d,) in s.execute(select(Job.destination).distinct()) if d)
            for job, inst in rows:
                s.expunge(job)
                s.expunge(inst)
        return page(
            request,
            "jobs",
            rows=rows,
            states=queue.STATES,
            rules=rules,
            destinations=dests,
            f={
                "state": state,
                "kind": kind,
                "rule": rule,
                "destination": destination,
                "date": date,
            },
        )

    @router.post("/api/jobs/{job_id}/retry")
    def retry(request: Request, job_id: int) -> JSONResponse:
        actor = action(request)
        with ctx.sessions.begin() as s:
            n = admin.retry_jobs(s, [job_id], actor)
        if not n:
            raise HTTPException(409, f"job {job_id} is not failed or cancelled (or does not exist)")
        return JSONResponse({"job": job_id, "queued": n})

    @router.post("/api/jobs/{job_id}/cancel")
    def cancel(request: Request, job_id: int) -> JSONResponse:
        actor = action(request)
        with ctx.sessions.begin() as s:
            n = admin.cancel_jobs(s, [job_id], actor)
        if not n:
            raise HTTPException(409, f"job {job_id} is not queued or failed (or does not exist)")
        return JSONResponse({"job": job_id, "cancelled": n})

    @router.get("/studies/{study}")
    def study(request: Request, study: str) -> Response:
        ctx.guard.check(request, write=False)
        with ctx.sessions() as s:
            instances = list(
                s.scalars(
                    select(Instance)
                    .where(Instance.study_instance_uid == study)
                    .order_by(Instance.id)
                )
            )
            if not instances:
                raise HTTPException(404, "no such study on this node")
            ids = [i.id for i in instances]
            all_jobs = list(s.scalars(select(Job).where(Job.instance_id.in_(ids)).order_by(Job.id)))
            uids = [i.sop_instance_uid for i in instances]
            audit = list(
                s.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.instance_uid.in_(uids))
                    .order_by(AuditEvent.id)
                )
            )
            for o in (*instances, *all_jobs, *audit):
                s.expunge(o)
        sources = []
        for src in (i for i in instances if i.origin == "received"):
            results = [i for i in instances if i.derived_from_id == src.id]
            kinds = {r.result_kind: r for r in results}
            process = [j for j in all_jobs if j.kind == "process" and j.instance_id == src.id] or [
                j
                for j in all_jobs
                if j.kind == "process"
                and src.sop_instance_uid in (j.detail or {}).get("processed", [])
            ]
            detail = process[-1].detail if process else {}
            images = [("source", "Source radiograph", src)]
            if "sc" in kinds:
                images.append(("corrected", "Corrected image", kinds["sc"]))
            if "overlay" in kinds:
                images.append(("overlay", "Heatmap overlay", kinds["overlay"]))
            deliveries = [
                {
                    "result": r,
                    "jobs": [j for j in all_jobs if j.kind == "dispatch" and j.instance_id == r.id],
                    "audit": [a for a in audit if a.instance_uid == r.sop_instance_uid],
                }
                for r in [src, *results]
            ]
            sources.append(
                {
                    "source": src,
                    "process": process[-1] if process else None,
                    "detail": detail,
                    "images": [
                        (role, title, inst, _rendered_url(inst)) for role, title, inst in images
                    ],
                    "deliveries": deliveries,
                }
            )
        viewer = ctx.dicomweb and ctx.settings.dicomweb.viewer_dir is not None
        return page(
            request, "study", study=study, sources=sources, dicomweb=ctx.dicomweb, viewer=viewer
        )

    def routing_page(request: Request, dry_run: dict[str, Any] | None = None) -> Response:
        r = ctx.settings.routing
        return page(
            request,
            "routing",
            rules=[_yaml(x) for x in r.rules],
            rule_names=[x.name for x in r.rules],
            fallback=_yaml(r.fallback),
            pipelines={k: list(v.results) for k, v in ctx.settings.pipelines.items()},
            destinations=[
                (name, type(d).__name__.replace("Destination", "").lower(), _describe(d))
                for name, d in ctx.settings.destinations.items()
            ],
            dry_run=dry_run,
        )

    @router.get("/routing")
    def routing(request: Request) -> Response:
        return routing_page(request)

    @router.post("/routing/test")
    def routing_test(
        request: Request,
        file: UploadFile = File(...),  # noqa: B008
        calling_ae: str = Form(""),
        source: str = Form("dimse"),
    ) -> Response:
        ctx.guard.check(request, write=False)
        from node.instance_index import Received
        from node.route import explain

        data = file.file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise HTTPException(413, "files up to 64 MiB can be tested here")
        try:
            header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            header.SOPClassUID  # noqa: B018 - a DICOM dataset has one
        except Exception as e:
            raise HTTPException(400, f"not a readable DICOM file ({type(e).__name__})") from None
        if source not in ("dimse", "dicomweb", "local"):
            raise HTTPException(400, "source must be dimse, dicomweb or local")
        run = explain(
            ctx.settings, header, Received(source=source, calling_ae=calling_ae.strip() or None)
        )
        return routing_page(
            request,
            {
                "file": file.filename or "upload",
                "sop_instance_uid": str(header.get("SOPInstanceUID", "")),
                "summary": run.decision.summary(),
                "rule": run.decision.rule,
                "checks": run.checks,
            },
        )

    return router


def _yaml(model: Any) -> str:
    """A rule as it would be written in config.yaml (settings left at their defaults omitted)."""
    return str(
        yaml.safe_dump(model.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    )


def _describe(d: Any) -> str:
    describe = getattr(d, "describe", None)
    return str(describe()) if callable(describe) else type(d).__name__


def install(app: FastAPI, ctx: DashboardContext) -> None:
    """Mount /dashboard on the node's HTTP app; / leads there."""
    app.include_router(dashboard_router(ctx), prefix=PREFIX)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(PREFIX)
