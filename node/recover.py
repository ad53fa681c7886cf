"""Start-up recovery after a crash (SIGKILL, power loss) at any point.

- Partial files in the store's tmp/ (a write that never reached its rename) are removed: their
  sender never got a success status.
- Files in the store with no index row (written and renamed, but the process died before the
  commit, so no success status was sent either) are indexed again and queued, routed with what
  the sender said (source, calling and called AE, peer: the sidecar the ingest wrote before
  placing the file), or quarantined with the reason if they cannot be read. Indexing them is harmless: a resend of the same bytes is
  recognised as a duplicate. Except this node's own results (a result SOP class made by this
  node's manufacturer): the worker places them inside the commit that indexes them, so one
  without a row belongs to a job that did not finish; that job runs again and writes them again.
  Taking such a file as a received instance would process a result as an input.
- Jobs leased by dead processes of this host are queued again (storage.queue.release_orphans).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.ingest import IngestError, Ingestor
from node.instance_index import Received
from node.sop import RESULT_SOP_CLASSES
from storage import queue
from storage.files import FileStore
from storage.tables import Instance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    partial_files: int
    reindexed: int
    quarantined: int
    requeued_jobs: int
    dropped_results: int = 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unindexed_files(store: FileStore, sessions: sessionmaker[Session]) -> list[str]:
    """Store paths (relative) of .dcm files that no index row points to."""
    on_disk = {
        p.relative_to(store.root).as_posix()
        for p in store.root.glob("*/*/*.dcm")
        if not p.relative_to(store.root).as_posix().startswith(("tmp/", "quarantine/"))
    }
    if not on_disk:
        return []
    with sessions() as s:
        indexed = set(s.scalars(select(Instance.path)))
    return sorted(on_disk - indexed)


def _remove_stale_sidecars(store: FileStore, sessions: sessionmaker[Session]) -> int:
    """Sidecars whose file is indexed (the commit happened) or absent (never placed)."""
    suffix = store.SIDECAR_SUFFIX
    found = list(store.root.glob(f"*/*/*{suffix}"))
    if not found:
        return 0
    with sessions() as s:
        indexed = set(s.scalars(select(Instance.path)))
    n = 0
    for side in found:
        dcm = side.with_name(side.name[: -len(suffix)])
        rel = dcm.relative_to(store.root).as_posix()
        if rel in indexed or not dcm.exists():
            side.unlink(missing_ok=True)
            n += 1
    return n


def _own_result(path: Path, manufacturer: str | None) -> bool:
    """Whether a stored file is a result this node made (see the module docstring)."""
    if manufacturer is None:
        return False
    try:
        ds = pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["SOPClassUID", "Manufacturer"]
        )
    except Exception:
        return False
    return (
        str(ds.get("SOPClassUID", "")) in set(RESULT_SOP_CLASSES.values())
        and str(ds.get("Manufacturer", "")) == manufacturer
    )


def recover(
    store: FileStore,
    sessions: sessionmaker[Session],
    ingestor: Ingestor | None,
    own_manufacturer: str | None = None,
) -> Recovered:
    partial = store.clean_orphans()
    if partial:
        log.warning("removed %d partial file(s) left by an interrupted write", partial)
    reindexed = quarantined = dropped = 0
    if ingestor is not None:
        for rel in unindexed_files(store, sessions):
            path = store.abspath(rel)
            if _own_result(path, own_manufacturer):
                path.unlink(missing_ok=True)
                dropped += 1
                continue
            data = path.read_bytes()
            said = store.read_sidecar(rel) or {}
            received = Received(
                source=said.get("source") or "recovered",
                calling_ae=said.get("calling_ae"),
                called_ae=said.get("called_ae"),
                peer_host=said.get("peer_host"),
            )
            try:
                ingestor.ingest(data, received)
                store.remove_sidecar(rel)
                reindexed += 1
            except IngestError as e:
                store.quarantine(data, f"found in the store without an index row: {e}")
                path.unlink(missing_ok=True)
                quarantined += 1
        if reindexed or quarantined:
            log.warning(
                "recovered %d stored file(s) without index rows; quarantined %d",
                reindexed,
                quarantined,
            )
    stale = _remove_stale_sidecars(store, sessions)
    if stale:
        log.info("removed %d sidecar(s) of files already indexed or never placed", stale)
    with sessions.begin() as s:
        requeued = queue.release_orphans(s, socket.gethostname(), _pid_alive)
    if requeued:
        log.warning("re-queued %d job(s) whose process died", requeued)
    if dropped:
        log.warning("removed %d result file(s) of unfinished jobs (they run again)", dropped)
    return Recovered(partial, reindexed, quarantined, requeued, dropped)
