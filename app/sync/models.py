"""The resident's change log (migration 0100): written by triggers on the source tables
in the transaction of each change, read by the sync call, purged by age."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from app.core.models import Base

ENTITIES = ("report", "notification", "dossier", "health")


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (``pg_current_xact_id()``)."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


# so that reflection (Alembic's comparison with the models) knows the type
ischema_names.setdefault("xid8", Xid8)


class SyncChange(Base):
    """One change of one entity a resident sees, in the writing transaction (``tx``)."""

    __tablename__ = "sync_changes"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tx: Mapped[int] = mapped_column(
        Xid8(), nullable=False, server_default=text("pg_current_xact_id()")
    )
    resident_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    entity: Mapped[str] = mapped_column(String(12), nullable=False)
    entity_id: Mapped[str] = mapped_column(Text, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"entity IN {ENTITIES!r}", name="entity"),
        Index("ix_sync_changes_resident", "resident_id", "tx", "seq"),
        Index("ix_sync_changes_changed_at", "changed_at", postgresql_using="brin"),
    )


class SyncHorizon(Base):
    """The newest (tx, seq) the retention purge removed: an older cursor is refused."""

    __tablename__ = "sync_horizon"

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    tx: Mapped[int] = mapped_column(Xid8(), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("id", name="one_row"),)
