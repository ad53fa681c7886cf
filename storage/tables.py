"""The index: received instances, jobs (processing and dispatch share one queue), results, audit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    """Naive UTC: stored as such in SQLite and PostgreSQL alike, compared in SQL."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, dt.datetime: DateTime()}


class Instance(Base):
    """One SOP instance received (DIMSE or DICOMweb) or produced by the node, as stored on disk."""

    __tablename__ = "instances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))  # relative to the store root
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # "received" (from a peer) or "result" (written by the node)
    origin: Mapped[str] = mapped_column(String(16), default="received")
    source: Mapped[str] = mapped_column(String(16), default="dimse")  # dimse | dicomweb | local
    calling_ae: Mapped[str | None] = mapped_column(String(16), nullable=True)
    called_ae: Mapped[str | None] = mapped_column(String(16), nullable=True)
    peer_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    derived_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("instances.id"), nullable=True, index=True
    )
    result_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # sc | sr | ...
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    # Header attributes indexed for QIDO-RS (migration 0002), filled by node.ingest.index_attributes
    # on ingest and for results. ``index_version`` < node.ingest.INDEX_VERSION: not yet indexed.
    index_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    specific_character_set: Mapped[str | None] = mapped_column(String(64), nullable=True)
    patient_name: Mapped[str | None] = mapped_column(String(324), nullable=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    patient_birth_date: Mapped[str | None] = mapped_column(String(16), nullable=True)
    patient_sex: Mapped[str | None] = mapped_column(String(16), nullable=True)
    study_date: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    study_time: Mapped[str | None] = mapped_column(String(32), nullable=True)
    accession_number: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    study_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    study_description: Mapped[str | None] = mapped_column(String(128), nullable=True)
    referring_physician_name: Mapped[str | None] = mapped_column(String(324), nullable=True)
    modality: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    series_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_description: Mapped[str | None] = mapped_column(String(128), nullable=True)
    performed_procedure_step_start_date: Mapped[str | None] = mapped_column(
        String(16), nullable=True
    )
    performed_procedure_step_start_time: Mapped[str | None] = mapped_column(
        String(32), nullable=True
    )
    instance_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    columns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bits_allocated: Mapped[int | None] = mapped_column(Integer, nullable=True)
    number_of_frames: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Job(Base):
    """A unit of work in the durable queue.

    ``kind`` is "process" (run the pipeline on ``instance_id``) or "dispatch" (send
    ``instance_id`` to ``destination``). A job is claimed with a lease; a job whose lease expired
    (its worker died) is claimable again. ``attempts`` counts claims.
    """

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    destination: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    not_before: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    __table_args__ = (Index("ix_jobs_claim", "kind", "state", "not_before"),)


class AuditEvent(Base):
    """What happened to what, when: routing decisions and deliveries. No patient data."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(32))
    instance_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
