"""The agencies' push endpoints and the admin API for agencies (issue 19 items 1, 3).

Thin: the ingest controller hands the raw body and headers to ``ingest.receive`` (the
signature covers the exact bytes, so the body is not decoded before it is verified) and
renders each refused event's detail in the caller's language; the admin controller
builds the actor and calls ``agencies``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    Operation,
    Reference,
    RequestBody,
)
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED

from app.core import i18n
from app.core.auth import require_staff
from app.core.client_address import client_ip
from app.core.db import DbSession
from app.dossiers import agencies, ingest
from app.dossiers.formats import EventBatchIn, PortalBatchIn
from app.dossiers.ingest_schemas import (
    AgencyIn,
    AgencyOut,
    AgencyPatch,
    AgencySummary,
    EventResultOut,
    IngestCounts,
    IngestResultOut,
    SecretIssued,
    StatusCodeOut,
    StatusCodeSet,
    StatusCodesIn,
)
from app.policy import actor_of
from app.settings import get_settings

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement
_SCHEMA_PREFIX = "Ingest"
MAX_BODY = get_settings().ingest_max_body_bytes


def _body(name: str, description: str) -> RequestBody:
    return RequestBody(
        content={
            "application/json": OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{_SCHEMA_PREFIX}{name}")
            )
        },
        description=description,
        required=True,
    )


@dataclass
class _NativeBatchOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _body(
            "EventBatchIn",
            "Up to 500 native events, signed (Standard Webhooks) over these exact bytes.",
        )


@dataclass
class _PortalBatchOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _body(
            "PortalBatchIn",
            "The national portal's DongBoHoSoMC / CapNhatTienDoHoSoMC envelope (up to 500 "
            "items in data), signed (Standard Webhooks) over these exact bytes.",
        )


def document_ingest(document: OpenAPI) -> OpenAPI:
    """Put the ingest's request bodies (msgspec Structs read raw by the handlers) into the
    document's components, under ``Ingest…`` names."""
    _, components = msgspec.json.schema_components(
        [EventBatchIn, PortalBatchIn], ref_template=f"#/components/schemas/{_SCHEMA_PREFIX}{{name}}"
    )
    if document.components.schemas is None:
        document.components.schemas = {}
    schemas = cast(dict[str, Any], document.components.schemas)
    schemas.update({f"{_SCHEMA_PREFIX}{name}": value for name, value in components.items()})
    return document


def render(outcome: ingest.BatchOutcome, locale: str) -> IngestResultOut:
    results = []
    for r in outcome.results:
        detail = None
        if r.code is not None:
            detail = i18n.translate(r.code, locale, {"field": r.field or "", **(r.params or {})})
        results.append(
            EventResultOut(id=r.id, result=r.result, code=r.code, field=r.field, detail=detail)
        )
    return IngestResultOut(
        results=results, counts=IngestCounts(**outcome.counts), replayed=outcome.replayed
    )


_SIGNING_HEADERS = "Standard Webhooks: HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`"
WebhookId = Annotated[
    str | None,
    HeaderParameter(
        name="webhook-id",
        required=False,
        description="The batch's id: its idempotency key (≤ 128 printable characters)",
    ),
]
WebhookTimestamp = Annotated[
    str | None,
    HeaderParameter(
        name="webhook-timestamp",
        required=False,
        description="Unix seconds; refused more than 5 minutes from our clock",
    ),
]
WebhookSignature = Annotated[
    str | None,
    HeaderParameter(
        name="webhook-signature",
        required=False,
        description="`v1,<base64>`, several space-separated while rotating. " + _SIGNING_HEADERS,
    ),
]


class IngestController(Controller):
    """Agencies' systems push dossiers and their progress here, signed with the agency's
    secret (Standard Webhooks). 401 for an unsigned, badly signed, stale or replayed-late
    request or an unknown agency (alike); 429 with Retry-After for an address past its
    failed attempts (``ingest.FailedSignIns``); 413 past the size or 500 events; the same
    ``webhook-id`` again answers the stored result (409 with another body)."""

    path = "/ingest/agencies/{agency_code:str}"
    tags = ["dossier ingest"]

    async def _receive(
        self, request: Request, session: DbSession, agency_code: str, shape: ingest.Shape
    ) -> IngestResultOut:
        state = request.app.state
        settings = state.settings
        failures = ingest.FailedSignIns(
            state.limiter,
            settings.ingest_auth_failures_per_ip,
            settings.ingest_auth_failures_per_agency,
            client_ip(request),
            agency_code,
        )
        outcome = await ingest.receive(
            session,
            agency_code,
            shape,
            request.headers,
            request.body,
            state.clock.now(),
            settings,
            failures,
        )
        return render(outcome, i18n.negotiate(request.headers.get("accept-language")))

    @post(
        "/events",
        status_code=200,
        summary="Push a batch of native dossier events (signed)",
        operation_class=_NativeBatchOperation,
        request_max_body_size=MAX_BODY,
    )
    async def push_events(
        self,
        request: Request,
        session: DbSession,
        agency_code: FromPath[str],
        webhook_id: WebhookId = None,
        webhook_timestamp: WebhookTimestamp = None,
        webhook_signature: WebhookSignature = None,
    ) -> IngestResultOut:
        return await self._receive(request, session, agency_code, "native")

    @post(
        "/portal",
        status_code=200,
        summary="Push a batch in the national portal's shape (signed)",
        operation_class=_PortalBatchOperation,
        request_max_body_size=MAX_BODY,
    )
    async def push_portal(
        self,
        request: Request,
        session: DbSession,
        agency_code: FromPath[str],
        webhook_id: WebhookId = None,
        webhook_timestamp: WebhookTimestamp = None,
        webhook_signature: WebhookSignature = None,
    ) -> IngestResultOut:
        return await self._receive(request, session, agency_code, "portal")


class AgencyAdminController(Controller):
    """Agencies, their signing secrets and status-code mapping (admins; audit-logged)."""

    path = "/admin/agencies"
    tags = ["dossier ingest"]
    guards = [require_staff]
    security = BEARER

    @get("/", summary="Agencies (admin)")
    async def list_agencies(self, request: Request, session: DbSession) -> list[AgencySummary]:
        return await agencies.list_agencies(session, await actor_of(request))

    @post("/", status_code=HTTP_201_CREATED, summary="Register an agency (admin)")
    async def create_agency(
        self, request: Request, session: DbSession, data: JSONBody[AgencyIn]
    ) -> AgencyOut:
        return await agencies.create_agency(session, await actor_of(request), data)

    @get("/{code:str}", summary="An agency with its secrets' records and mapping (admin)")
    async def agency(self, request: Request, session: DbSession, code: FromPath[str]) -> AgencyOut:
        return await agencies.agency_detail(session, await actor_of(request), code)

    @patch("/{code:str}", summary="Rename, move or (de)activate an agency (admin)")
    async def update_agency(
        self, request: Request, session: DbSession, code: FromPath[str], data: JSONBody[AgencyPatch]
    ) -> AgencyOut:
        return await agencies.update_agency(session, await actor_of(request), code, data)

    @post(
        "/{code:str}/secrets",
        status_code=HTTP_201_CREATED,
        summary="Issue a signing secret, shown once; the valid ones expire after the overlap",
    )
    async def issue_secret(
        self, request: Request, session: DbSession, code: FromPath[str]
    ) -> SecretIssued:
        settings = request.app.state.settings
        return await agencies.issue_secret(
            session,
            await actor_of(request),
            code,
            timedelta(hours=settings.agency_secret_overlap_hours),
            sealing_key=settings.data_encryption_key,
        )

    @delete(
        "/{code:str}/secrets/{secret_id:uuid}",
        status_code=204,
        summary="Revoke a signing secret at once (admin)",
    )
    async def revoke_secret(
        self,
        request: Request,
        session: DbSession,
        code: FromPath[str],
        secret_id: FromPath[uuid.UUID],
    ) -> None:
        await agencies.revoke_secret(session, await actor_of(request), code, secret_id)

    @get("/{code:str}/status-codes", summary="The agency's status codes → ours (admin)")
    async def status_codes(
        self, request: Request, session: DbSession, code: FromPath[str]
    ) -> list[StatusCodeOut]:
        return await agencies.status_codes(session, await actor_of(request), code)

    @put("/{code:str}/status-codes", summary="Replace the agency's whole mapping (admin)")
    async def replace_status_codes(
        self,
        request: Request,
        session: DbSession,
        code: FromPath[str],
        data: JSONBody[StatusCodesIn],
    ) -> list[StatusCodeOut]:
        return await agencies.replace_status_codes(session, await actor_of(request), code, data)

    @put("/{code:str}/status-codes/{status_code:str}", summary="Map one code (admin)")
    async def set_status_code(
        self,
        request: Request,
        session: DbSession,
        code: FromPath[str],
        status_code: Annotated[str, PathParameter(max_length=40)],
        data: JSONBody[StatusCodeSet],
    ) -> StatusCodeOut:
        return await agencies.set_status_code(
            session, await actor_of(request), code, status_code, data.status
        )

    @delete(
        "/{code:str}/status-codes/{status_code:str}",
        status_code=204,
        summary="Remove one code from the mapping (admin)",
    )
    async def remove_status_code(
        self,
        request: Request,
        session: DbSession,
        code: FromPath[str],
        status_code: Annotated[str, PathParameter(max_length=40)],
    ) -> None:
        await agencies.remove_status_code(session, await actor_of(request), code, status_code)
