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
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.sop import ACCEPTED_TRANSFER_SYNTAXES, PROCESSABLE_SOP_CLASSES
from storage import queue
from storage.files import FileStore, InvalidUID, check_uid
from storage.tables import AuditEvent, Instance

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


@dataclass(frozen=True)
class Received:
    """Who sent it, how."""

    source: str  # "dimse" | "dicomweb" | "local"
    calling_ae: str | None = None
    called_ae: str | None = None
    peer_host: str | None = None


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


def read_header(data: bytes) -> Header:
    """Parse only the identifying attributes of a Part 10 file (no pixel data is touched)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as e:
        raise CannotUnderstand(f"not a readable DICOM Part 10 stream ({type(e).__name__})") from e
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    try:
        return Header(
            sop_class_uid=check_uid(ds.get("SOPClassUID"), "SOP Class UID"),
            sop_instance_uid=check_uid(ds.get("SOPInstanceUID"), "SOP Instance UID"),
            study_instance_uid=check_uid(ds.get("StudyInstanceUID"), "Study Instance UID"),
            series_instance_uid=check_uid(ds.get("SeriesInstanceUID"), "Series Instance UID"),
            transfer_syntax_uid=check_uid(ts, "Transfer Syntax UID"),
        )
    except InvalidUID as e:
        raise DoesNotMatch(str(e)) from e


class Ingestor:
    """Writes received instances durably and queues their processing."""

    def __init__(
        self,
        store: FileStore,
        sessions: sessionmaker[Session],
        *,
        process_max_attempts: int,
        min_free_bytes: int = 0,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.process_max_attempts = process_max_attempts
        self.min_free_bytes = min_free_bytes

    def ingest(
        self,
        data: bytes,
        received: Received,
        *,
        expect_sop_class: str | None = None,
        expect_sop_instance: str | None = None,
    ) -> IngestResult:
        header = read_header(data)
        if expect_sop_instance is not None and header.sop_instance_uid != expect_sop_instance:
            raise DoesNotMatch("SOP Instance UID in the dataset differs from the request's")
        if expect_sop_class is not None and header.sop_class_uid != expect_sop_class:
            raise DoesNotMatch("SOP Class UID in the dataset differs from the request's")
        if header.sop_class_uid not in PROCESSABLE_SOP_CLASSES:
            raise NotSupported(f"SOP class {header.sop_class_uid} is not accepted")
        if header.transfer_syntax_uid not in ACCEPTED_TRANSFER_SYNTAXES:
            raise NotSupported(f"transfer syntax {header.transfer_syntax_uid} is not accepted")
        if self.min_free_bytes and self.store.free_bytes() - len(data) < self.min_free_bytes:
            raise OutOfResources("free disk space is below the configured watermark")
        digest = hashlib.sha256(data).hexdigest()
        relpath = self.store.relpath_for(
            header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid
        )
        with self.sessions.begin() as s:
            existing = s.scalars(
                select(Instance).where(Instance.sop_instance_uid == header.sop_instance_uid)
            ).first()
            if existing is not None and existing.sha256 == digest:
                # The same bytes again (a resend after a lost response): nothing new to do.
                return IngestResult(existing.id, header.sop_instance_uid, None, True)
            try:
                size = self.store.write_durably(relpath, data)
            except OSError as e:
                raise OutOfResources(f"could not write to the store ({e.strerror})") from e
            if existing is None:
                inst = Instance(sop_instance_uid=header.sop_instance_uid)
                s.add(inst)
            else:
                inst = existing  # a new version of the instance replaces the old one
            inst.sop_class_uid = header.sop_class_uid
            inst.study_instance_uid = header.study_instance_uid
            inst.series_instance_uid = header.series_instance_uid
            inst.transfer_syntax_uid = header.transfer_syntax_uid
            inst.path = relpath
            inst.size = size
            inst.sha256 = digest
            inst.origin = "received"
            inst.source = received.source
            inst.calling_ae = received.calling_ae
            inst.called_ae = received.called_ae
            inst.peer_host = received.peer_host
            s.flush()
            job = queue.enqueue(s, "process", inst.id, max_attempts=self.process_max_attempts)
            s.add(
                AuditEvent(
                    event="received",
                    instance_uid=header.sop_instance_uid,
                    job_id=job.id,
                    actor=received.calling_ae or received.source,
                    detail=f"via {received.source}; {'replaced' if existing else 'new'}",
                )
            )
            return IngestResult(inst.id, header.sop_instance_uid, job.id, False)
