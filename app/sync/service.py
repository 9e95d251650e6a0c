"""One sync call on app open (issue 24 item 2): what changed for the resident since a
cursor, as the lists show it, with tombstones for what they no longer see.

The change log (``sync_changes``, migration 0100) is written by triggers in the
transaction of every change. A plain ``seq > cursor`` would lose a row whose transaction
took its ``seq`` before a reader passed it and committed after; so the read stops at the
snapshot horizon — only rows of transactions below ``pg_snapshot_xmin`` (all of them
ended: committed and visible, or rolled back and gone) — and pages in (tx, seq) order
with the cursor holding (tx, seq). Anything committed later has a transaction id at or
above that horizon, so it sorts after the cursor and the next call returns it.

Each entity the page's rows name is joined to its current row once (several changes of
one report are one item in its latest state); a row that is gone, or that the policy no
longer lets the resident see, is a tombstone.

A first call without a cursor lists the current state (reports, notifications,
dossiers, the health book; each by keyset, in pages), then continues from the log at the
horizon taken when the listing started, so nothing that changed meanwhile is missed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    String,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.complaints import service as complaints_service
from app.complaints.models import Report, ReportEvent, ReportPhoto
from app.complaints.schemas import ReportSummary
from app.core import reads
from app.core.errors import BadRequest, FieldError, Forbidden, Gone, NotFound
from app.core.reads import Query
from app.core.storage import Storage
from app.dossiers import service as dossiers_service
from app.dossiers.models import Agency, Dossier
from app.health import service as health_service
from app.notifications.models import Notification
from app.notifications.schemas import NotificationOut
from app.places.reference import Snapshot
from app.policy import Actor
from app.settings import Settings
from app.sync.schemas import SyncItem, SyncPage

# ---------------------------------------------------------------- the cursor

# where the app's copy stands: ("l", tx, seq) — every change up to (tx, seq) seen — or,
# while the first listing runs, ("f", horizon, phase, key) — the listing started at
# ``horizon`` and has given everything of ``phase`` up to ``key``
PHASES = ("report", "notification", "dossier", "health")
_MAC_BYTES = 16
_payload = msgspec.msgpack.Decoder(list[int | str])


class Position(msgspec.Struct, frozen=True):
    tx: int  # the log: after (tx, seq); the listing: the horizon it started at
    seq: int = 0
    phase: int | None = None  # None: reading the log; else the listing's phase (PHASES)
    key: str = ""  # the listing: the last key given in that phase


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"sync-cursor/v1", hashlib.sha256).digest()


def _mac(settings: Settings, resident_id: uuid.UUID, payload: bytes) -> bytes:
    digest = hmac.new(_key(settings), resident_id.bytes + payload, hashlib.sha256).digest()
    return digest[:_MAC_BYTES]


def encode_cursor(settings: Settings, resident_id: uuid.UUID, at: Position) -> str:
    """Opaque and bound to the resident: a MAC over the account's id and the position."""
    fields: list[int | str] = (
        ["l", at.tx, at.seq] if at.phase is None else ["f", at.tx, at.phase, at.key]
    )
    payload = msgspec.msgpack.encode(fields)
    raw = payload + _mac(settings, resident_id, payload)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid() -> BadRequest:
    return BadRequest(
        "sync_cursor_invalid",
        errors=[FieldError(field="cursor", message="malformed", source="query")],
    )


def decode_cursor(settings: Settings, resident_id: uuid.UUID, cursor: str) -> Position:
    """The position a cursor names; 400 ``sync_cursor_invalid`` for anything this
    server did not give this resident (malformed, altered, another account's)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        raise _invalid() from None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, _mac(settings, resident_id, payload)):
        raise _invalid()
    try:
        fields = _payload.decode(payload)
    except msgspec.DecodeError:
        raise _invalid() from None
    match fields:
        case ["l", int(tx), int(seq)] if tx >= 0 and seq >= 0:
            return Position(tx=tx, seq=seq)
        case ["f", int(tx), int(phase), str(key)] if tx >= 0 and 0 <= phase < len(PHASES):
            return Position(tx=tx, phase=phase, key=key)
    raise _invalid()


# ---------------------------------------------------------------- the statements

# the horizon (every transaction below it has ended) and the retention's purge mark
_HORIZON = """
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
           tx::text::bigint AS purged_tx, seq AS purged_seq
      FROM sync_horizon
"""
# a page of the resident's log after the cursor, below the horizon, and the horizon
_LOG = """
    WITH h AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin,
               tx::text::bigint AS purged_tx, seq AS purged_seq
          FROM sync_horizon
    )
    SELECT h.xmin::text::bigint AS xmin, h.purged_tx, h.purged_seq,
           c.tx, c.seq, c.entity, c.entity_id
      FROM h LEFT JOIN LATERAL (
            SELECT s.tx::text::bigint AS tx, s.seq, s.entity, s.entity_id
              FROM sync_changes s
             WHERE s.resident_id = $1
               AND (s.tx, s.seq) > ($2::text::xid8, $3::bigint)
               AND s.tx < h.xmin
             ORDER BY s.tx, s.seq
             LIMIT $4) c ON true
     ORDER BY c.tx, c.seq
"""

# a report as the reporter's list shows it, with its answers and whether a rating is asked
_FIRST_THUMBNAIL = (
    select(ReportPhoto.thumb_key)
    .where(ReportPhoto.report_id == Report.id, ReportPhoto.hidden_reason.is_(None))
    .order_by(ReportPhoto.position)
    .limit(1)
    .scalar_subquery()
)
# a public answer from staff or the system (the predicate of ix_report_events_answers)
_ANSWERS = (
    select(func.count())
    .where(
        ReportEvent.report_id == Report.id,
        ReportEvent.public,
        ReportEvent.body.is_not(None),
        ReportEvent.actor_kind != literal_column("'resident'"),
        ReportEvent.hidden_reason.is_(None),
    )
    .scalar_subquery()
)
_REPORTS = Query(
    select(
        Report.id,
        Report.code,
        Report.kind,
        Report.status,
        Report.category_code,
        Report.description,
        Report.area_code,
        Report.created_at,
        Report.updated_at,
        _FIRST_THUMBNAIL.label("thumb_key"),
        Report.address_text,
        Report.location_approximate,
        _ANSWERS.label("answers"),
        Report.rating_requested_at,
    ).where(
        Report.id == any_(bindparam("ids", type_=ARRAY(Uuid()))),
        Report.reporter_id == bindparam("resident_id"),
    )
)
_REPORT_KEYS = Query(
    select(Report.id)
    .where(
        Report.reporter_id == bindparam("resident_id"),
        Report.id > bindparam("after"),
    )
    .order_by(Report.id)
    .limit(bindparam("limit"))
)

_NOTIFICATIONS = Query(
    select(
        Notification.id,
        Notification.kind,
        Notification.title,
        Notification.body,
        cast(Notification.data, Text),
        Notification.created_at,
        Notification.read_at,
    ).where(
        Notification.id == any_(bindparam("ids", type_=ARRAY(BigInteger()))),
        Notification.user_id == bindparam("resident_id"),
    )
)
_data = msgspec.json.Decoder(dict[str, Any])
# newest first, as the inbox (ix_notifications_user_id_id)
_NOTIFICATION_KEYS = Query(
    select(Notification.id)
    .where(
        Notification.user_id == bindparam("resident_id"),
        Notification.id < bindparam("before"),
    )
    .order_by(Notification.id.desc())
    .limit(bindparam("limit"))
)

# the dossiers' own list columns and policy inputs (app/dossiers/service.py), by code
_DOSSIERS = Query(
    select(*dossiers_service.SUMMARY_COLUMNS)
    .join(Agency, Agency.id == Dossier.agency_id)
    .where(Dossier.code == any_(bindparam("codes", type_=ARRAY(String()))))
)
# the dossiers the resident follows: filed under their verified citizen ID, or linked
_DOSSIER_KEYS = """
    SELECT code FROM (
        SELECT d.code FROM dossiers d
         WHERE d.applicant_id_hash = (
                SELECT citizen_id_hash FROM users
                 WHERE id = $1 AND identity_level >= $2 AND deleted_at IS NULL)
           AND d.code > $3
        UNION
        SELECT d.code FROM dossier_links l JOIN dossiers d ON d.id = l.dossier_id
         WHERE l.user_id = $1 AND d.code > $3
    ) f
    ORDER BY code
    LIMIT $4
"""


# ---------------------------------------------------------------- the items


async def _driver(session: AsyncSession) -> Any:
    """The session's asyncpg connection, in autocommit while nothing has begun (a sync
    that finds nothing changed is one statement, no BEGIN/COMMIT: app/core/reads.py)."""
    connection = await reads.single_statement(session)
    raw = await connection.get_raw_connection()
    return raw.driver_connection


class Reading(msgspec.Struct, frozen=True):
    """What the items are rendered with: the request's language, the reference names,
    the storage (signed thumbnails), the health read's context (its access log)."""

    storage: Storage
    names: Snapshot | None
    locale: str
    health_context: health_service.ReadContext


async def _reports(
    session: AsyncSession, actor: Actor, ids: list[str], reading: Reading
) -> dict[str, SyncItem]:
    wanted = [uuid.UUID(i) for i in ids]
    rows = await _REPORTS.fetch(session, ids=wanted, resident_id=actor.user_id)
    found: dict[str, SyncItem] = {}
    for row in rows:
        thumb = row["thumb_key"]
        fields = dict(row.items())
        fields["thumbnail_url"] = await reading.storage.signed_url(thumb) if thumb else None
        summary = complaints_service.spoken(
            msgspec.convert(fields, ReportSummary), reading.names, reading.locale
        )
        found[str(row["id"])] = SyncItem(
            type="report",
            id=str(row["id"]),
            deleted=False,
            report=summary,
            answers=row["answers"],
            rating_asked=row["rating_requested_at"] is not None and row["status"] == "resolved",
        )
    return found


async def _notifications(
    session: AsyncSession, actor: Actor, ids: list[str], reading: Reading
) -> dict[str, SyncItem]:
    rows = await _NOTIFICATIONS.fetch(session, ids=[int(i) for i in ids], resident_id=actor.user_id)
    found: dict[str, SyncItem] = {}
    for nid, kind, title, body, raw, created_at, read_at in rows:
        data = _data.decode(raw)
        link, code = data.get("link"), data.get("report_code")
        found[str(nid)] = SyncItem(
            type="notification",
            id=str(nid),
            deleted=False,
            notification=NotificationOut(
                id=nid,
                kind=kind,
                title=title,
                body=body,
                report_code=code if isinstance(code, str) else None,
                link=link if isinstance(link, str) else None,
                data=data,
                created_at=created_at,
                read_at=read_at,
            ),
        )
    return found


async def _dossiers(
    session: AsyncSession, actor: Actor, codes: list[str], reading: Reading
) -> dict[str, SyncItem]:
    rows = await _DOSSIERS.fetch(session, codes=codes, user_id=actor.user_id)
    found: dict[str, SyncItem] = {}
    for row in rows:
        summary = dossiers_service.summary_of(row, actor, reading.locale)
        if summary is not None:  # the policy's answer; else a tombstone
            found[summary.code] = SyncItem(
                type="dossier", id=summary.code, deleted=False, dossier=summary
            )
    return found


async def _health(
    session: AsyncSession, actor: Actor, sections: list[str], reading: Reading
) -> dict[str, SyncItem]:
    """The health book's summary (a read like /me/health, in its access log), with the
    sections that changed; nothing when the resident may not read a record."""
    try:
        summary = await health_service.summary(session, actor, reading.health_context)
    except NotFound:
        return {}
    item = SyncItem(
        type="health",
        id="summary",
        deleted=False,
        health=summary,
        sections=sorted(set(sections) - {"person", "summary"}) or None,
    )
    return {"summary": item}


_RENDER = {
    "report": _reports,
    "notification": _notifications,
    "dossier": _dossiers,
    "health": _health,
}


async def _items(
    session: AsyncSession, actor: Actor, changed: list[tuple[str, str]], reading: Reading
) -> list[SyncItem]:
    """Each (entity, id) once, in its current state or as a tombstone, in the order of
    its latest change."""
    latest: dict[tuple[str, str], None] = {}
    for entity, entity_id in changed:
        key = (entity, "summary" if entity == "health" else entity_id)
        latest.pop(key, None)
        latest[key] = None
    found: dict[tuple[str, str], SyncItem] = {}
    for entity in PHASES:
        ids = [i for e, i in changed if e == entity]
        if ids:
            unique = ids if entity == "health" else list(dict.fromkeys(ids))
            rendered = await _RENDER[entity](session, actor, unique, reading)
            found.update(((entity, entity_key), item) for entity_key, item in rendered.items())
    return [
        found.get(key) or SyncItem(type=key[0], id=key[1], deleted=True)  # type: ignore[arg-type]
        for key in latest
    ]


# ---------------------------------------------------------------- the call


def _expired(at: Position, purged_tx: int, purged_seq: int) -> bool:
    return (at.tx, at.seq) < (purged_tx, purged_seq)


def _gone(settings: Settings) -> Gone:
    return Gone(
        "sync_cursor_expired",
        params={"days": settings.sync_retention_days},
        errors=[FieldError(field="cursor", message="expired", source="query")],
    )


async def sync(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    cursor: str | None,
    limit: int,
    reading: Reading,
) -> SyncPage:
    """The page after ``cursor`` (None: the current state, from the start)."""
    if not policy.may_sync_changes(actor) or actor.user_id is None:
        raise Forbidden("residents_only")
    resident_id = actor.user_id
    horizon = None
    if cursor is None:
        horizon = await (await _driver(session)).fetchrow(_HORIZON)
        at = Position(tx=horizon["xmin"], phase=0)
    else:
        at = decode_cursor(settings, resident_id, cursor)
    if at.phase is not None:
        return await _listing(session, settings, actor, at, limit, reading, horizon)
    rows = await (await _driver(session)).fetch(_LOG, resident_id, str(at.tx), at.seq, limit + 1)
    first = rows[0]
    if _expired(at, first["purged_tx"], first["purged_seq"]):
        raise _gone(settings)
    changes = [r for r in rows if r["tx"] is not None]
    more = len(changes) > limit
    changes = changes[:limit]
    if more:
        after = Position(tx=changes[-1]["tx"], seq=changes[-1]["seq"])
    else:
        # everything below the horizon is seen: the next call starts there (rows at the
        # horizon's own transaction and above have seq >= 1)
        after = max(at, Position(tx=first["xmin"], seq=0), key=lambda p: (p.tx, p.seq))
    items = await _items(session, actor, [(c["entity"], c["entity_id"]) for c in changes], reading)
    return SyncPage(items=items, cursor=encode_cursor(settings, resident_id, after), has_more=more)


async def _listing(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    at: Position,
    limit: int,
    reading: Reading,
    horizon: Any = None,
) -> SyncPage:
    """A page of the current state, phase after phase, each by keyset; at the end the
    cursor moves to the log at the horizon the listing started from."""
    assert at.phase is not None and actor.user_id is not None
    if horizon is None:  # a later page of the listing: has the purge passed its start?
        horizon = await (await _driver(session)).fetchrow(_HORIZON)
    if _expired(Position(tx=at.tx), horizon["purged_tx"], horizon["purged_seq"]):
        raise _gone(settings)
    items: list[SyncItem] = []
    phase, key = at.phase, at.key
    while phase < len(PHASES) and len(items) < limit:
        room = limit - len(items)
        keys = await _phase_keys(session, actor, PHASES[phase], key, room + 1)
        page_keys = keys[:room]
        if page_keys:
            rendered = await _RENDER[PHASES[phase]](session, actor, page_keys, reading)
            items.extend(rendered[k] for k in page_keys if k in rendered)
        if len(keys) > room:  # this phase goes on
            key = page_keys[-1]
            break
        phase, key = phase + 1, ""
    if phase >= len(PHASES):
        after = Position(tx=at.tx, seq=0)
        more = False
    else:
        after = Position(tx=at.tx, phase=phase, key=key)
        more = True
    return SyncPage(
        items=items, cursor=encode_cursor(settings, actor.user_id, after), has_more=more
    )


_NIL = uuid.UUID(int=0)
_MAX_ID = 2**63 - 1


async def _phase_keys(
    session: AsyncSession, actor: Actor, entity: str, after: str, limit: int
) -> list[str]:
    values: dict[str, Any] = {"resident_id": actor.user_id, "limit": limit}
    try:
        if entity == "report":
            values["after"] = uuid.UUID(after) if after else _NIL
            return [str(r[0]) for r in await _REPORT_KEYS.fetch(session, **values)]
        if entity == "notification":
            values["before"] = int(after) if after else _MAX_ID
            return [str(r[0]) for r in await _NOTIFICATION_KEYS.fetch(session, **values)]
    except ValueError:
        raise _invalid() from None
    if entity == "dossier":
        rows = await (await _driver(session)).fetch(
            _DOSSIER_KEYS, actor.user_id, policy.DOSSIER_OWNER_LEVEL, after, limit
        )
        return [r["code"] for r in rows]
    return ["summary"]  # the health book: one item, if the resident may read one


# ---------------------------------------------------------------- retention


_PURGE = text(
    """
    WITH gone AS (
        DELETE FROM sync_changes WHERE changed_at < :before RETURNING tx, seq
    ), moved AS (
        UPDATE sync_horizon h SET tx = n.tx, seq = n.seq, purged_at = :now
          FROM (SELECT tx, seq FROM gone ORDER BY tx DESC, seq DESC LIMIT 1) n
         WHERE (n.tx, n.seq) > (h.tx, h.seq)
        RETURNING 1
    )
    SELECT count(*) FROM gone
    """
)


async def purge(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Delete the change rows older than SYNC_RETENTION_DAYS and move the horizon to the
    newest of them: a cursor from before it answers 410. Returns how many went."""
    before = now - timedelta(days=settings.sync_retention_days)
    gone = await session.scalar(_PURGE, {"before": before, "now": now})
    return int(gone or 0)
