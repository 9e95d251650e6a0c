"""GeoReport v2's read answers, field for field as the specification names them.

JSON is the Struct as it is; XML is the same fields as elements (``formats.render``).
Codes and ids are strings (the published JSON schemas say so); datetimes are W3C strings
with the +07:00 offset, formatted by PostgreSQL (``service._w3c``)."""

from __future__ import annotations

import msgspec


class ServiceOut(msgspec.Struct, gc=False):
    """One entry of ``services``: a report category (lĩnh vực phản ánh)."""

    service_code: str
    service_name: str
    description: str
    metadata: bool  # true iff the category asks extra questions (a service definition)
    type: str  # realtime: filing answers with the service_request_id at once
    keywords: str  # comma-separated
    group: str


class ValueOut(msgspec.Struct, gc=False):
    key: str
    name: str


class AttributeOut(msgspec.Struct, gc=False):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[ValueOut]


class ServiceDefinitionOut(msgspec.Struct):
    service_code: str
    attributes: list[AttributeOut]


class RequestOut(msgspec.Struct, gc=False):
    """A report as a GeoReport v2 service request: only what the public report view
    shows, never who reported it."""

    service_request_id: str
    status: str  # open | closed
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None  # None when moderators hid the text
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


class UpdateOut(msgspec.Struct, gc=False):
    """mySociety's ``servicerequestupdates`` extension: one public status change or
    public answer on a report's timeline."""

    update_id: str
    service_request_id: str
    status: str  # open | closed, after this update
    updated_datetime: str
    description: str
    media_url: str


class EndpointOut(msgspec.Struct):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class DiscoveryOut(msgspec.Struct):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[EndpointOut]
