"""Reports residents file: complaints (phản ánh), petitions (kiến nghị) and initiatives
(sáng kiến), with their photos, timeline, supporters and rating."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk

KINDS = ("complaint", "petition", "initiative")
STATUSES = (
    "submitted",
    "assigned",
    "in_progress",
    "resolved",
    "closed",
    "rejected",
    "duplicate",
    "reopened",
    "withdrawn",
)


STREET_VIEW_COLUMNS = ["location", "created_at", "code", "kind", "status", "category_code"]
"""What the public street view reads (app.complaints.public), all in ix_reports_location
(location too: the 2D GiST operator class cannot hand back the geometry it indexes)."""


class Report(Base):
    """One item filed by a resident. ``code`` is what a resident reads over the phone."""

    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(12), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="submitted")
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    address_text: Mapped[str | None] = mapped_column(Text)
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), nullable=False)
    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    hide_identity: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # filed by staff on behalf of a resident (phone, counter): counted apart in the index
    filed_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # answers to the category's extra questions (Open311 attributes), keyed by their code
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # filed by a third-party app with this Open311 key: counted apart in the index
    open311_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("open311_keys.id"))
    # filed by address without coordinates (issue 22 item 7): the location is the ward's
    # centre (ST_PointOnSurface), shown to staff as approximate
    location_approximate: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    # set by routing: the unit responsible and its deadline (see app/routing)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"), index=True)
    routed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    remind_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalate_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transfer_count: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # one extension per item, granted by a manager; the first deadline is kept
    original_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extension_reason: Mapped[str | None] = mapped_column(Text)
    # an officer's pending request for that extension, until a manager decides
    extension_requested_until: Mapped[date | None] = mapped_column(Date)
    extension_request_reason: Mapped[str | None] = mapped_column(Text)
    extension_requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    extension_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the verdict of the first resolution, never changed afterwards
    resolved_on_time: Mapped[bool | None] = mapped_column(Boolean)
    handling_working_days: Mapped[float | None] = mapped_column(Numeric(8, 2))
    rating_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_reason: Mapped[str | None] = mapped_column(String(20))  # rated | not_rated | ...
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reports.id"), index=True)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    description_hidden_reason: Mapped[str | None] = mapped_column(Text)
    supporters_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    reopen_count: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    idempotency_key: Mapped[str | None] = mapped_column(String(80))
    # SHA-256 of the filed body: a key reused with another body is refused (issue 17)
    idempotency_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at = created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        # covering: the public street view is an index-only scan (migration 0012)
        Index(
            "ix_reports_location",
            "location",
            postgresql_using="gist",
            postgresql_include=STREET_VIEW_COLUMNS,
        ),
        Index(
            "ix_reports_reporter_created", "reporter_id", text("created_at DESC"), text("id DESC")
        ),
        # routing picks the oldest waiting reports: without this, an idle pick walked
        # the whole of ix_reports_created_at (measured 7–10 ms at 20k rows → 0.04 ms)
        Index(
            "ix_reports_waiting_created_at",
            "created_at",
            postgresql_where=text("status IN ('submitted', 'reopened')"),
        ),
        # the sweeps and the reconciliation read only the few rows they act on
        Index(
            "ix_reports_awaiting_job",
            "status",
            "resolved_at",
            postgresql_where=text("status IN ('submitted', 'reopened', 'resolved')"),
        ),
        # a unit's queue: open reports by deadline, counted and paged from the index
        Index(
            "ix_reports_unit_open_due",
            "unit_id",
            "due_at",
            "id",
            postgresql_include=["status", "overdue_at"],
            postgresql_where=text("status IN ('submitted', 'assigned', 'in_progress', 'reopened')"),
        ),
        Index(
            "ix_reports_open_due",
            "due_at",
            postgresql_where=text(
                "overdue_at IS NULL AND status IN ('assigned', 'in_progress', 'reopened')"
            ),
        ),
        Index(
            "ix_reports_open_remind",
            "remind_at",
            postgresql_where=text(
                "reminded_at IS NULL AND status IN ('assigned', 'in_progress', 'reopened')"
            ),
        ),
        Index(
            "ix_reports_open_escalate",
            "escalate_at",
            postgresql_where=text(
                "escalated_at IS NULL AND status IN ('assigned', 'in_progress', 'reopened')"
            ),
        ),
        Index(
            "uq_reports_reporter_idempotency_key",
            "reporter_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )


class ReportPhoto(Base):
    """A photo, uploaded before the report is filed (two steps, each retried alone).
    Only metadata-free renditions are stored; the geotag and capture time are data."""

    __tablename__ = "report_photos"

    id: Mapped[uuid.UUID] = uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # set for photos staff attach to a timeline event (the resolution), else the report's own
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("report_events.id", ondelete="SET NULL")
    )
    display_key: Mapped[str] = mapped_column(Text, nullable=False)
    thumb_key: Mapped[str] = mapped_column(Text, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    source_format: Mapped[str] = mapped_column(String(8), nullable=False)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    geotag = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    # flags for staff, never a reason to refuse a report
    geotag_far: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    taken_long_before: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    created_at = created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "ix_report_photos_unattached_expiry",
            "expires_at",
            postgresql_where=text("report_id IS NULL"),
        ),
    )


class ReportEvent(Base):
    """The timeline: every transition and every message, public or internal."""

    __tablename__ = "report_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)  # transition | comment | ...
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str | None] = mapped_column(String(12))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    public: Mapped[bool] = mapped_column(Boolean, nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    # the unit an event concerns: assigned or transferred to, escalated to
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))

    __table_args__ = (Index("ix_report_events_report_id", "report_id", "id"),)


class ReportSupporter(Base):
    """A resident who said "me too" and follows the report."""

    __tablename__ = "report_supporters"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at = created_at()


class ReportRating(Base):
    """The reporter's verdict on a resolution: satisfied / accept / not satisfied."""

    __tablename__ = "report_ratings"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
    )
    resolution_round: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    rating: Mapped[str] = mapped_column(String(16), nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at = created_at()

    __table_args__ = (
        CheckConstraint("rating IN ('satisfied', 'accept', 'not_satisfied')", name="rating"),
        Index("uq_report_ratings_round", "report_id", "resolution_round", unique=True),
    )
