"""Routing, transfers, deadlines and the sweeps that hold units to them.

- Routing picks a unit for every submitted (or reopened) report: the best routing rule
  (category × the report's area, else category city-wide; then priority) → else the
  People's Committee of the ward containing the point (the area was found by PostGIS at
  filing) → else the city dispatcher. It is set-based: one job routes every report
  waiting (up to a batch), locking rows with SKIP LOCKED so two workers never route the
  same report and a job for an already-routed report does nothing.
- Deadlines count working days (app/core/calendar.py). The reminder (75 % of the time
  allowed) and the escalation instant are computed with the deadline, so the sweeps are
  plain indexed UPDATEs.
- Every change writes its timeline event and its notifications in the same
  transaction; notifications are deduplicated per (recipient, event).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.complaints import lifecycle
from app.complaints.handling import lock_for_staff
from app.complaints.links import resident_link, staff_link
from app.complaints.models import Report, ReportEvent
from app.console.schemas import ExtensionDecisionIn, ExtensionRequestIn
from app.core import audit
from app.core.auth import Principal
from app.core.calendar import TIMEZONE, DateOutOfRange, Deadlines
from app.core.errors import Conflict, FieldError, Forbidden, NotFound, Unprocessable
from app.notifications.service import Notice, notify
from app.places.models import Area, Category, Unit
from app.policy import Actor
from app.routing.models import RoutingRule
from app.routing.schemas import ExtensionIn, RuleIn, RuleOut, TransferIn
from app.settings import Settings

# set-based statements take the statuses they change from the lifecycle table
ROUTE_FROM = lifecycle.sources("assigned", "route")  # submitted, reopened
ESCALATE_FROM = lifecycle.sources("assigned", "escalate")  # assigned, in_progress, reopened
CLOSE_FROM = lifecycle.sources("closed", "auto_close")  # resolved
assert len(CLOSE_FROM) == 1, "the auto-close event names its one from-status"


# ---------------------------------------------------------------- routing


@dataclass(frozen=True, slots=True)
class Routed:
    report_id: uuid.UUID
    code: str
    unit_id: uuid.UUID
    reason: str  # rule | ward | dispatcher | reopened
    due_at: datetime


_PICK_UNITS = text(
    """
    WITH pending AS (
        SELECT r.id FROM reports r
         WHERE r.status = ANY(CAST(:route_from AS text[]))
         ORDER BY r.created_at
         LIMIT :limit
           FOR UPDATE SKIP LOCKED
    )
    SELECT r.id, r.code, r.status, r.reopen_count, r.created_at, c.deadline_working_days,
           reopened.at AS reopened_at, u.id AS unit_id, u.name_vi, u.name_en, chosen.reason
      FROM pending p
      JOIN reports r ON r.id = p.id
      JOIN categories c ON c.code = r.category_code
      LEFT JOIN LATERAL (
            SELECT rr.unit_id FROM routing_rules rr
             WHERE rr.active AND rr.category_code = r.category_code
               AND (rr.area_code = r.area_code OR rr.area_code IS NULL)
             ORDER BY (rr.area_code IS NULL), rr.priority DESC, rr.created_at, rr.id
             LIMIT 1
      ) rule ON r.status = 'submitted'
      LEFT JOIN LATERAL (
            SELECT w.id FROM units w
             WHERE w.kind = 'ward_committee' AND w.area_code = r.area_code
             ORDER BY w.code LIMIT 1
      ) ward ON r.status = 'submitted'
      LEFT JOIN LATERAL (
            SELECT max(e.at) AS at FROM report_events e
             WHERE e.report_id = r.id AND e.to_status = 'reopened'
      ) reopened ON r.status = 'reopened'
      CROSS JOIN LATERAL (
            SELECT CASE
                     WHEN r.status = 'reopened' AND r.unit_id IS NOT NULL THEN r.unit_id
                     WHEN rule.unit_id IS NOT NULL THEN rule.unit_id
                     WHEN ward.id IS NOT NULL THEN ward.id
                     ELSE (SELECT d.id FROM units d WHERE d.kind = 'dispatcher'
                            ORDER BY d.code LIMIT 1)
                   END AS unit_id,
                   CASE
                     WHEN r.status = 'reopened' AND r.unit_id IS NOT NULL THEN 'reopened'
                     WHEN rule.unit_id IS NOT NULL THEN 'rule'
                     WHEN ward.id IS NOT NULL THEN 'ward'
                     ELSE 'dispatcher'
                   END AS reason
      ) chosen
      LEFT JOIN units u ON u.id = chosen.unit_id
    """
)

_ASSIGN = text(
    """
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:unit_ids AS uuid[]), CAST(:due AS timestamptz[]),
            CAST(:remind AS timestamptz[]), CAST(:escalate AS timestamptz[]),
            CAST(:from_status AS text[])
        ) AS v(id, unit_id, due_at, remind_at, escalate_at, from_status)
    ), updated AS (
        UPDATE reports r
           SET status = 'assigned', unit_id = v.unit_id, routed_at = :now,
               due_at = v.due_at, remind_at = v.remind_at, escalate_at = v.escalate_at,
               reminded_at = NULL, overdue_at = NULL, escalated_at = NULL, updated_at = :now
          FROM v
         WHERE r.id = v.id
        RETURNING r.id
    )
    INSERT INTO report_events
           (report_id, at, kind, from_status, to_status, actor_kind, public, unit_id)
    SELECT v.id, :now, 'transition', v.from_status, 'assigned', 'system', true, v.unit_id
      FROM v JOIN updated USING (id)
    """
)


async def route_pending(
    session: AsyncSession, deadlines: Deadlines, now: datetime, limit: int = 500
) -> list[Routed]:
    """Route every report waiting for a unit (up to ``limit``): three statements for the
    whole batch. Reports another transaction holds are skipped; its job routes them."""
    rows = (await session.execute(_PICK_UNITS, {"limit": limit, "route_from": ROUTE_FROM})).all()
    routed: list[Routed] = []
    values: dict[str, list] = {k: [] for k in ("ids", "unit_ids", "due", "remind", "escalate")}
    values["from_status"] = []
    notices: list[Notice] = []
    for row in rows:
        if row.unit_id is None:  # no dispatcher unit configured: leave it for an operator
            continue
        received = row.reopened_at or row.created_at
        due, remind, escalate = deadlines.for_received(received, row.deadline_working_days)
        for key, value in zip(
            ("ids", "unit_ids", "due", "remind", "escalate", "from_status"),
            (row.id, row.unit_id, due, remind, escalate, row.status),
            strict=True,
        ):
            values[key].append(value)
        routed.append(Routed(row.id, row.code, row.unit_id, row.reason, due))
        names = {"unit_vi": row.name_vi, "unit_en": row.name_en, "due": due}
        round_ = f"{row.id}:r{row.reopen_count}"
        notices.append(
            Notice(
                "report_routed",
                row.id,
                row.code,
                "followers",
                f"routed:{round_}",
                data=resident_link(row.id),
                **names,
            )
        )
        notices.append(
            Notice(
                "report_assigned",
                row.id,
                row.code,
                "unit",
                f"assigned:{round_}",
                unit_id=row.unit_id,
                data=staff_link(row.id),
                **names,
            )
        )
    if routed:
        await session.execute(_ASSIGN, {"now": now, **values})
        await notify(session, notices, now)
    return routed


async def route_now(
    session: AsyncSession,
    deadlines: Deadlines,
    actor: Actor,
    limit: int = 500,
) -> list[Routed]:
    """A dispatcher or an admin runs the router by hand, for when the workers are down or
    behind: the worker's own batch (same rules, deadlines and notices, up to ``limit``
    oldest waiting reports; those a worker holds are skipped), in the caller's
    transaction, audited."""
    if not policy.may_run_routing(actor):
        raise Forbidden("role_required", params={"roles": "dispatcher, admin"})
    routed = await route_pending(session, deadlines, actor.now, limit)
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="routing.run_by_hand",
        object_type="report",
        ip=actor.ip,
        details={"routed": len(routed), "codes": [r.code for r in routed[:100]]},
    )
    return routed


# ---------------------------------------------------------------- transfers


async def _unit_by_code(session: AsyncSession, code: str, field: str) -> Unit:
    unit = await session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise Unprocessable(
            "unit_unknown", errors=[FieldError(field=field, message=code, source="body")]
        )
    return unit


async def dispatcher_unit(session: AsyncSession) -> Unit:
    unit = await session.scalar(select(Unit).where(Unit.kind == "dispatcher").order_by(Unit.code))
    if unit is None:
        raise RuntimeError("no dispatcher unit: load the reference data")
    return unit


async def transfer(
    session: AsyncSession, settings: Settings, actor: Actor, report_id: uuid.UUID, cmd: TransferIn
) -> Unit:
    """Move a report to another unit. The deadline keeps running. Transfers made by
    units are counted; past ``max_transfers`` the report goes to the dispatcher instead,
    so it cannot bounce between units forever. Returns the unit it went to."""
    now, to_unit_code, reason = actor.now, cmd.unit_code, cmd.reason
    report = await lock_for_staff(session, actor, report_id, "transfer")
    if report.status not in lifecycle.sources("assigned", "transfer"):
        raise Conflict(
            "invalid_transition",
            params={"current": report.status, "target": "transferred"},
            allowed=lifecycle.allowed_from(report.status, "staff"),
        )
    target = await _unit_by_code(session, to_unit_code, "unit_code")
    if target.id == report.unit_id:
        raise Conflict("same_unit")
    redirected = False
    if policy.counts_transfers(actor):
        report.transfer_count += 1
        if report.transfer_count > settings.max_transfers:
            dispatcher = await dispatcher_unit(session)
            redirected = target.id != dispatcher.id
            target = dispatcher
            if target.id == report.unit_id:
                raise Conflict("same_unit")
    from_unit = report.unit_id
    event = lifecycle.transition(
        session,
        report,
        "assigned",
        action="transfer",
        kind="transferred",
        actor_id=actor.user_id,
        actor_kind="staff",
        now=now,
        body=reason.strip(),
        unit_id=target.id,
    )
    report.unit_id = target.id
    await session.flush()
    names: dict[str, Any] = {
        "unit_vi": target.name_vi,
        "unit_en": target.name_en,
        "due": report.due_at,
    }
    await notify(
        session,
        [
            Notice(
                "report_transferred",
                report.id,
                report.code,
                "followers",
                f"transferred:{event.id}",
                data=resident_link(report.id),
                **names,
            ),
            Notice(
                "report_assigned",
                report.id,
                report.code,
                "unit",
                f"transferred:{event.id}",
                unit_id=target.id,
                data=staff_link(report.id),
                **names,
            ),
        ],
        now,
    )
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.transferred",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={
            "from_unit": str(from_unit) if from_unit else None,
            "to_unit": target.code,
            "requested_unit": to_unit_code,
            "redirected_to_dispatcher": redirected,
            "reason": reason.strip(),
        },
    )
    return target


# ---------------------------------------------------------------- extension


async def _check_extension(
    session: AsyncSession, deadlines: Deadlines, report: Report, new_due_day: date, now: datetime
) -> None:
    """The one extension: while handled, not yet extended, before the deadline (extending
    a late report would hide that it is late), to a working day after the current one and
    at most ``Deadlines.extension_allowance`` working days after it (checked before any
    other arithmetic on the date, so a far date such as 9999-12-31 is a 422, never an
    overflow in the calendar)."""
    calendar = deadlines.calendar
    if report.status not in lifecycle.HANDLING_STATUSES or report.due_at is None:
        raise Conflict(
            "invalid_transition",
            params={"current": report.status, "target": "extended"},
            allowed=lifecycle.allowed_from(report.status, "staff"),
        )
    if report.original_due_at is not None:
        raise Conflict("already_extended")
    if report.due_at <= now:
        raise Conflict("deadline_passed")
    current_day = report.due_at.astimezone(TIMEZONE).date()
    if new_due_day <= current_day:
        raise Unprocessable(
            "extension_not_later",
            params={"due": current_day.isoformat()},
            errors=[FieldError(field="due_date", message=new_due_day.isoformat(), source="body")],
        )
    allowance = deadlines.extension_allowance(
        await session.scalar(
            select(Category.deadline_working_days).where(Category.code == report.category_code)
        )
        or 1
    )
    try:
        latest = calendar.nth_working_day(current_day, allowance)
    except DateOutOfRange:  # a current deadline within the allowance of date.max
        latest = date.max
    if new_due_day > latest:
        raise Unprocessable(
            "extension_too_far",
            params={"days": allowance, "latest": latest.isoformat()},
            errors=[FieldError(field="due_date", message=new_due_day.isoformat(), source="body")],
        )
    if not calendar.is_working_day(new_due_day):
        raise Unprocessable(
            "not_a_working_day",
            params={"day": new_due_day.isoformat()},
            errors=[FieldError(field="due_date", message=new_due_day.isoformat(), source="body")],
        )


async def request_extension(
    session: AsyncSession,
    deadlines: Deadlines,
    actor: Actor,
    report_id: uuid.UUID,
    cmd: ExtensionRequestIn,
) -> Report:
    """An officer asks for the one extension; the unit's staff are told (its managers
    decide).
    One request at a time; the deadline does not move until a manager approves."""
    now, new_due_day, reason = actor.now, cmd.due_date, cmd.reason
    report = await lock_for_staff(session, actor, report_id, "extension_request")
    if report.extension_requested_at is not None:
        raise Conflict("extension_already_requested")
    await _check_extension(session, deadlines, report, new_due_day, now)
    report.extension_requested_until = new_due_day
    report.extension_request_reason = reason.strip()
    report.extension_requested_by = actor.user_id
    report.extension_requested_at = now
    report.updated_at = now
    asked = ReportEvent(
        report_id=report.id,
        at=now,
        kind="extension_asked",
        actor_id=actor.user_id,
        actor_kind="staff",
        public=False,
        body=f"{new_due_day.isoformat()}: {reason.strip()}",
        unit_id=report.unit_id,
    )
    session.add(asked)
    await session.flush()  # the event's id keys the notice: each request is told anew
    unit = await session.get(Unit, report.unit_id)
    await notify(
        session,
        [
            Notice(
                "report_extension_requested",
                report.id,
                report.code,
                "unit",
                f"extension-asked:{asked.id}",
                unit_id=report.unit_id,
                unit_vi=unit.name_vi if unit else "",
                unit_en=unit.name_en if unit else "",
                due=deadlines.calendar.close_of(new_due_day),
                data=staff_link(report.id),
            )
        ],
        now,
    )
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.extension_requested",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={"until": new_due_day.isoformat(), "reason": reason.strip()},
    )
    return report


async def decide_extension(
    session: AsyncSession,
    deadlines: Deadlines,
    actor: Actor,
    report_id: uuid.UUID,
    cmd: ExtensionDecisionIn,
) -> Report:
    """A manager of the unit approves the pending request (the extension is granted as
    asked, with every rule of grant_extension) or declines it (an internal note says why)."""
    now, note = actor.now, cmd.note
    report = await lock_for_staff(session, actor, report_id, "extension_decision")
    if report.extension_requested_at is None or report.extension_requested_until is None:
        raise Conflict("no_extension_request")
    until, reason = report.extension_requested_until, report.extension_request_reason or ""
    report.extension_requested_until = None
    report.extension_request_reason = None
    report.extension_requested_by = None
    report.extension_requested_at = None
    if cmd.approve:
        await _grant(session, deadlines, actor, report, until, reason)
        return report
    session.add(
        ReportEvent(
            report_id=report.id,
            at=now,
            kind="extension_declined",
            actor_id=actor.user_id,
            actor_kind="staff",
            public=False,
            body=(note or "").strip() or None,
            unit_id=report.unit_id,
        )
    )
    report.updated_at = now
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.extension_declined",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={"until": until.isoformat(), "note": (note or "").strip() or None},
    )
    return report


async def grant_extension(
    session: AsyncSession,
    deadlines: Deadlines,
    actor: Actor,
    report_id: uuid.UUID,
    cmd: ExtensionIn,
) -> datetime:
    """One extension per report, by a manager of its unit (or of a unit above it) or an
    admin, before the deadline has passed: extending a late report would hide that it is
    late. The new deadline is the office close of a working day after the current one."""
    report = await lock_for_staff(session, actor, report_id, "extension")
    return await _grant(session, deadlines, actor, report, cmd.due_date, cmd.reason)


async def _grant(
    session: AsyncSession,
    deadlines: Deadlines,
    actor: Actor,
    report: Report,
    new_due_day: date,
    reason: str,
) -> datetime:
    now = actor.now
    calendar = deadlines.calendar
    await _check_extension(session, deadlines, report, new_due_day, now)
    new_due = calendar.close_of(new_due_day)
    # the reminder keeps its share of the (longer) time allowed
    received = (
        report.created_at if report.reopen_count == 0 else report.routed_at or now
    )  # a reopened round counts from its routing
    allowed = calendar.working_days_count(calendar.received_day(received), new_due_day)
    remind = calendar.point_in_allowed_time(received, allowed, deadlines.reminder_share)
    report.original_due_at = report.due_at
    report.due_at = new_due
    report.extension_reason = reason.strip()
    # a pending request from an officer is answered by this grant
    report.extension_requested_until = None
    report.extension_request_reason = None
    report.extension_requested_by = None
    report.extension_requested_at = None
    report.remind_at = remind
    if remind > now:
        report.reminded_at = None
    report.escalate_at = deadlines.escalate_at(new_due)
    report.updated_at = now
    session.add(
        ReportEvent(
            report_id=report.id,
            at=now,
            kind="extended",
            actor_id=actor.user_id,
            actor_kind="staff",
            public=True,
            body=reason.strip(),
            unit_id=report.unit_id,
        )
    )
    await session.flush()
    await notify(
        session,
        [
            Notice(
                "report_extended",
                report.id,
                report.code,
                "followers",
                f"extended:{report.id}",
                due=new_due,
                data=resident_link(report.id),
            )
        ],
        now,
    )
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.extended",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={
            "from": report.original_due_at.isoformat() if report.original_due_at else None,
            "to": new_due.isoformat(),
            "working_days_allowed": allowed,
            "reason": reason.strip(),
        },
    )
    return new_due


# ---------------------------------------------------------------- sweeps (cron)


@dataclass(frozen=True, slots=True)
class SweepResult:
    reminded: int
    overdue: int
    escalated: int


# the deadline statuses as a literal IN list (lifecycle.sql_in), so the partial indexes
# ix_reports_open_remind / ix_reports_open_due, whose predicates name the same list, serve
_REMIND = text(
    f"""
    UPDATE reports r SET reminded_at = :now
      FROM units u
     WHERE r.reminded_at IS NULL AND r.remind_at <= :now AND r.due_at > :now
       AND r.status IN ({lifecycle.sql_in(lifecycle.DEADLINE_STATUSES)}) AND u.id = r.unit_id
    RETURNING r.id, r.code, r.unit_id, r.due_at, r.reopen_count, u.name_vi, u.name_en
    """
)

_OVERDUE = text(
    f"""
    WITH o AS (
        UPDATE reports r SET overdue_at = :now
          FROM units u
         WHERE r.overdue_at IS NULL AND r.due_at <= :now
           AND r.status IN ({lifecycle.sql_in(lifecycle.DEADLINE_STATUSES)}) AND u.id = r.unit_id
        RETURNING r.id, r.code, r.unit_id, r.due_at, r.reopen_count, u.name_vi, u.name_en
    ), events AS (
        INSERT INTO report_events (report_id, at, kind, actor_kind, public, unit_id)
        SELECT o.id, :now, 'overdue', 'system', true, o.unit_id FROM o
    )
    SELECT * FROM o
    """
)

_ESCALATE = text(
    """
    WITH target AS (
        SELECT r.id, coalesce(cur.parent_id, d.id) AS unit_id
          FROM reports r
          JOIN units cur ON cur.id = r.unit_id
          CROSS JOIN LATERAL (
                SELECT id FROM units WHERE kind = 'dispatcher' ORDER BY code LIMIT 1
          ) d
         WHERE r.escalated_at IS NULL AND r.escalate_at <= :now
           AND r.status = ANY(CAST(:escalate_from AS text[]))
           FOR UPDATE OF r SKIP LOCKED
    ), e AS (
        -- the ANY(ARRAY(...)) keeps the planner from a hash join over every report (it
        -- misjudges how few rows "target" has); measured 377 → 16 ms on 1M open reports
        UPDATE reports r
           SET escalated_at = :now, unit_id = t.unit_id, status = 'assigned', updated_at = :now
          FROM target t JOIN units u ON u.id = t.unit_id
         WHERE r.id = t.id AND r.id = ANY(ARRAY(SELECT id FROM target))
        RETURNING r.id, r.code, r.unit_id, r.due_at, r.reopen_count, u.name_vi, u.name_en
    ), events AS (
        INSERT INTO report_events (report_id, at, kind, actor_kind, public, unit_id)
        SELECT e.id, :now, 'escalated', 'system', false, e.unit_id FROM e
    )
    SELECT * FROM e
    """
)


def _staff_notices(kind: str, rows: Sequence[Any]) -> list[Notice]:
    return [
        Notice(
            kind,
            row.id,
            row.code,
            "unit",
            f"{kind}:{row.id}:r{row.reopen_count}",
            unit_id=row.unit_id,
            unit_vi=row.name_vi,
            unit_en=row.name_en,
            due=row.due_at,
            data=staff_link(row.id),
        )
        for row in rows
    ]


async def sweep_deadlines(session: AsyncSession, now: datetime) -> SweepResult:
    """Remind at 75 %, mark overdue, escalate the long overdue: one statement each, each
    touching only the rows that change (partial indexes on the instants)."""
    reminded = (await session.execute(_REMIND, {"now": now})).all()
    overdue = (await session.execute(_OVERDUE, {"now": now})).all()
    escalated = (
        await session.execute(_ESCALATE, {"now": now, "escalate_from": ESCALATE_FROM})
    ).all()
    await notify(
        session,
        _staff_notices("report_reminder", reminded)
        + _staff_notices("report_overdue", overdue)
        + _staff_notices("report_escalated", escalated),
        now,
    )
    return SweepResult(len(reminded), len(overdue), len(escalated))


# ---------------------------------------------------------------- satisfaction (cron)

_CLOSE_UNRATED = text(
    """
    WITH c AS (
        UPDATE reports r
           SET status = 'closed', closed_at = :now, updated_at = :now,
               closed_reason = CASE WHEN EXISTS (
                   SELECT 1 FROM report_ratings rt
                    WHERE rt.report_id = r.id AND rt.resolution_round = r.reopen_count
               ) THEN 'rated' ELSE 'not_rated' END
         WHERE r.status = ANY(CAST(:close_from AS text[])) AND r.resolved_at <= :cutoff
        RETURNING r.id, r.closed_reason, CAST(:from_status AS text) AS from_status
    )
    INSERT INTO report_events
           (report_id, at, kind, from_status, to_status, actor_kind, public, body)
    SELECT c.id, :now, 'transition', c.from_status, 'closed', 'system', true, c.closed_reason
      FROM c
    RETURNING report_id
    """
)


async def close_unrated(session: AsyncSession, now: datetime, window_days: int) -> int:
    """Resolved reports left unrated (or rated "not satisfied" and not reopened) for
    ``window_days`` are closed. "Not rated" is never counted as satisfied."""
    result = await session.execute(
        _CLOSE_UNRATED,
        {
            "now": now,
            "cutoff": now - timedelta(days=window_days),
            "close_from": CLOSE_FROM,
            "from_status": CLOSE_FROM[0],
        },
    )
    return len(result.all())


# ---------------------------------------------------------------- reconciliation (cron)


async def count_awaiting_routing(
    session: AsyncSession, now: datetime, older_than_seconds: int
) -> int:
    """Submitted or reopened reports left unrouted since a while before ``now``."""
    cutoff = now - timedelta(seconds=older_than_seconds)
    return (
        await session.scalar(
            select(func.count())
            .select_from(Report)
            .where(Report.status.in_(ROUTE_FROM), Report.updated_at <= cutoff)
        )
        or 0  # count() always gives a row: for mypy, which types scalar() as optional
    )


# ---------------------------------------------------------------- rules (admin)


def _rule_out(rule: RoutingRule, unit: Unit) -> RuleOut:
    return RuleOut(
        id=rule.id,
        category_code=rule.category_code,
        area_code=rule.area_code,
        unit_code=unit.code,
        priority=rule.priority,
        active=rule.active,
        note=rule.note,
        created_at=rule.created_at,
    )


async def list_rules(session: AsyncSession, category_code: str | None = None) -> list[RuleOut]:
    stmt = (
        select(RoutingRule, Unit)
        .join(Unit, Unit.id == RoutingRule.unit_id)
        .order_by(RoutingRule.category_code, RoutingRule.area_code.nulls_last(), RoutingRule.id)
    )
    if category_code:
        stmt = stmt.where(RoutingRule.category_code == category_code)
    return [_rule_out(rule, unit) for rule, unit in (await session.execute(stmt)).all()]


async def _check_rule_refs(session: AsyncSession, body: RuleIn) -> Unit:
    errors = []
    if await session.get(Category, body.category_code) is None:
        errors.append(FieldError(field="category_code", message=body.category_code, source="body"))
    if body.area_code is not None:
        if await session.get(Area, body.area_code) is None:
            errors.append(FieldError(field="area_code", message=body.area_code, source="body"))
    unit = await session.scalar(select(Unit).where(Unit.code == body.unit_code))
    if unit is None:
        errors.append(FieldError(field="unit_code", message=body.unit_code, source="body"))
    if errors:
        raise Unprocessable("rule_refs_unknown", errors=errors)
    assert unit is not None
    return unit


async def create_rule(
    session: AsyncSession, principal: Principal, body: RuleIn, ip: str | None = None
) -> RuleOut:
    unit = await _check_rule_refs(session, body)
    duplicate = await session.scalar(
        select(RoutingRule.id).where(
            RoutingRule.category_code == body.category_code,
            func.coalesce(RoutingRule.area_code, "") == (body.area_code or ""),
            RoutingRule.unit_id == unit.id,
        )
    )
    if duplicate is not None:
        raise Conflict("rule_exists")
    rule = RoutingRule(
        category_code=body.category_code,
        area_code=body.area_code,
        unit_id=unit.id,
        priority=body.priority,
        active=body.active,
        note=body.note,
        created_by=principal.user_id,
    )
    session.add(rule)
    await session.flush()
    await session.refresh(rule)
    await audit.record(
        session,
        actor_id=principal.user_id,
        actor_kind="staff",
        action="routing_rule.created",
        object_type="routing_rule",
        object_id=str(rule.id),
        ip=ip,
        details={"category": rule.category_code, "area": rule.area_code, "unit": unit.code},
    )
    return _rule_out(rule, unit)


async def update_rule(
    session: AsyncSession,
    principal: Principal,
    rule_id: uuid.UUID,
    body: RuleIn,
    ip: str | None = None,
) -> RuleOut:
    rule = await session.scalar(
        select(RoutingRule).where(RoutingRule.id == rule_id).with_for_update()
    )
    if rule is None:
        raise NotFound("rule_not_found")
    unit = await _check_rule_refs(session, body)
    clash = await session.scalar(
        select(RoutingRule.id).where(
            RoutingRule.id != rule.id,
            RoutingRule.category_code == body.category_code,
            func.coalesce(RoutingRule.area_code, "") == (body.area_code or ""),
            RoutingRule.unit_id == unit.id,
        )
    )
    if clash is not None:
        raise Conflict("rule_exists")
    rule.category_code = body.category_code
    rule.area_code = body.area_code
    rule.unit_id = unit.id
    rule.priority = body.priority
    rule.active = body.active
    rule.note = body.note
    await audit.record(
        session,
        actor_id=principal.user_id,
        actor_kind="staff",
        action="routing_rule.updated",
        object_type="routing_rule",
        object_id=str(rule.id),
        ip=ip,
        details={"category": rule.category_code, "area": rule.area_code, "unit": unit.code},
    )
    return _rule_out(rule, unit)


async def delete_rule(
    session: AsyncSession, principal: Principal, rule_id: uuid.UUID, ip: str | None = None
) -> None:
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("rule_not_found")
    await session.delete(rule)
    await audit.record(
        session,
        actor_id=principal.user_id,
        actor_kind="staff",
        action="routing_rule.deleted",
        object_type="routing_rule",
        object_id=str(rule_id),
        ip=ip,
        details={"category": rule.category_code, "area": rule.area_code},
    )
