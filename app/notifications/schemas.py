"""Bodies of the inbox, preferences, areas-followed and announcements APIs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from app.core.schemas import Input


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


# ------------------------------------------------------------------------- preferences

HHMM = Annotated[
    str,
    Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"], description="HH:MM"),
]
KindName = Annotated[str, Meta(min_length=1, max_length=40)]


class QuietHoursIn(Input):
    """Local time, Asia/Ho_Chi_Minh; a start later than the end spans midnight."""

    start: HHMM
    end: HHMM


class PreferencesIn(Input):
    """The whole preferences (PUT replaces them). ``quiet_hours`` null turns them off."""

    muted_kinds: Annotated[list[KindName], Meta(max_length=20)]  # no push for these kinds
    quiet_hours: QuietHoursIn | None


class QuietHoursOut(msgspec.Struct):
    start: str
    end: str


class PreferencesOut(msgspec.Struct):
    muted_kinds: list[str]  # kinds never pushed (they still reach the inbox)
    quiet_hours: QuietHoursOut | None  # non-urgent pushes wait until the end; None: off
    time_zone: str  # the zone of quiet_hours
    kinds: list[str]  # every kind, for the app's switches
    urgent_kinds: list[str]  # pushed at once even in quiet hours
    updated_at: datetime | None  # None: never changed (the defaults)


# ------------------------------------------------------------------------- areas followed


class FollowedArea(msgspec.Struct):
    code: str
    name: str
    home: bool  # the resident's home ward (followed unless they unfollowed it)


# ------------------------------------------------------------------------- announcements

AreaCode = Annotated[str, Meta(min_length=1, max_length=10)]


class AnnouncementText(Input):
    title: Annotated[str, Meta(min_length=1, max_length=120)]
    body: Annotated[str, Meta(min_length=1, max_length=2000)]


class AnnouncementTexts(Input):
    vi: AnnouncementText  # required
    en: AnnouncementText | None = None  # English readers get the Vietnamese text without it


class AnnouncementIn(Input):
    texts: AnnouncementTexts
    area_codes: Annotated[list[AreaCode], Meta(min_length=1, max_length=200)]
    urgent: bool = False  # pushed at once, even in the recipients' quiet hours


class AnnouncementTextOut(msgspec.Struct):
    title: str
    body: str


class AnnouncementTextsOut(msgspec.Struct):
    vi: AnnouncementTextOut
    en: AnnouncementTextOut | None


class PushCounts(msgspec.Struct):
    """The announcement's inbox rows by push status (each settled from its deliveries)."""

    pending: int = 0  # not pushed yet (queued, waiting for quiet hours to end, retrying)
    sent: int = 0  # reached at least one device
    failed: int = 0  # reached none
    no_device: int = 0  # the follower had no active device
    muted: int = 0  # the follower turned announcements off for push
    expired: int = 0  # too old to push by the time it could be


class DeliveryCounts(msgspec.Struct):
    """Pushes by device (one per follower's active device)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0


class AnnouncementOut(msgspec.Struct):
    id: uuid.UUID
    status: str  # queued | sending (inbox rows being written) | done (every follower has one)
    urgent: bool
    area_codes: list[str]
    texts: AnnouncementTextsOut
    recipients: int  # followers found so far (one inbox row each)
    inbox_rows: int  # inbox rows written so far
    push: PushCounts  # live until settled, then final
    devices: DeliveryCounts | None  # final per-device counts, once settled
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None  # every inbox row written
    settled_at: datetime | None  # every push settled: the counts are final
