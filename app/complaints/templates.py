"""Response templates (mẫu trả lời, issue 22 item 1): ready answers a unit's managers (or
the city's admins) keep per category and status, in Vietnamese and English, with
placeholders filled in from the report (``{code}``, ``{deadline}``, ``{unit}``,
``{category}``, ``{working_days}``). Placeholders are checked when a template is saved,
never when it is sent.

Sending one is not an action of its own: it is the reply, the resolution or the
rejection the template names, through that action's one service function in
``app/complaints/handling.py`` (one timeline event, the notification, the audit row).

A template may be sent automatically when a report enters a status: every transition
writes its timeline event, and a trigger on ``report_events`` (migration 0070) queues the
report and status in ``response_template_auto_sends`` in that same transaction (routing's
set-based statements included); the worker's ``send_automatic_replies`` sends them as the
system, once per report and status, and only while the report is still in that status.
"""

from __future__ import annotations

import string
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.complaints import handling
from app.complaints.links import resident_link
from app.complaints.models import Report, ReportEvent
from app.complaints.template_models import ResponseTemplate
from app.console.schemas import MessageIn, RejectIn, ResolveIn
from app.core import audit
from app.core.calendar import WorkingCalendar
from app.core.errors import BadRequest, Conflict, FieldError, Forbidden, NotFound, Unprocessable
from app.core.schemas import Input
from app.notifications.service import Notice, format_due, notify
from app.places.models import Category, Unit
from app.policy import Actor
from app.settings import Settings

PLACEHOLDERS = ("code", "deadline", "unit", "category", "working_days")
OpenStatus = Literal["submitted", "assigned", "in_progress", "reopened"]
Body = Annotated[str, Meta(min_length=1, max_length=4000)]


# ---------------------------------------------------------------- bodies


class TemplateIn(Input):
    """A template as a manager or an admin writes it."""

    title: Annotated[str, Meta(min_length=1, max_length=200)]
    body_vi: Body
    body_en: Body
    unit_code: Annotated[str, Meta(min_length=1, max_length=40)] | None = None  # None: city-wide
    category_code: Annotated[str, Meta(min_length=1, max_length=40)] | None = None  # None: any
    for_status: OpenStatus | None = None  # offered on reports in this status (None: any)
    target_status: Literal["resolved", "rejected"] | None = None  # None: a reply
    auto_on_status: OpenStatus | None = None  # sent by the system when a report enters it


class TemplateOut(msgspec.Struct):
    id: uuid.UUID
    title: str
    body_vi: str
    body_en: str
    unit_code: str | None
    category_code: str | None
    for_status: str | None
    target_status: str | None
    auto_on_status: str | None
    updated_at: datetime
    may_edit: bool  # the reader may change or delete it


class TemplateList(msgspec.Struct):
    items: list[TemplateOut]


class FilledTemplate(msgspec.Struct):
    """A template offered on one report, its text filled in for the report's reporter."""

    id: uuid.UUID
    title: str
    target_status: str | None
    locale: str  # the reporter's language, which ``body`` is in
    body: str


class FilledTemplates(msgspec.Struct):
    items: list[FilledTemplate]


class SendIn(Input):
    """Send a template on a report: its text filled in, or as the staff member edited it."""

    template_id: uuid.UUID
    body: Body | None = None


# ---------------------------------------------------------------- placeholders


def check_placeholders(field: str, value: str) -> None:
    """400 naming the first unknown placeholder or malformed brace (``{{`` and ``}}`` are
    literal braces)."""
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise BadRequest(
            "template_braces_malformed",
            params={"field": field},
            errors=[FieldError(field=field, message=str(exc), source="body")],
        ) from exc
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            raise BadRequest(
                "template_placeholder_unknown",
                params={"placeholder": shown, "field": field, "known": placeholder_list()},
                errors=[FieldError(field=field, message=shown, source="body")],
            )


def placeholder_list() -> str:
    return ", ".join("{" + p + "}" for p in PLACEHOLDERS)


def fill(template: str, values: dict[str, str]) -> str:
    """The text with its (checked) placeholders replaced; no attribute or index access."""
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, ""))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """What a template's placeholders and its applicability read of a report."""

    id: uuid.UUID
    code: str
    status: str
    unit_id: uuid.UUID | None
    category_code: str
    due_at: datetime | None
    locale: str  # the reporter's language
    unit_vi: str
    unit_en: str
    category_vi: str
    category_en: str

    def values(self, calendar: WorkingCalendar, now: datetime) -> dict[str, str]:
        vi = self.locale == "vi"
        days = "—"
        if self.due_at is not None:
            today, due_day = calendar.local(now).date(), calendar.local(self.due_at).date()
            days = str(calendar.working_days_count(today, due_day)) if due_day > today else "0"
        return {
            "code": self.code,
            "deadline": format_due(self.due_at, self.locale),
            "unit": (self.unit_vi if vi else self.unit_en) or "—",
            "category": self.category_vi if vi else self.category_en,
            "working_days": days,
        }


FACTS = text(
    """
    SELECT r.id, r.code, r.status, r.unit_id, r.category_code, r.due_at, u.locale,
           coalesce(n.name_vi, '') AS unit_vi, coalesce(n.name_en, '') AS unit_en,
           c.name_vi AS category_vi, c.name_en AS category_en
      FROM reports r
      JOIN users u ON u.id = r.reporter_id
      JOIN categories c ON c.code = r.category_code
      LEFT JOIN units n ON n.id = r.unit_id
     WHERE r.id = ANY(:ids)
    """
)


async def report_facts(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, ReportFacts]:
    rows = await session.execute(FACTS, {"ids": ids})
    return {row.id: ReportFacts(**row._mapping) for row in rows}


def applies(template: ResponseTemplate, facts: ReportFacts) -> bool:
    """Is the template meant for this report (its unit, category and status)?"""
    return (
        (template.unit_id is None or template.unit_id == facts.unit_id)
        and (template.category_code is None or template.category_code == facts.category_code)
        and (template.for_status is None or template.for_status == facts.status)
    )


# ---------------------------------------------------------------- managing templates


async def _out(
    session: AsyncSession, actor: Actor, rows: list[ResponseTemplate]
) -> list[TemplateOut]:
    unit_ids = {t.unit_id for t in rows if t.unit_id}
    codes = (
        dict((await session.execute(select(Unit.id, Unit.code).where(Unit.id.in_(unit_ids)))).all())
        if unit_ids
        else {}
    )
    return [
        TemplateOut(
            id=t.id,
            title=t.title,
            body_vi=t.body_vi,
            body_en=t.body_en,
            unit_code=codes.get(t.unit_id) if t.unit_id else None,
            category_code=t.category_code,
            for_status=t.for_status,
            target_status=t.target_status,
            auto_on_status=t.auto_on_status,
            updated_at=t.updated_at,
            may_edit=policy.may_manage_response_template(actor, t.unit_id),
        )
        for t in rows
    ]


async def list_templates(
    session: AsyncSession, actor: Actor, unit_code: str | None = None
) -> TemplateList:
    """The templates the actor sees: the city's and those of their units (every unit's
    for the city-wide roles), optionally of one unit only; by title."""
    stmt = select(ResponseTemplate).order_by(ResponseTemplate.title, ResponseTemplate.id)
    scope = policy.response_template_scope(actor)
    if scope is not None:
        stmt = stmt.where(ResponseTemplate.unit_id.is_(None) | ResponseTemplate.unit_id.in_(scope))
    if unit_code:
        unit_id = await session.scalar(select(Unit.id).where(Unit.code == unit_code))
        if unit_id is None:
            raise NotFound("unit_not_found")
        stmt = stmt.where(ResponseTemplate.unit_id == unit_id)
    return TemplateList(items=await _out(session, actor, list(await session.scalars(stmt))))


async def _checked(session: AsyncSession, actor: Actor, cmd: TemplateIn) -> uuid.UUID | None:
    """The template's unit id after every check of what was written (400/403/404 naming
    what is wrong; nothing written)."""
    for field in ("body_vi", "body_en"):
        check_placeholders(field, getattr(cmd, field))
    if cmd.auto_on_status and cmd.target_status:
        raise BadRequest(
            "template_auto_is_a_reply",
            errors=[FieldError(field="target_status", message="must be empty", source="body")],
        )
    unit_id = None
    if cmd.unit_code is not None:
        unit_id = await session.scalar(select(Unit.id).where(Unit.code == cmd.unit_code))
        if unit_id is None:
            raise Unprocessable(
                "unit_not_found",
                errors=[FieldError(field="unit_code", message=cmd.unit_code, source="body")],
            )
    if cmd.category_code is not None and not await session.scalar(
        select(Category.code).where(Category.code == cmd.category_code)
    ):
        raise Unprocessable(
            "category_unknown",
            params={"code": cmd.category_code},
            errors=[FieldError(field="category_code", message=cmd.category_code, source="body")],
        )
    if not policy.may_manage_response_template(actor, unit_id):
        raise Forbidden("templates_not_yours")
    return unit_id


async def _record(
    session: AsyncSession, actor: Actor, action: str, template_id: uuid.UUID, **details: object
) -> None:
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action=f"response_template.{action}",
        object_type="response_template",
        object_id=str(template_id),
        ip=actor.ip,
        details={k: v for k, v in details.items() if v is not None},
    )


async def create_template(session: AsyncSession, actor: Actor, cmd: TemplateIn) -> TemplateOut:
    unit_id = await _checked(session, actor, cmd)
    template = ResponseTemplate(
        id=uuid.uuid4(),
        unit_id=unit_id,
        category_code=cmd.category_code,
        for_status=cmd.for_status,
        title=cmd.title.strip(),
        body_vi=cmd.body_vi,
        body_en=cmd.body_en,
        target_status=cmd.target_status,
        auto_on_status=cmd.auto_on_status,
        created_by=actor.user_id,
        created_at=actor.now,
        updated_at=actor.now,
    )
    session.add(template)
    await session.flush()
    await _record(session, actor, "created", template.id, unit=cmd.unit_code)
    return (await _out(session, actor, [template]))[0]


async def _editable(
    session: AsyncSession, actor: Actor, template_id: uuid.UUID
) -> ResponseTemplate:
    template = await session.scalar(
        select(ResponseTemplate).where(ResponseTemplate.id == template_id).with_for_update()
    )
    if template is None or not policy.may_see_response_template(actor, template.unit_id):
        raise NotFound("template_not_found")
    if not policy.may_manage_response_template(actor, template.unit_id):
        raise Forbidden("templates_not_yours")
    return template


async def update_template(
    session: AsyncSession, actor: Actor, template_id: uuid.UUID, cmd: TemplateIn
) -> TemplateOut:
    template = await _editable(session, actor, template_id)
    unit_id = await _checked(session, actor, cmd)
    template.unit_id = unit_id
    template.category_code = cmd.category_code
    template.for_status = cmd.for_status
    template.title = cmd.title.strip()
    template.body_vi = cmd.body_vi
    template.body_en = cmd.body_en
    template.target_status = cmd.target_status
    template.auto_on_status = cmd.auto_on_status
    template.updated_at = actor.now
    await _record(session, actor, "updated", template.id, unit=cmd.unit_code)
    return (await _out(session, actor, [template]))[0]


async def delete_template(session: AsyncSession, actor: Actor, template_id: uuid.UUID) -> None:
    template = await _editable(session, actor, template_id)
    await session.execute(delete(ResponseTemplate).where(ResponseTemplate.id == template.id))
    await _record(session, actor, "deleted", template.id, title=template.title)


# ---------------------------------------------------------------- using templates


async def _visible_facts(session: AsyncSession, actor: Actor, report_id: uuid.UUID) -> ReportFacts:
    facts = (await report_facts(session, [report_id])).get(report_id)
    if facts is None:
        raise NotFound("report_not_found")
    if not policy.may_see_report(actor, facts.unit_id):
        raise Forbidden("not_your_report")
    return facts


async def templates_for_report(
    session: AsyncSession, calendar: WorkingCalendar, actor: Actor, report_id: uuid.UUID
) -> FilledTemplates:
    """The templates offered on a report (its unit's and the city's, for its category and
    status, whose action the actor may take), filled in in the reporter's language."""
    facts = await _visible_facts(session, actor, report_id)
    rows = await session.scalars(
        select(ResponseTemplate)
        .where(
            ResponseTemplate.unit_id.is_(None) | (ResponseTemplate.unit_id == facts.unit_id),
            ResponseTemplate.category_code.is_(None)
            | (ResponseTemplate.category_code == facts.category_code),
            ResponseTemplate.for_status.is_(None) | (ResponseTemplate.for_status == facts.status),
        )
        .order_by(ResponseTemplate.title, ResponseTemplate.id)
    )
    values = facts.values(calendar, actor.now)
    return FilledTemplates(
        items=[
            FilledTemplate(
                id=t.id,
                title=t.title,
                target_status=t.target_status,
                locale=facts.locale,
                body=fill(t.body_en if facts.locale == "en" else t.body_vi, values),
            )
            for t in rows
            if policy.may_use_response_template(
                actor, t.unit_id, facts.unit_id, ACTION_OF[t.target_status]
            )
        ]
    )


# the console action a template's target makes (policy.REPORT_ACTIONS)
ACTION_OF: dict[str | None, str] = {None: "reply", "resolved": "resolve", "rejected": "reject"}


def _command[T: msgspec.Struct](schema: type[T], field: str, body: str) -> T:
    """The action's command, with the action's own limits (a resolution's answer is at
    least 10 characters …); 422 naming ``body`` otherwise."""
    try:
        return msgspec.convert({field: body}, schema)
    except msgspec.ValidationError as exc:
        raise Unprocessable(
            "form_invalid",
            params={"fields": "body"},
            errors=[FieldError(field="body", message=str(exc), source="body")],
        ) from exc


async def send_template(
    session: AsyncSession,
    settings: Settings,
    calendar: WorkingCalendar,
    actor: Actor,
    report_id: uuid.UUID,
    cmd: SendIn,
    *,
    template: ResponseTemplate | None = None,
    facts: ReportFacts | None = None,
) -> Report:
    """Answer a report with a template: the reply, resolution or rejection it names, by
    that action's service function (policy, lifecycle, timeline, notice, audit there)."""
    if template is None:
        template = await session.get(ResponseTemplate, cmd.template_id)
        if template is None or not policy.may_see_response_template(actor, template.unit_id):
            raise NotFound("template_not_found")
    if facts is None:
        facts = await _visible_facts(session, actor, report_id)
    action = ACTION_OF[template.target_status]
    if not applies(template, facts) or not policy.may_use_response_template(
        actor, template.unit_id, facts.unit_id, action
    ):
        raise Conflict("template_not_for_report", params={"code": facts.code})
    body = cmd.body.strip() if cmd.body else ""
    if not body:
        raw = template.body_en if facts.locale == "en" else template.body_vi
        body = fill(raw, facts.values(calendar, actor.now))
    if action == "resolve":
        return await handling.resolve(
            session, settings, calendar, actor, report_id, _command(ResolveIn, "answer", body)
        )
    if action == "reject":
        return await handling.reject(session, actor, report_id, _command(RejectIn, "reason", body))
    return await handling.add_message(
        session, actor, report_id, _command(MessageIn, "body", body), kind="reply"
    )


# ---------------------------------------------------------------- automatic templates

PENDING = text(
    """
    SELECT o.report_id, o.status AS entered, t.id AS template_id, t.body_vi, t.body_en
      FROM response_template_auto_sends o
      JOIN reports r ON r.id = o.report_id
      LEFT JOIN LATERAL (
            SELECT t.id, t.body_vi, t.body_en
              FROM response_templates t
             WHERE t.auto_on_status = o.status
               AND (t.unit_id IS NULL OR t.unit_id = r.unit_id)
               AND (t.category_code IS NULL OR t.category_code = r.category_code)
             ORDER BY (t.unit_id IS NULL), (t.category_code IS NULL), t.created_at, t.id
             LIMIT 1) t ON true
     WHERE o.sent_at IS NULL
     ORDER BY o.queued_at
     LIMIT :limit
       FOR UPDATE OF o, r SKIP LOCKED
    """
)


AUTO_BATCH = 200  # reports answered automatically per transaction

MARK_DONE = text(
    """
    UPDATE response_template_auto_sends o
       SET sent_at = :now, outcome = v.outcome, template_id = v.template_id
      FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:outcomes AS text[]),
                  CAST(:templates AS uuid[])) AS v(report_id, status, outcome, template_id)
     WHERE o.report_id = v.report_id AND o.status = v.status
    """
)


async def send_automatic_replies(
    session: AsyncSession, calendar: WorkingCalendar, now: datetime, limit: int = AUTO_BATCH
) -> int:
    """Send the automatic templates of reports that entered their status (the trigger's
    queue), as the system: a public reply on the timeline, the followers told, an audit
    row. The most specific template wins (the unit's over the city's, a category's over
    any). A report that already left the status, or that no template applies to any
    more, is marked skipped. Returns how many rows were handled (sent or skipped)."""
    pending = (await session.execute(PENDING, {"limit": limit})).all()
    if not pending:
        return 0
    facts = await report_facts(session, [p.report_id for p in pending])
    sent, skipped = [], []
    for row in pending:
        f = facts[row.report_id]
        if row.template_id is None or f.status != row.entered:
            skipped.append(row)
            continue
        body = fill(row.body_en if f.locale == "en" else row.body_vi, f.values(calendar, now))
        event = ReportEvent(
            report_id=f.id,
            at=now,
            kind="reply",
            actor_id=None,
            actor_kind="system",
            public=True,
            body=body,
            unit_id=f.unit_id,
        )
        session.add(event)
        sent.append((row, f, event))
    await session.flush()  # the events' ids key the notifications
    await notify(
        session,
        [
            Notice(
                "report_answered",
                f.id,
                f.code,
                "followers",
                f"reply:{event.id}",
                unit_vi=f.unit_vi,
                unit_en=f.unit_en,
                due=f.due_at,
                data=resident_link(f.id),
            )
            for _row, f, event in sent
        ],
        now,
    )
    for row, f, _event in sent:
        await audit.record(
            session,
            actor_id=None,
            actor_kind="system",
            action="report.replied",
            object_type="report",
            object_id=f.code,
            details={"template": str(row.template_id), "automatic": True, "status": row.entered},
        )
    if sent:
        await session.execute(
            update(Report).where(Report.id.in_([f.id for _r, f, _e in sent])).values(updated_at=now)
        )
    done = [(r, "sent") for r, _f, _e in sent] + [(r, "skipped") for r in skipped]
    await session.execute(
        MARK_DONE,
        {
            "now": now,
            "ids": [r.report_id for r, _ in done],
            "statuses": [r.entered for r, _ in done],
            "outcomes": [outcome for _, outcome in done],
            "templates": [r.template_id for r, _ in done],
        },
    )
    return len(pending)
