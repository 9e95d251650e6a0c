"""Bodies of the inbox API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class NotificationOut(msgspec.Struct):
    """One notification, in the language the recipient had chosen when it was written."""

    id: int
    kind: str
    title: str
    body: str
    report_code: str | None
    link: str | None  # where the app goes when it is opened (cityapp://…, /console/…)
    data: dict[str, Any]  # everything the event attached, link and report code included
    created_at: datetime
    read_at: datetime | None


class NotificationPage(msgspec.Struct):
    items: list[NotificationOut]
    next_cursor: str | None  # pass as ?cursor= for the next (older) page; None at the end


class UnreadCount(msgspec.Struct):
    unread: int


class MarkedRead(msgspec.Struct):
    marked: int  # notifications that were unread and are read now
    unread: int  # what is left unread
