"""GET /me/sync: one call on app open (issue 24 item 2). Thin: the actor, the read's
context, the service."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from app.core.auth import require_user
from app.core.db import DbSession
from app.core.i18n import negotiate
from app.core.logging import request_id_var
from app.health.service import ReadContext
from app.policy import actor_of
from app.settings import get_settings
from app.sync import service
from app.sync.schemas import SyncPage

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement
_SETTINGS = get_settings()

DESCRIPTION = (
    "What changed for me since `cursor`, across my reports, my notifications, the "
    "dossiers I follow and my health book, each item as its list shows it, or a "
    "tombstone (`deleted: true`: erased, unlinked or no longer mine to see; a withdrawn "
    "report is an item with its status, as in my list). "
    "Without `cursor`: the current state, in pages; then the changes. Keep the returned "
    "`cursor` (also when nothing changed) and call again at once while `has_more`. "
    "A cursor older than the retention (SYNC_RETENTION_DAYS) is 410 `sync_cursor_expired`: "
    "start over without a cursor. A cursor that is not one this server gave this account "
    "is 400 `sync_cursor_invalid`. Residents only (403 otherwise)."
)


class SyncController(Controller):
    path = "/me/sync"
    tags = ["sync"]
    guards = [require_user]
    security = BEARER

    @get("/", summary="What changed for me since my last sync (app open)", description=DESCRIPTION)
    async def sync(
        self,
        request: Request,
        state: State,
        session: DbSession,
        cursor: Annotated[
            str | None,
            QueryParameter(max_length=200, description="cursor of the previous answer"),
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=_SETTINGS.sync_page_max)
        ] = _SETTINGS.sync_page_default,
    ) -> SyncPage:
        actor = await actor_of(request)
        principal = actor.principal
        reading = service.Reading(
            storage=state.storage,
            names=await state.reference.current(),
            locale=negotiate(request.headers.get("accept-language")),
            health_context=ReadContext(
                session_id=principal.sid if principal else None,
                device=request.headers.get("user-agent"),
                ip=actor.ip,
                request_id=request_id_var.get(),
            ),
        )
        return await service.sync(session, state.settings, actor, cursor, limit, reading)
