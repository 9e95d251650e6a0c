"""The report lifecycle as one transition table. Every transition writes a timeline
event in the same transaction as the status change.

    submitted → assigned → in_progress → resolved → closed
    submitted/assigned/in_progress → rejected (with a reason) | duplicate (merged)
    submitted → withdrawn (by the reporter)
    resolved → reopened (reporter not satisfied, once, within 7 days) → assigned
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


@dataclass(frozen=True, slots=True)
class Rule:
    actors: frozenset[str]  # resident (the reporter) | staff | system
    public: bool = True  # is the timeline event shown to residents and the public?


def _rule(*actors: str, public: bool = True) -> Rule:
    return Rule(frozenset(actors), public)


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("submitted", "assigned"): _rule("system", "staff"),
    ("submitted", "rejected"): _rule("staff"),
    ("submitted", "duplicate"): _rule("staff"),
    ("submitted", "withdrawn"): _rule("resident"),
    ("assigned", "in_progress"): _rule("staff"),
    ("assigned", "rejected"): _rule("staff"),
    ("assigned", "duplicate"): _rule("staff"),
    ("in_progress", "resolved"): _rule("staff"),
    ("in_progress", "rejected"): _rule("staff"),
    ("in_progress", "duplicate"): _rule("staff"),
    ("resolved", "closed"): _rule("resident", "system"),
    ("resolved", "reopened"): _rule("resident"),
    ("reopened", "assigned"): _rule("system", "staff"),
}


def route_job_id(report_id: uuid.UUID, reopen_count: int = 0) -> str:
    """The deterministic id of the job that routes a report (per handling round), so
    enqueueing it twice — from filing and from the reconciliation — is one job."""
    return f"route:{report_id}:r{reopen_count}"


def enqueue_routing(report_id: uuid.UUID, reopen_count: int = 0) -> None:
    """After commit: ask a worker to route the report (app/routing)."""
    jobs.enqueue("route_report", str(report_id), job_id=route_job_id(report_id, reopen_count))


def allowed_from(status: str, actor_kind: str | None = None) -> list[str]:
    return sorted(
        to
        for (frm, to), rule in TRANSITIONS.items()
        if frm == status and (actor_kind is None or actor_kind in rule.actors)
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
) -> ReportEvent:
    """Move the report to ``target`` or raise 409 naming the allowed targets. The caller
    holds the report's row lock."""
    rule = TRANSITIONS.get((report.status, target))
    if rule is None or actor_kind not in rule.actors:
        raise Conflict(
            "invalid_transition",
            params={"current": report.status, "target": target},
            allowed=allowed_from(report.status, actor_kind),
        )
    event = ReportEvent(
        report_id=report.id,
        at=now,
        kind="transition",
        from_status=report.status,
        to_status=target,
        actor_id=actor_id,
        actor_kind=actor_kind,
        public=rule.public,
        body=body,
    )
    report.status = target
    report.updated_at = now
    if target == "resolved":
        report.resolved_at = now
    if target in FINAL_STATUSES:
        report.closed_at = now
    session.add(event)
    return event
