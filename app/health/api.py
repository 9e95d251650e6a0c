"""The health book's API (issue 20): the person reads their own record (summary, sections,
FHIR IPS Bundle, download) and its access log; admins start Bulk Data pulls and read the
import jobs. Thin: the actor, the read's context, the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from app.core import i18n
from app.core.auth import require_staff, require_user
from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.core.logging import request_id_var
from app.health import ips, service
from app.health.schemas import (
    AccessLogPage,
    BulkImportIn,
    ImportErrorPage,
    ImportJobOut,
    ImportJobPage,
    Section,
    SectionPage,
    Summary,
)
from app.policy import Actor, actor_of

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement
FHIR_JSON = "application/fhir+json"
Cursor = Annotated[
    str | None, QueryParameter(max_length=200, description="next_cursor of the previous page")
]
NOT_FOUND = (
    "Everyone but the person gets this same 404 `health_record_not_found`: no record, "
    "someone else's, an account not verified at level 2, staff of any role."
)


def read_context(request: Request, actor: Actor) -> service.ReadContext:
    principal = actor.principal
    return service.ReadContext(
        session_id=principal.sid if principal else None,
        device=request.headers.get("user-agent"),
        ip=actor.ip,
        request_id=request_id_var.get(),
    )


class HealthRecordController(Controller):
    """Sổ sức khỏe điện tử: the signed-in person's own health book. Every read is logged
    (who, when, section, session, device) in the transaction that serves it."""

    path = "/me/health"
    tags = ["health"]
    guards = [require_user]
    security = BEARER

    @get("/", summary="My health book at a glance", description=NOT_FOUND, opt=CONDITIONAL)
    async def summary(self, request: Request, session: DbSession) -> Summary:
        actor = await actor_of(request)
        return await service.summary(session, actor, read_context(request, actor))

    @get(
        "/sections/{section:str}",
        summary="One section of my health book, newest first (keyset pagination)",
        description=NOT_FOUND,
        opt=CONDITIONAL,
    )
    async def section(
        self,
        request: Request,
        session: DbSession,
        section: FromPath[Section],
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> SectionPage:
        actor = await actor_of(request)
        return await service.section(
            session, actor, read_context(request, actor), section, cursor, limit
        )

    @get(
        "/fhir",
        summary="My health book as a FHIR R4 Bundle (International Patient Summary sections)",
        description=NOT_FOUND,
        media_type=FHIR_JSON,
    )
    async def fhir(self, request: Request, state: State, session: DbSession) -> Response[bytes]:
        return await self._bundle(request, state, session, "fhir")

    @get(
        "/download",
        summary="Download my health book (the FHIR Bundle as a file to keep)",
        description=NOT_FOUND,
        media_type=FHIR_JSON,
    )
    async def download(self, request: Request, state: State, session: DbSession) -> Response[bytes]:
        return await self._bundle(request, state, session, "download")

    async def _bundle(
        self, request: Request, state: State, session: Any, purpose: str
    ) -> Response[bytes]:
        actor = await actor_of(request)
        person, sections = await service.everything(
            session, actor, read_context(request, actor), purpose
        )
        body = msgspec.json.encode(ips.bundle(person, sections, state.clock.now()))
        headers = {}
        if purpose == "download":
            stamp = actor.now.strftime("%Y%m%d")
            headers["Content-Disposition"] = f'attachment; filename="so-suc-khoe-{stamp}.json"'
        return Response(body, media_type=FHIR_JSON, headers=headers)

    @get(
        "/access-log",
        summary="Who read my health book, when, what and from where (newest first)",
        description=NOT_FOUND,
    )
    async def access_log(
        self,
        request: Request,
        session: DbSession,
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> AccessLogPage:
        return await service.access_log(session, await actor_of(request), cursor, limit)


class HealthImportController(Controller):
    """Import jobs of the health book: counts, per-line errors, duration (admins). Nobody's
    record is shown here."""

    path = "/admin/health/imports"
    tags = ["health", "admin"]
    guards = [require_staff]
    security = BEARER

    @get("/", summary="Import jobs, newest first")
    async def list_jobs(
        self,
        request: Request,
        session: DbSession,
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> ImportJobPage:
        locale = i18n.negotiate(request.headers.get("accept-language"))
        return await service.list_jobs(session, await actor_of(request), locale, cursor, limit)

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Pull a Bulk Data export from the health system's FHIR server",
    )
    async def start_bulk(
        self, request: Request, state: State, session: DbSession, data: JSONBody[BulkImportIn]
    ) -> ImportJobOut:
        return await service.create_bulk_job(session, await actor_of(request), state.settings)

    @get("/{job_id:uuid}", summary="One import job with its files")
    async def get_job(
        self, request: Request, session: DbSession, job_id: FromPath[uuid.UUID]
    ) -> ImportJobOut:
        locale = i18n.negotiate(request.headers.get("accept-language"))
        return await service.get_job(session, await actor_of(request), job_id, locale)

    @get("/{job_id:uuid}/errors", summary="The lines an import job did not import, and why")
    async def errors(
        self,
        request: Request,
        session: DbSession,
        job_id: FromPath[uuid.UUID],
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> ImportErrorPage:
        locale = i18n.negotiate(request.headers.get("accept-language"))
        return await service.job_errors(
            session, await actor_of(request), job_id, locale, cursor, limit
        )
