"""Thin controllers: the public service index and a unit's trend in the console."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter

from app.core.auth import require_staff
from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.policy import actor_of
from app.stats import service
from app.stats.schemas import UnitServiceIndex, UnitServiceTrend

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement
Period = Annotated[
    str,
    QueryParameter(
        max_length=16,
        description="'all', 'last-30-days' or a month of receipt 'YYYY-MM' (local time)",
    ),
]


class PublicServiceIndexController(Controller):
    """No sign-in. Counts and rates per unit; never who reported."""

    path = "/public/service-index"
    tags = ["public"]

    @get(
        "/",
        summary="The service index: every unit's figures for a period",
        description=(
            "Per responsible unit: reports received, resolved, resolved on time, open and "
            "overdue, median working days to resolve, and the residents' ratings; reports "
            "staff filed on a resident's behalf are counted apart (`staff_filed`), and so "
            "are those third-party apps filed through Open311 (`third_party`). "
            "Rebuilt periodically; `refreshed_at` says when."
        ),
        opt=CONDITIONAL,
    )
    async def index(
        self, session: DbSession, period: Period = service.LAST_30_DAYS
    ) -> list[UnitServiceIndex]:
        return await service.public_index(session, period)


class ConsoleServiceIndexController(Controller):
    """A unit's service index over time, for its staff and the city's dispatchers."""

    path = "/console/units"
    tags = ["console"]
    guards = [require_staff]
    security = BEARER

    @get(
        "/{code:str}/service-index",
        summary="A unit's service index: all time, last 30 days, month by month",
        opt=CONDITIONAL,
    )
    async def unit_index(
        self, request: Request, session: DbSession, code: FromPath[str]
    ) -> UnitServiceTrend:
        return await service.unit_index_for_staff(session, await actor_of(request), code)
