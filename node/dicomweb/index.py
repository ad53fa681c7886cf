"""Bring the QIDO-RS index up to date for rows written before it existed (or by an older one).

Migration 0002 adds the columns but cannot reach the file store, so the node re-reads the
header of every instance whose ``index_version`` is older than ``INDEX_VERSION`` at start, in
batches, with the same ``index_attributes`` as ingest.
"""

from __future__ import annotations

import logging

import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.instance_index import INDEX_TAGS, INDEX_VERSION, apply_index, index_attributes
from storage.files import FileStore
from storage.tables import Instance

log = logging.getLogger(__name__)


def backfill(sessions: sessionmaker[Session], store: FileStore, batch: int = 200) -> int:
    """Index every stale row; return how many were updated. Unreadable files are skipped (and
    marked, so they are not re-read at every start)."""
    done = 0
    last_id = 0
    while True:
        with sessions.begin() as s:
            rows = list(
                s.scalars(
                    select(Instance)
                    .where(Instance.index_version < INDEX_VERSION, Instance.id > last_id)
                    .order_by(Instance.id)
                    .limit(batch)
                )
            )
            if not rows:
                break
            for row in rows:
                last_id = row.id
                try:
                    ds = pydicom.dcmread(
                        store.abspath(row.path), stop_before_pixels=True, specific_tags=INDEX_TAGS
                    )
                    apply_index(row, index_attributes(ds))
                except Exception as e:
                    log.warning(
                        "cannot index %s (%s); QIDO-RS will not match its attributes",
                        row.sop_instance_uid,
                        type(e).__name__,
                    )
                    row.index_version = INDEX_VERSION
                done += 1
    if done:
        log.info("indexed %d stored instance(s) for QIDO-RS", done)
    return done
