"""Write a C-STORE data set to the store while its P-DATA is still arriving.

The DIMSE receiver is bound by time, not by work: storescu waits for each response before it
sends the next image, so every millisecond between the last PDU and the response is lost. An
8 MB image needs about 8 ms of disk writing (O_DIRECT) and 5 ms of sha256; done after the last
PDU they dominate the response time. Here they run while the image is being received:

* the DUL thread (pynetdicom's ``EVT_PDU_RECV``, a notification) sees every P-DATA PDU. When a
  C-STORE request's command set is complete it starts a spool: the File Meta Information that
  pynetdicom itself would put in front of the data set (same functions), then each data set
  fragment is copied into a page-aligned buffer;
* each full MiB goes to the disk (O_DIRECT ``pwrite`` into a temporary file of the store) on an
  ordered I/O thread; the sha256 of the whole runs when the data set is complete, on another,
  beside the handler's header check and row work (hashing each MiB as
  it arrives was slower on 2 cores, where it competes with the sender and the DUL thread:
  45.5 against 48.7 images/s of 8 MB);
* the C-STORE handler takes the finished spool only when it matches the request (SOP Instance
  UID, the whole Part 10 length, the very bytes of the prefix); anything else (an odd peer, a
  filesystem without O_DIRECT, a data set bigger than ``MAX_SPOOL_BYTES``) drops the spool and
  the ingest writes the bytes itself, as before. A spool is never the only copy: the handler
  still has pynetdicom's reassembled data set, and the ingest validates those bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mmap
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import UID
from pynetdicom.dsutils import create_file_meta, decode, encode_file_meta

from storage.files import DIRECT_ALIGN, FileStore, direct_size, pwrite_all

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # written as the data arrives, a MiB at a time
INITIAL_BYTES = 16 * 1024 * 1024
MAX_SPOOL_BYTES = 256 * 1024 * 1024  # bigger data sets take the ordinary path
KEEP_BUFFERS = 4  # page-aligned buffers kept warm for the next association

C_STORE_RQ = 0x0001
NO_DATASET = 0x0101


class SpoolError(Exception):
    """The spool cannot go on (the ordinary path takes over)."""


class BufferPool:
    """Page-aligned buffers reused across associations (first-touch page faults of a fresh
    buffer cost as much as the copy on a virtual machine)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[mmap.mmap] = []

    def take(self, size: int) -> mmap.mmap:
        with self._lock:
            for i, b in enumerate(self._free):
                if len(b) >= size:
                    return self._free.pop(i)
        return mmap.mmap(-1, max(size, INITIAL_BYTES))

    def give(self, buf: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < KEEP_BUFFERS and len(buf) <= MAX_SPOOL_BYTES:
                self._free.append(buf)
                return
        buf.close()


@dataclass(frozen=True)
class Spooled:
    """A finished spool: the temporary file (durable once ``writing`` is done) and its digest."""

    sop_instance_uid: str
    prefix: bytes
    size: int
    writing: Future[tuple[Path, int]]
    hashing: Future[str]


class Spool:
    """One data set on its way to a temporary file of the store."""

    def __init__(
        self,
        store: FileStore,
        pool: BufferPool,
        writer: ThreadPoolExecutor,
        hasher: ThreadPoolExecutor,
        sop_instance_uid: str,
        prefix: bytes,
    ) -> None:
        self.store, self.pool, self.writer, self.hasher = store, pool, writer, hasher
        self.sop_instance_uid = sop_instance_uid
        self.prefix = prefix
        self.path = store.tmp / f"{uuid.uuid4().hex}.part"
        try:
            self.fd = store.open_direct(self.path)
        except OSError as e:
            self.path.unlink(missing_ok=True)
            store.refuses_direct(e)  # no O_DIRECT here: the receiver stops spooling for good
            raise SpoolError("cannot open a spool file") from e
        self.buf = pool.take(INITIAL_BYTES)
        self.view = np.frombuffer(self.buf, dtype=np.uint8)
        self.sha = hashlib.sha256()
        self.pos = self.written = 0
        self.pending: list[Future[None]] = []
        self.closed = False
        self.append(memoryview(prefix))

    def append(self, data: memoryview) -> None:
        n = len(data)
        if self.pos + n > len(self.buf):
            self._grow(self.pos + n)
        self.view[self.pos : self.pos + n] = np.frombuffer(data, dtype=np.uint8)
        self.pos += n
        if self.pos - self.written >= CHUNK:
            end = self.pos // DIRECT_ALIGN * DIRECT_ALIGN
            self._write(self.written, end)

    def _grow(self, need: int) -> None:
        if need > MAX_SPOOL_BYTES:
            raise SpoolError("data set larger than the spool's limit")
        for f in self.pending:  # the writers read the old buffer
            f.result()
        bigger = mmap.mmap(-1, max(need, 2 * len(self.buf)))
        np.frombuffer(bigger, dtype=np.uint8)[: self.pos] = self.view[: self.pos]
        del self.view
        self.pool.give(self.buf)
        self.buf, self.view = bigger, np.frombuffer(bigger, dtype=np.uint8)

    def _write(self, start: int, end: int) -> None:
        if end > start:
            block = memoryview(self.buf)[start:end]
            self.pending.append(self.writer.submit(pwrite_all, self.fd, block, start))
            self.written = end

    def finish(self) -> Spooled:
        """Queue the tail, the truncation and the fsync; the futures say when it is durable."""
        size = self.pos
        padded = direct_size(size)
        if padded > len(self.buf):
            self._grow(padded)
        self.view[size:padded] = 0
        self._write(self.written, padded)
        whole = memoryview(self.buf)[:size]
        self.pending.append(self.hasher.submit(self.sha.update, whole))
        fd, path, pending = self.fd, self.path, list(self.pending)

        def durable() -> tuple[Path, int]:
            try:
                for f in pending:
                    f.result()
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
                self._release()
            return path, size

        hashing = self.hasher.submit(lambda: self.sha.hexdigest())
        writing = self.writer.submit(durable)
        self.closed = True
        return Spooled(self.sop_instance_uid, self.prefix, size, writing, hashing)

    def abandon(self) -> None:
        """Drop a spool that will not be used (its file goes once its writes are done)."""
        if self.closed:
            return
        self.closed = True
        fd, path, pending = self.fd, self.path, list(self.pending)

        def drop() -> None:
            try:
                for f in pending:
                    f.exception()
            finally:
                os.close(fd)
                path.unlink(missing_ok=True)
                self._release()

        self.writer.submit(drop)

    def _release(self) -> None:
        buf, self.buf = self.buf, None  # type: ignore[assignment]
        self.view = None  # type: ignore[assignment]
        if buf is not None:
            self.pool.give(buf)


class AssociationTap:
    """Per association: follows the P-DATA stream and keeps the spool of the current request."""

    def __init__(
        self,
        store: FileStore,
        pool: BufferPool,
        transfer_syntax: Callable[[int], str | None],
    ) -> None:
        self.store, self.pool, self.transfer_syntax = store, pool, transfer_syntax
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="spool-write")
        self.hasher = ThreadPoolExecutor(1, thread_name_prefix="spool-hash")
        self.command = bytearray()
        self.spool: Spool | None = None
        self.done: Spooled | None = None
        self.broken = False

    def on_pdu(self, pdu: Any) -> None:
        """Called on the DUL thread for every PDU received (only P-DATA-TF carries items)."""
        items = getattr(pdu, "presentation_data_value_items", None)
        if not items or self.broken:
            return
        try:
            for item in items:
                self._item(int(item.presentation_context_id), item.presentation_data_value)
        except Exception as e:  # never disturb the association: the ordinary path takes over
            log.info("spooling stopped on this association (%s)", type(e).__name__)
            self.broken = True
            self._drop()

    def _item(self, context_id: int, value: bytes) -> None:
        header, fragment = value[0], memoryview(value)[1:]
        if header & 1:  # command fragment
            self.command += fragment
            if header & 2:
                self._command_done(context_id)
        elif self.spool is not None:
            self.spool.append(fragment)
            if header & 2:
                self.done, self.spool = self.spool.finish(), None

    def _command_done(self, context_id: int) -> None:
        cmd = decode(io.BytesIO(bytes(self.command)), True, True)
        self.command = bytearray()
        self._drop()
        if cmd.get("CommandField") != C_STORE_RQ or cmd.get("CommandDataSetType") == NO_DATASET:
            return
        ts = self.transfer_syntax(context_id)
        if ts is None:
            return
        meta = create_file_meta(
            sop_class_uid=cmd.AffectedSOPClassUID,
            sop_instance_uid=cmd.AffectedSOPInstanceUID,
            transfer_syntax=UID(ts),
        )
        prefix = b"\x00" * 128 + b"DICM" + encode_file_meta(meta)
        uid = str(cmd.AffectedSOPInstanceUID)
        self.spool = Spool(self.store, self.pool, self.writer, self.hasher, uid, prefix)

    def take(self, sop_instance_uid: str, data: bytes) -> Spooled | None:
        """The finished spool of this request if it holds exactly ``data`` (the Part 10 stream
        pynetdicom reassembled), else None (and the spool is dropped)."""
        done, self.done = self.done, None
        if done is None:
            return None
        if (
            done.sop_instance_uid == sop_instance_uid
            and done.size == len(data)
            and data[: len(done.prefix)] == done.prefix
        ):
            return done
        _discard(done)
        return None

    def _drop(self) -> None:
        if self.spool is not None:
            self.spool.abandon()
            self.spool = None
        if self.done is not None:
            _discard(self.done)
            self.done = None

    def close(self) -> None:
        self._drop()
        self.writer.shutdown(wait=False)
        self.hasher.shutdown(wait=False)


def _discard(done: Spooled) -> None:
    def unlink(f: Future[tuple[Path, int]]) -> None:
        try:
            f.result()[0].unlink(missing_ok=True)
        except OSError:
            pass

    done.writing.add_done_callback(unlink)
