"""Composition root: builds the receivers, workers and dispatchers from the settings, runs them.

Roles: "all" (default), or any of "receiver" (DIMSE SCP + HTTP), "worker" (processing),
"dispatcher" (sending results), so receivers can run near the modalities and workers on GPU hosts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import text

from models.scope import load_scope
from node import __version__
from node.config import ConfigError, Settings
from node.dicomweb.auth import Guard
from node.dicomweb.context import DicomWebContext
from node.dicomweb.index import backfill
from node.dispatch.outbox import DispatchContext, deliver
from node.ingest import Ingestor
from node.metrics import Metrics
from node.ops.dashboard import DashboardContext
from node.ops.http import create_http_app
from node.pipeline.analyse import Models
from node.pipeline.blur_gate import policy as blur_policy
from node.pipeline.correct import Corrector
from node.pipeline.infer import (
    Classifier,
    Deblurrer,
    KernelMagnitude,
    ModelLoadError,
    load_model,
)
from node.pipeline.outputs import producer_for
from node.pipeline.scope import ScopeFlags
from node.pipeline.worker import Loop, WorkerContext, process_job
from node.receive.dimse import DimseReceiver
from node.recover import recover
from storage import db, queue
from storage.files import FileStore

log = logging.getLogger(__name__)

ROLES = ("receiver", "worker", "dispatcher")


def load_models(settings: Settings, metrics: Metrics | None = None) -> Models:
    m = settings.models
    generator = (
        Deblurrer(
            load_model(m.deblur, m.providers, m.intra_op_threads, m.verify_sha256),
            m.deblur_tile,
            m.deblur_batch,
        )
        if m.deblur is not None
        else None
    )

    def kernel_magnitude(folder: Path) -> KernelMagnitude:
        """A kernel magnitude network of the shape step (always on the CPU: small, per frame)."""
        return KernelMagnitude(load_model(folder, "cpu", m.intra_op_threads, m.verify_sha256))

    magnitude = (
        kernel_magnitude(m.kernel_shape)
        if m.kernel_shape is not None and (generator is None or generator.refines_node_correction)
        else None
    )
    if (
        m.kernel_shape is not None
        and generator is not None
        and not generator.refines_node_correction
        and "kernel_shape" in m.model_fields_set
    ):
        log.info(
            "models.kernel_shape is not used with models.deblur %s: the shape step belongs to "
            "the blind Wiener correction",
            generator.model.manifest.display_name,
        )
    detector_magnitude = (
        kernel_magnitude(m.kernel_shape_detector)
        if m.kernel_shape_detector is not None and magnitude is not None
        else None
    )
    if m.kernel_shape_detector is not None and magnitude is None:
        log.info(
            "models.kernel_shape_detector is not used: it belongs to the shape step of the blind "
            "Wiener correction (models.kernel_shape off, or models.deblur set)"
        )
    second_magnitude = (
        kernel_magnitude(m.kernel_shape_second)
        if m.kernel_shape_second is not None and magnitude is not None and generator is None
        else None
    )
    if (
        m.kernel_shape_second is not None
        and second_magnitude is None
        and "kernel_shape_second" in m.model_fields_set
    ):
        log.info(
            "models.kernel_shape_second is not used: it belongs to the shape step of the blind "
            "Wiener correction without a refiner (models.kernel_shape off, or models.deblur set)"
        )
    detector_second = (
        kernel_magnitude(m.kernel_shape_detector_second)
        if m.kernel_shape_detector_second is not None
        and detector_magnitude is not None
        and generator is None
        else None
    )
    if m.kernel_shape_detector_second is not None and detector_second is None:
        log.info(
            "models.kernel_shape_detector_second is not used: it belongs to the native-pixel "
            "shape step of the blind Wiener correction without a refiner "
            "(models.kernel_shape_detector or models.kernel_shape off, or models.deblur set)"
        )
    corrector = Corrector(
        blur_policy(settings.blur_gate),
        generator,
        magnitude,
        detector_magnitude,
        second_magnitude,
        detector_second,
    )
    classify = load_model(m.classify, m.providers, m.intra_op_threads, m.verify_sha256)
    if metrics is not None:
        metrics.models_loaded.labels(
            task="deblur",
            name=corrector.info.name,
            version=corrector.info.version,
            provider=corrector.provider,
        ).set(1)
        metrics.models_loaded.labels(
            task=classify.manifest.task,
            name=classify.manifest.name,
            version=classify.manifest.version,
            provider=classify.provider,
        ).set(1)
    sc = settings.scope
    flags = (
        ScopeFlags(
            modality=sc.check_modality,
            body_part=sc.check_body_part,
            view=sc.check_view,
            age=sc.check_age,
            pixel_spacing=sc.check_pixel_spacing,
            image=sc.check_image,
            image_threshold=sc.image_threshold,
        )
        if sc.enabled
        else None
    )
    try:
        scope_model = load_scope(sc.model) if sc.enabled and sc.check_image else None
    except (OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"scope model {sc.model} cannot be loaded: {e}") from e
    return Models(corrector, Classifier(classify), settings.blur_gate, scope_model, flags)


class Node:
    def __init__(self, settings: Settings, roles: Iterable[str] = ROLES) -> None:
        self.settings = settings
        self.roles = set(roles)
        unknown = self.roles - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        self.metrics = Metrics()
        self.engine = db.make_engine(settings.storage.database_url)
        self.sessions = db.make_sessionmaker(self.engine)
        self.store = FileStore(settings.storage.folder, direct_io=settings.storage.direct_io)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.receiver: DimseReceiver | None = None
        self.http: uvicorn.Server | None = None
        self.models: Models | None = None
        self.dimse_address: tuple[str, int] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        db.upgrade(self.engine)
        self._recover()
        if "receiver" in self.roles:
            backfill(self.sessions, self.store)  # QIDO-RS index of rows older than it
        self.metrics.watch_queue(self._queue_depth)
        if "worker" in self.roles and self.settings.workers.count > 0:
            self.models = load_models(self.settings, self.metrics)
            ctx = WorkerContext(
                self.settings,
                self.sessions,
                self.store,
                self.metrics,
                self.models,
                producer_for(self.settings.results),
            )
            for i in range(self.settings.workers.count):
                self._loop(
                    f"worker-{i}",
                    ["process"],
                    lambda job, owner: process_job(ctx, job, owner),
                    paused=self._disk_low,
                )
        if "dispatcher" in self.roles:
            dctx = DispatchContext(self.settings, self.sessions, self.store, self.metrics)
            for i in range(self.settings.workers.dispatchers):
                self._loop(
                    f"dispatcher-{i}", ["dispatch"], lambda job, owner: deliver(dctx, job, owner)
                )
        self._start_http()  # every role serves /healthz and /metrics; first: it may fail
        if "receiver" in self.roles:
            ingestor = self._ingestor()
            self.receiver = DimseReceiver(self.settings.node, ingestor, self.metrics)
            self.dimse_address = self.receiver.start()
        log.info("SharpRay %s started (roles: %s)", __version__, ", ".join(sorted(self.roles)))

    def _ingestor(self) -> Ingestor:
        return Ingestor(
            self.store,
            self.sessions,
            process_max_attempts=self.settings.workers.max_attempts,
            settings=self.settings,
            min_free_bytes=self.settings.storage.min_free_mb * 1024 * 1024,
        )

    def _disk_low(self) -> str | None:
        """Why workers must not write results now: the store is below storage.min_free_mb."""
        watermark = self.settings.storage.min_free_mb * 1024 * 1024
        free = self.store.free_bytes()
        if watermark and free < watermark:
            return (
                f"free disk space {free // (1024 * 1024)} MB is below storage.min_free_mb "
                f"({self.settings.storage.min_free_mb} MB): processing waits for space"
            )
        return None

    def _loop(self, name: str, kinds: list[str], handle: Any, paused: Any | None = None) -> None:
        w = self.settings.workers
        t = Loop(name, self.sessions, kinds, w.lease_s, w.poll_s, handle, self.stop_event, paused)
        t.start()
        self.threads.append(t)

    def _start_http(self) -> None:
        dicomweb = None
        if "receiver" in self.roles and self.settings.dicomweb.enabled:
            dicomweb = DicomWebContext(
                self.settings, self.sessions, self.store, self._ingestor(), self.metrics
            )
        try:  # the dashboard (/dashboard) shares the DICOMweb guard and its secrets
            guard = dicomweb.guard if dicomweb is not None else Guard(self.settings)
        except ConfigError as e:  # a worker host need not hold the DICOMweb secrets
            log.warning("dashboard not served: %s", e)
            dashboard = None
        else:
            dashboard = DashboardContext(
                self.settings, self.sessions, self.store, self.health, guard, dicomweb is not None
            )
        app = create_http_app(
            self.metrics,
            self.health,
            dicomweb,
            dashboard,
            access_log=self.settings.logging.http_access,
            viewer_dir=self.settings.dicomweb.viewer_dir,
        )
        n = self.settings.node
        config = uvicorn.Config(
            app, host=n.http_bind, port=n.http_port, log_config=None, access_log=False
        )
        self.http = uvicorn.Server(config)
        t = threading.Thread(target=self.http.run, name="http", daemon=True)
        t.start()
        self.threads.append(t)
        # A node without /healthz, /metrics, STOW-RS and the dashboard must not say "started":
        # wait until the port is open, or fail the start (port taken, address not local).
        deadline = time.monotonic() + 30
        while not self.http.started and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.http.started:
            self.http.should_exit = True
            raise OSError(f"cannot serve HTTP on {n.http_bind}:{n.http_port} (port in use?)")
        served = ["/healthz", "/metrics"]
        served += ["/dicom-web"] if dicomweb is not None else []
        served += ["/dashboard"] if dashboard is not None else []
        for server in self.http.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                log.info("HTTP listening on http://%s:%s (%s)", host, port, ", ".join(served))

    def _recover(self) -> None:
        recover(
            self.store,
            self.sessions,
            self._ingestor() if "receiver" in self.roles else None,
            own_manufacturer=self.settings.results.manufacturer,
        )

    def stop(self, timeout: float = 30.0) -> None:
        log.info("stopping")
        if self.receiver is not None:
            self.receiver.stop()
        self.stop_event.set()
        if self.http is not None:
            self.http.should_exit = True
        for t in self.threads:
            t.join(timeout)
        self.engine.dispose()
        log.info("stopped")

    # -- health ----------------------------------------------------------------------------
    def _queue_depth(self) -> dict[tuple[str, str], int]:
        with self.sessions() as s:
            return queue.depth(s)

    def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {"version": __version__, "roles": sorted(self.roles)}
        ok = True
        try:
            with self.engine.connect() as c:
                c.execute(text("SELECT 1"))
            report["database"] = "ok"
        except Exception as e:
            report["database"] = f"error: {type(e).__name__}"
            ok = False
        report["disk_free_bytes"] = self.store.free_bytes()
        low = self._disk_low()
        report["disk"] = {
            "free_bytes": report["disk_free_bytes"],
            "min_free_bytes": self.settings.storage.min_free_mb * 1024 * 1024,
            "below_watermark": low is not None,
        }
        if low is not None:  # an ordinary state, not a failure: said, not a 503
            report.setdefault("warnings", []).append(low + "; new images are refused")
        dead = [t.name for t in self.threads if not t.is_alive()]
        if dead and not self.stop_event.is_set():
            report["dead_threads"] = dead
            ok = False
        if self.models is not None:
            report["models"] = {
                "deblur": {
                    "name": self.models.deblur.info.name,
                    "version": self.models.deblur.info.version,
                    "provider": self.models.deblur.provider,
                },
                "classify": {
                    "name": self.models.classify.model.manifest.name,
                    "version": self.models.classify.model.manifest.version,
                    "provider": self.models.classify.model.provider,
                },
            }
        starting = False
        if self.dimse_address:
            report["dimse"] = {
                "ae_title": self.settings.node.ae_title,
                "port": self.dimse_address[1],
            }
        elif "receiver" in self.roles and not self.stop_event.is_set():
            # HTTP opens first: until the DICOM port listens the node is not ready to receive,
            # and a modality or a load balancer that trusted a 200 would be refused
            report["dimse"] = "not listening yet"
            starting = True
        report["status"] = "starting" if starting and ok else "ok" if ok else "degraded"
        return report
