"""Bodies of the console's JSON API (staff actions on a report)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from app.complaints.schemas import PhotoOut, Point, ReportIn
from app.core.schemas import Input


class IntakeIn(Input):
    """A report taken by phone or at a counter, for a resident."""

    report: ReportIn
    # the resident's phone: if they have an account the report is theirs and they follow it
    resident_phone: Annotated[str, Meta(min_length=6, max_length=20)] | None = None


class MessageIn(Input):
    body: Annotated[str, Meta(min_length=1, max_length=4000)]


class ResolveIn(Input):
    answer: Annotated[str, Meta(min_length=10, max_length=4000)]
    # photos the staff member uploaded with POST /console/photos (e.g. the repaired road)
    photo_ids: Annotated[list[uuid.UUID], Meta(max_length=10)] = []


class MergeIn(Input):
    """Close this report as a duplicate of the report with this code."""

    original_code: Annotated[str, Meta(min_length=4, max_length=20)]


class ExtensionRequestIn(Input):
    due_date: date  # a working day after the current deadline
    reason: Annotated[str, Meta(min_length=5, max_length=1000)]


class ExtensionDecisionIn(Input):
    approve: bool
    note: Annotated[str, Meta(max_length=1000)] | None = None


class RejectIn(Input):
    reason: Annotated[str, Meta(min_length=5, max_length=1000)]


class HandledOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    status: str
    unit_id: uuid.UUID | None
    due_at: datetime | None
    resolved_on_time: bool | None


class QueueCounts(msgspec.Struct):
    open: int
    overdue: int
    due_soon: int  # due by the office close of the next working day, not yet late
    assigned: int  # not yet accepted
    in_progress: int


class RatingOut(msgspec.Struct):
    """The reporter's verdict on one resolution (đánh giá), with their comment."""

    resolution_round: int
    rating: str  # satisfied | accept | not_satisfied
    comment: str | None
    at: datetime


class QueueItem(msgspec.Struct):
    id: uuid.UUID
    code: str
    kind: str
    status: str
    category_code: str
    description: str  # empty when a moderator hid it
    area_code: str
    unit_code: str | None
    created_at: datetime
    due_at: datetime | None
    overdue: bool
    supporters_count: int
    filed_by_staff: bool
    rating: str | None = None  # the reporter's latest verdict (a reopened report's)


class QueuePage(msgspec.Struct):
    items: list[QueueItem]
    counts: QueueCounts
    next_cursor: str | None


class ReporterContact(msgspec.Struct):
    name: str | None
    phone: str | None
    email: str | None = None  # given by a third-party app's user (Open311)


class StaffPhotoOut(msgspec.Struct):
    photo: PhotoOut
    geotag_far: bool  # the photo's geotag is more than 500 m from the report
    taken_long_before: bool
    hidden_reason: str | None
    event_id: int | None = None  # staff's photo of a timeline event (the resolution)


class StaffEventOut(msgspec.Struct):
    id: int
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    body: str | None
    by: str
    public: bool
    unit_code: str | None


class ExtensionRequestOut(msgspec.Struct):
    due_date: date
    reason: str
    requested_at: datetime


class StaffReportDetail(msgspec.Struct):
    id: uuid.UUID
    code: str
    kind: str
    status: str
    category_code: str
    description: str
    description_hidden_reason: str | None
    address_text: str | None
    location: Point
    area_code: str
    unit_code: str | None
    created_at: datetime
    due_at: datetime | None
    original_due_at: datetime | None
    overdue: bool
    escalated: bool
    transfer_count: int
    extension_request: ExtensionRequestOut | None
    resolved_on_time: bool | None
    supporters_count: int
    filed_by_staff: bool
    hide_identity: bool
    reporter: ReporterContact | None  # managers, dispatchers and admins only (audited)
    photos: list[StaffPhotoOut]
    timeline: list[StaffEventOut]
    allowed_actions: list[str]
    ratings: list[RatingOut] = msgspec.field(default_factory=list)  # oldest first
    # filed by a third-party app through Open311 (counted apart in the index)
    third_party: bool = False
    # answers to the category's extra questions (Open311 attributes), by question code
    attributes: dict[str, str | float | list[str]] = msgspec.field(default_factory=dict)
    # filed by address without coordinates: the location is the ward's centre (issue 22)
    location_approximate: bool = False
