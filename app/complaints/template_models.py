"""Response templates (mẫu trả lời, issue 22 item 1): a unit's (or the city's) ready
answers, and the record of the answers sent automatically when a report enters a status."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk

# what a template may move a report to: the staff targets whose action carries a text
# (the answer of a resolution, the reason of a rejection); None: a reply only
TEMPLATE_TARGETS = ("resolved", "rejected")
# the statuses a report can enter and still take a reply: what an automatic template
# may be sent on (lifecycle.OPEN_STATUSES; checked in tests/complaints/test_templates.py)
AUTO_STATUSES = ("submitted", "assigned", "in_progress", "reopened")


class ResponseTemplate(Base):
    """A ready answer: title, text in Vietnamese and English with placeholders, offered on
    reports of its unit (None: every unit, kept by admins), category and status."""

    __tablename__ = "response_templates"

    id: Mapped[uuid.UUID] = uuid_pk()
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"))
    # the status a report is in when the template is offered (None: any open status)
    for_status: Mapped[str | None] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body_vi: Mapped[str] = mapped_column(Text, nullable=False)
    body_en: Mapped[str] = mapped_column(Text, nullable=False)
    # the status sending it moves the report to (None: a reply, no change of status)
    target_status: Mapped[str | None] = mapped_column(String(12))
    # sent by the system when a report enters this status (once per report and status)
    auto_on_status: Mapped[str | None] = mapped_column(String(12))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at = created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )

    __table_args__ = (
        CheckConstraint(f"target_status IN {TEMPLATE_TARGETS!r}", name="target_status"),
        CheckConstraint(f"auto_on_status IN {AUTO_STATUSES!r}", name="auto_on_status"),
        CheckConstraint("auto_on_status IS NULL OR target_status IS NULL", name="auto_is_a_reply"),
        Index("ix_response_templates_unit_id", "unit_id"),
        Index(
            "ix_response_templates_auto",
            "auto_on_status",
            postgresql_where=text("auto_on_status IS NOT NULL"),
        ),
    )


class TemplateAutoSend(Base):
    """One report entering a status an automatic template is kept for, written by the
    trigger on ``report_events`` (migration 0070) in the transaction of the transition;
    the worker sends it and stamps ``sent_at``. The key makes it once per report and
    status."""

    __tablename__ = "response_template_auto_sends"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("response_templates.id", ondelete="SET NULL")
    )
    # sent | skipped (the report had left the status, or no template applies any more)
    outcome: Mapped[str | None] = mapped_column(String(10))

    __table_args__ = (
        Index(
            "ix_response_template_auto_sends_pending",
            "queued_at",
            postgresql_where=text("sent_at IS NULL"),
        ),
    )
