"""The inbox (hộp thư thông báo): writing notifications in the transaction of the event
that caused them, rendered in each recipient's language; and the recipient's views of
their own inbox.

A notice names its audience — the report's followers (reporter and supporters), the
staff of a unit, or a dossier's followers (app/dossiers/notices.py) — and a dedupe key;
the pair (recipient, dedupe key) is unique, so a job that runs twice writes each
notification once. Every new row gets a push job, enqueued
after the commit (``push.py`` sends it).
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import Text, bindparam, cast, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import i18n
from app.core.db import rowcount
from app.core.errors import BadRequest, FieldError, NotFound
from app.core.jobs import enqueue
from app.core.reads import Query, Reader
from app.notifications.models import Notification
from app.notifications.push import PUSH_BATCH_JOB, PUSH_JOB_BATCH, push_batch_job_id
from app.notifications.schemas import NotificationOut, NotificationPage
from app.policy import DOSSIER_OWNER_LEVEL

# followers: a report's reporter and supporters; unit: a unit's staff; dossier: whoever
# follows an administrative dossier (``report_id`` is then the dossier's id): the residents
# who linked it and the level-2 account whose citizen ID it was filed under (issue 19);
# user: the one account ``user_id`` (a dossier that just appeared for that resident)
Audience = Literal["followers", "unit", "dossier", "user"]

# each kind of notice (preferences.KINDS, but announcements: their texts are an admin's)
# has ``notification.<kind>.title`` and ``.body`` in the catalogue (app/locale), with
# {code}, {unit} (the unit's name in the reader's language), {due} and {other}


def format_due(due: datetime | None, language: str) -> str:
    return i18n.format_datetime(due, language) if due is not None else "—"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    report_id: uuid.UUID
    report_code: str
    audience: Audience
    dedupe_key: str
    unit_id: uuid.UUID | None = None  # the unit whose staff hear it (audience "unit")
    unit_vi: str = ""
    unit_en: str = ""
    due: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    other_code: str = ""  # another report the message names (merged into)
    user_id: uuid.UUID | None = None  # the one recipient (audience "user")

    def render(self, language: str) -> tuple[str, str]:
        params = {
            "code": self.report_code,
            "unit": self.unit_vi if language == "vi" else self.unit_en,
            "due": format_due(self.due, language),
            "other": self.other_code,
        }
        key = f"notification.{self.kind}"
        return i18n.text(f"{key}.title", language, **params), i18n.text(
            f"{key}.body", language, **params
        )


_INSERT = text(
    """
    INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, created_at)
    SELECT DISTINCT ON (r.user_id, n.dedupe_key)
           r.user_id, n.kind,
           CASE WHEN u.locale = 'en' THEN n.title_en ELSE n.title_vi END,
           CASE WHEN u.locale = 'en' THEN n.body_en ELSE n.body_vi END,
           CAST(n.data AS jsonb), n.dedupe_key, :now
    FROM unnest(
        CAST(:report_ids AS uuid[]), CAST(:unit_ids AS uuid[]), CAST(:audiences AS text[]),
        CAST(:kinds AS text[]), CAST(:titles_vi AS text[]), CAST(:titles_en AS text[]),
        CAST(:bodies_vi AS text[]), CAST(:bodies_en AS text[]), CAST(:datas AS text[]),
        CAST(:dedupe_keys AS text[]), CAST(:user_ids AS uuid[])
    ) AS n(report_id, unit_id, audience, kind, title_vi, title_en, body_vi, body_en, data,
           dedupe_key, user_id)
    CROSS JOIN LATERAL (
        SELECT rep.reporter_id AS user_id FROM reports rep
         WHERE n.audience = 'followers' AND rep.id = n.report_id
        UNION
        SELECT s.user_id FROM report_supporters s
         WHERE n.audience = 'followers' AND s.report_id = n.report_id
        UNION
        SELECT sr.user_id FROM staff_roles sr JOIN units un ON un.id = n.unit_id
         WHERE n.audience = 'unit'
           AND ((sr.unit_id = n.unit_id AND sr.role IN ('officer', 'manager'))
                OR (un.kind = 'dispatcher' AND sr.role = 'dispatcher'))
        UNION
        SELECT l.user_id FROM dossier_links l
         WHERE n.audience = 'dossier' AND l.dossier_id = n.report_id
        UNION
        SELECT du.id FROM dossiers d JOIN users du ON du.citizen_id_hash = d.applicant_id_hash
         WHERE n.audience = 'dossier' AND d.id = n.report_id
           AND du.identity_level >= """
    + str(DOSSIER_OWNER_LEVEL)
    + """
        UNION
        SELECT n.user_id WHERE n.audience = 'user'
    ) AS r
    JOIN users u ON u.id = r.user_id AND u.deleted_at IS NULL AND u.status = 'active'
    ORDER BY r.user_id, n.dedupe_key
    ON CONFLICT (user_id, dedupe_key) DO NOTHING
    RETURNING id
    """
)


async def notify(session: AsyncSession, notices: list[Notice], now: datetime) -> list[int]:
    """Write the notices' inbox rows (one statement) and enqueue a push job for each new
    row (sent after the commit); returns the ids of new rows."""
    if not notices:
        return []
    rendered = [(n.render("vi"), n.render("en")) for n in notices]
    result = await session.execute(
        _INSERT,
        {
            "now": now,
            "report_ids": [n.report_id for n in notices],
            "unit_ids": [n.unit_id for n in notices],
            "audiences": [n.audience for n in notices],
            "kinds": [n.kind for n in notices],
            "titles_vi": [vi[0] for vi, _ in rendered],
            "titles_en": [en[0] for _, en in rendered],
            "bodies_vi": [vi[1] for vi, _ in rendered],
            "bodies_en": [en[1] for _, en in rendered],
            "datas": [
                json.dumps({"report_code": n.report_code, "kind": n.kind, **n.data})
                for n in notices
            ],
            "dedupe_keys": [n.dedupe_key for n in notices],
            "user_ids": [n.user_id for n in notices],
        },
    )
    ids = [row[0] for row in result]
    # one push job per batch of rows, not per row: a routing batch writes ~1,000 rows and
    # one job each swamped the queue (measured: 80k push jobs for 20k routed reports)
    for start in range(0, len(ids), PUSH_JOB_BATCH):
        chunk = ids[start : start + PUSH_JOB_BATCH]
        enqueue(PUSH_BATCH_JOB, chunk, job_id=push_batch_job_id(chunk))
    return ids


# ---------------------------------------------------------------- the recipient's inbox

MAX_ID = 2**63 - 1  # notifications.id is a bigint


def notification_out(row: Notification) -> NotificationOut:
    link = row.data.get("link")
    code = row.data.get("report_code")
    return NotificationOut(
        id=row.id,
        kind=row.kind,
        title=row.title,
        body=row.body,
        report_code=code if isinstance(code, str) else None,
        link=link if isinstance(link, str) else None,
        data=row.data,
        created_at=row.created_at,
        read_at=row.read_at,
    )


def parse_cursor(cursor: str) -> int:
    """The cursor is the id of the last notification of the previous page."""
    if cursor.isascii() and cursor.isdigit() and 0 < int(cursor) <= MAX_ID:
        return int(cursor)
    raise BadRequest(
        "notification_cursor_invalid",
        errors=[FieldError(field="cursor", message="malformed", source="query")],
    )


# the inbox page in one statement, columns straight into the Structs (issue 18 item 9);
# ``data`` comes as text for msgspec, not through the ORM's JSON round trip
_INBOX = select(
    Notification.id,
    Notification.kind,
    Notification.title,
    Notification.body,
    cast(Notification.data, Text),
    Notification.created_at,
    Notification.read_at,
)
_data = msgspec.json.Decoder(dict[str, Any])


@functools.cache
def _inbox_query(after_cursor: bool, unread_only: bool) -> Query:
    stmt = _INBOX.where(Notification.user_id == bindparam("user_id"))
    if after_cursor:
        stmt = stmt.where(Notification.id < bindparam("before"))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return Query(stmt.order_by(Notification.id.desc()).limit(bindparam("limit")))


async def list_notifications(
    db: Reader,
    user_id: uuid.UUID,
    *,
    cursor: str | None = None,
    limit: int = 20,
    unread_only: bool = False,
) -> NotificationPage:
    """The user's own notifications, newest first; keyset pagination on the id."""
    query = _inbox_query(cursor is not None, unread_only)
    values = {"user_id": user_id, "limit": limit + 1}
    if cursor is not None:
        values["before"] = parse_cursor(cursor)
    rows = await query.fetch(db, **values)
    more = len(rows) > limit
    items = []
    for nid, kind, title, body, raw, created_at, read_at in rows[:limit]:
        data = _data.decode(raw)
        link, code = data.get("link"), data.get("report_code")
        items.append(
            NotificationOut(
                id=nid,
                kind=kind,
                title=title,
                body=body,
                report_code=code if isinstance(code, str) else None,
                link=link if isinstance(link, str) else None,
                data=data,
                created_at=created_at,
                read_at=read_at,
            )
        )
    return NotificationPage(items=items, next_cursor=str(rows[limit - 1][0]) if more else None)


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: int, now: datetime
) -> NotificationOut:
    """Mark one of the user's notifications read (again: the first time stays). Another
    user's notification is "not found": its existence is not revealed."""
    row = await session.scalar(
        update(Notification)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .values(read_at=func.coalesce(Notification.read_at, now))
        .returning(Notification)
        .execution_options(synchronize_session=False)
    )
    if row is None:
        raise NotFound("notification_not_found")
    return notification_out(row)


async def mark_all_read(
    session: AsyncSession, user_id: uuid.UUID, now: datetime, up_to_id: int | None = None
) -> int:
    """Mark every unread notification of the user read — up to ``up_to_id`` when given
    (the newest the app has shown, so one that arrived meanwhile stays unread). One
    statement; returns how many were marked."""
    stmt = (
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    if up_to_id is not None:
        stmt = stmt.where(Notification.id <= up_to_id)
    result = await session.execute(stmt)
    return rowcount(result) or 0
