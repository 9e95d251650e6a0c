"""Public lookups: areas (wards and communes), categories, units.

Reference data is served from the process's snapshot (``app.places.reference``): no
database round trip unless it changed."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from app.core.i18n import negotiate
from app.places import service
from app.places.schemas import AreaOut, CategoryOut, UnitOut


class PlacesController(Controller):
    path = "/"
    tags = ["places"]

    @get("/areas", summary="Wards and communes of the city")
    async def areas(
        self,
        state: State,
        q: Annotated[
            str | None,
            # U+0000 is refused here as everywhere else (the list is served from memory,
            # so PostgreSQL is not there to refuse it)
            QueryParameter(max_length=60, pattern=r"^[^\x00]*$", description="Name contains"),
        ] = None,
    ) -> list[AreaOut]:
        return await service.list_areas(state.reference, q)

    @get("/areas/lookup", summary="The ward or commune containing a point (WGS84)")
    async def lookup(
        self,
        state: State,
        lat: Annotated[float, QueryParameter(ge=-90, le=90)],
        lon: Annotated[float, QueryParameter(ge=-180, le=180)],
    ) -> AreaOut:
        # one statement on a pooled connection, no session (app.core.reads)
        return await service.area_at(state.engine, state.reference, lon, lat)

    @get("/areas/{code:str}", summary="One ward or commune")
    async def area(
        self,
        state: State,
        code: Annotated[str, QueryParameter(pattern=r"^[0-9]{1,10}$", description="Official code")],
    ) -> AreaOut:
        return await service.get_area(state.reference, code)

    @get("/categories", summary="Report categories with their working-day deadlines")
    async def categories(self, request: Request, state: State) -> list[CategoryOut]:
        return await service.list_categories(
            state.reference, negotiate(request.headers.get("accept-language"))
        )

    @get("/units", summary="Responsible units")
    async def units(self, request: Request, state: State) -> list[UnitOut]:
        return await service.list_units(
            state.reference, negotiate(request.headers.get("accept-language"))
        )
