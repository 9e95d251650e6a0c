"""The inbox: every notification is a row first, written in the transaction of the
event that caused it; pushing it to devices is a job that reads the row.

``notification_deliveries`` is the record of that push: one row per (notification,
device), so a job that runs again (a retry, a reconciliation, a duplicate) sends nothing
that is already ``sent``.

Preferences (quiet hours, kinds muted for push), areas followed and announcements to the
followers of areas live here too: they decide who hears what, and when."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.models import User
from app.core.models import Base

# pending: not pushed yet (or being retried); then one of the settled states:
# sent (to at least one device), failed (to none), no_device (the recipient had no active
# device), expired (still pending when it was too old to be worth a push), muted (the
# recipient turned pushes of this kind off: the inbox has it, no device was asked)
PUSH_STATUSES = ("pending", "sent", "failed", "no_device", "expired", "muted")
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
    # held until then: the recipient's quiet hours were on when its turn came (cleared when
    # the release cron enqueues its push)
    push_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the announcement it belongs to (dedupe key "announcement:{id}"), for progress counts
    announcement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE")
    )

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
        # held for quiet hours: what the release cron looks for
        Index(
            "ix_notifications_push_after",
            "push_after",
            postgresql_where=text("push_status = 'pending' AND push_after IS NOT NULL"),
        ),
        # an announcement's progress: its rows by push status (index-only counts)
        Index(
            "ix_notifications_announcement_status",
            "announcement_id",
            "push_status",
            postgresql_where=text("announcement_id IS NOT NULL"),
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
    # a push run's claim while it sends (app/notifications/push.py); lapses if it dies
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # deleting a device (pruned, removed by its owner) deletes its deliveries
        Index("ix_notification_deliveries_device_id", "device_id"),
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
    )


class NotificationPreference(Base):
    """A user's push preferences (cài đặt thông báo). No row: the defaults (nothing muted,
    quiet hours 22:00–06:00 Asia/Ho_Chi_Minh). The inbox keeps every notification
    whatever these say; they decide only whether and when a device is asked."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    muted_kinds: Mapped[list[str]] = mapped_column(
        ARRAY(String(40)), nullable=False, server_default="{}"
    )
    # local wall-clock times (Asia/Ho_Chi_Minh); start > end spans midnight
    quiet_hours: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    quiet_start: Mapped[time] = mapped_column(Time, nullable=False, server_default="22:00")
    quiet_end: Mapped[time] = mapped_column(Time, nullable=False, server_default="06:00")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (CheckConstraint("quiet_start <> quiet_end", name="quiet_window"),)


class AreaFollow(Base):
    """An area a user follows (theo dõi phường/xã) for its announcements, or — with
    ``following`` false — their home ward, which they follow implicitly, unfollowed."""

    __tablename__ = "area_follows"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    area_code: Mapped[str] = mapped_column(
        ForeignKey("areas.code", ondelete="CASCADE"), primary_key=True
    )
    following: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        # the fan-out walks an area's followers in user id order
        Index(
            "ix_area_follows_area_user",
            "area_code",
            "user_id",
            postgresql_where=text("following"),
        ),
    )


# queued: written, fan-out not started; sending: inbox rows being written; done: every
# follower has their inbox row (pushes may still be going out: see the push counts)
ANNOUNCEMENT_STATUSES = ("queued", "sending", "done")


class Announcement(Base):
    """An announcement (thông báo của chính quyền) to the followers of some areas, sent by
    an admin or by the manager of a ward's People's Committee for that ward."""

    __tablename__ = "announcements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    sender_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # the ward committee the sender spoke for (a manager); None for an admin
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    urgent: Mapped[bool] = mapped_column(Boolean, nullable=False)
    area_codes: Mapped[list[str]] = mapped_column(ARRAY(String(10)), nullable=False)
    title_vi: Mapped[str] = mapped_column(Text, nullable=False)
    body_vi: Mapped[str] = mapped_column(Text, nullable=False)
    title_en: Mapped[str | None] = mapped_column(Text)
    body_en: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="queued")
    # keyset position of the fan-out: the last follower (user id) given an inbox row
    cursor: Mapped[uuid.UUID | None] = mapped_column()
    recipients: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    inbox_rows: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # the final counts, written once no row is pending any more
    push_counts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"status IN {ANNOUNCEMENT_STATUSES!r}", name="status"),
        # the reconciler: fan-outs not finished
        Index(
            "ix_announcements_unfinished", "updated_at", postgresql_where=text("status <> 'done'")
        ),
    )


# The fan-out walks the residents of a home ward in id order (keyset). The index is on the
# accounts context's table; it is declared here because only the fan-out needs it.
Index("ix_users_home_area_code_id", User.__table__.c.home_area_code, User.__table__.c.id)
