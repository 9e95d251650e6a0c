"""The console's pages for response templates and bulk work (issue 22 items 1-2): the
templates page (list, write, change, delete: managers for their units, admins for the
whole city), a template picked on a report page and filled in (editable) before it is
sent, and the queue's bulk form. The same services and policy as the JSON API
(``app/console/templates_api.py``, ``bulk_api.py``); pages, CSRF, CSP and error pages as
in ``app/web/api.py``. A template or a bulk request the service refuses is answered with
its page again, the reason beside the form, with the error's status code; nothing is
written."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app import policy
from app.complaints import bulk, templates
from app.complaints.template_models import AUTO_STATUSES, TEMPLATE_TARGETS
from app.console.schemas import StaffReportDetail
from app.core import db, i18n
from app.core.db import DbSession
from app.core.errors import AppError, FieldError, NotFound, Unprocessable
from app.web import forms
from app.web.api import (
    PAGES,
    UrlEncoded,
    _actor,
    _categories,
    _done,
    _refuse_nul,
    _signed_form,
    _user,
    form_page,
    language,
    refused,
    render,
)
from app.web.session import ConsoleUser

TEMPLATE_FIELDS = (
    "title",
    "body_vi",
    "body_en",
    "unit_code",
    "category_code",
    "for_status",
    "target_status",
    "auto_on_status",
)


class TemplateForm(forms.CsrfForm, kw_only=True):
    """A template as the page posts it: every field a string ("" for none), checked by
    the JSON API's ``TemplateIn`` once the empty ones are taken out."""

    title: str = ""
    body_vi: str = ""
    body_en: str = ""
    unit_code: str = ""
    category_code: str = ""
    for_status: str = ""
    target_status: str = ""
    auto_on_status: str = ""


class SendTemplateForm(forms.ActionForm, kw_only=True):
    """A template sent on a report, its text as the staff member left it."""

    template_id: uuid.UUID
    body: str = ""


class BulkForm(forms.CsrfForm, kw_only=True):
    """The queue's bulk form: the ticked codes (one or several) and the action's fields."""

    codes: list[str] | str = []
    action: str = ""
    unit_code: str = ""
    reason: str = ""
    template_id: str = ""
    back: str = ""


def _command[T: msgspec.Struct](values: dict[str, Any], schema: type[T]) -> T:
    """The JSON API's command from a page's fields ("" is none), with its limits: 422
    naming the field otherwise, as the JSON API would."""
    try:
        return msgspec.convert({k: v for k, v in values.items() if v not in ("", [])}, schema)
    except msgspec.ValidationError as exc:
        found = re.search(r"at `\$\.(\w+)|field `(\w+)`", str(exc))
        field = (found.group(1) or found.group(2)) if found else "form"
        raise Unprocessable(
            "form_invalid",
            params={"fields": field},
            errors=[FieldError(field=field, message=str(exc), source="body")],
        ) from exc


def _template_values(form: TemplateForm) -> dict[str, str]:
    return {name: getattr(form, name) for name in TEMPLATE_FIELDS}


def _manageable_units(request: Request) -> list[Any]:
    """The units whose templates the actor may write (from the reference snapshot)."""
    actor = _actor(request)
    snapshot = request.scope["state"]["reference"]
    return sorted(
        (u for u in snapshot.units.values() if policy.may_manage_response_template(actor, u.id)),
        key=lambda u: (u.kind, u.code),
    )


async def _templates_page(
    request: Request,
    session: DbSession,
    user: ConsoleUser,
    *,
    editing: templates.TemplateOut | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    error: str | None = None,
    error_fields: list[str] | None = None,
) -> Template:
    actor = _actor(request)
    listed = await templates.list_templates(session, actor)
    return render(
        request,
        "templates.html",
        user,
        status_code=status_code,
        templates=listed.items,
        editing=editing,
        values=values or {},
        error=error,
        error_fields=error_fields or [],
        units=_manageable_units(request),
        may_write_city=policy.may_manage_response_template(actor, None),
        categories=_categories(request),
        open_statuses=AUTO_STATUSES,
        targets=TEMPLATE_TARGETS,
        placeholders=templates.placeholder_list(),
        done=request.query_params.get("done"),
    )


def _refusal(exc: AppError, request: Request, key: str, values: dict[str, Any]) -> dict[str, Any]:
    if exc.status in (401,):
        raise exc
    refused(request, key, values, exc)  # in place (issue 23 item 2)
    return {
        "status_code": exc.status,
        "error": i18n.translate(exc.code, language(request), exc.params),
        "error_fields": [e.field for e in exc.errors or []],
    }


async def templates_again(request: Request, state: State, session: DbSession) -> Template:
    """The templates page for a refused form (issue 23 item 2), the one edited if any."""
    user = await _user(request, state, session)
    template_id = request.path_params.get("template_id")
    listed = await templates.list_templates(session, _actor(request))
    editing = next((t for t in listed.items if t.id == template_id and t.may_edit), None)
    return await _templates_page(request, session, user, editing=editing)


PAGES["templates"] = (templates_again, "/console/templates")


class ResponseTemplatePages(Controller):
    path = "/console"
    include_in_schema = False
    before_request = staticmethod(_refuse_nul)

    @get("/templates")
    async def list_page(self, request: Request, state: State, session: DbSession) -> Template:
        user = await _user(request, state, session)
        return await _templates_page(request, session, user)

    @get("/templates/{template_id:uuid}")
    async def edit_page(
        self, request: Request, state: State, session: DbSession, template_id: FromPath[uuid.UUID]
    ) -> Template:
        user = await _user(request, state, session)
        listed = await templates.list_templates(session, _actor(request))
        editing = next((t for t in listed.items if t.id == template_id and t.may_edit), None)
        if editing is None:
            raise NotFound("template_not_found")
        values = {name: getattr(editing, name) or "" for name in TEMPLATE_FIELDS}
        return await _templates_page(request, session, user, editing=editing, values=values)

    @post("/templates", opt=form_page("templates", "template_edit"))
    async def create(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[TemplateForm, UrlEncoded],
    ) -> Template | Redirect:
        user = await _signed_form(request, state, session, data)
        try:
            # a boundary of its own: a refused template writes nothing, the page still reads
            async with db.transaction(state.sessionmaker, state.redis) as inner:
                cmd = _command(_template_values(data), templates.TemplateIn)
                await templates.create_template(inner, _actor(request), cmd)
        except AppError as exc:
            values = _template_values(data)
            return await _templates_page(
                request,
                session,
                user,
                values=values,
                **_refusal(exc, request, "template_edit", values),
            )
        return Redirect("/console/templates?done=saved", status_code=303)

    @post("/templates/{template_id:uuid}", opt=form_page("templates", "template_edit"))
    async def change(
        self,
        request: Request,
        state: State,
        session: DbSession,
        template_id: FromPath[uuid.UUID],
        data: Annotated[TemplateForm, UrlEncoded],
    ) -> Template | Redirect:
        user = await _signed_form(request, state, session, data)
        try:
            async with db.transaction(state.sessionmaker, state.redis) as inner:
                cmd = _command(_template_values(data), templates.TemplateIn)
                await templates.update_template(inner, _actor(request), template_id, cmd)
        except AppError as exc:
            listed = await templates.list_templates(session, _actor(request))
            editing = next((t for t in listed.items if t.id == template_id), None)
            return await _templates_page(
                request,
                session,
                user,
                editing=editing,
                values=_template_values(data),
                **_refusal(exc, request, "template_edit", _template_values(data)),
            )
        return Redirect("/console/templates?done=saved", status_code=303)

    @post("/templates/{template_id:uuid}/delete", opt=form_page("templates", "template_delete"))
    async def remove(
        self,
        request: Request,
        state: State,
        session: DbSession,
        template_id: FromPath[uuid.UUID],
        data: Annotated[forms.CsrfForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await templates.delete_template(session, _actor(request), template_id)
        return Redirect("/console/templates?done=deleted", status_code=303)

    @post("/reports/{report_id:uuid}/template", opt=form_page("report", "template"))
    async def send(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[SendTemplateForm, UrlEncoded],
    ) -> Redirect:
        """A template sent on a report (the reply, resolution or rejection it names)."""
        await _signed_form(request, state, session, data)
        cmd = _command({"template_id": str(data.template_id), "body": data.body}, templates.SendIn)
        await templates.send_template(
            session, state.settings, state.deadlines.calendar, _actor(request), report_id, cmd
        )
        return _done(report_id, data, "template_sent")

    @post("/queue/bulk", opt=form_page("queue", "bulk"))
    async def bulk(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[BulkForm, UrlEncoded],
    ) -> Template:
        """The queue's bulk form: the queue again, with a line per report (done, or why
        not), or the refusal beside the form (nothing done)."""
        from app.web.api import queue_page

        user = await _signed_form(request, state, session, data)
        codes = [data.codes] if isinstance(data.codes, str) else data.codes
        values = {
            "action": data.action,
            "codes": codes,
            "unit_code": data.unit_code,
            "reason": data.reason,
            "template_id": data.template_id,
        }
        try:
            async with db.transaction(state.sessionmaker, state.redis) as inner:
                cmd = _command(values, bulk.BulkIn)
                outcome = await bulk.bulk_act(
                    inner,
                    state.settings,
                    state.deadlines.calendar,
                    _actor(request),
                    cmd,
                    language(request),
                )
        except AppError as exc:
            refusal = _refusal(exc, request, "bulk", values)
            return await queue_page(
                request,
                state,
                session,
                user,
                status_code=refusal["status_code"],
                bulk_error=refusal["error"],
                bulk_error_fields=refusal["error_fields"],
                bulk_values=values,
            )
        return await queue_page(request, state, session, user, bulk_outcome=outcome)


async def queue_context(request: Request, session: DbSession) -> dict[str, Any]:
    """What the queue page's bulk form offers: the templates the actor sees, the units
    to transfer to."""
    snapshot = request.scope["state"]["reference"]
    return {
        "bulk_templates": (await templates.list_templates(session, _actor(request))).items,
        "bulk_units": sorted(snapshot.units.values(), key=lambda u: (u.kind, u.code)),
        "bulk_max": bulk.MAX_REPORTS,
    }


async def report_context(
    request: Request, state: State, session: DbSession, detail: StaffReportDetail
) -> dict[str, Any]:
    """The report page's template picker: the templates offered on the report (if the
    actor may answer it at all) and the one picked (``?template=``) filled in."""
    if not {"reply", "resolved", "rejected"} & set(detail.allowed_actions):
        return {"templates_offered": [], "template_chosen": None}
    offered = await templates.templates_for_report(
        session, state.deadlines.calendar, _actor(request), detail.id
    )
    # the template picked, or the one whose form was just refused (issue 23 item 2)
    refused_form = request.scope.get("state", {}).get("form_state", forms.NO_FORM)
    picked = request.query_params.get("template") or refused_form.value("template", "template_id")
    chosen = next((t for t in offered.items if str(t.id) == picked), None)
    return {"templates_offered": offered.items, "template_chosen": chosen}
