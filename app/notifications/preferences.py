"""Push preferences (cài đặt thông báo): kinds muted for push, and quiet hours (giờ yên
lặng). The inbox always keeps every notification; preferences decide only whether a
device is asked, and when.

- A kind the recipient muted settles as ``muted`` without a push.
- A notification that is not urgent and whose turn comes during the recipient's quiet
  hours waits: ``push_after`` is set to the end of the quiet period and the push job is
  deferred until then. Only announcements the sender flagged urgent (a flood warning:
  kind ``announcement_urgent``) go out at once; no report notification is urgent —
  a deadline reminder or a routed report can wait until morning.
- No preference row means the defaults: nothing muted, quiet hours 22:00–06:00.

Quiet hours are local wall-clock times in Asia/Ho_Chi_Minh (the city's, no DST); a start
later than the end spans midnight. The window is half-open: at 06:00 sharp it is over.

The decision is made when a notification's first push is attempted (the gate below, run
by :func:`app.notifications.push.push_notifications`) and made again on every run until
then, so a preference changed while a push waits is honoured when it runs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.calendar import TIMEZONE
from app.core.errors import FieldError, Unprocessable
from app.notifications.models import NotificationPreference
from app.notifications.schemas import PreferencesIn, PreferencesOut, QuietHoursOut

ANNOUNCEMENT = "announcement"
ANNOUNCEMENT_URGENT = "announcement_urgent"

KINDS: tuple[str, ...] = (
    # to the reporter and supporters
    "report_routed",
    "report_transferred",
    "report_extended",
    "report_resolved",
    "report_answered",
    "report_info_requested",
    "report_merged",
    # to the unit's staff
    "report_assigned",
    "report_reminder",
    "report_overdue",
    "report_escalated",
    "report_extension_requested",
    # to whoever follows an administrative dossier (app/dossiers/notices.py, issue 19)
    "dossier_status",
    "dossier_supplement",
    "dossier_due_changed",
    "dossier_result_ready",
    # to the followers of an area
    ANNOUNCEMENT,
    ANNOUNCEMENT_URGENT,
)
"""Every kind a notification can have; the ones a user may mute for push."""

URGENT_KINDS = frozenset({ANNOUNCEMENT_URGENT})
"""Pushed at once, quiet hours or not."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    def until(self, now: datetime) -> datetime | None:
        """When the quiet period that ``now`` falls in ends (UTC), or None if ``now`` is
        not in one."""
        local = now.astimezone(TIMEZONE)
        moment = local.time().replace(tzinfo=None)
        day = local.date()
        if self.start < self.end:
            if not self.start <= moment < self.end:
                return None
        elif moment >= self.start:  # spans midnight: the evening part
            day += timedelta(days=1)
        elif moment >= self.end:  # between the end and the start: daytime
            return None
        return datetime.combine(day, self.end, TIMEZONE).astimezone(UTC)


DEFAULT_WINDOW = QuietHours(time(22, 0), time(6, 0))
DEFAULT_QUIET_HOURS: QuietHours | None = DEFAULT_WINDOW
"""Quiet hours of a user without a preference row."""


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _out(muted: list[str], quiet: QuietHours | None, updated_at: datetime | None) -> PreferencesOut:
    return PreferencesOut(
        muted_kinds=sorted(muted, key=KINDS.index),
        quiet_hours=QuietHoursOut(start=_hhmm(quiet.start), end=_hhmm(quiet.end))
        if quiet
        else None,
        time_zone=str(TIMEZONE),
        kinds=list(KINDS),
        urgent_kinds=sorted(URGENT_KINDS),
        updated_at=updated_at,
    )


async def get_preferences(session: AsyncSession, user_id: uuid.UUID) -> PreferencesOut:
    row = await session.get(NotificationPreference, user_id)
    if row is None:
        return _out([], DEFAULT_QUIET_HOURS, None)
    quiet = QuietHours(row.quiet_start, row.quiet_end) if row.quiet_hours else None
    return _out(list(row.muted_kinds), quiet, row.updated_at)


async def put_preferences(
    session: AsyncSession, user_id: uuid.UUID, body: PreferencesIn, now: datetime
) -> PreferencesOut:
    """Replace the user's preferences. Unknown kinds and an empty quiet window are 422s
    that name what is wrong; nothing is written then."""
    unknown = [(i, k) for i, k in enumerate(body.muted_kinds) if k not in KINDS]
    if unknown:
        raise Unprocessable(
            "notification_kind_unknown",
            params={"kinds": ", ".join(k for _, k in unknown)},
            errors=[
                FieldError(field=f"muted_kinds[{i}]", message=k, source="body") for i, k in unknown
            ],
            allowed=list(KINDS),
        )
    quiet = None
    if body.quiet_hours is not None:
        quiet = QuietHours(_parse_hhmm(body.quiet_hours.start), _parse_hhmm(body.quiet_hours.end))
        if quiet.start == quiet.end:
            raise Unprocessable(
                "quiet_hours_empty",
                errors=[FieldError(field="quiet_hours", message="start = end", source="body")],
            )
    muted = sorted(set(body.muted_kinds), key=KINDS.index)
    window = quiet or DEFAULT_WINDOW
    stmt = insert(NotificationPreference).values(
        user_id=user_id,
        muted_kinds=muted,
        quiet_hours=quiet is not None,
        quiet_start=window.start,
        quiet_end=window.end,
        updated_at=now,
    )
    changed = ["muted_kinds", "quiet_hours", "updated_at"]
    if quiet is not None:  # "off" keeps the window, so turning it back on restores it
        changed += ["quiet_start", "quiet_end"]
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[NotificationPreference.user_id],
            set_={name: stmt.excluded[name] for name in changed},
        )
    )
    return _out(muted, quiet, now)


# --------------------------------------------------------------------- the push gate


@dataclass(slots=True)
class Gate:
    """What the preferences say about notifications about to be pushed for the first
    time: muted (settled ``muted`` now) and deferred (id → end of quiet hours)."""

    muted: list[int] = field(default_factory=list)
    deferred: dict[int, datetime] = field(default_factory=dict)


# notifications still to be pushed for the first time (no delivery yet), with the
# recipient's preferences
# (push_status = 'pending') IS NOT FALSE: see the SQL section of app/notifications/push.py
_GATE = text(
    """
    SELECT n.id, n.kind, p.user_id IS NOT NULL AS has_row, p.muted_kinds,
           p.quiet_hours, p.quiet_start, p.quiet_end
      FROM notifications n
      LEFT JOIN notification_preferences p ON p.user_id = n.user_id
     WHERE n.id = ANY(CAST(:ids AS bigint[])) AND (n.push_status = 'pending') IS NOT FALSE
       AND NOT EXISTS (SELECT 1 FROM notification_deliveries x WHERE x.notification_id = n.id)
    """
)

_MUTE = text(
    """
    UPDATE notifications SET push_status = 'muted'
     WHERE id = ANY(CAST(:ids AS bigint[])) AND (push_status = 'pending') IS NOT FALSE
    RETURNING id
    """
)

_DEFER = text(
    """
    UPDATE notifications n SET push_after = d.until
      FROM unnest(CAST(:ids AS bigint[]), CAST(:untils AS timestamptz[])) AS d(id, until)
     WHERE n.id = d.id AND (n.push_status = 'pending') IS NOT FALSE
       AND n.push_after IS DISTINCT FROM d.until
    """
)


async def gate(session: AsyncSession, ids: list[int], now: datetime) -> Gate:
    """Apply the recipients' preferences to the notifications ``ids`` that have not been
    pushed yet: mute (one UPDATE), defer to the end of quiet hours (one UPDATE). The rest
    may be pushed now."""
    result = Gate()
    if not ids:
        return result
    rows = (await session.execute(_GATE, {"ids": ids})).all()
    deferred: dict[int, datetime] = {}
    muted: list[int] = []
    for nid, kind, has_row, muted_kinds, quiet_on, start, end in rows:
        if has_row and kind in muted_kinds:
            muted.append(nid)
            continue
        if kind in URGENT_KINDS:
            continue
        if has_row:
            quiet = QuietHours(start, end) if quiet_on else None
        else:
            quiet = DEFAULT_QUIET_HOURS
        until = quiet.until(now) if quiet else None
        if until is not None:
            deferred[nid] = until
    if muted:
        result.muted = list(await session.scalars(_MUTE, {"ids": muted}))
    if deferred:
        await session.execute(_DEFER, {"ids": list(deferred), "untils": list(deferred.values())})
        result.deferred = deferred
    return result
