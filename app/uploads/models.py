"""Resumable photo uploads (tus 1.0, issue 24 item 3): the upload and its received bytes.

The bytes live in PostgreSQL, in pieces committed as they arrive (``upload_chunks``),
so any API process can take a resumed upload over and a cut connection keeps what had
arrived. A finished upload becomes a ``report_photos`` row through the photo pipeline and
its pieces are deleted; the row stays until it expires so ``HEAD`` keeps naming the photo.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk

UPLOAD_STATES = ("open", "completed", "failed")


class Upload(Base):
    """One tus upload of one photo by a resident (tải ảnh lên nối tiếp)."""

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(
            "state IN ('open', 'completed', 'failed')",
            name="state",
        ),
        CheckConstraint('"offset" >= 0 AND "offset" <= length', name="offset_in_length"),
        # the open uploads a resident holds (the cap at creation counts them)
        Index("ix_uploads_owner_open", "owner_id", postgresql_where=text("state = 'open'")),
        Index("ix_uploads_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    length: Mapped[int] = mapped_column(BigInteger, nullable=False)  # Upload-Length
    offset: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    metadata_header: Mapped[str | None] = mapped_column(Text)  # Upload-Metadata, as sent
    state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="open")
    failure_code: Mapped[str | None] = mapped_column(String(40))
    photo_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("report_photos.id", ondelete="SET NULL")
    )
    # the PATCH that is writing: one at a time (a second one while the lease runs: 409)
    lease_token: Mapped[uuid.UUID | None] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UploadChunk(Base):
    """Bytes of an upload received by one PATCH piece, from ``start`` on."""

    __tablename__ = "upload_chunks"

    upload_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
