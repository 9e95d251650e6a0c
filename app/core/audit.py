"""The audit log: every staff action and every read of health data, append-only.

Written in the same transaction as the action it records. Details never hold
personal data beyond ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, String, Text, func
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_kind: Mapped[str] = mapped_column(String(10), nullable=False)  # resident|staff|system
    action: Mapped[str] = mapped_column(String(60), nullable=False)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(INET)
    request_id: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


async def record(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    actor_kind: str,
    action: str,
    object_type: str | None = None,
    object_id: str | None = None,
    ip: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor_id=actor_id,
            actor_kind=actor_kind,
            action=action,
            object_type=object_type,
            object_id=object_id,
            ip=ip,
            request_id=request_id,
            details=details or {},
        )
    )
