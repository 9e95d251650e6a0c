"""Filing reports with photos, and the reporter's own views and actions.

Photos are processed off the event loop, stored (display + thumbnail, no metadata)
before their row is written, so a row never points at a missing object. Filing is
idempotent per (reporter, Idempotency-Key).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import (
    BindParameter,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts import suspension
from app.complaints import lifecycle, photo_claim
from app.complaints.abuse import public_report_sql
from app.complaints.codes import new_report_code, normalize_code
from app.complaints.images import PhotoLimits, process_photo_async
from app.complaints.models import Report, ReportEvent, ReportPhoto, ReportRating, ReportSupporter
from app.complaints.schemas import (
    EventOut,
    ExportedReport,
    ExportedReports,
    NearbyReport,
    PhotoOut,
    Point,
    ReportCreated,
    ReportDetail,
    ReportIn,
    ReportPage,
    ReportSummary,
    UnitRef,
)
from app.core import audit, i18n
from app.core.calendar import Deadlines
from app.core.errors import BadRequest, Conflict, FieldError, Forbidden, NotFound, Unprocessable
from app.core.reads import Query
from app.core.storage import Storage
from app.places import addresses
from app.places.models import Category, Unit
from app.places.reference import Snapshot
from app.policy import Actor
from app.settings import Settings, get_settings


def photo_limits(settings: Settings) -> PhotoLimits:
    return PhotoLimits(
        max_bytes=settings.photo_max_bytes, max_pixels=settings.photo_max_megapixels * 1_000_000
    )


# ---------------------------------------------------------------- photos


async def photo_out(storage: Storage, photo: ReportPhoto) -> PhotoOut:
    return PhotoOut(
        id=photo.id,
        width=photo.width,
        height=photo.height,
        url=await storage.signed_url(photo.display_key),
        thumbnail_url=await storage.signed_url(photo.thumb_key),
        taken_at=photo.taken_at,
        has_geotag=photo.geotag is not None,
        expires_at=photo.expires_at,
    )


async def upload_photo(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    owner_id: uuid.UUID,
    data: bytes,
    now: datetime,
) -> PhotoOut:
    processed = await process_photo_async(data, photo_limits(settings))
    photo_id = uuid.uuid4()
    prefix = f"photos/{now:%Y/%m}/{photo_id}"
    # objects first: a row must never point at something missing
    await storage.put(f"{prefix}/display.jpg", processed.display, "image/jpeg")
    await storage.put(f"{prefix}/thumb.jpg", processed.thumbnail, "image/jpeg")
    geotag = None
    if processed.latitude is not None and processed.longitude is not None:
        geotag = f"SRID=4326;POINT({processed.longitude} {processed.latitude})"
    photo = ReportPhoto(
        id=photo_id,
        owner_id=owner_id,
        display_key=f"{prefix}/display.jpg",
        thumb_key=f"{prefix}/thumb.jpg",
        width=processed.display_width,
        height=processed.display_height,
        source_format=processed.source_format,
        sha256=processed.sha256,
        taken_at=processed.taken_at,
        geotag=geotag,
        created_at=now,
        expires_at=now + timedelta(hours=settings.photo_unattached_ttl_hours),
    )
    session.add(photo)
    await session.flush()
    return await photo_out(storage, photo)


# ---------------------------------------------------------------- filing


async def file_report(
    session: AsyncSession,
    settings: Settings,
    reporter_id: uuid.UUID,
    body: ReportIn,
    idempotency_key: str | None,
    now: datetime,
    filed_by_staff_id: uuid.UUID | None = None,
    *,
    attributes: dict[str, Any] | None = None,
    open311_key_id: uuid.UUID | None = None,
) -> tuple[ReportCreated, bool]:
    """File a report. Returns (report, created); a retried submission with the same
    Idempotency-Key returns the first report and created=False.

    ``filed_by_staff_id``: staff filing on a resident's behalf (a hotline call, a
    counter); the photos are the staff member's uploads, a complaint may come without
    one, and the service index counts the report apart from residents' own.
    ``open311_key_id``: a third-party app filing through Open311 (its photo, if any,
    comes later from its ``media_url``), counted apart too. ``attributes``: the answers
    to the category's extra questions, checked by the caller.

    Filing is the busiest write, so it is one statement (one round trip) inside the
    request's transaction: it checks category and area, inserts the report, claims every
    photo and writes the timeline. Anything refused raises and the boundary rolls all
    of it back. Retries with one Idempotency-Key meet on the unique index
    ``(reporter_id, idempotency_key)``: a second insert waits for the first transaction
    and, once that has committed, inserts nothing; the first report is then read back."""
    if filed_by_staff_id is None:  # a suspended account files nothing (issue 22 item 6)
        await suspension.ensure_not_suspended(session, reporter_id, now)
    photo_ids = list(dict.fromkeys(body.photo_ids))
    refused = None
    if len(photo_ids) > settings.photos_per_report:
        refused = Unprocessable(
            "too_many_photos",
            params={"max": settings.photos_per_report},
            errors=[FieldError(field="photo_ids", message="too many", source="body")],
        )
    elif (
        body.kind == "complaint"
        and not photo_ids
        and filed_by_staff_id is None
        and open311_key_id is None
    ):
        refused = Unprocessable(
            "photo_required",
            errors=[FieldError(field="photo_ids", message="at least one", source="body")],
        )
    fingerprint = body_fingerprint(body) if idempotency_key else None
    if refused is not None:
        # a retry of a submission that was filed gets the report if it sends the same
        # body, a 422 idempotency_key_reused if it sends another
        if idempotency_key:
            existing = await _filed_with_key(session, reporter_id, idempotency_key, fingerprint)
            if existing is not None:
                return existing, False
        raise refused
    lon, lat = await _filing_point(session, body)
    report_id = uuid.uuid4()
    params = {
        "id": report_id,
        "kind": body.kind,
        "category": body.category_code,
        "description": body.description.strip(),
        "address": body.address_text.strip() if body.address_text else None,
        "lon": lon,
        "lat": lat,
        "approximate": body.location is None,
        "reporter": reporter_id,
        "hide": body.hide_identity,
        "idem": idempotency_key,
        "fingerprint": fingerprint,
        "staff": filed_by_staff_id,
        "attributes": msgspec.json.encode(attributes).decode() if attributes else None,
        "open311_key": open311_key_id,
        **photo_claim.claim_params(settings, now, filed_by_staff_id or reporter_id, photo_ids),
    }
    for _ in range(5):  # a code collision is about 1 in 10^11; never a 500 for it
        code = new_report_code()
        category_ok, area_code, inserted, claimed = (
            await session.execute(_FILE_REPORT, {**params, "code": code})
        ).one()
        if inserted:
            break
        if idempotency_key:
            # a retry: a new statement sees what the first submission committed (the
            # insert above waited for it on the unique index)
            existing = await _filed_with_key(session, reporter_id, idempotency_key, fingerprint)
            if existing is not None:
                return existing, False
        if not category_ok:
            raise Unprocessable(
                "category_unknown",
                errors=[
                    FieldError(field="category_code", message="unknown category", source="body")
                ],
            )
        if area_code is None:
            raise Unprocessable(
                "location_outside_city",
                errors=[FieldError(field="location", message="outside the city", source="body")],
            )
        # else the code was taken: draw another
    else:
        raise RuntimeError("could not allocate a report code")
    if claimed != len(photo_ids):
        # some photo is not the reporter's, already used, expired or unknown: refuse all
        got = set(
            await session.scalars(
                select(ReportPhoto.id).where(
                    ReportPhoto.report_id == report_id, ReportPhoto.id.in_(photo_ids)
                )
            )
        )
        photo_claim.refuse_unclaimed(photo_ids, got)
    lifecycle.enqueue_routing(report_id)
    return (
        ReportCreated(
            id=report_id,
            code=code,
            status="submitted",
            kind=body.kind,
            area_code=area_code,
            created_at=now,
        ),
        True,
    )


# ---- filing by address, without coordinates (issue 22 item 7, helper H2)
async def _filing_point(session: AsyncSession, body: ReportIn) -> tuple[float, float]:
    """(lon, lat) to file at: the body's location, or else the centre of the ward its
    address names (``app.places.addresses.resolve``: 422 when it names none, 409 with the
    candidates when it names several)."""
    if body.location is not None:
        return body.location.lon, body.location.lat
    if body.address_id is None and not (body.address_text and body.address_text.strip()):
        raise Unprocessable(
            "location_or_address_required",
            errors=[
                FieldError(
                    field="location",
                    message="give location, address_id or address_text",
                    source="body",
                )
            ],
        )
    place = await addresses.resolve(session, body.address_id, body.address_text)
    return place.lon, place.lat


# ---- end of filing by address


def body_fingerprint(body: ReportIn) -> bytes:
    """SHA-256 of the body as decoded, re-encoded with sorted keys: the same submission
    gives the same fingerprint however its JSON was spaced or ordered."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).digest()


async def _filed_with_key(
    session: AsyncSession,
    reporter_id: uuid.UUID,
    idempotency_key: str,
    fingerprint: bytes | None,
) -> ReportCreated | None:
    """The report filed earlier with this key, if any. A key reused with another body is
    a 422 (the IETF Idempotency-Key draft's rule), never the first report in disguise.
    Reports filed before fingerprints were kept (NULL) match any body."""
    row = (
        await session.execute(
            select(
                Report.id,
                Report.code,
                Report.status,
                Report.kind,
                Report.area_code,
                Report.created_at,
                Report.idempotency_fingerprint,
            ).where(Report.reporter_id == reporter_id, Report.idempotency_key == idempotency_key)
        )
    ).first()
    if row is None:
        return None
    stored = row[-1]
    if stored is not None and fingerprint is not None and stored != fingerprint:
        raise Unprocessable(
            "idempotency_key_reused",
            errors=[FieldError(field="Idempotency-Key", message="reused", source="header")],
        )
    return ReportCreated(*row[:-1])


# Filing in one round trip: plain SQL, prepared once per connection. The report is
# inserted only when the category is active and the point is in one of the city's areas
# (``checked`` says which failed). ``ON CONFLICT DO NOTHING`` names no index on purpose:
# it covers both the report code (a collision: draw another) and the partial unique
# index on (reporter_id, idempotency_key) (a retry). The photos are claimed by the one
# photo-claim rule (``app.complaints.photo_claim``), here as a CTE over the new report.
_FILE_REPORT = text(
    """
    WITH checked AS (
        SELECT (SELECT active FROM categories WHERE code = :category) AS category_ok,
               (SELECT code FROM areas
                 WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
                 ORDER BY code LIMIT 1) AS area_code
    ), report AS (
        INSERT INTO reports (id, code, kind, status, category_code, description, address_text,
                             location, area_code, reporter_id, hide_identity, idempotency_key,
                             idempotency_fingerprint, filed_by_staff_id, attributes,
                             open311_key_id, location_approximate, created_at, updated_at)
        SELECT :id, :code, :kind, 'submitted', :category, :description, :address,
               ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), checked.area_code, :reporter, :hide,
               :idem, CAST(:fingerprint AS bytea), CAST(:staff AS uuid),
               CAST(:attributes AS jsonb), CAST(:open311_key AS uuid), :approximate, :now, :now
          FROM checked
         WHERE checked.category_ok AND checked.area_code IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING id, location
    ), claimed AS ("""
    + photo_claim.claim_sql("report")
    + """), event AS (
        INSERT INTO report_events (report_id, at, kind, to_status, actor_id, actor_kind, public)
        SELECT id, :now, 'transition', 'submitted', coalesce(CAST(:staff AS uuid), :reporter),
               CASE WHEN CAST(:staff AS uuid) IS NULL THEN 'resident' ELSE 'staff' END, true
          FROM report
        RETURNING id
    )
    SELECT checked.category_ok, checked.area_code,
           (SELECT count(*) FROM report), (SELECT count(*) FROM claimed)
      FROM checked
    """
)


# ---------------------------------------------------------------- the reporter's views


def _encode_cursor(created_at: datetime, report_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{report_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, rid = raw.partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(rid)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "cursor_invalid",
            errors=[FieldError(field="cursor", message="malformed", source="query")],
        ) from exc


# The reporter's reads in one statement each, columns straight into the response's
# Structs, no ORM instances (issue 18 item 9): the first visible photo's thumbnail and
# the report's photos and public timeline come as subqueries (JSON arrays) of it.
_FIRST_THUMBNAIL = (
    select(ReportPhoto.thumb_key)
    .where(ReportPhoto.report_id == Report.id, ReportPhoto.hidden_reason.is_(None))
    .order_by(ReportPhoto.position)
    .limit(1)
    .scalar_subquery()
)
_SUMMARY = select(
    Report.id,
    Report.code,
    Report.kind,
    Report.status,
    Report.category_code,
    Report.description,
    Report.area_code,
    Report.created_at,
    Report.updated_at,
    _FIRST_THUMBNAIL,
    Report.address_text,
    Report.location_approximate,
)


@functools.cache
def _mine_query(by_status: bool, by_kind: bool, after_cursor: bool) -> Query:
    stmt = _SUMMARY.where(Report.reporter_id == bindparam("reporter_id"))
    if by_status:
        stmt = stmt.where(Report.status == bindparam("status"))
    if by_kind:
        stmt = stmt.where(Report.kind == bindparam("kind"))
    if after_cursor:
        at: BindParameter[datetime] = bindparam("at")
        before: BindParameter[uuid.UUID] = bindparam("before")
        stmt = stmt.where(
            or_(Report.created_at < at, and_(Report.created_at == at, Report.id < before))
        )
    order = (Report.created_at.desc(), Report.id.desc())
    return Query(stmt.order_by(*order).limit(bindparam("limit")))


async def my_reports(
    session: AsyncSession,
    storage: Storage,
    reporter_id: uuid.UUID,
    status: str | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
    *,
    names: Snapshot | None = None,
    locale: str = "vi",
) -> ReportPage:
    values = {"reporter_id": reporter_id, "limit": limit + 1, "status": status, "kind": kind}
    if cursor:
        values["at"], values["before"] = _decode_cursor(cursor)
    rows = await _mine_query(bool(status), bool(kind), bool(cursor)).fetch(session, **values)
    more = len(rows) > limit
    rows = rows[:limit]
    # the ignore: mypy cannot tell that *row[:9] stops before thumbnail_url
    items = [
        spoken(
            ReportSummary(
                *row[:9],  # type: ignore[misc]
                thumbnail_url=await storage.signed_url(row[9], stable=True) if row[9] else None,
                address_text=row[10],
                location_approximate=row[11],
            ),
            names,
            locale,
        )
        for row in rows
    ]
    next_cursor = _encode_cursor(rows[-1][7], rows[-1][0]) if more else None
    return ReportPage(items=items, next_cursor=next_cursor)


async def _own_report(
    session: AsyncSession, reporter_id: uuid.UUID, report_id: uuid.UUID, lock: bool = False
) -> Report:
    stmt = select(Report).where(Report.id == report_id)
    if lock:
        stmt = stmt.with_for_update()
    report = await session.scalar(stmt)
    # someone else's report is "not found": its existence is not revealed
    if report is None or report.reporter_id != reporter_id:
        raise NotFound("report_not_found")
    return report


async def visible_photos(session: AsyncSession, report_id: uuid.UUID) -> list[ReportPhoto]:
    """The report's photos that moderators have not hidden, in order."""
    return list(
        await session.scalars(
            select(ReportPhoto)
            .where(ReportPhoto.report_id == report_id, ReportPhoto.hidden_reason.is_(None))
            .order_by(ReportPhoto.position)
        )
    )


async def public_events(session: AsyncSession, report_id: uuid.UUID) -> list[ReportEvent]:
    """The public timeline: public events not hidden by moderators, oldest first."""
    return list(
        await session.scalars(
            select(ReportEvent)
            .where(
                ReportEvent.report_id == report_id,
                ReportEvent.public.is_(True),
                ReportEvent.hidden_reason.is_(None),
            )
            .order_by(ReportEvent.id)
        )
    )


async def event_units(session: AsyncSession, events: list[ReportEvent]) -> dict[uuid.UUID, UnitRef]:
    """The units a timeline names, by id (one query)."""
    ids = {e.unit_id for e in events if e.unit_id is not None}
    if not ids:
        return {}
    rows = await session.execute(
        select(Unit.id, Unit.code, Unit.name_vi, Unit.name_en).where(Unit.id.in_(ids))
    )
    return {row.id: UnitRef(row.code, row.name_vi, row.name_en) for row in rows}


def _json_list(*columns, order_by):
    """One JSON array of arrays (as text, for msgspec to decode), in ``order_by`` order."""
    return cast(func.json_agg(aggregate_order_by(func.json_build_array(*columns), order_by)), Text)


_DETAIL_PHOTOS = (
    select(
        _json_list(
            ReportPhoto.id,
            ReportPhoto.width,
            ReportPhoto.height,
            ReportPhoto.display_key,
            ReportPhoto.thumb_key,
            ReportPhoto.taken_at,
            ReportPhoto.geotag.is_not(None),
            ReportPhoto.expires_at,
            order_by=ReportPhoto.position,
        )
    )
    .where(ReportPhoto.report_id == Report.id, ReportPhoto.hidden_reason.is_(None))
    .scalar_subquery()
)
_DETAIL_TIMELINE = (
    select(
        _json_list(
            ReportEvent.at,
            ReportEvent.kind,
            ReportEvent.from_status,
            ReportEvent.to_status,
            ReportEvent.body,
            ReportEvent.actor_kind,
            Unit.code,
            Unit.name_vi,
            Unit.name_en,
            order_by=ReportEvent.id,
        )
    )
    .select_from(ReportEvent)
    .outerjoin(Unit, Unit.id == ReportEvent.unit_id)
    .where(
        ReportEvent.report_id == Report.id,
        ReportEvent.public.is_(True),
        ReportEvent.hidden_reason.is_(None),
    )
    .scalar_subquery()
)
_DETAIL = select(
    Report.reporter_id,
    Report.id,
    Report.code,
    Report.kind,
    Report.status,
    Report.category_code,
    Report.description,
    Report.address_text,
    func.ST_Y(Report.location),
    func.ST_X(Report.location),
    Report.area_code,
    Report.hide_identity,
    Report.supporters_count,
    Report.created_at,
    Report.updated_at,
    Report.due_at,
    _DETAIL_PHOTOS,
    _DETAIL_TIMELINE,
)
_detail_photos = msgspec.json.Decoder(
    list[tuple[uuid.UUID, int, int, str, str, datetime | None, bool, datetime | None]]
)
_detail_timeline = msgspec.json.Decoder(
    list[
        tuple[
            datetime,
            str,
            str | None,
            str | None,
            str | None,
            str,
            str | None,
            str | None,
            str | None,
        ]
    ]
)


_DETAIL_BY_ID = Query(_DETAIL.where(Report.id == bindparam("report_id")))


async def report_detail(
    session: AsyncSession, storage: Storage, reporter_id: uuid.UUID, report_id: uuid.UUID
) -> ReportDetail:
    row = await _DETAIL_BY_ID.fetchrow(session, report_id=report_id)
    # someone else's report is "not found": its existence is not revealed
    if row is None or row[0] != reporter_id:
        raise NotFound("report_not_found")
    status = row[4]
    actions = lifecycle.allowed_from(status, "resident")
    if status in lifecycle.OPEN_STATUSES:
        actions = sorted({*actions, "comment", "add_photos"})
    photos = [
        PhotoOut(
            id=pid,
            width=width,
            height=height,
            # stable URLs: the detail keeps its ETag for a window (issue 24 item 1)
            url=await storage.signed_url(display_key, stable=True),
            thumbnail_url=await storage.signed_url(thumb_key, stable=True),
            taken_at=taken_at,
            has_geotag=has_geotag,
            expires_at=expires_at,
        )
        for pid, width, height, display_key, thumb_key, taken_at, has_geotag, expires_at in (
            _detail_photos.decode(row[16]) if row[16] else ()
        )
    ]
    timeline = [
        EventOut(
            at=at,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            body=body,
            by=actor_kind,
            # a joined unit has all three (an event without one has none)
            unit=UnitRef(code, name_vi, name_en)
            if code is not None and name_vi is not None and name_en is not None
            else None,
        )
        for at, kind, from_status, to_status, body, actor_kind, code, name_vi, name_en in (
            _detail_timeline.decode(row[17]) if row[17] else ()
        )
    ]
    # mypy cannot tell that *row[1:8] stops before location
    return ReportDetail(  # type: ignore[misc]
        *row[1:8],
        location=Point(lat=row[8], lon=row[9]),
        area_code=row[10],
        hide_identity=row[11],
        supporters_count=row[12],
        created_at=row[13],
        updated_at=row[14],
        due_at=row[15],
        photos=photos,
        timeline=timeline,
        allowed_actions=actions,
    )


async def withdraw(
    session: AsyncSession, reporter_id: uuid.UUID, report_id: uuid.UUID, now: datetime
) -> None:
    report = await _own_report(session, reporter_id, report_id, lock=True)
    lifecycle.transition(
        session,
        report,
        "withdrawn",
        actor_id=reporter_id,
        actor_kind="resident",
        now=now,
        action="withdraw",
    )


async def add_comment(
    session: AsyncSession, reporter_id: uuid.UUID, report_id: uuid.UUID, body: str, now: datetime
) -> None:
    report = await _own_report(session, reporter_id, report_id, lock=True)
    await suspension.ensure_not_suspended(session, reporter_id, now)
    if report.status not in lifecycle.OPEN_STATUSES:
        raise Conflict("report_closed_for_comments")
    session.add(
        ReportEvent(
            report_id=report.id,
            at=now,
            kind="comment",
            actor_id=reporter_id,
            actor_kind="resident",
            public=True,
            body=body.strip(),
        )
    )
    report.updated_at = now


async def add_photos(
    session: AsyncSession,
    settings: Settings,
    reporter_id: uuid.UUID,
    report_id: uuid.UUID,
    photo_ids: list[uuid.UUID],
    now: datetime,
) -> None:
    report = await _own_report(session, reporter_id, report_id, lock=True)
    if report.status not in lifecycle.OPEN_STATUSES:
        raise Conflict("report_closed_for_comments")
    count = await session.scalar(
        select(func.count()).select_from(ReportPhoto).where(ReportPhoto.report_id == report.id)
    )
    ids = list(dict.fromkeys(photo_ids))
    if (count or 0) + len(ids) > settings.photos_per_report:
        raise Unprocessable(
            "too_many_photos",
            params={"max": settings.photos_per_report},
            errors=[FieldError(field="photo_ids", message="too many", source="body")],
        )
    await photo_claim.claim_photos(
        session,
        settings,
        owner_id=reporter_id,
        report_id=report.id,
        photo_ids=ids,
        now=now,
        position_base=count or 0,
    )
    session.add(
        ReportEvent(
            report_id=report.id,
            at=now,
            kind="photos_added",
            actor_id=reporter_id,
            actor_kind="resident",
            public=True,
            body=None,
        )
    )
    report.updated_at = now


# ---------------------------------------------------------------- before filing: nearby, support

NEARBY_METERS = 100
REOPEN_WINDOW = timedelta(days=7)


def degree_box(lat: float, meters: float) -> tuple[float, float]:
    """Half-width and half-height in degrees of a box around a point at latitude ``lat``
    that holds every point within ``meters`` on the spheroid: the geometry prefilter
    (``&&``, served by the GiST index on ``location``) for an exact geography test.
    Slightly generous (a degree of latitude is at least 110,574 m; one of longitude at
    least 111,319 m x cos(latitude)); near a pole the box spans every longitude."""
    dlat = meters / 110_000
    edge = min(90.0, abs(lat) + dlat)
    cos = math.cos(math.radians(edge))
    dlon = 360.0 if cos < 1e-9 else min(360.0, meters / (111_000 * cos))
    return dlon, dlat


# Open reports of a category near a point, nearest first. The exact test is on geography
# (metres on the spheroid); ``&&`` with a box a little larger than the circle lets the
# GiST index on ``location`` find the candidates. Plain SQL prepared once per connection:
# building the statement with the ORM cost more CPU than running it.
_HERE = "ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326)"
NEARBY_SQL = f"""
SELECT code, kind, status, category_code,
       CASE WHEN description_hidden_reason IS NULL THEN description END AS description,
       round(CAST(ST_Distance(CAST(location AS geography), CAST({_HERE} AS geography))
                  AS numeric), 1)::float8 AS distance_m,
       supporters_count, created_at, area_code,
       CASE WHEN description_hidden_reason IS NULL THEN address_text END AS address_text
  FROM reports
 WHERE location && ST_Expand({_HERE}, CAST(:dlon AS float8), CAST(:dlat AS float8))
   AND ST_DWithin(CAST(location AS geography), CAST({_HERE} AS geography),
                  CAST(:meters AS float8))
   AND category_code = :category
   AND status IN ({", ".join(f"'{s}'" for s in lifecycle.OPEN_STATUSES)})
   AND {public_report_sql("reports")}
 ORDER BY distance_m, code
 LIMIT 20
"""
_NEARBY = text(NEARBY_SQL)


def nearby_params(lon: float, lat: float, category_code: str) -> dict:
    dlon, dlat = degree_box(lat, NEARBY_METERS)
    return {
        "lon": lon,
        "lat": lat,
        "dlon": dlon,
        "dlat": dlat,
        "meters": NEARBY_METERS,
        "category": category_code,
    }


async def nearby(
    session: AsyncSession,
    lon: float,
    lat: float,
    category_code: str,
    *,
    names: Snapshot | None = None,
    locale: str = "vi",
) -> list[NearbyReport]:
    """Open reports of the same category within 100 m, nearest first: the app offers
    "support this one instead" before a duplicate is filed.

    The distance is exact (geography, metres) but only for the reports in a small box
    around the point, which the GiST index on ``location`` finds: casting the column to
    geography in the WHERE clause alone defeats the index and reads every open report
    (measured: ~0.9 s of PostgreSQL CPU per call at 1,000,000 reports, ~1 ms now;
    docs/benchmarks.md, issue 17)."""
    rows = await session.execute(_NEARBY, nearby_params(lon, lat, category_code))
    return [
        spoken(
            NearbyReport(
                code=row[0],
                kind=row[1],
                status=row[2],
                category_code=row[3],
                description=row[4],
                distance_m=row[5],
                supporters_count=row[6],
                created_at=row[7],
                area_code=row[8],
                address_text=row[9],
            ),
            names,
            locale,
        )
        for row in rows
    ]


# ---- lists as text for screen readers (issue 22 item 7, helper H2)
def spoken[S: (ReportSummary, NearbyReport)](item: S, names: Snapshot | None, locale: str) -> S:
    """The item with its status, kind, category and ward in words (``locale``); the
    reference snapshot gives the names, the catalogue the words."""
    category = names.categories.get(item.category_code) if names else None
    area = names.areas.get(item.area_code) if names else None
    return msgspec.structs.replace(
        item,
        status_text=i18n.name("status", item.status, locale),
        kind_text=i18n.name("kind", item.kind, locale),
        category_name=category.name(locale) if category else item.category_code,
        area_name=area.name if area else item.area_code,
    )


async def support(session: AsyncSession, user_id: uuid.UUID, code: str, now: datetime) -> int:
    """+1 ("me too"), once per resident; the supporter then follows the report."""
    await suspension.ensure_not_suspended(session, user_id, now)
    report = await session.scalar(
        select(Report).where(Report.code == normalize_code(code)).with_for_update()
    )
    if report is None or report.status == "withdrawn":
        raise NotFound("report_not_found")
    if report.reporter_id == user_id:
        raise Conflict("cannot_support_own")
    if report.status not in lifecycle.OPEN_STATUSES:
        raise Conflict("report_not_open")
    inserted = await session.execute(
        pg_insert(ReportSupporter)
        .values(report_id=report.id, user_id=user_id, created_at=now)
        .on_conflict_do_nothing()
        .returning(ReportSupporter.user_id)
    )
    if inserted.first() is None:
        raise Conflict("already_supported")
    report.supporters_count += 1
    return report.supporters_count


# ---------------------------------------------------------------- after resolution


async def rate(
    session: AsyncSession,
    reporter_id: uuid.UUID,
    report_id: uuid.UUID,
    rating: str,
    comment: str | None,
    now: datetime,
) -> None:
    """Once per resolution. Satisfied or accept closes the report; not satisfied leaves
    it resolved so the reporter may reopen it (once, within 7 days)."""
    report = await _own_report(session, reporter_id, report_id, lock=True)
    if report.status != "resolved":
        raise Conflict("not_resolved", allowed=lifecycle.allowed_from(report.status, "resident"))
    inserted = await session.execute(
        pg_insert(ReportRating)
        .values(
            report_id=report.id,
            resolution_round=report.reopen_count,
            rating=rating,
            comment=comment.strip() if comment else None,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(ReportRating.id)
    )
    if inserted.first() is None:
        raise Conflict("already_rated")
    session.add(
        ReportEvent(
            report_id=report.id,
            at=now,
            kind="rated",
            actor_id=reporter_id,
            actor_kind="resident",
            public=True,
            body=rating,
        )
    )
    if rating in ("satisfied", "accept"):
        lifecycle.transition(
            session,
            report,
            "closed",
            actor_id=reporter_id,
            actor_kind="resident",
            now=now,
            action="rate",
        )
        report.closed_reason = "rated"


async def reopen(
    session: AsyncSession,
    reporter_id: uuid.UUID,
    report_id: uuid.UUID,
    now: datetime,
    deadlines: Deadlines | None = None,
) -> None:
    """The reporter, not satisfied, reopens a resolution (once, within 7 days). The
    report gets a fresh deadline at once: the category's working days from the reopen
    instant (routing, which sends it back to the same unit, computes the same one), so
    it is never overdue on the old deadline the moment it returns. The first
    resolution's on-time verdict and handling time stay as they were frozen.

    ``deadlines``: the app's policy (``state.deadlines``); by default the settings'."""
    deadlines = deadlines or Deadlines.from_settings(get_settings())
    report = await _own_report(session, reporter_id, report_id, lock=True)
    if report.status != "resolved":
        raise Conflict(
            "invalid_transition",
            params={"current": report.status, "target": "reopened"},
            allowed=lifecycle.allowed_from(report.status, "resident"),
        )
    verdict = await session.scalar(
        select(ReportRating.rating).where(
            ReportRating.report_id == report.id,
            ReportRating.resolution_round == report.reopen_count,
        )
    )
    resolved_at = report.resolved_at or now
    if verdict != "not_satisfied" or report.reopen_count >= 1 or now - resolved_at > REOPEN_WINDOW:
        raise Conflict("reopen_not_allowed")
    lifecycle.transition(
        session,
        report,
        "reopened",
        actor_id=reporter_id,
        actor_kind="resident",
        now=now,
        action="reopen",
    )
    report.reopen_count += 1
    working_days = await session.scalar(
        select(Category.deadline_working_days).where(Category.code == report.category_code)
    )
    assert working_days is not None  # the report's category exists (a foreign key)
    report.due_at, report.remind_at, report.escalate_at = deadlines.for_received(now, working_days)
    report.reminded_at = report.overdue_at = report.escalated_at = None
    # back to the same unit by the routing job
    lifecycle.enqueue_routing(report.id, report.reopen_count)


# ---------------------------------------------------------------- moderation (staff)


async def hide_photo(session: AsyncSession, actor: Actor, photo_id: uuid.UUID, reason: str) -> None:
    photo = await session.scalar(
        select(ReportPhoto).where(ReportPhoto.id == photo_id).with_for_update()
    )
    report = await session.get(Report, photo.report_id) if photo and photo.report_id else None
    if photo is None or report is None:
        raise NotFound("photo_not_found")
    if not policy.may_act_on_report(actor, "hide_photo", report.unit_id):
        raise Forbidden("not_your_report")
    photo.hidden_reason = reason.strip()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.photo_hidden",
        object_type="photo",
        object_id=str(photo.id),
        ip=actor.ip,
        details={"report": report.code, "reason": reason.strip()},
    )


async def hide_text(session: AsyncSession, actor: Actor, report_id: uuid.UUID, reason: str) -> None:
    report = await session.scalar(select(Report).where(Report.id == report_id).with_for_update())
    if report is None:
        raise NotFound("report_not_found")
    if not policy.may_act_on_report(actor, "hide_text", report.unit_id):
        raise Forbidden("not_your_report")
    report.description_hidden_reason = reason.strip()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="report.text_hidden",
        object_type="report",
        object_id=report.code,
        ip=actor.ip,
        details={"reason": reason.strip()},
    )


# ---------------------------------------------------------------- housekeeping (worker)


async def purge_unattached_photos(
    session: AsyncSession, storage: Storage, now: datetime, batch: int = 500
) -> int:
    """Delete photos never filed within their 24 hours: objects first (idempotent), then
    rows. SKIP LOCKED leaves alone a photo that a filing is attaching right now."""
    photos = list(
        await session.scalars(
            select(ReportPhoto)
            .where(ReportPhoto.report_id.is_(None), ReportPhoto.expires_at < now)
            .order_by(ReportPhoto.expires_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    if not photos:
        return 0
    await storage.delete_many([k for p in photos for k in (p.display_key, p.thumb_key)])
    await session.execute(delete(ReportPhoto).where(ReportPhoto.id.in_([p.id for p in photos])))
    return len(photos)


# ---------------------------------------------------------------- data-subject rights


async def export_for(session: AsyncSession, user_id: uuid.UUID) -> ExportedReports:
    """Everything the reporter filed and supported (for the Decree 13 export)."""
    reports = await session.scalars(
        select(Report).where(Report.reporter_id == user_id).order_by(Report.created_at)
    )
    filed = []
    for r in reports:
        point = to_shape(r.location)
        assert isinstance(point, shapely.Point)  # a report's location is a POINT column
        filed.append(
            ExportedReport(
                code=r.code,
                kind=r.kind,
                status=r.status,
                category_code=r.category_code,
                description=r.description,
                address_text=r.address_text,
                location=Point(lat=point.y, lon=point.x),
                hide_identity=r.hide_identity,
                created_at=r.created_at,
            )
        )
    supported = await session.scalars(
        select(Report.code)
        .join(ReportSupporter, ReportSupporter.report_id == Report.id)
        .where(ReportSupporter.user_id == user_id)
        .order_by(Report.code)
    )
    return ExportedReports(filed=filed, supported=list(supported))


async def forget_supporter(session: AsyncSession, user_id: uuid.UUID) -> None:
    """On account deletion: the link between a person and what they supported goes;
    the counts stay (they were real support)."""
    await session.execute(delete(ReportSupporter).where(ReportSupporter.user_id == user_id))
