"""Thin controllers for suspensions of resident accounts (issue 22 item 6): the
resident's own view and appeal, and the admins' suspend / lift / list."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.datastructures import CacheControlHeader, State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.accounts import suspension
from app.accounts.api import BEARER
from app.accounts.suspension import AppealIn, SuspendIn, SuspensionAdminOut, SuspensionOut
from app.core.auth import require_resident, require_staff
from app.core.client_address import client_ip
from app.core.db import DbSession
from app.policy import actor_of

NO_STORE = CacheControlHeader(no_store=True)


class MySuspensionController(Controller):
    """A resident's own suspension: why and until when, and the appeal (a reply)."""

    path = "/me/suspension"
    tags = ["me"]
    guards = [require_resident]
    security = BEARER
    cache_control = NO_STORE

    @get("/", summary="My suspension in force (404 `not_suspended` when none)")
    async def mine(self, request: Request, state: State, session: DbSession) -> SuspensionOut:
        return await suspension.mine(session, request.user.user_id, state.clock.now())

    @post(
        "/appeal",
        status_code=HTTP_200_OK,
        summary="Appeal: a reply the admins read (once per suspension)",
        description="404 `not_suspended`; 409 `already_appealed`.",
    )
    async def appeal(
        self, request: Request, state: State, session: DbSession, data: JSONBody[AppealIn]
    ) -> SuspensionOut:
        return await suspension.appeal(
            session, request.user.user_id, data, state.clock.now(), client_ip(request)
        )


class SuspensionAdminController(Controller):
    """Admins suspend resident accounts, lift suspensions and read the appeals."""

    path = "/admin"
    tags = ["administration"]
    guards = [require_staff]
    security = BEARER
    cache_control = NO_STORE

    @post(
        "/residents/{user_id:uuid}/suspensions",
        status_code=HTTP_201_CREATED,
        summary="Suspend a resident account (admins): reason, until a time or open-ended",
        description=(
            "While in force the account cannot file, comment or support (403 "
            "`account_suspended`); its open reports keep being handled. The resident is "
            "told in the inbox. 403 `suspension_not_allowed` for anyone but an admin; 404 "
            "`resident_not_found`; 409 `already_suspended`; 400 `suspension_until_invalid`."
        ),
    )
    async def suspend(
        self,
        request: Request,
        session: DbSession,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[SuspendIn],
    ) -> SuspensionOut:
        row = await suspension.suspend(session, await actor_of(request), user_id, data)
        return suspension.resident_view(row)

    @post(
        "/suspensions/{suspension_id:uuid}/lift",
        status_code=204,
        summary="Lift a suspension early (admins)",
        description="409 `suspension_not_in_force` when already lifted or ended.",
    )
    async def lift(
        self, request: Request, session: DbSession, suspension_id: FromPath[uuid.UUID]
    ) -> None:
        await suspension.lift(session, await actor_of(request), suspension_id)

    @get("/suspensions", summary="Suspensions in force, with their appeals (admins)")
    async def list(
        self,
        request: Request,
        session: DbSession,
        appealed: Annotated[
            bool, QueryParameter(description="only those the resident appealed")
        ] = False,
    ) -> list[SuspensionAdminOut]:
        return await suspension.list_for_admins(
            session, await actor_of(request), appealed_only=appealed
        )
