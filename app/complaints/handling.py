"""What a unit does with a report it was given: accept it, reply, keep an internal note,
resolve it, or reject it. Each action is checked against the report's unit, written to
the timeline and to the audit log in one transaction.

Resolving freezes the on-time verdict (resolved by the deadline or not) and the handling
time in working days at the first resolution, and asks the reporter to rate, in the same
transaction, so no resolution can go without its request for a rating.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.accounts.phones import normalize_phone
from app.complaints import lifecycle
from app.complaints.models import Report, ReportEvent
from app.complaints.schemas import ReportCreated, ReportIn
from app.complaints.service import can_act_on, file_report
from app.core import audit
from app.core.auth import Principal
from app.core.calendar import WorkingCalendar
from app.core.errors import Conflict, Forbidden, NotFound
from app.notifications.service import Notice, notify
from app.settings import Settings


async def lock_for_staff(
    session: AsyncSession, principal: Principal, report_id: uuid.UUID
) -> Report:
    """The report, row-locked, if this staff member may act on it (404 / 403 otherwise)."""
    report = await session.scalar(select(Report).where(Report.id == report_id).with_for_update())
    if report is None:
        raise NotFound("report_not_found")
    if not can_act_on(principal, report):
        raise Forbidden("not_your_report")
    return report


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    report: Report,
    ip: str | None,
    **details: object,
) -> None:
    await audit.record(
        session,
        actor_id=principal.user_id,
        actor_kind="staff",
        action=f"report.{action}",
        object_type="report",
        object_id=report.code,
        ip=ip,
        details={k: v for k, v in details.items() if v is not None},
    )


async def accept(
    session: AsyncSession,
    principal: Principal,
    report_id: uuid.UUID,
    now: datetime,
    ip: str | None = None,
) -> Report:
    report = await lock_for_staff(session, principal, report_id)
    lifecycle.transition(
        session, report, "in_progress", actor_id=principal.user_id, actor_kind="staff", now=now
    )
    await _audit(session, principal, "accepted", report, ip)
    return report


async def add_message(
    session: AsyncSession,
    principal: Principal,
    report_id: uuid.UUID,
    body: str,
    now: datetime,
    *,
    public: bool,
    ip: str | None = None,
) -> Report:
    """A reply to the reporter (public) or an internal note (staff only)."""
    report = await lock_for_staff(session, principal, report_id)
    if report.status not in lifecycle.OPEN_STATUSES:
        raise Conflict("report_closed_for_comments")
    session.add(
        ReportEvent(
            report_id=report.id,
            at=now,
            kind="reply" if public else "note",
            actor_id=principal.user_id,
            actor_kind="staff",
            public=public,
            body=body.strip(),
            unit_id=report.unit_id,
        )
    )
    report.updated_at = now
    await _audit(session, principal, "replied" if public else "noted", report, ip)
    return report


async def resolve(
    session: AsyncSession,
    calendar: WorkingCalendar,
    principal: Principal,
    report_id: uuid.UUID,
    answer: str,
    now: datetime,
    ip: str | None = None,
) -> Report:
    report = await lock_for_staff(session, principal, report_id)
    lifecycle.transition(
        session,
        report,
        "resolved",
        actor_id=principal.user_id,
        actor_kind="staff",
        now=now,
        body=answer.strip(),
    )
    if report.resolved_on_time is None:  # the verdict of the first resolution stands
        report.resolved_on_time = report.due_at is not None and now <= report.due_at
        report.handling_working_days = calendar.working_days_between(report.created_at, now)
    report.rating_requested_at = now
    await notify(
        session,
        [
            Notice(
                "report_resolved",
                report.id,
                report.code,
                "followers",
                f"resolved:{report.id}:r{report.reopen_count}",
                due=report.due_at,
                data={"link": f"cityapp://reports/{report.id}", "rate": True},
            )
        ],
        now,
    )
    await _audit(session, principal, "resolved", report, ip, on_time=report.resolved_on_time)
    return report


async def reject(
    session: AsyncSession,
    principal: Principal,
    report_id: uuid.UUID,
    reason: str,
    now: datetime,
    ip: str | None = None,
) -> Report:
    report = await lock_for_staff(session, principal, report_id)
    lifecycle.transition(
        session,
        report,
        "rejected",
        actor_id=principal.user_id,
        actor_kind="staff",
        now=now,
        body=reason.strip(),
    )
    report.rejection_reason = reason.strip()
    await _audit(session, principal, "rejected", report, ip, reason=reason.strip())
    return report


async def file_on_behalf(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    body: ReportIn,
    resident_phone: str | None,
    idempotency_key: str | None,
    now: datetime,
    ip: str | None = None,
) -> tuple[ReportCreated, bool]:
    """Staff file a report for a resident who called or came in. If the resident has an
    account (by phone), it is theirs: they follow it and are told of it; otherwise the
    staff member stands in as reporter. Either way it is marked as filed by staff, and
    the service index counts it apart, so a unit cannot pad its figures this way."""
    reporter_id = principal.user_id
    if resident_phone:
        phone = normalize_phone(resident_phone)
        resident = await session.scalar(
            select(User.id).where(
                User.phone == phone, User.kind == "resident", User.deleted_at.is_(None)
            )
        )
        reporter_id = resident or principal.user_id
    created, new = await file_report(
        session,
        settings,
        reporter_id,
        body,
        idempotency_key,
        now,
        filed_by_staff_id=principal.user_id,
    )
    if new:
        await audit.record(
            session,
            actor_id=principal.user_id,
            actor_kind="staff",
            action="report.filed_on_behalf",
            object_type="report",
            object_id=created.code,
            ip=ip,
            details={"resident_account": reporter_id != principal.user_id},
        )
    return created, new
