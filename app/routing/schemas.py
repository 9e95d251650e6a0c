"""Bodies of the routing context: rules (admin), transfers and extensions (staff)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from app.core.schemas import Input

Reason = Annotated[str, Meta(min_length=5, max_length=1000)]


class RuleIn(Input):
    category_code: Annotated[str, Meta(min_length=1, max_length=40)]
    unit_code: Annotated[str, Meta(min_length=1, max_length=40)]
    # None: the rule applies in every area (a city-wide utility)
    area_code: Annotated[str, Meta(min_length=1, max_length=10)] | None = None
    priority: Annotated[int, Meta(ge=-100, le=100)] = 0
    active: bool = True
    note: Annotated[str, Meta(max_length=500)] | None = None


class RuleOut(msgspec.Struct):
    id: uuid.UUID
    category_code: str
    area_code: str | None
    unit_code: str
    priority: int
    active: bool
    note: str | None
    created_at: datetime


class TransferIn(Input):
    unit_code: Annotated[str, Meta(min_length=1, max_length=40)]
    reason: Reason


class TransferOut(msgspec.Struct):
    unit_code: str
    redirected_to_dispatcher: bool


class ExtensionIn(Input):
    due_date: date  # a working day, local time; the deadline is that day's office close
    reason: Reason


class ExtensionOut(msgspec.Struct):
    due_at: datetime


class RoutedOut(msgspec.Struct, kw_only=True):
    code: str
    unit_id: uuid.UUID
    reason: str  # rule | ward | dispatcher | reopened: how the unit was chosen
    due_at: datetime


class RoutingRunOut(msgspec.Struct, kw_only=True):
    """What a routing run by hand did: the reports it assigned (at most 500, oldest
    first); none when every waiting report was routed already or held by a worker."""

    routed: int
    reports: list[RoutedOut]
