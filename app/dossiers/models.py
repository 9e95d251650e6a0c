"""Administrative dossiers (hồ sơ thủ tục hành chính) that agencies push to us, their
timeline, the documents asked for, and the agencies themselves with their signing
secrets and status-code mapping (issue 19).

An agency (sở, ban, UBND phường) is registered by an admin, belongs to one unit (so the
unit scopes of ``app/policy.py`` apply to its dossiers) and signs what it sends with the
Standard Webhooks scheme. A dossier's ``code`` (mã hồ sơ) is unique city-wide: it is what
a resident types to look one up, and an event naming another agency's dossier is refused.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk

# the one lifecycle's statuses (app/dossiers/lifecycle.py has the edges)
STATUSES = (
    "received",  # tiếp nhận
    "processing",  # đang xử lý
    "supplement_requested",  # yêu cầu bổ sung
    "completed",  # hoàn thành (the result is ready)
    "returned",  # trả kết quả
    "refused",  # từ chối (with a reason)
    "withdrawn",  # rút hồ sơ
)
APPLICANT_KINDS = ("person", "business")  # LoaiDoiTuong 1 | 2
RATINGS = ("satisfied", "accept", "not_satisfied")


class Agency(Base):
    """An agency whose system sends us dossiers."""

    __tablename__ = "agencies"

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name_vi: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str] = mapped_column(Text, nullable=False)
    # the unit whose staff answer for it (policy scopes, the service index)
    unit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at = created_at()


class AgencySecret(Base):
    """A Standard Webhooks signing secret (``whsec_<base64>``). Two may be valid at once
    while an agency rotates: the old one is given an ``expires_at``."""

    __tablename__ = "agency_secrets"

    id: Mapped[uuid.UUID] = uuid_pk()
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # sealed (app/core/sealed.py, purpose "agency-secret"; migration 0060): never in clear
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    created_at = created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("secret LIKE 'v1.%'", name="secret_sealed"),)


class AgencyStatusCode(Base):
    """The agency's own status code (``TrangThaiHoSo``) → our status. Agencies use
    different codes; an admin edits this table."""

    __tablename__ = "agency_status_codes"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(24), nullable=False)

    __table_args__ = (CheckConstraint(f"status IN {STATUSES!r}", name="status"),)


class Dossier(Base):
    """One dossier as its agency last told us, with the fields residents and the index
    need. The applicant's citizen ID is kept only as the accounts' keyed hash plus its
    last digits; the phone and e-mail are never shown publicly."""

    __tablename__ = "dossiers"

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)  # MaHoSo
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), nullable=False
    )
    procedure_code: Mapped[str] = mapped_column(String(64), nullable=False)  # MaTTHC
    procedure_name: Mapped[str] = mapped_column(Text, nullable=False)  # TenTTHC
    field_code: Mapped[str | None] = mapped_column(String(64))  # MaLinhVuc
    applicant_name: Mapped[str] = mapped_column(Text, nullable=False)  # ChuHoSo
    applicant_kind: Mapped[str] = mapped_column(String(10), nullable=False)  # LoaiDoiTuong
    applicant_id_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    applicant_id_last4: Mapped[str | None] = mapped_column(String(4))
    applicant_phone: Mapped[str | None] = mapped_column(Text)  # SoDienThoai
    applicant_email: Mapped[str | None] = mapped_column(Text)  # Email
    summary: Mapped[str | None] = mapped_column(Text)  # TrichYeuHoSo
    handling_unit_name: Mapped[str | None] = mapped_column(Text)  # DonViXuLy
    online: Mapped[bool] = mapped_column(Boolean, nullable=False)  # HinhThuc: toàn trình
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # NgayHenTra
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    returned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # NgayTra
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # any final
    refused_reason: Mapped[str | None] = mapped_column(Text)
    # the verdict when it was completed (or refused), never changed afterwards
    finished_on_time: Mapped[bool | None] = mapped_column(Boolean)
    # set by the overdue sweep (app/dossiers/tasks.py) when due_at passed while open
    overdue_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # migration 0021: working days from receipt to the first finish on the city's calendar,
    # frozen by the sweep (app/dossiers/index.py) as reports' handling_working_days
    handling_working_days: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    # DanhSachLePhi / DanhSachGiayToKetQua as received, normalised (schemas.py)
    fees: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, server_default="[]")
    results: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default="[]"
    )
    # where and how the result is collected (free text from the agency)
    result_pickup: Mapped[str | None] = mapped_column(Text)
    # the newest event applied to the status: later-arriving older events are recorded
    # in the timeline but do not move the status back (ordering by time, then sequence)
    status_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    rating: Mapped[str | None] = mapped_column(String(16))
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at = created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        CheckConstraint(f"applicant_kind IN {APPLICANT_KINDS!r}", name="applicant_kind"),
        CheckConstraint(f"rating IN {RATINGS!r}", name="rating"),
        # a level-2 resident's dossiers, found by the accounts' keyed hash
        Index(
            "ix_dossiers_applicant",
            "applicant_id_hash",
            text("received_at DESC"),
            postgresql_where=text("applicant_id_hash IS NOT NULL"),
        ),
        Index("ix_dossiers_agency_received", "agency_id", "received_at"),
        # the overdue sweep reads only open dossiers with a due date
        Index(
            "ix_dossiers_open_due",
            "due_at",
            postgresql_where=text(
                "status IN ('received', 'processing', 'supplement_requested')"
                " AND due_at IS NOT NULL AND overdue_at IS NULL"
            ),
        ),
        # migration 0021: the open overdue dossiers per agency, by due date (the
        # supervisors' list; the sweep unmarking those whose due date moved)
        Index(
            "ix_dossiers_open_overdue",
            "agency_id",
            "due_at",
            "id",
            postgresql_where=text(
                "status IN ('received', 'processing', 'supplement_requested')"
                " AND overdue_at IS NOT NULL"
            ),
        ),
        # migration 0022: the measured finished dossiers, per agency by time of receipt
        # (a month's or the last 30 days' median, index-only) and in order of working
        # days (the all-time median, read at its middle)
        Index(
            "ix_dossiers_agency_received_measured",
            "agency_id",
            "received_at",
            postgresql_include=["handling_working_days"],
            postgresql_where=text(
                "handling_working_days IS NOT NULL"
                " AND status IN ('completed', 'returned', 'refused')"
            ),
        ),
        Index(
            "ix_dossiers_agency_days",
            "agency_id",
            "handling_working_days",
            postgresql_where=text(
                "handling_working_days IS NOT NULL"
                " AND status IN ('completed', 'returned', 'refused')"
            ),
        ),
        # migration 0021: the finished dossiers whose working days the sweep has to measure
        Index(
            "ix_dossiers_unmeasured",
            "id",
            postgresql_where=text(
                "status IN ('completed', 'returned', 'refused') AND handling_working_days IS NULL"
            ),
        ),
    )


class DossierEvent(Base):
    """One entry of a dossier's timeline, as the agency sent it (``event_id`` is the
    agency's own id, idempotent per agency)."""

    __tablename__ = "dossier_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dossier_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dossiers.id", ondelete="CASCADE"), nullable=False
    )
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[str] = mapped_column(String(128), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # upsert (the dossier's fields) | progress (NguoiXuLy/ThoiDiemXuLy/NoiDungXuLy)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    # False: an older event that arrived after a newer one; kept, status not moved
    applied: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    handler: Mapped[str | None] = mapped_column(Text)  # NguoiXuLy
    content: Mapped[str | None] = mapped_column(Text)  # NoiDungXuLy
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("uq_dossier_events_agency_event", "agency_id", "event_id", unique=True),
        Index("ix_dossier_events_dossier_at", "dossier_id", "at", "seq"),
    )


class DossierSupplement(Base):
    """More documents requested (DanhSachHoSoBoSung): what is needed and by when, with
    the due dates before and after."""

    __tablename__ = "dossier_supplements"

    id: Mapped[uuid.UUID] = uuid_pk()
    dossier_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dossiers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # the agency's id for the request (or the event id that made it): idempotent
    source_id: Mapped[str] = mapped_column(String(128), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    needed: Mapped[str] = mapped_column(Text, nullable=False)
    supply_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    old_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    new_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    supplied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_dossier_supplements_source", "dossier_id", "source_id", unique=True),
    )


class DossierLink(Base):
    """A dossier a signed-in resident linked by its code plus the applicant's citizen ID
    (level-2 residents see their own without linking)."""

    __tablename__ = "dossier_links"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    dossier_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dossiers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_at = created_at()


class IngestBatch(Base):
    """A signed batch received (its ``webhook-id`` is the idempotency key): a retry of the
    same batch gets the same per-event answer, and nothing is applied twice."""

    __tablename__ = "dossier_ingest_batches"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    webhook_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    body_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    results: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    received_at = created_at()


class DossierImport(Base):
    """An NDJSON or CSV file of events given by an agency's staff or an admin; processed
    by a job that records how far it got, so it resumes after a crash."""

    __tablename__ = "dossier_imports"

    id: Mapped[uuid.UUID] = uuid_pk()
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    file_format: Mapped[str] = mapped_column(String(10), nullable=False)  # ndjson | csv
    object_key: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    # queued | running | done | failed
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="queued")
    # resume point: bytes and lines fully applied and committed
    bytes_done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    lines_done: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    accepted: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    duplicates: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    refused: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failure: Mapped[str | None] = mapped_column(Text)
    created_at = created_at()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # migration 0020 (app/dossiers/imports.py): the name the file was given, and when the
    # last chunk committed (an unfinished import idle for a while gets a job again)
    file_name: Mapped[str | None] = mapped_column(Text)
    progressed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # migration 0060: runs started since the last committed chunk (bounded by
    # DOSSIER_IMPORT_MAX_ATTEMPTS), the exception type of the last crashed run, and when
    # the stored file was deleted (DOSSIER_IMPORT_FILE_RETENTION_DAYS after the end)
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    file_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        CheckConstraint("file_format IN ('ndjson', 'csv')", name="file_format"),
        Index("ix_dossier_imports_created", text("created_at DESC"), text("id DESC")),
        Index(
            "ix_dossier_imports_unfinished",
            "progressed_at",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index(
            "ix_dossier_imports_file_kept",
            "finished_at",
            postgresql_where=text("status IN ('done', 'failed') AND file_purged_at IS NULL"),
        ),
        Index("uq_dossier_imports_object_key", "object_key", unique=True),
    )


class DossierImportError(Base):
    """A line of an import that was refused, with the reason (a catalogue key)."""

    __tablename__ = "dossier_import_errors"

    import_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dossier_imports.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(60), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)
    # migration 0020: the reason's parameters (e.g. the statuses of an impossible move)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class AgencyStats(Base):
    """The agency side of the service index: per agency and period, rebuilt whole by a
    cron (as ``unit_stats``)."""

    __tablename__ = "agency_stats"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(16), primary_key=True)  # as unit_stats
    received: Mapped[int] = mapped_column(Integer, nullable=False)
    finished: Mapped[int] = mapped_column(Integer, nullable=False)
    finished_on_time: Mapped[int] = mapped_column(Integer, nullable=False)
    open: Mapped[int] = mapped_column(Integer, nullable=False)
    open_overdue: Mapped[int] = mapped_column(Integer, nullable=False)
    online: Mapped[int] = mapped_column(Integer, nullable=False)
    rated: Mapped[int] = mapped_column(Integer, nullable=False)
    satisfied: Mapped[int] = mapped_column(Integer, nullable=False)
    accepted: Mapped[int] = mapped_column(Integer, nullable=False)
    not_satisfied: Mapped[int] = mapped_column(Integer, nullable=False)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # migration 0021 (app/dossiers/index.py): finished with the verdict "late" (the on-time
    # share is taken over the finished dossiers that have a verdict), and the median
    # working days from receipt to the first finish
    finished_late: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    median_handling_working_days: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    # migration 0022: finished dossiers with their working days measured (the median's n)
    measured: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


_COUNTERS = (
    "received",
    "finished",
    "finished_on_time",
    "finished_late",
    "open",
    "open_overdue",
    "online",
    "rated",
    "satisfied",
    "accepted",
    "not_satisfied",
    "measured",
)


class AgencyDayCounts(Base):
    """The agency index's counters per agency and (local) day of receipt, migration 0022:
    what ``agency_stats`` sums. Kept by folding ``agency_count_deltas`` in the refresh."""

    __tablename__ = "agency_day_counts"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    received: Mapped[int] = mapped_column(Integer, nullable=False)
    finished: Mapped[int] = mapped_column(Integer, nullable=False)
    finished_on_time: Mapped[int] = mapped_column(Integer, nullable=False)
    finished_late: Mapped[int] = mapped_column(Integer, nullable=False)
    open: Mapped[int] = mapped_column(Integer, nullable=False)
    open_overdue: Mapped[int] = mapped_column(Integer, nullable=False)
    online: Mapped[int] = mapped_column(Integer, nullable=False)
    rated: Mapped[int] = mapped_column(Integer, nullable=False)
    satisfied: Mapped[int] = mapped_column(Integer, nullable=False)
    accepted: Mapped[int] = mapped_column(Integer, nullable=False)
    not_satisfied: Mapped[int] = mapped_column(Integer, nullable=False)
    measured: Mapped[int] = mapped_column(Integer, nullable=False)


# What each statement writing dossiers changed, per agency and day (+/-), appended by the
# trigger ``agency_count_deltas_record`` (migration 0022) and folded whole by the
# refresh. Append-only, so it has no key (SQLAlchemy wants one: the table's columns are
# declared in the migration, and read and written only as SQL text).
agency_count_deltas = Table(
    "agency_count_deltas",
    Base.metadata,
    Column("agency_id", Uuid(), nullable=False),
    Column("day", Date(), nullable=False),
    *[Column(name, Integer(), nullable=False) for name in _COUNTERS],
)
