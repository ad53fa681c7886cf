"""Durable ingest, shared by every receiver (DIMSE C-STORE, DICOMweb STOW-RS).

One step: the received bytes are written to the store (temporary file, fsync, rename) and the
instance row and its processing job are committed in the same transaction. Only after this
returns may the receiver answer success. Failures raise an ``IngestError`` subclass that the
receiver maps to its protocol's status; none of their messages carry patient data.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.config import Settings
from node.instance_index import (
    INDEX_TAGS,
    Received,
    apply_index,
    index_attributes,
)
from node.route import OWN_RESULT_TAG, Decision, decide, needs_header, uses_attributes
from node.schedule import schedule
from node.sop import ACCEPTED_TRANSFER_SYNTAXES, PROCESSABLE_SOP_CLASSES
from storage import queue
from storage.files import FileStore, InvalidUID, check_uid
from storage.tables import AuditEvent, Instance, Job

log = logging.getLogger(__name__)

HEADER_TAGS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
]


class IngestError(Exception):
    """Base of everything that stops an instance from being accepted."""


class CannotUnderstand(IngestError):
    """The bytes are not a DICOM dataset we can parse (DIMSE 0xC000, HTTP 400/409)."""


class DoesNotMatch(IngestError):
    """The dataset contradicts the request or lacks identifying UIDs (DIMSE 0xA900)."""


class NotSupported(IngestError):
    """SOP class or transfer syntax not accepted (DIMSE 0x0122/0xA900, HTTP 415/409)."""


class OutOfResources(IngestError):
    """Disk below the watermark or the write failed (DIMSE 0xA700, HTTP 503)."""


class SOPClassNotSupported(NotSupported):
    """The SOP class is not one the node takes (STOW-RS failure reason 0x0122)."""


class TransferSyntaxNotSupported(NotSupported):
    """The transfer syntax is not one the node takes (STOW-RS failure reason 0xC122)."""


class Truncated(CannotUnderstand):
    """The stream ends inside its Pixel Data (DIMSE 0xC000, STOW-RS 0xC000): nothing is stored."""


@dataclass(frozen=True)
class IngestResult:
    instance_id: int
    sop_instance_uid: str
    job_id: int | None
    duplicate: bool


@dataclass(frozen=True)
class Header:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    # the attributes QIDO-RS matches on (``index_attributes``), for the Instance row
    attributes: Mapping[str, str | int | None] = field(default_factory=dict, compare=False)


def _was_handled(s: Session, inst: Instance) -> bool:
    """Whether a stored instance got what its routing decided: any job, or a routing audit row
    (an "ignore" decision queues nothing). An instance recovered after a crash before its
    commit has neither, so its resend is processed instead of ignored as a duplicate."""
    if s.scalar(select(Job.id).where(Job.instance_id == inst.id).limit(1)) is not None:
        return True
    routed = select(AuditEvent.id).where(
        AuditEvent.instance_uid == inst.sop_instance_uid, AuditEvent.event == "routed"
    )
    return s.scalar(routed.limit(1)) is not None and inst.source != "recovered"


def _fault_point(name: str) -> None:
    """Fault injection for the crash tests: ``SHARPRAYTEST_CRASH_AT=name`` kills the process
    here, as a SIGKILL or a power cut would (never set in production)."""
    if os.environ.get("SHARPRAYTEST_CRASH_AT") == name:
        os._exit(137)


def _parse_header(data: bytes) -> tuple[Dataset, int]:
    """The header up to the Pixel Data (identifying and indexed attributes only) and the offset
    where the parse stopped (the Pixel Data element, when there is one)."""
    fp = io.BytesIO(data)
    try:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=HEADER_TAGS + INDEX_TAGS)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as e:
        raise CannotUnderstand(f"not a readable DICOM Part 10 stream ({type(e).__name__})") from e
    return ds, fp.tell()


def _header(ds: Dataset) -> Header:
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    try:
        return Header(
            sop_class_uid=check_uid(ds.get("SOPClassUID"), "SOP Class UID"),
            sop_instance_uid=check_uid(ds.get("SOPInstanceUID"), "SOP Instance UID"),
            study_instance_uid=check_uid(ds.get("StudyInstanceUID"), "Study Instance UID"),
            series_instance_uid=check_uid(ds.get("SeriesInstanceUID"), "Series Instance UID"),
            transfer_syntax_uid=check_uid(ts, "Transfer Syntax UID"),
            attributes=index_attributes(ds),
        )
    except InvalidUID as e:
        raise DoesNotMatch(str(e)) from e


def read_header(data: bytes) -> Header:
    """Parse only the identifying and indexed attributes of a Part 10 file (no pixel data)."""
    return _header(_parse_header(data)[0])


# -- a stream cut short inside its Pixel Data --------------------------------------------------
PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"SV",
    b"UV",
}


def truncation(data: bytes) -> str | None:
    """Why a Part 10 stream ends early, inside its Pixel Data; None when it is whole.

    A multipart part cut short (a client or proxy failure) still has a readable header, and the
    ingest reads no further; this walks the Pixel Data element (and its fragments) without
    decoding anything. Deflated streams are not walked.
    """
    try:
        ds, pos = _parse_header(data)
    except CannotUnderstand:
        return None  # the ingest reports an unreadable header itself
    return _truncation(data, ds, pos)


def _truncation(data: bytes, ds: Dataset, pos: int) -> str | None:
    meta = getattr(ds, "file_meta", None)
    if meta is None or meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return None
    implicit, little = ds.original_encoding
    if implicit is None or little is None or pos + 8 > len(data):
        return None
    e = "<" if little else ">"
    if struct.unpack(e + "HH", data[pos : pos + 4]) not in PIXEL_TAGS:
        return None
    if implicit:
        (length,) = struct.unpack(e + "I", data[pos + 4 : pos + 8])
        start = pos + 8
    elif data[pos + 4 : pos + 6] in LONG_VRS:
        if pos + 12 > len(data):
            return "the stream ends inside the Pixel Data header (truncated)"
        (length,) = struct.unpack(e + "I", data[pos + 8 : pos + 12])
        start = pos + 12
    else:
        (length,) = struct.unpack(e + "H", data[pos + 6 : pos + 8])
        start = pos + 8
    if length != 0xFFFFFFFF:
        if start + length > len(data):
            return f"the Pixel Data is {length} bytes but the stream ends after {len(data) - start}"
        return None
    p = start
    while p + 8 <= len(data):  # encapsulated: items up to the sequence delimiter
        group, element, n = struct.unpack(e + "HHI", data[p : p + 8])
        p += 8
        if (group, element) == (0xFFFE, 0xE0DD):
            return None
        if (group, element) != (0xFFFE, 0xE000):
            # not an item where one should be (e.g. an odd fragment padded by its writer):
            # only the delimiter somewhere after it tells whether the stream is whole
            delimiter = struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0)
            if data.find(delimiter, p - 8) != -1:
                return None
            break
        p += n
    return "the encapsulated Pixel Data ends before its sequence delimiter (truncated)"


def validate(data: bytes) -> Header:
    """Everything ingest checks in the bytes alone: a readable header, valid UIDs, an accepted
    SOP class and transfer syntax, Pixel Data not cut short. Raises an ``IngestError``.

    Both receivers (through ``Ingestor.ingest``) and ``sharpray process`` use it.
    """
    ds, pos = _parse_header(data)
    header = _header(ds)
    cut = _truncation(data, ds, pos)
    if cut is not None:
        raise Truncated(cut)
    if header.sop_class_uid not in PROCESSABLE_SOP_CLASSES:
        raise SOPClassNotSupported(f"SOP class {header.sop_class_uid} is not accepted")
    if header.transfer_syntax_uid not in ACCEPTED_TRANSFER_SYNTAXES:
        raise TransferSyntaxNotSupported(
            f"transfer syntax {header.transfer_syntax_uid} is not accepted"
        )
    return header


class Prewritten(Protocol):
    """Bytes being written to a temporary file of the store, and their sha256."""

    @property
    def writing(self) -> Future[tuple[Path, int]]: ...

    @property
    def hashing(self) -> Future[str]: ...


def _discard_quietly(writing: Future[tuple[Path, int]]) -> None:
    try:
        writing.result()[0].unlink(missing_ok=True)
    except OSError:
        pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Ingestor:
    """Writes received instances durably and queues their processing."""

    def __init__(
        self,
        store: FileStore,
        sessions: sessionmaker[Session],
        *,
        process_max_attempts: int,
        min_free_bytes: int = 0,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.process_max_attempts = process_max_attempts
        self.min_free_bytes = min_free_bytes
        # With settings, routing rules decide what follows (node.route); without, every
        # instance gets a plain processing job (its routing is decided by the worker).
        self.settings = settings
        # file writes and hashes of the ingests in flight (two per ingest, see ``ingest``)
        self._io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest-io")

    def audit(self, event: str, *, actor: str, detail: str, outcome: str = "failed") -> None:
        """One audit row about a peer (a refused association, a refused TLS handshake); never
        raises: the trail must not take the receiver down."""
        try:
            with self.sessions.begin() as s:
                s.add(AuditEvent(event=event, actor=actor[:64], outcome=outcome, detail=detail))
        except Exception:
            log.exception("could not write the audit row %s", event)

    def ingest(
        self,
        data: bytes,
        received: Received,
        *,
        expect_sop_class: str | None = None,
        expect_sop_instance: str | None = None,
        expect_study_instance: str | None = None,
        prewritten: Prewritten | None = None,
    ) -> IngestResult:
        """Store ``data`` durably, index it and queue what follows; raises an ``IngestError``.

        ``prewritten``: the same bytes already on their way to a temporary file of the store,
        with their sha256 (the DIMSE receiver's spool, node/receive/spool.py).
        """
        if self.min_free_bytes and self.store.free_bytes() - len(data) < self.min_free_bytes:
            if prewritten is not None:
                _discard_quietly(prewritten.writing)
            raise OutOfResources("free disk space is below the configured watermark")
        # Writing + fsyncing the bytes (to a temporary file) and hashing them start first, on the
        # I/O threads (both release the GIL), while this thread checks the header and prepares
        # the rows; the transaction commits only after the file is durable and in place. An 8 MB
        # image costs the longest of these, not their sum. A refused instance's temporary file
        # goes again (its refusal is logged; the sender keeps it).
        if prewritten is not None:
            writing, hashing = prewritten.writing, prewritten.hashing
        else:
            writing = self._io.submit(self.store.write_temp, data)
            hashing = self._io.submit(_sha256, data)
        try:
            header = validate(data)
            if expect_sop_instance is not None and header.sop_instance_uid != expect_sop_instance:
                raise DoesNotMatch("SOP Instance UID in the dataset differs from the request's")
            if expect_sop_class is not None and header.sop_class_uid != expect_sop_class:
                raise DoesNotMatch("SOP Class UID in the dataset differs from the request's")
            if (
                expect_study_instance is not None
                and header.study_instance_uid != expect_study_instance
            ):
                raise DoesNotMatch("Study Instance UID in the dataset differs from the request's")
            decision = self._route(data, received)
            relpath = self.store.relpath_for(
                header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid
            )
            return self._index(writing, hashing, relpath, len(data), header, received, decision)
        finally:
            try:  # the write has to end before its temporary file can go
                tmp, _ = writing.result()
                tmp.unlink(missing_ok=True)  # left only when nothing was placed
            except OSError:
                pass

    def _index(
        self,
        writing: Future[tuple[Path, int]],
        hashing: Future[str],
        relpath: str,
        size: int,
        header: Header,
        received: Received,
        decision: Decision | None,
    ) -> IngestResult:
        with self.sessions.begin() as s:
            existing = s.scalars(
                select(Instance).where(Instance.sop_instance_uid == header.sop_instance_uid)
            ).first()
            if (
                existing is not None
                and existing.sha256 == hashing.result()
                and _was_handled(s, existing)
            ):
                # The same bytes again (a resend after a lost response): nothing new to do,
                # but the resend is in the audit trail (who sent it again, from where).
                s.add(
                    AuditEvent(
                        event="received",
                        instance_uid=header.sop_instance_uid,
                        actor=received.calling_ae or received.source,
                        outcome="ignored",
                        detail=f"via {received.source}"
                        + (f" from {received.peer_host}" if received.peer_host else "")
                        + "; duplicate (identical bytes), ignored",
                    )
                )
                return IngestResult(existing.id, header.sop_instance_uid, None, True)
            if existing is None:
                inst = Instance(sop_instance_uid=header.sop_instance_uid)
                s.add(inst)
            else:
                inst = existing  # a new version of the instance replaces the old one
            inst.sha256 = ""  # set below, before the commit (the hash may still be running)
            inst.sop_class_uid = header.sop_class_uid
            inst.study_instance_uid = header.study_instance_uid
            inst.series_instance_uid = header.series_instance_uid
            inst.transfer_syntax_uid = header.transfer_syntax_uid
            inst.path = relpath
            inst.size = size
            inst.origin = "received"
            inst.source = received.source
            inst.calling_ae = received.calling_ae
            inst.called_ae = received.called_ae
            inst.peer_host = received.peer_host
            apply_index(inst, header.attributes)
            s.flush()
            received_event = AuditEvent(
                event="received",
                instance_uid=header.sop_instance_uid,
                actor=received.calling_ae or received.source,
                detail=f"via {received.source}"
                + (f" from {received.peer_host}" if received.peer_host else "")
                + (f" to {received.called_ae}" if received.called_ae else "")
                + f"; {'replaced' if existing else 'new'}",
            )
            s.add(received_event)
            job_id: int | None
            if decision is None or self.settings is None:
                job_id = queue.enqueue(
                    s, "process", inst.id, max_attempts=self.process_max_attempts
                ).id
            else:
                done = schedule(
                    s,
                    decision,
                    inst,
                    actor=received.calling_ae or received.source,
                    process_max_attempts=self.process_max_attempts,
                    dispatch_max_attempts=self.settings.dispatch.max_attempts,
                )
                job_id = done.process_job_id or next(iter(done.dispatch_job_ids), None)
            received_event.job_id = job_id
            # Only now: what the sender said, then the file, durable, in its place; then the
            # commit (leaving the block); the sidecar goes once the row holds the same.
            try:
                tmp, _ = writing.result()
                self.store.write_sidecar(
                    relpath,
                    {
                        "source": received.source,
                        "calling_ae": received.calling_ae,
                        "called_ae": received.called_ae,
                        "peer_host": received.peer_host,
                        "transfer_syntax": header.transfer_syntax_uid,
                    },
                )
                self.store.place(tmp, relpath)
            except OSError as e:
                raise OutOfResources(f"could not write to the store ({e.strerror})") from e
            _fault_point("after_place")
            inst.sha256 = hashing.result()
            result = IngestResult(inst.id, header.sop_instance_uid, job_id, False)
        self.store.remove_sidecar(relpath)
        return result

    def _route(self, data: bytes, received: Received) -> Decision | None:
        """The routing decision (before anything is written: a broken rule loses nothing)."""
        if self.settings is None:
            return None
        header = Dataset()
        if needs_header(self.settings):
            # rules on attributes read the whole header; the own-results check one sequence
            tags = None if uses_attributes(self.settings) else [OWN_RESULT_TAG]
            try:
                header = pydicom.dcmread(
                    io.BytesIO(data), stop_before_pixels=True, specific_tags=tags
                )
            except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as e:
                raise CannotUnderstand(f"header not readable ({type(e).__name__})") from e
        return decide(self.settings, header, received)
