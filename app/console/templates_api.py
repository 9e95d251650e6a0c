"""Response templates in the console's JSON API (issue 22 item 1): list, create, change
and delete them (managers for their units, admins city-wide), the ones offered on a
report filled in for its reporter, and sending one on a report. Thin: the rules are in
``app/complaints/templates.py`` and ``app/policy.py``."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.complaints import templates
from app.complaints.templates import FilledTemplates, SendIn, TemplateIn, TemplateList, TemplateOut
from app.console.api import BEARER, _out
from app.console.schemas import HandledOut
from app.core.auth import require_staff
from app.core.db import DbSession
from app.policy import actor_of


class ResponseTemplateController(Controller):
    path = "/console/templates"
    tags = ["console"]
    guards = [require_staff]
    security = BEARER

    @get("/", summary="Response templates: the city's and my units'")
    async def list_templates(
        self,
        request: Request,
        session: DbSession,
        unit: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> TemplateList:
        return await templates.list_templates(session, await actor_of(request), unit)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Write a template (managers for their units; admins city-wide)",
        description="Placeholders: {code}, {deadline}, {unit}, {category}, {working_days}. "
        "An unknown placeholder or a malformed brace is a 400 naming it.",
    )
    async def create(
        self, request: Request, session: DbSession, data: JSONBody[TemplateIn]
    ) -> TemplateOut:
        return await templates.create_template(session, await actor_of(request), data)

    @put("/{template_id:uuid}", summary="Change a template")
    async def change(
        self,
        request: Request,
        session: DbSession,
        template_id: FromPath[uuid.UUID],
        data: JSONBody[TemplateIn],
    ) -> TemplateOut:
        return await templates.update_template(session, await actor_of(request), template_id, data)

    @delete("/{template_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a template")
    async def remove(
        self, request: Request, session: DbSession, template_id: FromPath[uuid.UUID]
    ) -> None:
        await templates.delete_template(session, await actor_of(request), template_id)

    @get(
        "/for-report/{report_id:uuid}",
        summary="The templates offered on a report, filled in in its reporter's language",
    )
    async def for_report(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> FilledTemplates:
        return await templates.templates_for_report(
            session, state.deadlines.calendar, await actor_of(request), report_id
        )

    @post(
        "/send/{report_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Answer a report with a template (its reply, resolution or rejection)",
        description="`body` is the text as edited; without it the template filled in.",
    )
    async def send(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[SendIn],
    ) -> HandledOut:
        report = await templates.send_template(
            session,
            state.settings,
            state.deadlines.calendar,
            await actor_of(request),
            report_id,
            data,
        )
        return _out(report)
