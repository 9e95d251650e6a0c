"""Bodies of the console's JSON API (staff actions on a report)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from app.complaints.schemas import ReportIn
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


class RejectIn(Input):
    reason: Annotated[str, Meta(min_length=5, max_length=1000)]


class HandledOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    status: str
    unit_id: uuid.UUID | None
    due_at: datetime | None
    resolved_on_time: bool | None
