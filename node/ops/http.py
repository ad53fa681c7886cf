"""The node's HTTP app: /healthz (liveness and readiness), /metrics (Prometheus) and, on a
receiver, the DICOMweb service under /dicom-web (node.dicomweb); /openapi.json describes it all.
The administrator's dashboard (node.ops.dashboard) is at /dashboard, behind the same auth."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from node import __version__
from node.metrics import Metrics

if TYPE_CHECKING:
    from node.dicomweb.context import DicomWebContext
    from node.ops.dashboard import DashboardContext

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
access = logging.getLogger("sharpray.http.access")


def create_http_app(
    metrics: Metrics,
    health: Callable[[], dict[str, Any]],
    dicomweb: DicomWebContext | None = None,
    dashboard: DashboardContext | None = None,
    access_log: bool = False,
    viewer_dir: Path | None = None,
) -> FastAPI:
    app = FastAPI(title="SharpRay", version=__version__)
    if access_log:

        @app.middleware("http")
        async def log_access(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            t0 = time.perf_counter()
            status = 500
            response: Response | None = None
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                client = request.client.host if request.client else "-"
                size = response.headers.get("content-length", "-") if response else "-"
                # the path only: a query string can hold patient data (QIDO-RS PatientName=...)
                access.info(
                    "%s %s %s %d %s bytes %.1f ms",
                    client,
                    request.method,
                    request.url.path[:300],
                    status,
                    size,
                    (time.perf_counter() - t0) * 1000,
                )

    @app.get(
        "/healthz",
        summary="Liveness and readiness of the node",
        responses={503: {"description": "Degraded or still starting (the report says why)"}},
    )
    def healthz() -> JSONResponse:
        report = health()
        return JSONResponse(report, status_code=200 if report.get("status") == "ok" else 503)

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    if dicomweb is not None:
        from node.dicomweb.api import install

        install(app, dicomweb)
    if dashboard is not None:
        from node.ops.dashboard import install as install_dashboard

        install_dashboard(app, dashboard)
    if dicomweb is not None and viewer_dir is not None:
        from node.ops.viewer import install as install_viewer

        install_viewer(app, viewer_dir)  # last: it answers every path no other route takes
    return app
