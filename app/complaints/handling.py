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

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.accounts.phones import normalize_phone
from app.complaints import lifecycle
from app.complaints.codes import normalize_code
from app.complaints.models import Report, ReportEvent, ReportPhoto
from app.complaints.schemas import ReportCreated, ReportIn
from app.complaints.service import can_act_on, file_report
from app.core import audit
from app.core.auth import Principal
from app.core.calendar import WorkingCalendar
from app.core.errors import Conflict, FieldError, Forbidden, NotFound, Unprocessable
from app.notifications.service import Notice, notify
from app.places.models import Unit
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


async def _unit_names(session: AsyncSession, unit_id: uuid.UUID | None) -> tuple[str, str]:
    unit = await session.get(Unit, unit_id) if unit_id else None
    return (unit.name_vi, unit.name_en) if unit else ("", "")


MESSAGE_KINDS = {
    # kind of timeline event → (public?, the notice the followers get)
    "reply": (True, "report_answered"),
    "info_request": (True, "report_info_requested"),
    "note": (False, None),
}


async def add_message(
    session: AsyncSession,
    principal: Principal,
    report_id: uuid.UUID,
    body: str,
    now: datetime,
    *,
    kind: str,
    ip: str | None = None,
) -> Report:
    """A reply to the reporter, a request for more information (both public, and the
    reporter and supporters are told), or an internal note (staff only). Asking for
    information does not stop the clock: the resident answers with a comment."""
    public, notice_kind = MESSAGE_KINDS[kind]
    report = await lock_for_staff(session, principal, report_id)
    if report.status not in lifecycle.OPEN_STATUSES:
        raise Conflict("report_closed_for_comments")
    event = ReportEvent(
        report_id=report.id,
        at=now,
        kind=kind,
        actor_id=principal.user_id,
        actor_kind="staff",
        public=public,
        body=body.strip(),
        unit_id=report.unit_id,
    )
    session.add(event)
    report.updated_at = now
    if notice_kind:
        await session.flush()  # the event's id keys the notification
        unit_vi, unit_en = await _unit_names(session, report.unit_id)
        await notify(
            session,
            [
                Notice(
                    notice_kind,
                    report.id,
                    report.code,
                    "followers",
                    f"{kind}:{event.id}",
                    unit_vi=unit_vi,
                    unit_en=unit_en,
                    due=report.due_at,
                    data={"link": f"cityapp://reports/{report.id}"},
                )
            ],
            now,
        )
    action = {"reply": "replied", "info_request": "info_requested", "note": "noted"}[kind]
    await _audit(session, principal, action, report, ip)
    return report


async def _attach_resolution_photos(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    report: Report,
    event: ReportEvent,
    photo_ids: list[uuid.UUID],
    now: datetime,
) -> None:
    """Photos the staff member uploaded (POST /console/photos) join the resolution event;
    each must be theirs, unattached and unexpired, or nothing is written."""
    ids = list(dict.fromkeys(photo_ids))
    if not ids:
        return
    if len(ids) > settings.photos_per_report:
        raise Unprocessable(
            "too_many_photos",
            params={"max": settings.photos_per_report},
            errors=[FieldError(field="photo_ids", message="too many", source="body")],
        )
    await session.flush()  # the event's id
    position = await session.scalar(
        select(func.coalesce(func.max(ReportPhoto.position) + 1, 0)).where(
            ReportPhoto.report_id == report.id
        )
    )
    claimed = await session.execute(
        text(
            """
            UPDATE report_photos p
               SET report_id = :report_id, event_id = :event_id, expires_at = NULL,
                   position = :position + a.ord - 1
              FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS a(id, ord)
             WHERE p.id = a.id AND p.owner_id = :owner AND p.report_id IS NULL
               AND (p.expires_at IS NULL OR p.expires_at > :now)
            RETURNING p.id
            """
        ),
        {
            "report_id": report.id,
            "event_id": event.id,
            "position": position,
            "ids": ids,
            "owner": principal.user_id,
            "now": now,
        },
    )
    taken = {row[0] for row in claimed}
    missing = [str(i) for i in ids if i not in taken]
    if missing:
        raise Unprocessable(
            "photo_ids_invalid",
            params={"ids": ", ".join(missing)},
            errors=[FieldError(field="photo_ids", message=m, source="body") for m in missing],
        )


async def resolve(
    session: AsyncSession,
    settings: Settings,
    calendar: WorkingCalendar,
    principal: Principal,
    report_id: uuid.UUID,
    answer: str,
    now: datetime,
    ip: str | None = None,
    photo_ids: list[uuid.UUID] | None = None,
) -> Report:
    report = await lock_for_staff(session, principal, report_id)
    event = lifecycle.transition(
        session,
        report,
        "resolved",
        actor_id=principal.user_id,
        actor_kind="staff",
        now=now,
        body=answer.strip(),
    )
    event.unit_id = report.unit_id
    await _attach_resolution_photos(
        session, settings, principal, report, event, photo_ids or [], now
    )
    if report.resolved_on_time is None:  # the verdict of the first resolution stands
        report.resolved_on_time = report.due_at is not None and now <= report.due_at
        report.handling_working_days = calendar.working_days_between(report.created_at, now)
    report.rating_requested_at = now
    # a pending extension request has nothing left to extend
    report.extension_requested_until = None
    report.extension_request_reason = None
    report.extension_requested_by = None
    report.extension_requested_at = None
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
    await _audit(
        session,
        principal,
        "resolved",
        report,
        ip,
        on_time=report.resolved_on_time,
        photos=len(photo_ids or []) or None,
    )
    return report


async def merge_duplicate(
    session: AsyncSession,
    principal: Principal,
    report_id: uuid.UUID,
    original_code: str,
    now: datetime,
    ip: str | None = None,
) -> Report:
    """Close a report as a duplicate of another (open or resolved) one. Its reporter and
    supporters now follow the original, which gains them as supporters; they are told
    in their language which report to follow."""
    # who may act is answered before anything about the target is revealed (no lock
    # yet: both rows are locked below in id order)
    unlocked = await session.get(Report, report_id)
    if unlocked is None:
        raise NotFound("report_not_found")
    if not can_act_on(principal, unlocked):
        raise Forbidden("not_your_report")
    code = normalize_code(original_code)
    original_id = await session.scalar(select(Report.id).where(Report.code == code))
    if original_id is None or original_id == report_id:
        raise Unprocessable(
            "duplicate_target_invalid",
            params={"code": original_code},
            errors=[FieldError(field="original_code", message=original_code, source="body")],
        )
    # lock both in id order, so two merges in opposite directions cannot deadlock
    rows = await session.scalars(
        select(Report)
        .where(Report.id.in_([report_id, original_id]))
        .order_by(Report.id)
        .with_for_update()
    )
    by_id = {r.id: r for r in rows}
    report, original = by_id.get(report_id), by_id[original_id]
    if report is None:
        raise NotFound("report_not_found")
    if not can_act_on(principal, report):
        raise Forbidden("not_your_report")
    if original.status not in (*lifecycle.OPEN_STATUSES, "resolved"):
        raise Conflict("duplicate_target_closed", params={"code": original.code})
    lifecycle.transition(
        session,
        report,
        "duplicate",
        actor_id=principal.user_id,
        actor_kind="staff",
        now=now,
        body=original.code,
    )
    report.duplicate_of_id = original.id
    added = await session.execute(
        text(
            """
            INSERT INTO report_supporters (report_id, user_id, created_at)
            SELECT :original, f.user_id, :now
              FROM (SELECT reporter_id AS user_id FROM reports WHERE id = :dup
                    UNION
                    SELECT user_id FROM report_supporters WHERE report_id = :dup) f
             WHERE f.user_id <> :original_reporter
            ON CONFLICT DO NOTHING
            RETURNING user_id
            """
        ),
        {
            "original": original.id,
            "dup": report.id,
            "now": now,
            "original_reporter": original.reporter_id,
        },
    )
    original.supporters_count += len(added.all())
    await notify(
        session,
        [
            Notice(
                "report_merged",
                report.id,
                report.code,
                "followers",
                f"merged:{report.id}",
                other_code=original.code,
                data={"link": f"cityapp://reports/{original.id}", "original": original.code},
            )
        ],
        now,
    )
    await _audit(session, principal, "merged", report, ip, into=original.code)
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
