"""The electronic health book (sổ sức khỏe điện tử), imported from the city's health
system as FHIR R4 (issue 20): patients matched by their citizen ID (kept only as the
accounts' keyed hash), the clinical resources of the fields kept, the practitioners and
organisations named in them, the import jobs with their per-file cursors and per-line
errors, and the access log of every read.

Resources are keyed as the health system keys them (``resource_type``, ``source_id``:
the FHIR logical id), so a re-import updates in place: a newer ``meta.lastUpdated`` wins,
the same content changes nothing (``content_hash``). Nothing here holds the original
FHIR text; what the lookup shows is the columns below and a small ``detail`` document.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at

# what a resident's record is made of: the International Patient Summary's sections,
# plus the history of encounters and the diagnostic reports
SECTIONS = (
    "allergies",  # AllergyIntolerance
    "conditions",  # Condition (problems)
    "medications",  # MedicationRequest, MedicationStatement
    "immunizations",  # Immunization
    "procedures",  # Procedure
    "vital_signs",  # Observation, category vital-signs
    "results",  # Observation (laboratory and the rest)
    "reports",  # DiagnosticReport
    "encounters",  # Encounter
)
# the statuses of an import job (app/health/lifecycle.py has the edges)
JOB_STATUSES = ("queued", "exporting", "importing", "succeeded", "failed")
JOB_KINDS = ("files", "bulk")
FILE_FORMATS = ("ndjson", "bundle")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class HealthPatient(Base):
    """A person's book, matched by the citizen ID the health system gave for them."""

    __tablename__ = "health_patients"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)  # Patient.id
    # CCCD only as the accounts' keyed hash (HMAC-SHA256) plus the last four digits
    citizen_id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    citizen_id_last4: Mapped[str] = mapped_column(String(4), nullable=False)
    full_name: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[str | None] = mapped_column(String(10))  # FHIR date: may be partial
    sex: Mapped[str | None] = mapped_column(String(16))  # administrative gender
    last_updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(16), nullable=False)
    imported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class HealthResource(Base):
    """One clinical resource of a patient, in the fields kept (msgspec Structs in
    ``app/health/fhir.py`` say which)."""

    __tablename__ = "health_resources"

    resource_type: Mapped[str] = mapped_column(String(24), primary_key=True)
    source_id: Mapped[str] = mapped_column(Text, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("health_patients.id", ondelete="CASCADE"), nullable=False
    )
    section: Mapped[str] = mapped_column(String(16), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False)  # current problem, drug …
    code: Mapped[str | None] = mapped_column(Text)
    code_system: Mapped[str | None] = mapped_column(Text)
    display: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    effective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # effective_at, or -infinity: the keyset of the section lists (newest first)
    sort_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    value_num: Mapped[float | None] = mapped_column(Double)
    value_text: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    performer_ref: Mapped[str | None] = mapped_column(Text)  # Practitioner/x, Organization/y
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(16), nullable=False)
    imported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    __table_args__ = (
        CheckConstraint(f"section IN ({_in(SECTIONS)})", name="section"),
        Index(
            "ix_health_resources_patient_section",
            "patient_id",
            "section",
            "sort_at",  # read backwards: newest first
            "resource_type",
            "source_id",
        ),
    )


class HealthParty(Base):
    """A practitioner or organisation, for the names shown beside a resource."""

    __tablename__ = "health_parties"

    resource_type: Mapped[str] = mapped_column(String(24), primary_key=True)
    source_id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    last_updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(16), nullable=False)


class HealthImportJob(Base):
    """One import: files given to the CLI, or a Bulk Data export pulled from the health
    system's FHIR server. Counts are committed with every batch, so they are what is in
    the database whatever happened to the worker."""

    __tablename__ = "health_import_jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="queued")
    source: Mapped[str] = mapped_column(Text, nullable=False)  # what was given; no secrets
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at = created_at()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the last committed progress: the reconciler resumes jobs that stopped moving
    progressed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failure_code: Mapped[str | None] = mapped_column(String(60))
    failure_params: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Bulk Data: the status URL of the kick-off, and when we give up waiting for it
    bulk_status_url: Mapped[str | None] = mapped_column(Text)
    bulk_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lines: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    imported: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    unchanged: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    skipped: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    duplicates: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    errors: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(JOB_KINDS)})", name="kind"),
        CheckConstraint(f"status IN ({_in(JOB_STATUSES)})", name="status"),
        Index("ix_health_import_jobs_created_at", text("created_at DESC")),
        Index(
            "ix_health_import_jobs_unfinished",
            "progressed_at",
            postgresql_where=text("status IN ('queued', 'exporting', 'importing')"),
        ),
    )


class HealthImportFile(Base):
    """A file of a job and how far it was read (byte offset and line, committed with the
    rows of each batch: a killed run resumes there)."""

    __tablename__ = "health_import_files"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("health_import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # order of reading
    path: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)  # shown to admins
    format: Mapped[str] = mapped_column(String(8), nullable=False)
    byte_offset: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    line: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    done: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    lines: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    imported: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    unchanged: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    skipped: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    duplicates: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    errors: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (CheckConstraint(f"format IN ({_in(FILE_FORMATS)})", name="format"),)


class HealthImportError(Base):
    """One line that was not imported, with the reason's code (and the field or type
    it names): never the line's content."""

    __tablename__ = "health_import_errors"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("health_import_jobs.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int | None] = mapped_column(Integer)  # the file; None: the job itself
    line: Mapped[int | None] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(60), nullable=False)
    field: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_health_import_errors_job_id", "job_id", "id"),)


class HealthAccessLog(Base):
    """Every read of a health record: who, when, which section, from which session and
    device. Written in the transaction that serves the read; the person lists it."""

    __tablename__ = "health_access_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("health_patients.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    section: Mapped[str] = mapped_column(String(20), nullable=False)
    session_id: Mapped[uuid.UUID | None] = mapped_column()
    device: Mapped[str | None] = mapped_column(Text)  # the app's User-Agent, cut to 200
    ip: Mapped[str | None] = mapped_column(INET)
    request_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index("ix_health_access_log_patient_id", "patient_id", text("id DESC")),
        Index("ix_health_access_log_user_id", "user_id"),
    )
