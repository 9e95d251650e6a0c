"""Reports flagged abusive by staff (issue 22 item 6): gắn cờ lạm dụng.

A flag carries a reason code from a fixed list and hides the report from every public
view: the public predicate below is what the map (points, live clusters and the
snapshot), the report by code, the "near me" list and the Open311 reads all filter by.
Staff still see and handle the report; unflagging restores it. Both are audit-logged.

Flags live in their own small table rather than a column of ``reports``: the public
map's street-level read is an index-only scan over the GiST index that INCLUDEs the
columns it reads, and an anti-join on the report's code (which that index holds; its id
it does not) with a table of a few rows keeps it so (bench/public_predicate.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app import policy
from app.complaints.models import Report
from app.core import audit
from app.core.errors import BadRequest, Conflict, FieldError, Forbidden, NotFound
from app.core.jobs import enqueue
from app.core.models import Base
from app.core.schemas import Input
from app.policy import Actor

# the fixed list of reason codes (names in the catalogue: abuse_reason.<code>)
REASON_CODES = (
    "spam",  # tin rác, quảng cáo
    "offensive",  # ngôn từ xúc phạm
    "harassment",  # quấy rối, nhắm vào một người
    "personal_data",  # lộ thông tin cá nhân của người khác
    "false_report",  # phản ánh sai sự thật, cố ý
)


class ReportAbuseFlag(Base):
    """A report hidden from the public as abusive; deleted when unflagged."""

    __tablename__ = "report_abuse_flags"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    # the report's code, which the public read's covering index holds (its id it does not)
    report_code: Mapped[str] = mapped_column(String(12), nullable=False, unique=True)
    reason_code: Mapped[str] = mapped_column(String(20), nullable=False)
    flagged_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    flagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint(
            "reason_code IN (" + ", ".join(f"'{c}'" for c in REASON_CODES) + ")",
            name="reason_code",
        ),
    )


# ---------------------------------------------------------------- the public predicate

# What the public may see of the reports: every report but withdrawn ones and those
# flagged abusive. SQL text for statements written as text (``{reports}`` is the name
# or alias the statement gives the reports table); the ORM form for the others.
PUBLIC_REPORT_SQL = (
    "{reports}.status <> 'withdrawn' AND NOT EXISTS "
    "(SELECT 1 FROM report_abuse_flags abuse WHERE abuse.report_code = {reports}.code)"
)


def public_report_sql(reports: str = "reports") -> str:
    return PUBLIC_REPORT_SQL.format(reports=reports)


PUBLIC_REPORT = (Report.status != "withdrawn") & ~exists().where(
    ReportAbuseFlag.report_code == Report.code
)


# ---------------------------------------------------------------- staff


class FlagIn(Input):
    reason_code: str  # one of REASON_CODES (checked in ``flag``: a 400 naming the list)


class FlagOut(msgspec.Struct):
    reason_code: str
    flagged_at: datetime


# the map's snapshot job (app/complaints/tasks.py): rebuilt after a flag so clustered
# zooms drop (or regain) the report now rather than within the minute
_SNAPSHOT_JOB = "refresh_report_map"


async def flag(
    session: AsyncSession, actor: Actor, report_id: uuid.UUID, reason_code: str
) -> FlagOut:
    if reason_code not in REASON_CODES:
        raise BadRequest(
            "abuse_reason_unknown",
            params={"allowed": ", ".join(REASON_CODES)},
            errors=[FieldError(field="reason_code", message="unknown code", source="body")],
            allowed=list(REASON_CODES),
        )
    report = await session.scalar(select(Report).where(Report.id == report_id).with_for_update())
    if report is None:
        raise NotFound("report_not_found")
    if not policy.may_flag_report(actor, report.unit_id):
        raise Forbidden("not_your_report")
    existing = await session.get(ReportAbuseFlag, report_id)
    if existing is not None:
        raise Conflict("report_already_flagged")
    row = ReportAbuseFlag(
        report_id=report_id,
        report_code=report.code,
        reason_code=reason_code,
        flagged_by=actor.user_id,
        flagged_at=actor.now,
    )
    session.add(row)
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.flagged_abusive",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={"reason_code": reason_code},
    )
    enqueue(_SNAPSHOT_JOB, job_id=f"{_SNAPSHOT_JOB}:abuse:{report_id}:{actor.now.timestamp()}")
    return FlagOut(reason_code=reason_code, flagged_at=actor.now)


async def unflag(session: AsyncSession, actor: Actor, report_id: uuid.UUID) -> None:
    report = await session.scalar(select(Report).where(Report.id == report_id).with_for_update())
    if report is None:
        raise NotFound("report_not_found")
    if not policy.may_flag_report(actor, report.unit_id):
        raise Forbidden("not_your_report")
    row = await session.get(ReportAbuseFlag, report_id)
    if row is None:
        raise Conflict("report_not_flagged")
    await session.delete(row)
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.unflagged_abusive",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={"reason_code": row.reason_code},
    )
    enqueue(_SNAPSHOT_JOB, job_id=f"{_SNAPSHOT_JOB}:abuse:{report_id}:{actor.now.timestamp()}")


async def staff_flag(session: AsyncSession, actor: Actor, report_id: uuid.UUID) -> FlagOut:
    """The report's flag as its staff see it: 404 ``report_not_flagged`` when none."""
    row = (await session.execute(select(Report.unit_id).where(Report.id == report_id))).first()
    if row is None:
        raise NotFound("report_not_found")
    if not policy.may_see_report(actor, row.unit_id):
        raise Forbidden("not_your_report")
    found = await flag_of(session, report_id)
    if found is None:
        raise NotFound("report_not_flagged")
    return found


async def flag_of(session: AsyncSession, report_id: uuid.UUID) -> FlagOut | None:
    row = await session.get(ReportAbuseFlag, report_id)
    return FlagOut(reason_code=row.reason_code, flagged_at=row.flagged_at) if row else None
