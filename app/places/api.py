"""Public lookups: areas (wards and communes), categories, units."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import FromPath, Parameter

from app.core.db import DbSession
from app.core.i18n import negotiate
from app.places import service
from app.places.schemas import AreaOut, CategoryOut, UnitOut


class PlacesController(Controller):
    path = "/"
    tags = ["places"]

    @get("/areas", summary="Wards and communes of the city")
    async def areas(
        self,
        session: DbSession,
        q: Annotated[str | None, Parameter(max_length=60, description="Name contains")] = None,
    ) -> list[AreaOut]:
        return await service.list_areas(session, q)

    @get("/areas/lookup", summary="The ward or commune containing a point (WGS84)")
    async def lookup(
        self,
        session: DbSession,
        lat: Annotated[float, Parameter(ge=-90, le=90)],
        lon: Annotated[float, Parameter(ge=-180, le=180)],
    ) -> AreaOut:
        return await service.area_at(session, lon, lat)

    @get("/areas/{code:str}", summary="One ward or commune")
    async def area(self, session: DbSession, code: FromPath[str]) -> AreaOut:
        return await service.get_area(session, code)

    @get("/categories", summary="Report categories with their working-day deadlines")
    async def categories(self, request: Request, session: DbSession) -> list[CategoryOut]:
        return await service.list_categories(
            session, negotiate(request.headers.get("accept-language"))
        )

    @get("/units", summary="Responsible units")
    async def units(self, request: Request, session: DbSession) -> list[UnitOut]:
        return await service.list_units(session, negotiate(request.headers.get("accept-language")))
