"""The node's HTTP app: /healthz (liveness and readiness), /metrics (Prometheus) and, on a
receiver, the DICOMweb service under /dicom-web (node.dicomweb); /openapi.json describes it all.
The administrator's dashboard (node.ops.dashboard) is at /dashboard, behind the same auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from node import __version__
from node.metrics import Metrics

if TYPE_CHECKING:
    from node.dicomweb.context import DicomWebContext
    from node.ops.dashboard import DashboardContext

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def create_http_app(
    metrics: Metrics,
    health: Callable[[], dict[str, Any]],
    dicomweb: DicomWebContext | None = None,
    dashboard: DashboardContext | None = None,
) -> FastAPI:
    app = FastAPI(title="SharpRay", version=__version__)

    @app.get(
        "/healthz",
        summary="Liveness and readiness of the node",
        responses={503: {"description": "Degraded (the report says why)"}},
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
    return app
