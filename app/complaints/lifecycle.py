"""The report lifecycle as one transition table. Every transition writes a timeline
event in the same transaction as the status change.

    submitted → assigned → in_progress → resolved → closed
    submitted/assigned/in_progress → rejected (with a reason) | duplicate (merged)
    submitted → withdrawn (by the reporter)
    resolved → reopened (reporter not satisfied, once, within 7 days) → assigned
    assigned/in_progress → assigned (to another unit: a transfer or the escalation)

Each edge names the actions that make it. Row-by-row changes call ``transition``;
set-based statements (routing, escalation, the auto-close of unrated resolutions) select
the rows they change by ``sources(target, action)`` so they cannot leave the table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints.models import Report, ReportEvent
from app.core import jobs
from app.core.errors import Conflict

OPEN_STATUSES = ("submitted", "assigned", "in_progress", "reopened")
FINAL_STATUSES = ("closed", "rejected", "duplicate", "withdrawn")
# the open statuses a unit's deadline runs in (a submitted report has none until routed):
# what the reminder, overdue and escalation sweeps and their partial indexes cover
DEADLINE_STATUSES = ("assigned", "in_progress", "reopened")
# a unit is handling the report: what an extension may be granted or asked for in
HANDLING_STATUSES = ("assigned", "in_progress")
assert set(HANDLING_STATUSES) <= set(DEADLINE_STATUSES) <= set(OPEN_STATUSES)


def sql_in(statuses: tuple[str, ...]) -> str:
    """``'a', 'b'``: the body of an SQL ``IN (...)`` list built from one of the constants
    here, for statements written as SQL text. Literal on purpose: a partial index whose
    predicate names the same list can then serve the statement, which a bound array
    parameter hides from the planner's generic plans."""
    assert all(s.isidentifier() for s in statuses), statuses  # our own codes, never input
    return ", ".join(f"'{s}'" for s in statuses)


@dataclass(frozen=True, slots=True)
class Rule:
    actors: frozenset[str]  # resident (the reporter) | staff | system
    actions: frozenset[str]  # the actions that make this change (tests prove each does)
    public: bool = True  # is the timeline event shown to residents and the public?
    # a move to another unit (transfer, escalation), named by its own action rather than
    # offered as a status target (allowed_from leaves it out)
    reassign: bool = False


def _rule(actors: str, actions: str, *, public: bool = True, reassign: bool = False) -> Rule:
    return Rule(frozenset(actors.split()), frozenset(actions.split()), public, reassign)


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("submitted", "assigned"): _rule("system staff", "route"),
    ("submitted", "rejected"): _rule("staff", "reject"),
    ("submitted", "duplicate"): _rule("staff", "merge"),
    ("submitted", "withdrawn"): _rule("resident", "withdraw"),
    ("assigned", "in_progress"): _rule("staff", "accept"),
    ("assigned", "rejected"): _rule("staff", "reject"),
    ("assigned", "duplicate"): _rule("staff", "merge"),
    # to another unit: a transfer, or the escalation sweep (to the unit above)
    ("assigned", "assigned"): _rule("staff system", "transfer escalate", reassign=True),
    ("in_progress", "assigned"): _rule("staff system", "transfer escalate", reassign=True),
    ("in_progress", "resolved"): _rule("staff", "resolve"),
    ("in_progress", "rejected"): _rule("staff", "reject"),
    ("in_progress", "duplicate"): _rule("staff", "merge"),
    ("resolved", "closed"): _rule("resident system", "rate auto_close"),
    ("resolved", "reopened"): _rule("resident", "reopen"),
    ("reopened", "assigned"): _rule("system staff", "route escalate"),
}


def sources(target: str, action: str) -> tuple[str, ...]:
    """The statuses ``action`` may move a report from to ``target``: what set-based
    statements (routing, escalation, the auto-close) select by."""
    return tuple(
        sorted(
            frm
            for (frm, to), rule in TRANSITIONS.items()
            if to == target and action in rule.actions
        )
    )


def allows(current: str, target: str, actor_kind: str, action: str | None = None) -> bool:
    rule = TRANSITIONS.get((current, target))
    return (
        rule is not None
        and actor_kind in rule.actors
        and (action is None or action in rule.actions)
    )


def route_job_id(report_id: uuid.UUID, reopen_count: int = 0) -> str:
    """The deterministic id of the job that routes a report (per handling round), so
    enqueueing it twice — from filing and from the reconciliation — is one job."""
    return f"route:{report_id}:r{reopen_count}"


def enqueue_routing(report_id: uuid.UUID, reopen_count: int = 0) -> None:
    """After commit: ask a worker to route the report (app/routing)."""
    jobs.enqueue("route_report", str(report_id), job_id=route_job_id(report_id, reopen_count))


def allowed_from(status: str, actor_kind: str | None = None) -> list[str]:
    """The statuses an actor may move a report to (re-assignments are named by their own
    actions, transfer and escalation, and left out)."""
    return sorted(
        to
        for (frm, to), rule in TRANSITIONS.items()
        if frm == status and not rule.reassign and (actor_kind is None or actor_kind in rule.actors)
    )


def transition(
    session: AsyncSession,
    report: Report,
    target: str,
    *,
    actor_id: uuid.UUID | None,
    actor_kind: str,
    now: datetime,
    body: str | None = None,
    action: str | None = None,
    kind: str = "transition",
    unit_id: uuid.UUID | None = None,
) -> ReportEvent:
    """Move the report to ``target`` (by ``action``, when given) or raise 409 naming the
    allowed targets; the timeline event (of ``kind``) is added in the same transaction.
    The caller holds the report's row lock."""
    rule = TRANSITIONS.get((report.status, target))
    if rule is None or not allows(report.status, target, actor_kind, action):
        raise Conflict(
            "invalid_transition",
            params={"current": report.status, "target": target},
            allowed=allowed_from(report.status, actor_kind),
        )
    event = ReportEvent(
        report_id=report.id,
        at=now,
        kind=kind,
        from_status=report.status,
        to_status=target,
        actor_id=actor_id,
        actor_kind=actor_kind,
        public=rule.public,
        body=body,
        unit_id=unit_id,
    )
    report.status = target
    report.updated_at = now
    if target == "resolved":
        report.resolved_at = now
    if target in FINAL_STATUSES:
        report.closed_at = now
    session.add(event)
    return event
