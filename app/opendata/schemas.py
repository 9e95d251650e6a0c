"""Bodies of the open-data context (issue 22 item 4)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class OpenReport(msgspec.Struct):
    """A report as the city publishes it: no text anyone wrote, no reporter, the
    position rounded to the published precision."""

    code: str
    kind: str
    category: str
    area: str
    unit: str | None
    channel: str  # resident | staff | open311 (the service index counts them apart)
    status: str
    filed: datetime
    first_answered: datetime | None
    resolved: datetime | None  # the first resolution
    on_time: bool | None  # the verdict frozen at the first resolution
    working_days: float | None  # working days taken to the first resolution
    rating: str | None  # satisfied | accept | not_satisfied (the latest round's)
    lat: float
    lon: float


class OpenDataMeta(msgspec.Struct):
    licence: str
    licence_url: str
    position_precision_decimals: int
    time_zone: str
    publisher: str


class OpenReportPage(msgspec.Struct):
    meta: OpenDataMeta
    items: list[OpenReport]
    next_cursor: str | None


class OpenDataFileOut(msgspec.Struct):
    day: date
    format: str
    url: str  # under /api/v1/public/open-data/files/
    rows: int
    bytes: int
    sha256: str
    published_at: datetime


class OpenDataFileList(msgspec.Struct):
    meta: OpenDataMeta
    files: list[OpenDataFileOut]
