"""DICOMweb: STOW-RS and WADO-RS throughput, SharpRay vs Orthanc's DICOMweb plugin, same files.

STOW-RS: the set is POSTed to ``{root}/studies`` in requests of ``BATCH`` instances
(multipart/related; type="application/dicom"). WADO-RS: every instance is then retrieved one
request at a time (``{root}/studies/{study}/series/{series}/instances/{sop}``). One HTTP client
(httpx, keep-alive) for both servers. A fresh server (empty store) for each run. Where the node has
no DICOMweb service yet (its ``/dicom-web`` answers 404), its rows say so and Orthanc's still run.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import httpx
import pydicom

from bench.common import Json, Sizes, median
from bench.data import DataSet
from bench.peers import OrthancReceiver, SharpRayReceiver

BATCH = 10
DICOM_MULTIPART = 'multipart/related; type="application/dicom"'


def _multipart(files: list[Path]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for f in files:
        parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        parts.append(f.read_bytes())
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"{DICOM_MULTIPART}; boundary={boundary}"


def has_dicomweb(root: str) -> bool:
    try:
        r = httpx.get(f"{root}/studies", headers={"Accept": "application/dicom+json"}, timeout=10)
    except httpx.HTTPError:
        return False
    return r.status_code in (200, 204)


def stow(client: httpx.Client, root: str, ds: DataSet) -> Json:
    t0 = time.perf_counter()
    failed = 0
    for i in range(0, len(ds.files), BATCH):
        body, ctype = _multipart(ds.files[i : i + BATCH])
        r = client.post(
            f"{root}/studies",
            content=body,
            headers={"Content-Type": ctype, "Accept": "application/dicom+json"},
        )
        if r.status_code != 200:
            failed += len(ds.files[i : i + BATCH])
    return {"wall_s": time.perf_counter() - t0, "failed": failed}


def wado(client: httpx.Client, root: str, ds: DataSet, ids: list[tuple[str, str, str]]) -> Json:
    t0 = time.perf_counter()
    failed, nbytes = 0, 0
    for study, series, sop in ids:
        r = client.get(
            f"{root}/studies/{study}/series/{series}/instances/{sop}",
            headers={"Accept": f"{DICOM_MULTIPART}; transfer-syntax=*"},
        )
        if r.status_code != 200:
            failed += 1
        nbytes += len(r.content)
    return {"wall_s": time.perf_counter() - t0, "failed": failed, "bytes": nbytes}


def _uids(ds: DataSet) -> list[tuple[str, str, str]]:
    out = []
    for f in ds.files:
        h = pydicom.dcmread(f, stop_before_pixels=True)
        out.append((str(h.StudyInstanceUID), str(h.SeriesInstanceUID), str(h.SOPInstanceUID)))
    return out


def _summary(server: str, op: str, ds: DataSet, runs: list[Json]) -> Json:
    wall = median([r["wall_s"] for r in runs])
    n, mb = len(ds.files), ds.bytes / 1e6
    return {
        "server": server,
        "op": op,
        "files": n,
        "mb": round(mb, 1),
        "wall_s": round(wall, 3),
        "img_s": round(n / wall, 1),
        "mb_s": round(mb / wall, 1),
        "failed": max(r["failed"] for r in runs),
    }


def run(sizes: Sizes, work: Path, ds: DataSet, models: dict[str, Path]) -> Json:
    ids = _uids(ds)
    runs: dict[tuple[str, str], list[Json]] = {}
    node_note = None
    for r in range(sizes.runs):
        servers: list[tuple[str, OrthancReceiver | SharpRayReceiver]] = [
            ("orthanc", OrthancReceiver(work / f"web-orthanc-{r}")),
            ("sharpray", SharpRayReceiver(work / f"web-node-{r}", models)),
        ]
        for name, srv in servers:
            if name == "sharpray" and node_note is not None:
                continue
            srv.start()
            try:
                if isinstance(srv, OrthancReceiver):
                    root = f"{srv.url}/dicom-web"
                else:
                    assert srv.node is not None
                    root = f"{srv.node.http_url}/dicom-web"
                if not has_dicomweb(root):
                    node_note = (
                        "the node answers 404 on /dicom-web: no DICOMweb service in this build"
                    )
                    continue
                with httpx.Client(timeout=300) as client:
                    runs.setdefault((name, "stow"), []).append(stow(client, root, ds))
                    runs.setdefault((name, "wado"), []).append(wado(client, root, ds, ids))
            finally:
                srv.stop()
                shutil.rmtree(work / f"web-{'orthanc' if name == 'orthanc' else 'node'}-{r}", True)
    cases = [_summary(s, op, ds, rs) for (s, op), rs in runs.items()]
    out: Json = {"dataset": ds.describe(), "batch": BATCH, "cases": cases}
    by = {(c["server"], c["op"]): c for c in cases}
    out["ratios"] = {
        op: round(by[("sharpray", op)]["img_s"] / by[("orthanc", op)]["img_s"], 2)
        for op in ("stow", "wado")
        if ("sharpray", op) in by and ("orthanc", op) in by
    }
    if node_note:
        out["sharpray_skipped"] = node_note
    return out
