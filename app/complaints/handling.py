"""What a unit does with a report it was given: accept it, reply, keep an internal note,
resolve it, or reject it. Each action is checked against the report's unit, written to
the timeline and to the audit log in one transaction.

Resolving freezes the on-time verdict (resolved by the deadline or not) and the handling
time in working days at the first resolution, and asks the reporter to rate, in the same
transaction, so no resolution can go without its request for a rating.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts.models import User
from app.accounts.phones import normalize_phone
from app.complaints import lifecycle, photo_claim
from app.complaints.codes import normalize_code
from app.complaints.links import resident_link
from app.complaints.models import Report, ReportEvent, ReportPhoto
from app.complaints.schemas import ReportCreated
from app.complaints.service import file_report
from app.console.schemas import IntakeIn, MergeIn, MessageIn, RejectIn, ResolveIn
from app.core import audit
from app.core.calendar import WorkingCalendar
from app.core.errors import Conflict, FieldError, Forbidden, NotFound, Unprocessable
from app.notifications.service import Notice, notify
from app.places.models import Unit
from app.policy import Actor
from app.settings import Settings


async def lock_for_staff(
    session: AsyncSession, actor: Actor, report_id: uuid.UUID, action: str
) -> Report:
    """The report, row-locked, if the policy lets this actor take ``action`` on it (404 /
    403 otherwise; a manager-only action says so)."""
    report = await session.scalar(select(Report).where(Report.id == report_id).with_for_update())
    if report is None:
        raise NotFound("report_not_found")
    if not policy.may_act_on_report(actor, action, report.unit_id):
        if action in policy.MANAGER_ACTIONS and policy.may_see_report(actor, report.unit_id):
            raise Forbidden("managers_only")
        raise Forbidden("not_your_report")
    return report


async def _audit(
    session: AsyncSession, actor: Actor, action: str, report: Report, **details: object
) -> None:
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action=f"report.{action}",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={k: v for k, v in details.items() if v is not None},
    )


async def accept(session: AsyncSession, actor: Actor, report_id: uuid.UUID) -> Report:
    """Start handling (tiếp nhận xử lý)."""
    report = await lock_for_staff(session, actor, report_id, "accept")
    lifecycle.transition(
        session,
        report,
        "in_progress",
        actor_id=actor.user_id,
        actor_kind="staff",
        now=actor.now,
        action="accept",
    )
    await _audit(session, actor, "accepted", report)
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
    session: AsyncSession, actor: Actor, report_id: uuid.UUID, cmd: MessageIn, *, kind: str
) -> Report:
    """A reply to the reporter, a request for more information (both public, and the
    reporter and supporters are told), or an internal note (staff only). Asking for
    information does not stop the clock: the resident answers with a comment."""
    public, notice_kind = MESSAGE_KINDS[kind]
    now, body = actor.now, cmd.body
    report = await lock_for_staff(session, actor, report_id, kind)
    if report.status not in lifecycle.OPEN_STATUSES:
        raise Conflict("report_closed_for_comments")
    event = ReportEvent(
        report_id=report.id,
        at=now,
        kind=kind,
        actor_id=actor.user_id,
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
                    data=resident_link(report.id),
                )
            ],
            now,
        )
    action = {"reply": "replied", "info_request": "info_requested", "note": "noted"}[kind]
    await _audit(session, actor, action, report)
    return report


async def _attach_resolution_photos(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    report: Report,
    event: ReportEvent,
    photo_ids: list[uuid.UUID],
) -> None:
    """Photos the staff member uploaded (POST /console/photos) join the resolution event
    by the one photo-claim rule (``app.complaints.photo_claim``: theirs, unattached,
    unexpired; flagged when far from the report or taken long before), or nothing is
    written."""
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
    assert actor.user_id is not None  # photos come from a signed-in staff member, not the system
    position = await session.scalar(
        select(func.coalesce(func.max(ReportPhoto.position) + 1, 0)).where(
            ReportPhoto.report_id == report.id
        )
    )
    await photo_claim.claim_photos(
        session,
        settings,
        owner_id=actor.user_id,
        report_id=report.id,
        photo_ids=ids,
        now=actor.now,
        position_base=position or 0,
        event_id=event.id,
    )


async def resolve(
    session: AsyncSession,
    settings: Settings,
    calendar: WorkingCalendar,
    actor: Actor,
    report_id: uuid.UUID,
    cmd: ResolveIn,
) -> Report:
    """Resolve with an answer (and photos staff uploaded)."""
    now, photo_ids = actor.now, cmd.photo_ids
    report = await lock_for_staff(session, actor, report_id, "resolve")
    event = lifecycle.transition(
        session,
        report,
        "resolved",
        action="resolve",
        actor_id=actor.user_id,
        actor_kind="staff",
        now=now,
        body=cmd.answer.strip(),
    )
    event.unit_id = report.unit_id
    await _attach_resolution_photos(session, settings, actor, report, event, photo_ids)
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
                data={**resident_link(report.id), "rate": True},
            )
        ],
        now,
    )
    await _audit(
        session,
        actor,
        "resolved",
        report,
        on_time=report.resolved_on_time,
        photos=len(photo_ids or []) or None,
    )
    return report


async def merge_duplicate(
    session: AsyncSession, actor: Actor, report_id: uuid.UUID, cmd: MergeIn
) -> Report:
    """Close a report as a duplicate of another (open or resolved) one. Its reporter and
    supporters now follow the original, which gains them as supporters; they are told
    in their language which report to follow."""
    now, original_code = actor.now, cmd.original_code
    # who may act is answered before anything about the target is revealed (no lock
    # yet: both rows are locked below in id order)
    unlocked = await session.get(Report, report_id)
    if unlocked is None:
        raise NotFound("report_not_found")
    if not policy.may_act_on_report(actor, "merge", unlocked.unit_id):
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
    if not policy.may_act_on_report(actor, "merge", report.unit_id):
        raise Forbidden("not_your_report")
    if original.status not in (*lifecycle.OPEN_STATUSES, "resolved"):
        raise Conflict("duplicate_target_closed", params={"code": original.code})
    lifecycle.transition(
        session,
        report,
        "duplicate",
        action="merge",
        actor_id=actor.user_id,
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
                data={**resident_link(original.id), "original": original.code},
            )
        ],
        now,
    )
    await _audit(session, actor, "merged", report, into=original.code)
    return report


async def reject(
    session: AsyncSession, actor: Actor, report_id: uuid.UUID, cmd: RejectIn
) -> Report:
    """Reject with a reason (từ chối)."""
    reason = cmd.reason.strip()
    report = await lock_for_staff(session, actor, report_id, "reject")
    lifecycle.transition(
        session,
        report,
        "rejected",
        action="reject",
        actor_id=actor.user_id,
        actor_kind="staff",
        now=actor.now,
        body=reason,
    )
    report.rejection_reason = reason
    await _audit(session, actor, "rejected", report, reason=reason)
    return report


async def file_on_behalf(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    cmd: IntakeIn,
    idempotency_key: str | None,
) -> tuple[ReportCreated, bool]:
    """Staff file a report for a resident who called or came in. If the resident has an
    account (by phone), it is theirs: they follow it and are told of it; otherwise the
    staff member stands in as reporter. Either way it is marked as filed by staff, and
    the service index counts it apart, so a unit cannot pad its figures this way."""
    assert actor.user_id is not None
    body, resident_phone, now = cmd.report, cmd.resident_phone, actor.now
    reporter_id = actor.user_id
    if resident_phone:
        phone = normalize_phone(resident_phone)
        resident = await session.scalar(
            select(User.id).where(
                User.phone == phone, User.kind == "resident", User.deleted_at.is_(None)
            )
        )
        reporter_id = resident or actor.user_id
    created, new = await file_report(
        session,
        settings,
        reporter_id,
        body,
        idempotency_key,
        now,
        filed_by_staff_id=actor.user_id,
    )
    if new:
        await audit.record(
            session,
            actor_id=actor.user_id,
            actor_kind="staff",
            action="report.filed_on_behalf",
            object_type="report",
            object_id=created.code,
            ip=actor.ip,
            details={"resident_account": reporter_id != actor.user_id},
        )
    return created, new
