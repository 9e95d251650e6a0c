"""Public lookups: areas (wards and communes), categories, units.

Reference data is served from the process's snapshot (``app.places.reference``): no
database round trip unless it changed."""

from __future__ import annotations

import hashlib
from typing import Annotated

from litestar import Controller, Request, Response, get
from litestar.datastructures import CacheControlHeader, State
from litestar.params import QueryParameter

from app.core.client_address import client_ip
from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.core.i18n import negotiate
from app.places import addresses, service
from app.places.addresses import AddressSearchOut
from app.places.schemas import AreaOut, CategoryOut, UnitOut

# reference data: the same for everyone, changed only by an admin; a client revalidates
# with its ETag (the snapshot's version) after five minutes (issue 24 item 1)
REFERENCE_CACHE = CacheControlHeader(public=True, max_age=300)


class PlacesController(Controller):
    path = "/"
    tags = ["places"]

    @get(
        "/areas",
        summary="Wards and communes of the city",
        opt=CONDITIONAL,
        cache_control=REFERENCE_CACHE,
    )
    async def areas(
        self,
        state: State,
        q: Annotated[
            str | None,
            # U+0000 is refused here as everywhere else (the list is served from memory,
            # so PostgreSQL is not there to refuse it)
            QueryParameter(max_length=60, pattern=r"^[^\x00]*$", description="Name contains"),
        ] = None,
    ) -> Response[list[AreaOut]]:
        snapshot = await state.reference.current()
        what = (
            ("areas", hashlib.blake2b(q.encode(), digest_size=6).hexdigest()) if q else ("areas",)
        )
        return Response(snapshot.area_list(q), headers={"ETag": snapshot.etag(*what)})

    @get("/areas/lookup", summary="The ward or commune containing a point (WGS84)")
    async def lookup(
        self,
        state: State,
        lat: Annotated[float, QueryParameter(ge=-90, le=90)],
        lon: Annotated[float, QueryParameter(ge=-180, le=180)],
    ) -> AreaOut:
        # one statement on a pooled connection, no session (app.core.reads)
        return await service.area_at(state.engine, state.reference, lon, lat)

    @get(
        "/areas/{code:str}",
        summary="One ward or commune",
        opt=CONDITIONAL,
        cache_control=REFERENCE_CACHE,
    )
    async def area(
        self,
        state: State,
        code: Annotated[str, QueryParameter(pattern=r"^[0-9]{1,10}$", description="Official code")],
    ) -> AreaOut:
        # one small object: the body's own hash is its ETag
        return await service.get_area(state.reference, code)

    @get(
        "/categories",
        summary="Report categories with their working-day deadlines",
        opt=CONDITIONAL,
        cache_control=REFERENCE_CACHE,
    )
    async def categories(self, request: Request, state: State) -> Response[list[CategoryOut]]:
        locale = negotiate(request.headers.get("accept-language"))
        snapshot = await state.reference.current()
        return Response(
            snapshot.category_list(locale),
            headers={"ETag": snapshot.etag("categories", locale), "Vary": "Accept-Language"},
        )

    @get("/units", summary="Responsible units", opt=CONDITIONAL, cache_control=REFERENCE_CACHE)
    async def units(self, request: Request, state: State) -> Response[list[UnitOut]]:
        locale = negotiate(request.headers.get("accept-language"))
        snapshot = await state.reference.current()
        return Response(
            snapshot.unit_list(locale),
            headers={"ETag": snapshot.etag("units", locale), "Vary": "Accept-Language"},
        )


# ---- reporting without a map (issue 22 item 7, helper H2)
class AddressSearchController(Controller):
    path = "/places"
    tags = ["places"]

    @get(
        "/address-search",
        summary="Places an address may mean (old-style or current, accents optional)",
        description="Free text; each candidate is a current ward with a point inside it (its "
        "centre: file with its `id` as `address_id`, the report is marked location "
        "approximate), and the old ward the text named, if any. Limited per client "
        "address (ADDRESS_SEARCH_RATE_PER_IP). Never cached (`no-store`): the text may be "
        "someone's home address.",
        cache_control=CacheControlHeader(no_store=True),
    )
    async def address_search(
        self,
        request: Request,
        state: State,
        session: DbSession,
        q: Annotated[
            str,
            QueryParameter(
                min_length=2, max_length=200, pattern=r"^[^\x00]*$", description="The address"
            ),
        ],
    ) -> AddressSearchOut:
        await state.limiter.hit(
            state.settings.address_search_rate_per_ip, "address-search", client_ip(request)
        )
        return await addresses.search(session, q)
