"""Prometheus metrics, on a registry of the node's own (no global state). No patient data in labels."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _QueueCollector(Collector):
    def __init__(self, depth: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.depth = depth

    def collect(self) -> Iterable[Metric]:
        g = GaugeMetricFamily(
            "sharpray_jobs", "Jobs in the queue by kind and state", labels=["kind", "state"]
        )
        try:
            for (kind, state), n in sorted(self.depth().items()):
                g.add_metric([kind, state], n)
        except Exception:  # the database may be briefly unavailable; scrape the rest
            pass
        yield g


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # New instances stored (as the dashboard counts them); identical resends apart.
        self.received = Counter("sharpray_received", "Instances received", ["source"], registry=r)
        self.duplicates = Counter(
            "sharpray_received_duplicates",
            "Identical resends acknowledged and ignored",
            ["source"],
            registry=r,
        )
        self.received_bytes = Counter(
            "sharpray_received_bytes", "Bytes received", ["source"], registry=r
        )
        self.rejected = Counter(
            "sharpray_rejected", "Instances refused", ["source", "reason"], registry=r
        )
        self.connections_refused = Counter(
            "sharpray_connections_refused",
            "Connections closed before an association (per_peer_limit, pending_limit, "
            "association_timeout, tls_handshake)",
            ["reason"],
            registry=r,
        )
        self.associations_rejected = Counter(
            "sharpray_associations_rejected",
            "DICOM associations refused (calling_ae, called_ae, limit)",
            ["reason"],
            registry=r,
        )
        self.processed = Counter(
            "sharpray_processed", "Processing jobs finished", ["outcome"], registry=r
        )
        self.process_seconds = Histogram(
            "sharpray_process_seconds",
            "Time to process one radiograph",
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=r,
        )
        self.blur_score = Histogram(
            "sharpray_blur_score",
            "Blur gate: estimated motion in mm of processed radiographs (0 = none found), "
            "by decision",
            ["decision"],
            buckets=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
            registry=r,
        )
        self.dispatched = Counter(
            "sharpray_dispatched", "Dispatch attempts", ["destination", "outcome"], registry=r
        )
        self.models_loaded = Gauge(
            "sharpray_model_info",
            "Loaded models (value 1) with their version and execution provider",
            ["task", "name", "version", "provider"],
            registry=r,
        )

    def watch_queue(self, depth: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.registry.register(_QueueCollector(depth))

    def render(self) -> bytes:
        return generate_latest(self.registry)
