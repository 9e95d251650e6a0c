"""Bulk work in the console's JSON API (issue 22 item 2): one action on up to 200
reports of the queue. Thin: the rules are in ``app/complaints/bulk.py``."""

from __future__ import annotations

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from app.complaints import bulk
from app.complaints.bulk import BulkIn, BulkOut
from app.console.api import BEARER
from app.core import i18n
from app.core.auth import require_staff
from app.core.db import DbSession
from app.policy import actor_of


class BulkReportController(Controller):
    path = "/console/reports/bulk"
    tags = ["console"]
    guards = [require_staff]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_200_OK,
        summary="Accept, transfer or answer (with a template) up to 200 reports at once",
        description="Each report goes through the single-report action (policy, timeline "
        "event, notification, audit row) in a savepoint of its own. Unknown codes (404) "
        "or a report the caller may not act on (403) refuse the whole request; a report "
        "the action cannot be done to (its status, a race) is listed with its reason in "
        "`results` and the others stay done.",
    )
    async def bulk(
        self, request: Request, state: State, session: DbSession, data: JSONBody[BulkIn]
    ) -> BulkOut:
        return await bulk.bulk_act(
            session,
            state.settings,
            state.deadlines.calendar,
            await actor_of(request),
            data,
            i18n.negotiate(request.headers.get("accept-language")),
        )
