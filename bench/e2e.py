"""End to end: modality (dcmtk storescu) -> SharpRay (a real process) -> Orthanc (the PACS).

* latency: one sender, one radiograph at a time, the demo models: from the instance's durable
  ingest (the moment before the C-STORE response) to the corrected SC and the SR acknowledged by
  Orthanc (their dispatch jobs done), read from the node's own index (one clock, no polling error);
* load: N storescu processes (1, 2, 4) push at once; sustained throughput (radiographs fully
  delivered per second), latency p50/p95 under load, and the queue depth sampled every 0.25 s.
  The load test uses the tiny test models so that it measures the node's machinery (ingest,
  queue, decode, tiling, result objects, dispatch) rather than re-measuring the model, whose cost
  the latency test and the inference section give.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

from bench.common import Json, Sizes, median, percentile
from bench.data import DataSet, make_set, sop_uid
from bench.peers import NODELAY_ENV, OrthancReceiver, SharpRayReceiver, storescu, storescu_cmd
from storage import db
from storage.tables import Instance, Job
from tests.support.ports import wait_for

log = logging.getLogger(__name__)


def shipped_kinds() -> tuple[str, ...]:
    """The result objects the shipped default pipeline ("full") builds for each radiograph."""
    from node.config import Settings

    return tuple(Settings().pipelines["full"].results)


def _epoch(t: dt.datetime) -> float:
    return t.replace(tzinfo=dt.UTC).timestamp()


def deliveries(url: str) -> dict[str, Json]:
    """Per received instance: when it was ingested, processed, and each result acknowledged."""
    src, res = aliased(Instance), aliased(Instance)
    engine = db.make_engine(url)
    out: dict[str, Json] = {}
    try:
        with engine.connect() as c:
            for uid, received in c.execute(
                select(src.sop_instance_uid, src.received_at).where(src.origin == "received")
            ):
                out[uid] = {"received": _epoch(received), "results": {}, "processed": None}
            q = (
                select(src.sop_instance_uid, res.result_kind, Job.finished_at)
                .join(res, res.derived_from_id == src.id)
                .join(
                    Job,
                    and_(Job.instance_id == res.id, Job.kind == "dispatch", Job.state == "done"),
                )
            )
            for uid, kind, finished in c.execute(q):
                if uid in out and finished is not None:
                    out[uid]["results"][str(kind)] = _epoch(finished)
            q2 = select(src.sop_instance_uid, Job.finished_at).join(
                Job, and_(Job.instance_id == src.id, Job.kind == "process", Job.state == "done")
            )
            for uid, finished in c.execute(q2):
                if uid in out and finished is not None:
                    out[uid]["processed"] = _epoch(finished)
    finally:
        engine.dispose()
    return out


def _complete(d: Json, kinds: tuple[str, ...]) -> bool:
    return all(k in d["results"] for k in kinds)


def _latencies(rows: list[Json], kinds: tuple[str, ...]) -> Json:
    sr = [r["results"]["sr"] - r["received"] for r in rows if "sr" in r["results"]]
    full = [max(r["results"].values()) - r["received"] for r in rows if _complete(r, kinds)]
    proc = [r["processed"] - r["received"] for r in rows if r["processed"] is not None]
    return {
        "images": len(rows),
        "sr_p50_s": round(percentile(sr, 50), 2),
        "sr_p95_s": round(percentile(sr, 95), 2),
        "all_results_p50_s": round(percentile(full, 50), 2),
        "all_results_p95_s": round(percentile(full, 95), 2),
        "processed_p50_s": round(percentile(proc, 50), 2),
        "sr_s": [round(x, 2) for x in sr],
    }


class QueueSampler(threading.Thread):
    """Samples the node's queue (queued/running per kind) every ``interval`` seconds."""

    def __init__(self, url: str, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.samples: list[Json] = []
        self.stop_event = threading.Event()
        self.t0 = time.time()

    def run(self) -> None:
        from storage.queue import depth

        engine = db.make_engine(self.url)
        sessions = db.make_sessionmaker(engine)
        try:
            while not self.stop_event.is_set():
                try:
                    with sessions() as s:
                        d = depth(s)
                except Exception:  # the node is writing; try again next tick
                    d = None
                if d is not None:
                    self.samples.append(
                        {
                            "t": round(time.time() - self.t0, 2),
                            "process_queued": d.get(("process", "queued"), 0),
                            "process_running": d.get(("process", "running"), 0),
                            "dispatch_queued": d.get(("dispatch", "queued"), 0),
                            "dispatch_running": d.get(("dispatch", "running"), 0),
                        }
                    )
                self.stop_event.wait(self.interval)
        finally:
            engine.dispose()


def _wait_delivered(url: str, uids: set[str], kinds: tuple[str, ...], timeout: float) -> Json:
    def done() -> dict[str, Json] | None:
        d = deliveries(url)
        mine = {u: d[u] for u in uids if u in d}
        return (
            mine
            if len(mine) == len(uids) and all(_complete(r, kinds) for r in mine.values())
            else None
        )

    return wait_for(done, timeout, f"{len(uids)} radiographs delivered to Orthanc", interval=0.2)


def node_for(
    folder: Path,
    models: dict[str, Path],
    pacs: OrthancReceiver,
    url: str | None = None,
    providers: str = "cpu",
) -> SharpRayReceiver:
    """The whole node (receiver, one worker, one dispatcher) sending its results to ``pacs``."""
    node = SharpRayReceiver(
        folder,
        models,
        database_url=url,
        roles=["receiver", "worker", "dispatcher"],
        pacs=(pacs.aet, pacs.port),
        overrides={"workers": {"poll_s": 0.1}, "models": {"providers": providers}},
        shipped_pipelines=True,
    )
    node.start()
    return node


def latency(
    sizes: Sizes,
    work: Path,
    node: SharpRayReceiver,
    pacs: OrthancReceiver,
    kinds: tuple[str, ...] | None = None,
) -> Json:
    """One radiograph at a time: send, wait until its results are in Orthanc, send the next."""
    kinds = kinds or shipped_kinds()
    data = make_set(work / "latency-data", "lat", sizes.latency_images, sizes.latency_px, seed=3)
    assert node.node is not None
    url = node.node.database_url
    uids = set()
    before = pacs.received()
    for f in data.files:
        sent = storescu([f], node.port, node.aet)
        if sent.returncode != 0:
            raise RuntimeError(f"storescu failed: {sent.stderr_tail}")
        uid = sop_uid(f)
        uids.add(uid)
        _wait_delivered(url, {uid}, kinds, timeout=1800)
    rows = [r for u, r in deliveries(url).items() if u in uids]
    out = _latencies(rows, kinds)
    out.update(
        {
            "px": sizes.latency_px,
            "senders": 1,
            "in_orthanc": pacs.received() - before,
            "expected_in_orthanc": len(kinds) * len(data.files),
        }
    )
    return out


def load(
    sizes: Sizes,
    work: Path,
    node: SharpRayReceiver,
    pacs: OrthancReceiver,
    kinds: tuple[str, ...] | None = None,
) -> list[Json]:
    """N senders at once, for each N of ``sizes.load_senders``."""
    kinds = kinds or shipped_kinds()
    levels: list[Json] = []
    assert node.node is not None
    url = node.node.database_url
    before = pacs.received()
    for n in sizes.load_senders:
        sets: list[DataSet] = [
            make_set(
                work / f"load-{n}-{i}",
                f"s{i}_",
                sizes.load_images_per_sender,
                sizes.load_px,
                seed=i,
            )
            for i in range(n)
        ]
        uids = {sop_uid(f) for s in sets for f in s.files}
        sampler = QueueSampler(url)
        sampler.start()
        t0 = time.time()
        procs = [
            subprocess.Popen(
                storescu_cmd(s.folder, node.port, node.aet, aet=f"MODALITY{i + 1}"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=NODELAY_ENV,
            )
            for i, s in enumerate(sets)
        ]
        for p in procs:
            p.wait(1800)
        sent_s = time.time() - t0
        rows = list(_wait_delivered(url, uids, kinds, timeout=1800).values())
        sampler.stop_event.set()
        sampler.join(10)
        first = min(r["received"] for r in rows)
        last = max(max(r["results"].values()) for r in rows)
        level = _latencies(rows, kinds)
        level.update(
            {
                "senders": n,
                "px": sizes.load_px,
                "send_s": round(sent_s, 2),
                "span_s": round(last - first, 2),
                "throughput_img_s": round(len(rows) / (last - first), 3),
                "max_process_queued": max(
                    (s["process_queued"] for s in sampler.samples), default=0
                ),
                "queue_depth": sampler.samples,
            }
        )
        levels.append(level)
    in_pacs = pacs.received() - before
    expected = len(kinds) * sum(lv["images"] for lv in levels)
    for lv in levels:
        lv["orthanc_total"], lv["orthanc_expected_total"] = in_pacs, expected
    return levels


def run(
    sizes: Sizes,
    work: Path,
    demo: dict[str, Path],
    demo_label: str,
    tiny: dict[str, Path],
    demo_int8: dict[str, Path] | None = None,
) -> Json:
    """Latency with the demo models (and with the int8 deblur model when given), then load with
    the tiny ones (one node when they are the same, as in smoke mode); one Orthanc for all."""
    pacs = OrthancReceiver(work / "pacs")
    pacs.start()
    nodes: list[SharpRayReceiver] = []
    lat_int8: Json | None = None
    try:
        node = node_for(work / "node-demo", demo, pacs, None)
        nodes.append(node)
        lat = latency(sizes, work, node, pacs)
        if demo_int8 is not None:
            node.stop()
            node = node_for(work / "node-demo-int8", demo_int8, pacs, None)
            nodes.append(node)
            lat_int8 = latency(sizes, work, node, pacs)
            lat_int8["models"] = f"{demo_label}, deblur int8 ({demo_int8['deblur'].name})"
            lat_int8["results"] = list(shipped_kinds())
        if demo != tiny:
            node.stop()
            node = node_for(work / "node-tiny", tiny, pacs, None)
            nodes.append(node)
        levels = load(sizes, work, node, pacs)
    finally:
        for n in nodes:
            n.stop()
        pacs.stop()
    lat["models"] = demo_label
    lat["results"] = list(shipped_kinds())
    return {
        "latency": lat,
        **({"latency_int8": lat_int8} if lat_int8 is not None else {}),
        "load": levels,
        "load_models": "tiny test models (node machinery, not the model)",
        "implied_demo_throughput_img_s": (
            round(1 / median([lat["processed_p50_s"]]), 4) if lat["processed_p50_s"] > 0 else None
        ),
    }
