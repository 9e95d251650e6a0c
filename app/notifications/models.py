"""The inbox: every notification is a row first, written in the transaction of the
event that caused it; pushing it to devices is a job that reads the row.

``notification_deliveries`` is the record of that push: one row per (notification,
device), so a job that runs again (a retry, a reconciliation, a duplicate) sends nothing
that is already ``sent``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base

# pending: not pushed yet (or being retried); then one of the settled states:
# sent (to at least one device), failed (to none), no_device (the recipient had no active
# device), expired (still pending when it was too old to be worth a push)
PUSH_STATUSES = ("pending", "sent", "failed", "no_device", "expired")
# pending: to send (again); sent; failed (token dead, or gave up after retries);
# skipped (the device was disabled before its turn came)
DELIVERY_STATUSES = ("pending", "sent", "failed", "skipped")


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    # rendered in the recipient's language when written
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    # one notification per (event, recipient), however often the job that writes it runs
    dedupe_key: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    push_status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="pending")

    __table_args__ = (
        Index("uq_notifications_user_dedupe", "user_id", "dedupe_key", unique=True),
        Index("ix_notifications_user_id_id", "user_id", text("id DESC")),
        # the unread badge and the unread filter
        Index(
            "ix_notifications_user_unread",
            "user_id",
            text("id DESC"),
            postgresql_where=text("read_at IS NULL"),
        ),
        # what the reconciliation cron looks for: still to push
        Index(
            "ix_notifications_push_pending",
            "created_at",
            postgresql_where=text("push_status = 'pending'"),
        ),
        CheckConstraint(f"push_status IN {PUSH_STATUSES!r}", name="push_status"),
    )


class NotificationDelivery(Base):
    """One push of one notification to one device (thông báo đẩy tới một thiết bị)."""

    __tablename__ = "notification_deliveries"

    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    fcm_message_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # deleting a device (pruned, removed by its owner) deletes its deliveries
        Index("ix_notification_deliveries_device_id", "device_id"),
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
    )
