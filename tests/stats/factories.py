"""Test data for the service index: units and reports written straight to the tables,
with the routing and rating columns the index reads already set."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.complaints.models import Report, ReportRating
from app.places.models import Area, Unit


async def new_unit(session: AsyncSession, name: str = "Phòng thử") -> Unit:
    """A unit of its own, so a test's figures are only its reports."""
    code = f"test-stats-{uuid.uuid4().hex[:10]}"
    unit = Unit(
        id=uuid.uuid4(), code=code, name_vi=name, name_en=f"Test unit {code}", kind="department"
    )
    session.add(unit)
    await session.commit()
    return unit


async def new_user(session: AsyncSession, kind: str = "resident") -> uuid.UUID:
    user = User(id=uuid.uuid4(), kind=kind, identity_level=1 if kind == "resident" else 0)
    session.add(user)
    await session.commit()
    return user.id


async def add_report(
    session: AsyncSession,
    unit: Unit | None,
    reporter_id: uuid.UUID,
    created_at: datetime,
    status: str = "assigned",
    *,
    filed_by_staff_id: uuid.UUID | None = None,
    resolved_at: datetime | None = None,
    on_time: bool | None = None,
    working_days: float | None = None,
    overdue_at: datetime | None = None,
    closed_reason: str | None = None,
    reopen_count: int = 0,
    ratings: tuple[tuple[int, str], ...] = (),
) -> Report:
    """One report with the given figures; ``ratings`` as (resolution_round, rating)."""
    area_code = await session.scalar(select(Area.code).order_by(Area.code).limit(1))
    report = Report(
        id=uuid.uuid4(),
        code=f"T{uuid.uuid4().hex[:11].upper()}",
        kind="complaint",
        status=status,
        category_code="roads",
        description="Báo cáo thử cho bộ chỉ số.",
        location="SRID=4326;POINT(105.8525 21.0288)",
        area_code=area_code,
        reporter_id=reporter_id,
        hide_identity=False,
        filed_by_staff_id=filed_by_staff_id,
        unit_id=unit.id if unit else None,
        resolved_at=resolved_at,
        resolved_on_time=on_time,
        handling_working_days=working_days,
        overdue_at=overdue_at,
        closed_reason=closed_reason,
        reopen_count=reopen_count,
        created_at=created_at,
        updated_at=created_at,
    )
    session.add(report)
    await session.flush()
    for resolution_round, rating in ratings:
        session.add(
            ReportRating(report_id=report.id, resolution_round=resolution_round, rating=rating)
        )
    await session.commit()
    return report
