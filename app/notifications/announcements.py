"""Areas followed (phường/xã theo dõi) and announcements to their followers (thông báo
của chính quyền).

Following
    A resident follows their home ward implicitly: ``users.home_area_code`` *is* the
    follow, so moving home (``PATCH /me``, in accounts) moves it with no hook between
    contexts. Other areas are rows of ``area_follows``; unfollowing the home ward is a row
    with ``following`` false (it stays unfollowed, even after moving away and back).

Announcements
    An admin announces to any areas; the manager of a ward's People's Committee only to
    that ward (``units.area_code`` of a ``ward_committee`` unit they manage). Creating one
    writes the row (``queued``), the audit entry, and enqueues the fan-out job after the
    commit; ``POST`` answers 202 at once.

    The fan-out (:func:`fan_out_step`, called in a loop by the ``send_announcement`` job)
    walks the followers of the target areas in user-id order (keyset: the cursor is the
    last user id done), ``FANOUT_BATCH`` at a time; each step is one transaction holding
    the announcement's row lock and one statement that picks the next followers, writes
    their inbox rows (INSERT … SELECT, dedupe key ``announcement:{id}``, rendered in each
    follower's language) and returns the new ids; the step then moves the cursor and the
    counters and enqueues one push job per ``PUSH_JOB_BATCH`` (100) new rows (after the
    commit). A job that dies mid-way leaves a committed cursor: a rerun resumes there,
    and the dedupe key makes even a rerun from the start write nothing twice.

    Pushes go through ``push_notifications`` like every other notification (preferences,
    one delivery per notification and device, retries), a batch at a time.
    ``GET /announcements/{id}`` shows the progress: followers counted, inbox rows, and the
    rows by push status; once all are settled the final counts (by notification and by
    device) are stored and the announcement is ``settled``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts.models import User
from app.core import audit
from app.core.errors import BadRequest, Conflict, FieldError, Forbidden, NotFound, Unprocessable
from app.core.jobs import enqueue
from app.notifications import push
from app.notifications.models import Announcement, AreaFollow
from app.notifications.preferences import ANNOUNCEMENT, ANNOUNCEMENT_URGENT
from app.notifications.push import PUSH_BATCH_JOB, push_batch_job_id
from app.notifications.schemas import (
    AnnouncementIn,
    AnnouncementOut,
    AnnouncementTextOut,
    AnnouncementTextsOut,
    DeliveryCounts,
    FollowedArea,
    PushCounts,
)
from app.places import service as places
from app.policy import Actor

ANNOUNCE_JOB = "send_announcement"
FANOUT_BATCH = 5000  # followers per step (one transaction, one INSERT … SELECT)
MAX_FOLLOWED_AREAS = 20  # besides the home ward
NO_USER = uuid.UUID(int=0)


def announcement_job_id(announcement_id: uuid.UUID, cursor: uuid.UUID | None = None) -> str:
    """The fan-out job's id; a continuation (a job that ran out of time) names its cursor."""
    base = f"announcement:{announcement_id}"
    return f"{base}:from:{cursor}" if cursor else base


def dedupe_key(announcement_id: uuid.UUID) -> str:
    return f"announcement:{announcement_id}"


# ------------------------------------------------------------------------- following

_FOLLOWED = text(
    """
    SELECT a.code, a.name, true AS home
      FROM users u JOIN areas a ON a.code = u.home_area_code
     WHERE u.id = :user_id
       AND NOT EXISTS (SELECT 1 FROM area_follows f
                        WHERE f.user_id = u.id AND f.area_code = a.code AND NOT f.following)
    UNION
    SELECT a.code, a.name, coalesce(a.code = u.home_area_code, false)
      FROM area_follows f
      JOIN areas a ON a.code = f.area_code
      JOIN users u ON u.id = f.user_id
     WHERE f.user_id = :user_id AND f.following
     ORDER BY home DESC, name, code
    """
)


async def followed_areas(session: AsyncSession, user_id: uuid.UUID) -> list[FollowedArea]:
    """The areas the resident follows: their home ward first (unless unfollowed)."""
    rows = await session.execute(_FOLLOWED, {"user_id": user_id})
    return [FollowedArea(code=c, name=n, home=h) for c, n, h in rows]


async def follow_area(
    session: AsyncSession, user_id: uuid.UUID, code: str, now: datetime
) -> FollowedArea:
    """Follow an area (again: a no-op). Unknown area: 404."""
    area = await places.find_area(session, code)
    home = await session.scalar(select(User.home_area_code).where(User.id == user_id))
    already = await session.scalar(
        select(AreaFollow.following).where(
            AreaFollow.user_id == user_id, AreaFollow.area_code == code
        )
    )
    if not already and code != home:
        count = await session.scalar(
            select(func.count())
            .select_from(AreaFollow)
            .where(AreaFollow.user_id == user_id, AreaFollow.following)
        )
        if (count or 0) >= MAX_FOLLOWED_AREAS:
            raise Conflict("followed_areas_limit", params={"limit": MAX_FOLLOWED_AREAS})
    stmt = insert(AreaFollow).values(
        user_id=user_id, area_code=code, following=True, created_at=now
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AreaFollow.user_id, AreaFollow.area_code],
            set_={"following": True, "created_at": now},
            where=AreaFollow.following.is_(False),
        )
    )
    return FollowedArea(code=area.code, name=area.name, home=code == home)


async def unfollow_area(
    session: AsyncSession, user_id: uuid.UUID, code: str, now: datetime
) -> None:
    """Stop following an area (not followed: a no-op). The home ward is remembered as
    unfollowed. Unknown area: 404."""
    await places.find_area(session, code)
    home = await session.scalar(select(User.home_area_code).where(User.id == user_id))
    if code == home:
        stmt = insert(AreaFollow).values(
            user_id=user_id, area_code=code, following=False, created_at=now
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[AreaFollow.user_id, AreaFollow.area_code],
                set_={"following": False, "created_at": now},
            )
        )
    else:
        await session.execute(
            delete(AreaFollow).where(AreaFollow.user_id == user_id, AreaFollow.area_code == code)
        )


# ------------------------------------------------------------------------- announcing


def _texts(row: Announcement) -> AnnouncementTextsOut:
    en = (
        AnnouncementTextOut(title=row.title_en, body=row.body_en)
        if row.title_en is not None and row.body_en is not None
        else None
    )
    return AnnouncementTextsOut(vi=AnnouncementTextOut(title=row.title_vi, body=row.body_vi), en=en)


def _check_texts(body: AnnouncementIn) -> None:
    blank = []
    for language, texts in (("vi", body.texts.vi), ("en", body.texts.en)):
        if texts is None:
            continue
        blank += [
            FieldError(field=f"texts.{language}.{name}", message="blank", source="body")
            for name, value in (("title", texts.title), ("body", texts.body))
            if not value.strip()
        ]
    if blank:
        raise BadRequest("announcement_text_blank", errors=blank)


async def _check_areas(session: AsyncSession, codes: list[str]) -> None:
    known = set(
        await session.scalars(
            text("SELECT code FROM areas WHERE code = ANY(:codes)"), {"codes": codes}
        )
    )
    unknown = [(i, c) for i, c in enumerate(codes) if c not in known]
    if unknown:
        raise Unprocessable(
            "announcement_area_unknown",
            params={"codes": ", ".join(c for _, c in unknown)},
            errors=[
                FieldError(field=f"area_codes[{i}]", message=c, source="body") for i, c in unknown
            ],
        )


async def _sender_unit(session: AsyncSession, actor: Actor, codes: list[str]) -> uuid.UUID | None:
    """Who may announce where (app/policy.py): an admin anywhere (no unit); a ward
    committee's managers (or a unit's above it) to its ward only. Returns the unit
    spoken for."""
    if policy.may_announce_anywhere(actor):
        return None
    wards: dict[str, uuid.UUID] = {}
    if actor.managed_units:
        rows = await session.execute(
            text(
                "SELECT area_code, id, kind FROM units WHERE id = ANY(:ids)"
                " AND area_code IS NOT NULL ORDER BY code"
            ),
            {"ids": list(actor.managed_units)},
        )
        wards = {
            area: unit_id
            for area, unit_id, kind in rows
            if policy.may_announce_in(actor, unit_id, kind)
        }
    outside = [c for c in codes if c not in wards]
    if outside:
        raise Forbidden("announcement_area_forbidden", params={"codes": ", ".join(outside)})
    return wards[codes[0]]


async def create_announcement(
    session: AsyncSession,
    actor: Actor,
    body: AnnouncementIn,
    now: datetime,
    ip: str | None = None,
) -> AnnouncementOut:
    """Check and record the announcement, audit it, and enqueue its fan-out (after the
    commit). Blank text: 400; unknown area: 422 naming it; an area the sender may not
    announce to: 403. Nothing is written unless all is well."""
    _check_texts(body)
    codes = list(dict.fromkeys(body.area_codes))
    await _check_areas(session, codes)
    unit_id = await _sender_unit(session, actor, codes)
    en = body.texts.en
    row = Announcement(
        id=uuid.uuid4(),
        sender_id=actor.user_id,
        unit_id=unit_id,
        urgent=body.urgent,
        area_codes=codes,
        title_vi=body.texts.vi.title.strip(),
        body_vi=body.texts.vi.body.strip(),
        title_en=en.title.strip() if en else None,
        body_en=en.body.strip() if en else None,
        status="queued",
        recipients=0,
        inbox_rows=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="announcement.created",
        object_type="announcement",
        object_id=str(row.id),
        ip=ip,
        details={
            "areas": codes,
            "urgent": body.urgent,
            "unit_id": str(unit_id) if unit_id else None,
            "languages": ["vi", "en"] if en else ["vi"],
        },
    )
    enqueue(ANNOUNCE_JOB, str(row.id), job_id=announcement_job_id(row.id))
    return _announcement_out(row, PushCounts(), None)


def _announcement_out(
    row: Announcement, push: PushCounts, devices: DeliveryCounts | None
) -> AnnouncementOut:
    return AnnouncementOut(
        id=row.id,
        status=row.status,
        urgent=row.urgent,
        area_codes=list(row.area_codes),
        texts=_texts(row),
        recipients=row.recipients,
        inbox_rows=row.inbox_rows,
        push=push,
        devices=devices,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        settled_at=row.settled_at,
    )


_PUSH_COUNTS = text(
    """
    SELECT push_status, count(*) FROM notifications
     WHERE announcement_id = :id GROUP BY push_status
    """
)

_DELIVERY_COUNTS = text(
    """
    SELECT d.status, count(*)
      FROM notifications n JOIN notification_deliveries d ON d.notification_id = n.id
     WHERE n.announcement_id = :id
     GROUP BY d.status
    """
)


async def get_announcement(
    session: AsyncSession, actor: Actor, announcement_id: uuid.UUID, now: datetime
) -> AnnouncementOut:
    """The announcement and its progress, for an admin, its sender, or a manager of the
    ward committee it was sent for; anyone else: 404 (its existence is not revealed).
    Counts are live until every row is settled; then they are stored, final."""
    row = await session.get(Announcement, announcement_id)
    if row is None or not policy.may_read_announcement(actor, row.sender_id, row.unit_id):
        raise NotFound("announcement_not_found")
    if row.push_counts is not None:
        stored = row.push_counts
        return _announcement_out(
            row, PushCounts(**stored["notifications"]), DeliveryCounts(**stored["devices"])
        )
    counts: dict[str, int] = dict((await session.execute(_PUSH_COUNTS, {"id": row.id})).all())
    push = PushCounts(**{k: int(v) for k, v in counts.items()})
    if row.status != "done" or push.pending:
        return _announcement_out(row, push, None)
    # every inbox row written, none pending: the counts are final
    delivered: dict[str, int] = dict(
        (await session.execute(_DELIVERY_COUNTS, {"id": row.id})).all()
    )
    devices = DeliveryCounts(**{k: int(v) for k, v in delivered.items() if k != "pending"})
    row.push_counts = {
        "notifications": {k: int(v) for k, v in counts.items()},
        "devices": {k: int(v) for k, v in delivered.items() if k != "pending"},
    }
    row.settled_at = now.astimezone(UTC)
    return _announcement_out(row, push, devices)


# ------------------------------------------------------------------------- the fan-out

# The next followers of the target areas after the cursor (user id order), their inbox
# rows, and what was done, in one statement. Each lateral subquery walks an index in id
# order (users (home_area_code, id); area_follows (area_code, user_id) WHERE following)
# and stops after :n rows, so a step costs O(areas × n) whatever the followers' number.
_FANOUT = text(
    """
    WITH targets AS (
        SELECT code FROM unnest(CAST(:areas AS text[])) AS code
    ), candidates AS (
        SELECT h.id AS user_id, h.locale
          FROM targets t
          CROSS JOIN LATERAL (
            SELECT u.id, u.locale FROM users u
             WHERE u.home_area_code = t.code AND u.id > CAST(:after AS uuid)
               AND u.status = 'active' AND u.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM area_follows f
                                WHERE f.user_id = u.id AND f.area_code = t.code
                                  AND NOT f.following)
             ORDER BY u.id LIMIT :n
          ) h
        UNION
        SELECT x.user_id, x.locale
          FROM targets t
          CROSS JOIN LATERAL (
            SELECT f.user_id, u.locale FROM area_follows f JOIN users u ON u.id = f.user_id
             WHERE f.area_code = t.code AND f.following AND f.user_id > CAST(:after AS uuid)
               AND u.status = 'active' AND u.deleted_at IS NULL
             ORDER BY f.user_id LIMIT :n
          ) x
    ), batch AS (
        SELECT user_id, locale FROM candidates ORDER BY user_id LIMIT :n
    ), written AS (
        INSERT INTO notifications
               (user_id, kind, title, body, data, dedupe_key, created_at, announcement_id)
        SELECT b.user_id, CAST(:kind AS text),
               CASE WHEN b.locale = 'en' THEN CAST(:title_en AS text)
                    ELSE CAST(:title_vi AS text) END,
               CASE WHEN b.locale = 'en' THEN CAST(:body_en AS text)
                    ELSE CAST(:body_vi AS text) END,
               CAST(:data AS jsonb), CAST(:dedupe_key AS text), CAST(:now AS timestamptz),
               CAST(:announcement_id AS uuid)
          FROM batch b
        ON CONFLICT (user_id, dedupe_key) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT count(*) FROM batch) AS recipients,
           (SELECT user_id FROM batch ORDER BY user_id DESC LIMIT 1) AS last_user,
           (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM written) AS ids
    """
)


@dataclass(frozen=True, slots=True)
class FanOutStep:
    recipients: int  # followers reached by this step
    inbox_rows: int  # rows it wrote (fewer on a rerun: the dedupe key)
    push_jobs: int
    cursor: uuid.UUID | None
    done: bool


async def fan_out_step(
    session: AsyncSession, announcement_id: uuid.UUID, now: datetime, batch: int = FANOUT_BATCH
) -> FanOutStep | None:
    """One step of the fan-out, in the caller's transaction: the next ``batch`` followers
    get their inbox row; the cursor and counters move; one push job per
    ``push.PUSH_JOB_BATCH`` new rows is enqueued (after the commit). None when there is
    nothing left to do (done, or gone). Two jobs on one announcement take turns on its
    row lock and never double a row."""
    row = await session.scalar(
        select(Announcement).where(Announcement.id == announcement_id).with_for_update()
    )
    if row is None or row.status == "done":
        return None
    title_en = row.title_en if row.title_en is not None else row.title_vi
    body_en = row.body_en if row.body_en is not None else row.body_vi
    data = {
        "announcement_id": str(row.id),
        "link": f"cityapp://announcements/{row.id}",
        "area_codes": list(row.area_codes),
        "urgent": row.urgent,
    }
    result = await session.execute(
        _FANOUT,
        {
            "areas": list(row.area_codes),
            "after": row.cursor or NO_USER,
            "n": batch,
            "kind": ANNOUNCEMENT_URGENT if row.urgent else ANNOUNCEMENT,
            "title_vi": row.title_vi,
            "body_vi": row.body_vi,
            "title_en": title_en,
            "body_en": body_en,
            "data": json.dumps(data, ensure_ascii=False),
            "dedupe_key": dedupe_key(row.id),
            "now": now,
            "announcement_id": row.id,
        },
    )
    recipients, last_user, ids = result.one()
    done = recipients < batch
    row.status = "done" if done else "sending"
    row.cursor = last_user or row.cursor
    row.recipients += recipients
    row.inbox_rows += len(ids)
    row.started_at = row.started_at or now
    row.updated_at = now
    if done:
        row.finished_at = now
    jobs = 0
    size = push.PUSH_JOB_BATCH
    for start in range(0, len(ids), size):
        chunk = list(ids[start : start + size])
        enqueue(PUSH_BATCH_JOB, chunk, job_id=push_batch_job_id(chunk))
        jobs += 1
    return FanOutStep(recipients, len(ids), jobs, row.cursor, done)


async def unfinished_announcements(
    session: AsyncSession, now: datetime, older_than_seconds: float, limit: int = 100
) -> list[uuid.UUID]:
    """Announcements whose fan-out has not moved for ``older_than_seconds`` (its job was
    lost, or died with its worker): the reconciler enqueues them again."""
    rows = await session.scalars(
        select(Announcement.id)
        .where(
            Announcement.status != "done",
            Announcement.updated_at < now - timedelta(seconds=older_than_seconds),
        )
        .order_by(Announcement.updated_at)
        .limit(limit)
    )
    return list(rows)


async def forget_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Erase what the notifications context keeps about a person (inbox, areas followed,
    push preferences): for account deletion (Decree 13/2023)."""
    await session.execute(text("DELETE FROM notifications WHERE user_id = :id"), {"id": user_id})
    await session.execute(delete(AreaFollow).where(AreaFollow.user_id == user_id))
    await session.execute(
        text("DELETE FROM notification_preferences WHERE user_id = :id"), {"id": user_id}
    )
