"""Admins issue, list and revoke third-party apps' Open311 API keys (issue 21)."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.core.auth import require_staff
from app.core.db import DbSession
from app.open311 import keys
from app.open311.keys import KeyIn, KeyIssued, KeyOut
from app.policy import actor_of

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement


class Open311KeyController(Controller):
    """API keys of third-party apps that file through Open311 (admins; audit-logged)."""

    path = "/admin/open311/keys"
    tags = ["open311", "admin"]
    guards = [require_staff]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Issue a key to a third-party app (the key is in this answer only)",
    )
    async def issue(self, request: Request, session: DbSession, data: JSONBody[KeyIn]) -> KeyIssued:
        return await keys.issue_key(session, await actor_of(request), data)

    @get("/", summary="Every key, newest first (never the keys themselves)")
    async def list_keys(self, request: Request, session: DbSession) -> list[KeyOut]:
        return await keys.list_keys(session, await actor_of(request))

    @post(
        "/{key_id:uuid}/revoke",
        status_code=HTTP_200_OK,
        summary="Revoke a key: refused from now on",
    )
    async def revoke(
        self, request: Request, session: DbSession, key_id: FromPath[uuid.UUID]
    ) -> KeyOut:
        return await keys.revoke_key(session, await actor_of(request), key_id)
