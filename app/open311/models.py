"""Third-party apps' API keys and what an app sends with a report (Open311, issue 21)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk

MEDIA_STATES = ("none", "pending", "attached", "failed")


class Open311Key(Base):
    """An API key issued to a third-party app (ứng dụng bên thứ ba). Only the key's
    SHA-256 is kept; ``prefix`` (the key's first characters) lets admins tell keys apart.
    ``reporter_id`` is the app's stand-in account (a resident account that cannot sign
    in): the reports it files are that account's, so nobody's own account is used."""

    __tablename__ = "open311_keys"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    contact: Mapped[str] = mapped_column(Text, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at = created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Open311Filing(Base):
    """What a third-party app sent with a report besides the report: the submitter's
    contact (for the unit's managers, like a resident's; never public) and the
    ``media_url``, with the state of its fetch (none | pending | attached | failed)."""

    __tablename__ = "open311_filings"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("open311_keys.id"), nullable=False)
    email: Mapped[str | None] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[str | None] = mapped_column(Text)
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    media_url: Mapped[str | None] = mapped_column(Text)
    media_state: Mapped[str] = mapped_column(String(10), nullable=False)
    media_attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    media_error: Mapped[str | None] = mapped_column(Text)
    media_tried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    media_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at = created_at()

    __table_args__ = (
        CheckConstraint(f"media_state IN {MEDIA_STATES!r}", name="media_state"),
        # the reconciliation reads only the fetches not done
        Index(
            "ix_open311_filings_media_pending",
            "created_at",
            postgresql_where=text("media_state = 'pending'"),
        ),
    )
