"""Bodies of the complaints context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.core.schemas import Input
from app.settings import get_settings

Kind = Literal["complaint", "petition", "initiative"]
Status = Literal[
    "submitted",
    "assigned",
    "in_progress",
    "resolved",
    "closed",
    "rejected",
    "duplicate",
    "reopened",
    "withdrawn",
]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]


class Point(Input):
    lat: Latitude
    lon: Longitude


# At most PHOTOS_PER_REPORT distinct photos. The service enforces it (422 too_many_photos,
# counted after duplicates are dropped, in the caller's language); the schema documents it
# with the configured value (6 by default: openapi/openapi.json says so).
PhotoIdList = Annotated[
    list[uuid.UUID],
    Meta(
        description=f"At most {get_settings().photos_per_report} distinct photos "
        "(PHOTOS_PER_REPORT); more is 422 too_many_photos",
        extra_json_schema={"extra": {"maxItems": get_settings().photos_per_report}},
    ),
]


class ReportIn(Input):
    kind: Kind
    category_code: Annotated[str, Meta(min_length=1, max_length=40)]
    description: Annotated[str, Meta(min_length=10, max_length=4000)]
    # issue 22 item 7 (reporting without a map): without ``location``, the report is filed
    # at the ward of ``address_id`` (a candidate of /places/address-search) or, failing
    # that, of ``address_text``, and marked location_approximate for staff
    location: Point | None = None
    address_text: Annotated[str, Meta(max_length=300)] | None = None
    photo_ids: PhotoIdList = []
    hide_identity: bool = False
    address_id: Annotated[int, Meta(ge=1)] | None = None


class PhotoOut(msgspec.Struct):
    id: uuid.UUID
    width: int
    height: int
    url: str
    thumbnail_url: str
    taken_at: datetime | None
    has_geotag: bool
    expires_at: datetime | None


class ReportCreated(msgspec.Struct):
    id: uuid.UUID
    code: str
    status: str
    kind: str
    area_code: str
    created_at: datetime


class UnitRef(msgspec.Struct):
    code: str
    name_vi: str
    name_en: str


class EventOut(msgspec.Struct):
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    body: str | None
    by: str  # resident | staff | system
    unit: UnitRef | None = None  # the unit it was sent, transferred or escalated to


# a list item carries the start of the text, what a list screen shows (issue 24 item 4)
PREVIEW_CHARS = 160


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The first ``limit`` characters, cut at a word where one is near, ending in "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


class ReportSummary(msgspec.Struct):
    """One of my reports in a list: what the list screen shows. The description is its
    preview (at most 160 characters, ending in "…" when cut); the detail has it whole."""

    id: uuid.UUID
    code: str
    kind: str
    status: str
    category_code: str
    description: Annotated[
        str,
        Meta(
            description="The start of the text (at most 160 characters, ending in '…' when "
            "cut); GET /reports/{id} has the whole of it"
        ),
    ]
    area_code: str
    created_at: datetime
    updated_at: datetime
    thumbnail_url: str | None
    # everything a screen reader needs as text (issue 22 item 7), in the asked language
    status_text: str = ""
    kind_text: str = ""
    category_name: str = ""
    area_name: str = ""
    address_text: str | None = None
    location_approximate: bool = False

    def __post_init__(self) -> None:
        self.description = preview(self.description)


class ReportPage(msgspec.Struct):
    items: list[ReportSummary]
    next_cursor: str | None


class ReportDetail(msgspec.Struct):
    id: uuid.UUID
    code: str
    kind: str
    status: str
    category_code: str
    description: str
    address_text: str | None
    location: Point
    area_code: str
    hide_identity: bool
    supporters_count: int
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    photos: list[PhotoOut]
    timeline: list[EventOut]
    allowed_actions: list[str]


class CommentIn(Input):
    body: Annotated[str, Meta(min_length=1, max_length=2000)]


class NearbyReport(msgspec.Struct):
    code: str
    kind: str
    status: str
    category_code: str
    description: str | None
    distance_m: float
    supporters_count: int
    created_at: datetime
    # everything a screen reader needs as text (issue 22 item 7), in the asked language
    status_text: str = ""
    kind_text: str = ""
    category_name: str = ""
    area_code: str = ""
    area_name: str = ""
    address_text: str | None = None  # as the public view shows it (none when hidden)


class RatingIn(Input):
    rating: Literal["satisfied", "accept", "not_satisfied"]
    comment: Annotated[str, Meta(max_length=1000)] | None = None


class HideIn(Input):
    reason: Annotated[str, Meta(min_length=3, max_length=500)]


class ExportedReport(msgspec.Struct):
    """A report as it appears in the reporter's own data export."""

    code: str
    kind: str
    status: str
    category_code: str
    description: str
    address_text: str | None
    location: Point
    hide_identity: bool
    created_at: datetime


class ExportedReports(msgspec.Struct):
    filed: list[ExportedReport]
    supported: list[str]  # codes
