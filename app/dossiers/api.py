"""Thin controllers: a resident's dossiers (``/me/dossiers``) and the public lookup by code
(``/public/dossiers/{code}``, tra cứu hồ sơ) — issue 19 items 5 and 6."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.core import i18n
from app.core.auth import require_resident
from app.core.client_address import client_ip
from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.dossiers import service
from app.dossiers.schemas import (
    DossierDetail,
    DossierPage,
    DossierSummary,
    LinkIn,
    PublicDossier,
    RatingIn,
    RatingOut,
    Status,
)
from app.policy import actor_of

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement


def _language(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"))


class MyDossierController(Controller):
    """The dossiers I follow: filed under my verified citizen ID (level 2), or linked."""

    path = "/me/dossiers"
    tags = ["dossiers"]
    guards = [require_resident]
    security = BEARER

    @get("/", summary="My dossiers, newest received first (keyset pagination)", opt=CONDITIONAL)
    async def mine(
        self,
        request: Request,
        state: State,
        status: FromQuery[Status | None] = None,
        cursor: Annotated[
            str | None, QueryParameter(max_length=200, description="next_cursor of the last page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> DossierPage:
        # one statement on a pooled connection, no session (app.core.reads)
        return await service.my_dossiers(
            state.engine, await actor_of(request), _language(request), status, cursor, limit
        )

    @post(
        "/links",
        status_code=HTTP_201_CREATED,
        summary="Follow a dossier by its code and the applicant's citizen ID",
        description=(
            "An unknown code and a wrong citizen ID get the same 404 (dossier_not_found). "
            "Limited per resident (DOSSIER_LINK_RATE_PER_USER) and per client address "
            "(DOSSIER_LINK_RATE_PER_IP), every attempt counted: 429 with Retry-After."
        ),
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=DossierSummary,
                generate_examples=False,
                description="Already linked: nothing changed",
            )
        },
    )
    async def link(
        self, request: Request, state: State, session: DbSession, data: JSONBody[LinkIn]
    ) -> Response[DossierSummary]:
        actor = await actor_of(request)
        settings = state.settings
        # every attempt counts, right or wrong: guessing citizen IDs is what it slows
        await state.limiter.hit(
            settings.dossier_link_rate_per_user, "dossier-link", str(actor.user_id)
        )
        await state.limiter.hit(
            settings.dossier_link_rate_per_ip, "dossier-link-ip", actor.ip or ""
        )
        summary, new = await service.link(session, settings, actor, data, _language(request))
        return Response(summary, status_code=HTTP_201_CREATED if new else HTTP_200_OK)

    @delete("/links/{code:str}", status_code=204, summary="Stop following a dossier I linked")
    async def unlink(self, request: Request, session: DbSession, code: FromPath[str]) -> None:
        await service.unlink(session, await actor_of(request), code)

    @get(
        "/{code:str}",
        summary="One of my dossiers: timeline, supplements, fees, results",
        opt=CONDITIONAL,
    )
    async def detail(
        self, request: Request, session: DbSession, code: FromPath[str]
    ) -> DossierDetail:
        return await service.dossier_detail(
            session, await actor_of(request), code, _language(request)
        )

    @post(
        "/{code:str}/rating",
        status_code=HTTP_200_OK,
        summary="Rate a dossier whose result is ready or returned, once",
    )
    async def rate(
        self, request: Request, session: DbSession, code: FromPath[str], data: JSONBody[RatingIn]
    ) -> RatingOut:
        return await service.rate(session, await actor_of(request), code, data.rating)


class PublicDossierController(Controller):
    """No sign-in, no personal data."""

    path = "/public/dossiers"
    tags = ["public"]

    @get(
        "/{code:str}",
        summary="Look a dossier up by its code (tra cứu hồ sơ)",
        description=(
            "Status, agency, procedure, dates and the statuses of the timeline; the "
            "applicant's name masked, nothing else personal. An unknown code and a "
            "malformed one get the same 404. Limited per client address "
            "(DOSSIER_LOOKUP_RATE_PER_IP): 429 with Retry-After. Cacheable for "
            "DOSSIER_LOOKUP_MAX_AGE_SECONDS (varies by Accept-Language)."
        ),
        opt=CONDITIONAL,
    )
    async def lookup(
        self, request: Request, state: State, code: FromPath[str]
    ) -> Response[PublicDossier]:
        settings = state.settings
        # against enumeration; no personal data here, so Redis down must not stop lookups
        await state.limiter.hit(
            settings.dossier_lookup_rate_per_ip,
            "dossier-lookup",
            client_ip(request),
            fail_open=True,
        )
        language = _language(request)
        # one statement on a pooled connection, no session (app.core.reads)
        found = await service.public_dossier(state.engine, code, language, state.clock.now())
        return Response(
            found,
            headers={
                "Cache-Control": f"public, max-age={settings.dossier_lookup_max_age_seconds}",
                "Vary": "Accept-Language",
                "Content-Language": language,
            },
        )
