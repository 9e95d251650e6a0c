"""Bulk work on a unit's queue (xử lý hàng loạt, issue 22 item 2): accept, transfer or
answer with one template up to ``MAX_REPORTS`` reports in one step.

Nothing new happens to a report here: each goes through the same single-report service
function as the console's button (``handling.accept``, ``routing.transfer``,
``templates.send_template``), with the policy check per report, its own timeline event,
notification and audit row, each in a savepoint of its own. Before anything is done the
whole request is checked: every code must name a report, and the actor must be allowed
the action on each (a report of another unit refuses the request, nothing done). What
can still fail one report (a status the action cannot leave, a report moved away in the
meantime) rolls back that report alone and is listed with its reason; the others stay
done.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.complaints import handling, templates
from app.complaints.codes import normalize_code
from app.complaints.models import Report
from app.complaints.template_models import ResponseTemplate
from app.core import i18n
from app.core.calendar import WorkingCalendar
from app.core.errors import AppError, FieldError, Forbidden, NotFound, Unprocessable
from app.core.schemas import Input
from app.places.models import Unit
from app.policy import Actor
from app.routing import service as routing
from app.routing.schemas import Reason, TransferIn
from app.settings import Settings

MAX_REPORTS = 200
Code = Annotated[str, Meta(min_length=4, max_length=20)]


class BulkIn(Input):
    """One action on several reports: ``accept``; ``transfer`` (``unit_code``,
    ``reason``); ``answer`` with a template (``template_id``; its text filled in for each
    report's reporter)."""

    action: Literal["accept", "transfer", "answer"]
    codes: Annotated[list[Code], Meta(min_length=1, max_length=MAX_REPORTS)]
    unit_code: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    reason: Reason | None = None
    template_id: uuid.UUID | None = None


class BulkResult(msgspec.Struct, omit_defaults=True):
    code: str
    ok: bool
    status: str | None = None  # the report's status afterwards
    error: str | None = None  # the refusal's stable code
    detail: str | None = None  # and its text in the caller's language


class BulkOut(msgspec.Struct):
    done: int
    failed: int
    results: list[BulkResult]  # one per report, in the order asked


def _missing(field: str) -> Unprocessable:
    return Unprocessable(
        "form_invalid",
        params={"fields": field},
        errors=[FieldError(field=field, message="required for this action", source="body")],
    )


def _listed(codes: list[str]) -> str:
    shown = ", ".join(codes[:10])
    return shown + (f" (+{len(codes) - 10})" if len(codes) > 10 else "")


async def bulk_act(
    session: AsyncSession,
    settings: Settings,
    calendar: WorkingCalendar,
    actor: Actor,
    cmd: BulkIn,
    locale: str = "vi",
) -> BulkOut:
    """Do ``cmd.action`` on every report named; see the module's docstring."""
    codes = list(dict.fromkeys(normalize_code(c) for c in cmd.codes))
    template = None
    if cmd.action == "transfer":
        if cmd.unit_code is None:
            raise _missing("unit_code")
        if cmd.reason is None:
            raise _missing("reason")
        if await session.scalar(select(Unit.id).where(Unit.code == cmd.unit_code)) is None:
            raise Unprocessable(
                "unit_not_found",
                errors=[FieldError(field="unit_code", message=cmd.unit_code, source="body")],
            )
    if cmd.action == "answer":
        if cmd.template_id is None:
            raise _missing("template_id")
        template = await session.get(ResponseTemplate, cmd.template_id)
        if template is None or not policy.may_see_response_template(actor, template.unit_id):
            raise NotFound("template_not_found")
    action = templates.ACTION_OF[template.target_status] if template is not None else cmd.action
    rows = (
        await session.execute(
            select(Report.code, Report.id, Report.unit_id).where(Report.code.in_(codes))
        )
    ).all()
    found = {row.code: row for row in rows}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise NotFound(
            "bulk_reports_not_found",
            params={"codes": _listed(unknown)},
            errors=[FieldError(field="codes", message=c, source="body") for c in unknown],
        )
    refused = [c for c in codes if not policy.may_act_on_report(actor, action, found[c].unit_id)]
    if refused:
        raise Forbidden(
            "bulk_reports_not_yours",
            params={"codes": _listed(refused)},
            errors=[FieldError(field="codes", message=c, source="body") for c in refused],
        )
    facts = (
        await templates.report_facts(session, [found[c].id for c in codes])
        if template is not None
        else {}
    )
    results = []
    for code in codes:
        report_id = found[code].id
        try:
            report = await _alone(
                session, _one(session, settings, calendar, actor, cmd, report_id, template, facts)
            )
            status = report.status
        except AppError as exc:
            results.append(
                BulkResult(
                    code=code,
                    ok=False,
                    error=exc.code,
                    detail=i18n.translate(exc.code, locale, exc.params),
                )
            )
            continue
        results.append(BulkResult(code=code, ok=True, status=status))
    done = sum(r.ok for r in results)
    return BulkOut(done=done, failed=len(results) - done, results=results)


SAVEPOINT = text("SAVEPOINT bulk_report")
RELEASE = text("RELEASE SAVEPOINT bulk_report")
ROLLBACK = text("ROLLBACK TO SAVEPOINT bulk_report")


async def _alone(session: AsyncSession, work: Awaitable[Report]) -> Report:
    """``work`` in a savepoint of its own: undone alone if it raises a domain error.

    One savepoint name for every report (SQLAlchemy's ``begin_nested`` names each one
    anew, so each is a statement PostgreSQL prepares once and never again: 400 extra
    round trips for 200 reports). A refused action raises before it writes (the policy,
    the lifecycle and the action's own checks come first); whatever it had written is
    rolled back in PostgreSQL, and the objects it added or changed in the session are
    dropped from it, so the commit flushes nothing of it."""
    await session.flush()
    await session.execute(SAVEPOINT)
    try:
        report = await work
        await session.flush()
    except AppError:
        await session.execute(ROLLBACK)
        for obj in list(session.new):
            session.expunge(obj)
        for obj in list(session.dirty):
            session.expire(obj)
        raise
    await session.execute(RELEASE)
    return report


async def _one(
    session: AsyncSession,
    settings: Settings,
    calendar: WorkingCalendar,
    actor: Actor,
    cmd: BulkIn,
    report_id: uuid.UUID,
    template: ResponseTemplate | None,
    facts: dict[uuid.UUID, templates.ReportFacts],
) -> Report:
    """The single-report service function of the action."""
    if cmd.action == "accept":
        return await handling.accept(session, actor, report_id)
    if cmd.action == "transfer":
        assert cmd.unit_code is not None and cmd.reason is not None  # checked above
        await routing.transfer(
            session,
            settings,
            actor,
            report_id,
            TransferIn(unit_code=cmd.unit_code, reason=cmd.reason),
        )
        report = await session.get(Report, report_id)
        assert report is not None
        return report
    assert template is not None
    return await templates.send_template(
        session,
        settings,
        calendar,
        actor,
        report_id,
        templates.SendIn(template_id=template.id),
        template=template,
        facts=facts[report_id],
    )
