"""Bodies of the agency ingest and of the agencies' administration (issue 19 items 1, 3).

The ingest's request bodies are ``formats.EventBatchIn`` (native) and
``formats.PortalBatchIn`` (the portal's shape); they are read raw (the signature covers
the exact bytes) and documented in OpenAPI by ``ingest_api``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.core.schemas import Input
from app.dossiers.formats import Status

AgencyCode = Annotated[
    str,
    Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,39}$", description="The agency's code"),
]
AgencyStatusCode = Annotated[str, Meta(min_length=1, max_length=40)]


# ---------------------------------------------------------------- ingest answers


class EventResultOut(msgspec.Struct, omit_defaults=True):
    """What became of one event: ``applied`` (the newest: applied), ``recorded`` (older
    than what the dossier shows: kept in its timeline, status not moved), ``duplicate``
    (an event id already received) or ``refused`` (with ``code``, the field at fault and
    a ``detail`` in the caller's language); in the batch's order."""

    id: str | None
    result: Literal["applied", "recorded", "duplicate", "refused"]
    code: str | None = None
    field: str | None = None
    detail: str | None = None


class IngestCounts(msgspec.Struct):
    applied: int
    recorded: int
    duplicate: int
    refused: int


class IngestResultOut(msgspec.Struct):
    results: list[EventResultOut]
    counts: IngestCounts
    # true: this webhook-id was received before; the answer is the one given then
    replayed: bool = False


# ---------------------------------------------------------------- administration


class AgencyIn(Input):
    code: AgencyCode
    name_vi: Annotated[str, Meta(min_length=1, max_length=300)]
    name_en: Annotated[str, Meta(min_length=1, max_length=300)]
    unit_code: Annotated[str, Meta(min_length=1, max_length=40)]


class AgencyPatch(Input):
    name_vi: Annotated[str, Meta(min_length=1, max_length=300)] | None = None
    name_en: Annotated[str, Meta(min_length=1, max_length=300)] | None = None
    unit_code: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    active: bool | None = None


class SecretOut(msgspec.Struct):
    """A signing secret's record; the secret itself is shown only when issued."""

    id: uuid.UUID
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    valid: bool


class StatusCodeIn(Input):
    code: AgencyStatusCode
    status: Status


class StatusCodeOut(msgspec.Struct):
    code: str
    status: str


class StatusCodesIn(Input):
    """The agency's whole mapping (replaces the one stored)."""

    codes: Annotated[list[StatusCodeIn], Meta(max_length=200)]


class StatusCodeSet(Input):
    status: Status


class AgencyOut(msgspec.Struct):
    code: str
    name_vi: str
    name_en: str
    unit_code: str
    active: bool
    created_at: datetime
    secrets: list[SecretOut]
    status_codes: list[StatusCodeOut]


class AgencySummary(msgspec.Struct):
    code: str
    name_vi: str
    name_en: str
    unit_code: str
    active: bool
    valid_secrets: int


class SecretIssued(msgspec.Struct):
    """A new secret, shown this once (store it in the agency's system). Secrets valid
    before stay valid until ``previous_valid_until`` so the agency can switch over."""

    id: uuid.UUID
    secret: str
    created_at: datetime
    previous_valid_until: datetime | None
