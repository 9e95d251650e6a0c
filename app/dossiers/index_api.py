"""Thin controllers of the agency index (issue 19 item 7): public figures per agency,
the console's (scoped by app/policy.py), and the supervisors' ranking by lateness with
each agency's overdue dossiers (the JSON twin of app/web/dossier_supervision.py)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from app.core.auth import require_staff
from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.dossiers import index
from app.dossiers.index import AgencyRanking, AgencyServiceIndex, AgencyTrend, OverduePage
from app.policy import actor_of
from app.stats.service import ALL, LAST_30_DAYS

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement
Period = Annotated[
    str,
    QueryParameter(
        max_length=16,
        description="'all', 'last-30-days' or a month of receipt 'YYYY-MM' (local time)",
    ),
]
Cursor = Annotated[str | None, QueryParameter(max_length=200, description="next_cursor")]


class PublicAgencyIndexController(Controller):
    """No sign-in. Counts and rates per agency; never a dossier or a person."""

    path = "/public/service-index/agencies"
    tags = ["public"]

    @get(
        "/",
        summary="The service index of the agencies: every agency's figures for a period",
        description=(
            "Per agency, for the dossiers received in the period: received, finished "
            "(completed, returned or refused), finished on time and late (the verdict at "
            "the first finish), open, open and overdue, fully online, the residents' "
            "ratings and the median working days from receipt to finish. Percentages are "
            "null when nothing is counted. Rebuilt periodically; `refreshed_at` says when."
        ),
        opt=CONDITIONAL,
    )
    async def index(
        self, session: DbSession, period: Period = LAST_30_DAYS
    ) -> list[AgencyServiceIndex]:
        return await index.public_index(session, period)


class ConsoleAgencyIndexController(Controller):
    """The agency index for staff: every agency for the city's dispatchers and admins,
    the agencies of their own units for the others."""

    path = "/console"
    tags = ["console"]
    guards = [require_staff]
    security = BEARER

    @get(
        "/service-index/agencies",
        summary="The agencies' service index (your agencies)",
        opt=CONDITIONAL,
    )
    async def agencies(
        self, request: Request, session: DbSession, period: Period = LAST_30_DAYS
    ) -> list[AgencyServiceIndex]:
        return await index.index_for_staff(session, await actor_of(request), period)

    @get(
        "/agencies/{code:str}/service-index",
        summary="An agency's service index: all time, last 30 days, month by month",
        opt=CONDITIONAL,
    )
    async def agency(
        self, request: Request, session: DbSession, code: FromPath[str]
    ) -> AgencyTrend:
        return await index.agency_trend(session, await actor_of(request), code)

    @get(
        "/dossier-supervision/agencies",
        summary="Agencies ranked by lateness",
        description=(
            "Most open-and-overdue dossiers first, then the lowest share finished on time. "
            "Dispatchers and admins see every agency; others their units' agencies."
        ),
    )
    async def ranking(
        self, request: Request, session: DbSession, period: Period = ALL
    ) -> AgencyRanking:
        return await index.ranking(session, await actor_of(request), period)

    @get(
        "/dossier-supervision/agencies/{code:str}/overdue",
        summary="An agency's open dossiers past their due date, 50 at a time",
        description=(
            "The longest overdue first: code, procedure, status, dates and the working "
            "days past the due day. No applicant, no contact."
        ),
    )
    async def overdue(
        self,
        request: Request,
        state: State,
        session: DbSession,
        code: FromPath[str],
        cursor: Cursor = None,
    ) -> OverduePage:
        return await index.overdue_dossiers(
            session, await actor_of(request), state.deadlines.calendar, code, cursor
        )
