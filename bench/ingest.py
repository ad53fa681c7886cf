"""C-STORE ingest (SharpRay vs dcmtk storescp vs Orthanc) and C-STORE SCU (SharpRay vs storescu).

Each run starts a fresh receiver (empty store, fresh database), waits for C-ECHO, sends every file
of a set over one association with dcmtk storescu (Nagle off, PDU 128 KiB), checks that all files
arrived, and stops the receiver. Cases are interleaved run by run so that a change in the
machine's load hits every case alike. Wall time = sender start to exit.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pynetdicom import AE

from bench import pg
from bench.common import Json, Sizes, median
from bench.data import DataSet
from bench.peers import (
    OrthancReceiver,
    Receiver,
    SharpRayReceiver,
    StoreScp,
    cpu_seconds,
    storescu,
    tools_available,
)

log = logging.getLogger(__name__)


def _summarise(case: str, receiver: str, sender: str, ds: DataSet, runs: list[Json]) -> Json:
    n, mb = len(ds.files), ds.bytes / 1e6
    wall = median([r["wall_s"] for r in runs])
    return {
        "case": case,
        "receiver": receiver,
        "sender": sender,
        "dataset": ds.name,
        "files": n,
        "mb": round(mb, 1),
        "wall_s": round(wall, 3),
        "img_s": round(n / wall, 1),
        "mb_s": round(mb / wall, 1),
        "receiver_cpu_s_per_img": round(median([r["rcv_cpu_s"] for r in runs]) / n, 4),
        "all_received": all(r["received"] == n for r in runs),
        "runs": runs,
    }


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "postgresql":
        with pg.throwaway_database() as url:
            yield url
    else:
        yield None


def _receive_once(rcv: Receiver, ds: DataSet) -> Json:
    rcv.start()
    try:
        c0 = cpu_seconds(rcv.pid())
        sent = storescu(ds.folder, rcv.port, rcv.aet)
        c1 = cpu_seconds(rcv.pid())
        got = rcv.received()
    finally:
        rcv.stop()
    if sent.returncode != 0:
        log.warning("storescu to %s ended with %d: %s", rcv.name, sent.returncode, sent.stderr_tail)
    return {
        "wall_s": round(sent.wall_s, 3),
        "rcv_cpu_s": round(c1 - c0, 2),
        "received": got,
        "sender_rc": sent.returncode,
    }


def _send_dispatch(ds: DataSet, port: int, aet: str) -> float:
    """SharpRay's dispatcher path: node.dispatch.dimse.send_file, one association per file."""
    from node.config import DimseDestination
    from node.dispatch.dimse import send_file

    dest = DimseDestination(ae_title=aet, host="127.0.0.1", port=port)
    t0 = time.perf_counter()
    for f in ds.files:
        send_file(dest, f, "SHARPRAY", 60.0, 0)
    return time.perf_counter() - t0


def _send_one_association(ds: DataSet, port: int, aet: str) -> float:
    """pynetdicom, one association for the whole set, the files sent as read (no re-encoding):
    what the dispatcher would reach if it kept its association open."""
    import pydicom
    from pynetdicom import evt

    from node.dispatch.dimse import _nodelay  # the same TCP_NODELAY handler as the dispatcher

    first = pydicom.dcmread(ds.files[0], stop_before_pixels=True)
    ae = AE(ae_title="SHARPRAY")
    ae.maximum_pdu_size = 0
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(first.SOPClassUID, [first.file_meta.TransferSyntaxUID])
    t0 = time.perf_counter()
    assoc = ae.associate(
        "127.0.0.1", port, ae_title=aet, evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)]
    )
    if not assoc.is_established:
        raise RuntimeError("storescp did not accept the association")
    try:
        for f in ds.files:
            status = assoc.send_c_store(f)  # a path: sent in chunks, not decoded
            if not status or int(status.Status) != 0:
                raise RuntimeError(f"storescp refused a C-STORE: {status}")
    finally:
        assoc.release()
    return time.perf_counter() - t0


def _scu_once(send: Callable[[DataSet, int, str], float], ds: DataSet, folder: Path) -> Json:
    rcv = StoreScp(folder)
    rcv.start()
    try:
        wall = send(ds, rcv.port, rcv.aet)
        got = rcv.received()
    finally:
        rcv.stop()
    return {"wall_s": round(wall, 3), "rcv_cpu_s": 0.0, "received": got}


def run(sizes: Sizes, work: Path, sets: list[DataSet], models: dict[str, Path]) -> Json:
    tools = tools_available()
    if not (tools["storescu"] and tools["storescp"]):
        return {"skipped": "dcmtk (storescu, storescp) is not installed"}
    databases = ["sqlite"] + (["postgresql"] if not sizes.smoke and pg.available() else [])
    cases: list[Json] = []
    for ds in sets:
        receivers: dict[str, tuple[str, Callable[[Path, str], Receiver]]] = {
            "storescp": ("dcmtk storescp", lambda f, _db: StoreScp(f)),
        }
        if tools["orthanc"]:
            receivers["orthanc"] = ("Orthanc", lambda f, _db: OrthancReceiver(f))
        for db in databases:
            receivers[f"sharpray_{db}"] = (f"SharpRay ({db})", _node_factory(models, db))
        scus: dict[str, tuple[str, Callable[[DataSet, int, str], float]]] = {
            "scu_sharpray_dispatch": ("SharpRay dispatcher (association per file)", _send_dispatch),
            "scu_pynetdicom_one_assoc": ("pynetdicom, one association", _send_one_association),
        }
        runs: dict[str, list[Json]] = {k: [] for k in [*receivers, *scus]}
        for r in range(sizes.runs):
            for key, (_, factory) in receivers.items():
                db = "postgresql" if key.endswith("postgresql") else "sqlite"
                folder = work / f"{ds.name}-{key}-{r}"
                with _database(db) as url:
                    runs[key].append(_receive_once(factory(folder, url or ""), ds))
                shutil.rmtree(folder, ignore_errors=True)
                (folder.parent / f"{folder.name}.log").unlink(missing_ok=True)
            for key, (_, send) in scus.items():
                folder = work / f"{ds.name}-{key}-{r}"
                runs[key].append(_scu_once(send, ds, folder))
                shutil.rmtree(folder, ignore_errors=True)
                (folder.parent / f"{folder.name}.log").unlink(missing_ok=True)
        for key, (label, _) in receivers.items():
            cases.append(_summarise(key, label, "dcmtk storescu", ds, runs[key]))
        for key, (label, _) in scus.items():
            cases.append(_summarise(key, "dcmtk storescp", label, ds, runs[key]))
    return {"databases": databases, "cases": cases, "ratios": ratios(cases, sets)}


def _node_factory(models: dict[str, Path], db: str) -> Callable[[Path, str], Receiver]:
    def make(folder: Path, url: str) -> Receiver:
        return SharpRayReceiver(folder, models, database_url=url or None)

    return make


def ratios(cases: list[Json], sets: list[DataSet]) -> Json:
    out: Json = {}
    for ds in sets:
        by = {c["case"]: c for c in cases if c["dataset"] == ds.name}

        def ratio(a: str, b: str, by: dict[str, Json] = by) -> float | None:
            if a in by and b in by and by[b]["img_s"] > 0:
                return round(float(by[a]["img_s"]) / float(by[b]["img_s"]), 2)
            return None

        out[ds.name] = {
            "sharpray_over_storescp": ratio("sharpray_sqlite", "storescp"),
            "sharpray_over_orthanc": ratio("sharpray_sqlite", "orthanc"),
            "sharpray_pg_over_storescp": ratio("sharpray_postgresql", "storescp"),
            "dispatch_over_storescu": ratio("scu_sharpray_dispatch", "storescp"),
            "one_assoc_over_storescu": ratio("scu_pynetdicom_one_assoc", "storescp"),
        }
    return out


def disk_limit_img_s(fsync_mb_s: float, ds: DataSet) -> float:
    """Images/s the disk allows when each image is synced before the answer."""
    per_image_mb = ds.bytes / 1e6 / max(1, len(ds.files))
    return round(fsync_mb_s / per_image_mb, 1) if per_image_mb else float("nan")
