"""The service index (Bộ chỉ số phục vụ): one row per unit, period and channel,
rebuilt by a cron from the reports table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base


class UnitStats(Base):
    __tablename__ = "unit_stats"

    unit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    # 'all', a month 'YYYY-MM' (local time), or 'last-30-days'
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    # 'resident': filed by residents; 'staff': filed by staff on a resident's behalf
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    received: Mapped[int] = mapped_column(Integer, nullable=False)
    resolved: Mapped[int] = mapped_column(Integer, nullable=False)
    resolved_on_time: Mapped[int] = mapped_column(Integer, nullable=False)
    open_overdue: Mapped[int] = mapped_column(Integer, nullable=False)
    median_handling_working_days: Mapped[float | None] = mapped_column(Numeric(8, 2))
    rated: Mapped[int] = mapped_column(Integer, nullable=False)
    satisfied: Mapped[int] = mapped_column(Integer, nullable=False)
    accepted: Mapped[int] = mapped_column(Integer, nullable=False)
    not_satisfied: Mapped[int] = mapped_column(Integer, nullable=False)
    not_rated: Mapped[int] = mapped_column(Integer, nullable=False)
    # reports reopened by their reporter after a resolution (issue 17)
    reopened: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
