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
from pynetdicom.association import Association

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
        "pynetdicom_races": sum(int(r.get("races", 0)) for r in runs),
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


RACES: list[int] = []  # pynetdicom reactor races seen by _send_one_association (see below)


def _send_one_association(ds: DataSet, port: int, aet: str) -> float:
    """pynetdicom, one association for the whole set, the files sent as read (no re-encoding):
    what the dispatcher would reach if it kept its association open.

    pynetdicom 3.0 has a race between its association reactor and a waiting ``send_c_store``
    (pynetdicom issues #435, #875): now and then the reactor takes the C-STORE response off the
    queue ("Received unexpected C-STORE service message"), the sender times out and aborts. Seen
    here about once in 100-500 requests on a loaded 2-core machine. Such a file is sent again on a
    new association and the race is counted (``RACES``), as a dispatcher that keeps associations
    open would have to; each race costs the 2 s DIMSE timeout in the wall time.
    """
    import pydicom
    from pynetdicom import evt

    from node.dispatch.dimse import _nodelay  # the same TCP_NODELAY handler as the dispatcher

    first = pydicom.dcmread(ds.files[0], stop_before_pixels=True)
    ae = AE(ae_title="SHARPRAY")
    ae.maximum_pdu_size = 0
    ae.acse_timeout = ae.network_timeout = 60
    ae.dimse_timeout = 2  # storescp on loopback answers in milliseconds; a race costs this much
    ae.add_requested_context(first.SOPClassUID, [first.file_meta.TransferSyntaxUID])

    def associate() -> Association:
        assoc = ae.associate(
            "127.0.0.1", port, ae_title=aet, evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)]
        )
        if not assoc.is_established:
            raise RuntimeError("storescp did not accept the association")
        return assoc

    races = 0
    t0 = time.perf_counter()
    assoc = associate()
    try:
        for i, f in enumerate(ds.files):
            for _attempt in range(3):
                # a path: sent in chunks, not decoded; a fresh message ID per request
                status = assoc.send_c_store(f, msg_id=(i % 65535) + 1)
                if status and "Status" in status:
                    break
                races += 1
                if assoc.is_established:
                    assoc.abort()
                assoc = associate()
            if not status or int(status.Status) != 0:
                raise RuntimeError(f"storescp refused a C-STORE: {status}")
    finally:
        if assoc.is_established:
            assoc.release()
    RACES.append(races)
    return time.perf_counter() - t0


def _scu_once(send: Callable[[DataSet, int, str], float], ds: DataSet, folder: Path) -> Json:
    rcv = StoreScp(folder)
    rcv.start()
    races = sum(RACES)
    try:
        wall = send(ds, rcv.port, rcv.aet)
        got = rcv.received()
    finally:
        rcv.stop()
    return {
        "wall_s": round(wall, 3),
        "rcv_cpu_s": 0.0,
        "received": got,
        "races": sum(RACES) - races,
    }


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
    profiles = [profile_ingest(ds, work / f"profile-{ds.name}") for ds in sets]
    return {
        "databases": databases,
        "cases": cases,
        "ratios": ratios(cases, sets),
        "profile": profiles,
        "pynetdicom_races": sum(RACES),
    }


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


def _category(key: tuple[str, int, str]) -> str:
    file, _line, name = key
    if "BufferedWriter" in name and "write" in name:
        return "write_ms"
    if "fsync" in name:
        return "fsync_ms"
    if "sha256" in name or "hexdigest" in name:
        return "sha256_ms"
    if "sqlite3" in name or "sqlalchemy" in file or "psycopg" in file:
        return "database_ms"
    if "pydicom" in file:
        return "pydicom_ms"
    return "other_ms"


def profile_ingest(ds: DataSet, work: Path, n: int = 10, database_url: str | None = None) -> Json:
    """Where one durable ingest spends its time (in-process, SQLite, cProfile over real
    ``Ingestor.ingest`` calls, self time by kind), and whether two concurrent associations ingest
    faster than one (the SQLite write lock is held from BEGIN IMMEDIATE through the file's fsync
    to the commit, so concurrent ingests queue behind each other)."""
    import cProfile
    import pstats
    import threading

    from node.ingest import Ingestor
    from node.instance_index import Received
    from storage import db
    from storage.files import FileStore

    n = max(1, min(n, len(ds.files) // 3))
    work.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(database_url or f"sqlite:///{work}/profile.db")
    db.upgrade(engine)
    ingestor = Ingestor(
        FileStore(work / "store"), db.make_sessionmaker(engine), process_max_attempts=3
    )
    datas = [f.read_bytes() for f in ds.files[: 3 * n]]

    t0 = time.perf_counter()
    for d in datas[:n]:
        ingestor.ingest(d, Received(source="local"))
    sequential_s = time.perf_counter() - t0

    prof = cProfile.Profile()
    prof.enable()
    for d in datas[n : 2 * n]:
        ingestor.ingest(d, Received(source="local"))
    prof.disable()
    parts: dict[str, float] = {}
    for key, value in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        cat = _category(key)
        parts[cat] = parts.get(cat, 0.0) + float(value[2])  # self time

    rest = datas[2 * n : 3 * n]
    halves = [rest[0::2], rest[1::2]]

    def worker(items: list[bytes]) -> None:
        for d in items:
            ingestor.ingest(d, Received(source="local"))

    threads = [threading.Thread(target=worker, args=(h,)) for h in halves]
    t1 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent_s = time.perf_counter() - t1
    engine.dispose()
    shutil.rmtree(work, ignore_errors=True)
    out: Json = {
        "dataset": ds.name,
        "database": engine.dialect.name,
        "images": n,
        "mb_per_image": round(len(datas[0]) / 1e6, 2),
        "whole_ingest_ms": round(sequential_s / n * 1000, 2),
    }
    for cat in ("write_ms", "fsync_ms", "sha256_ms", "database_ms", "pydicom_ms", "other_ms"):
        out[cat] = round(parts.get(cat, 0.0) / n * 1000, 2)
    out["sequential_img_s"] = round(n / sequential_s, 1)
    out["two_threads_img_s"] = round(len(rest) / concurrent_s, 1)
    return out
