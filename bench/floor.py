"""The framework floor: the least a Litestar handler served by granian can cost here.

Two endpoints, the two floors named in DESIGN.md ("Moving parts"):

- ``GET /floor``    returns a tiny msgspec Struct as JSON; nothing else happens.
- ``GET /floor-db`` does one ``SELECT 1`` through an asyncpg pool, nothing else.
- ``GET /floor/<read>`` the query a read endpoint needs, asyncpg rows into msgspec
  Structs (the floor of that read path: what it would cost with nothing in between).

``bench.run`` serves this module with granian (one worker, the same flags as the app
under test) next to the real app, and reports every scenario as a ratio to one of
these two numbers. Keep it trivial: any work added here raises the floor and hides
the app's own cost.

Environment:
- ``DATABASE_URL``  default ``postgresql://postgres@127.0.0.1:5432/postgres``; a
  SQLAlchemy-style ``postgresql+asyncpg://`` URL is accepted too (the app's own form).
- ``DB_POOL_SIZE``  default 10; the pool holds that many connections and may grow to
  twice that, as the app's SQLAlchemy engine does (``app.core.db``: up to twice
  DB_POOL_SIZE, kept open).

If the database cannot be reached at startup, ``/floor`` still works and
``/floor-db`` answers 503, so a floor-only run never needs Postgres.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import jwt
import msgspec
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import FromPath, FromQuery

log = logging.getLogger("bench.floor")

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class Floor(msgspec.Struct):
    ok: bool
    n: int


_FLOOR = Floor(ok=True, n=1)


class FloorCategory(msgspec.Struct):
    code: str
    name: str
    deadline_working_days: int


class FloorUnit(msgspec.Struct):
    id: str
    code: str
    name: str
    kind: str
    parent_code: str | None
    area_code: str | None


# the same queries the app would make, done as cheaply as asyncpg + msgspec can: the
# floor of a read path ("query floors", issue 18)
_CATEGORIES_SQL = (
    "SELECT code, name_vi, deadline_working_days FROM categories WHERE active ORDER BY code"
)
_UNITS_SQL = (
    "SELECT u.id::text, u.code, u.name_vi, u.kind, p.code, u.area_code"
    " FROM units u LEFT JOIN units p ON p.id = u.parent_id ORDER BY u.code"
)


# ----------------------------------------------------------- read paths (issue 18 item 9)
# Each floor below makes the same query its endpoint needs (same rows, same columns), in
# one round trip, with asyncpg + msgspec; the authenticated ones decode the same JWT
# (pyjwt, SECRET_KEY from the environment) so the comparison is like for like. They do
# not check the deny list (that is the app's own cost, part of what is measured).

_SECRET = os.environ.get("SECRET_KEY", "dev-secret-change-me")
_STORAGE_KEY = hmac.new(_SECRET.encode(), b"city-app/local-storage-url", hashlib.sha256).digest()
_FILES_BASE = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


def _caller(request: Request) -> uuid.UUID:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        claims = jwt.decode(
            token,
            _SECRET,
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub", "sid"]},
        )
        return uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise NotAuthorizedException() from exc


def _signed(key: str, ttl: int = 600) -> str:
    """What the local photo store's signed URL costs (HMAC-SHA256 of key and expiry)."""
    expires = int(time.time()) + ttl
    sig = hmac.new(_STORAGE_KEY, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{_FILES_BASE}/files/{key}?expires={expires}&sig={sig}"


class FloorRole(msgspec.Struct):
    role: str
    unit_id: uuid.UUID | None
    unit_code: str | None


class FloorProfile(msgspec.Struct):
    id: uuid.UUID
    kind: str
    phone: str | None
    email: str | None
    full_name: str | None
    locale: str
    identity_level: int
    citizen_id_last4: str | None
    home_area_code: str | None
    created_at: datetime
    roles: list[FloorRole]


_ME_SQL = (
    "SELECT u.id, u.kind, u.phone, u.email, u.full_name, u.locale, u.identity_level,"
    " u.citizen_id_last4, u.home_area_code, u.created_at,"
    " CASE WHEN u.kind = 'staff' THEN (SELECT coalesce(json_agg(json_build_array("
    "   r.role, r.unit_id, un.code) ORDER BY r.role, un.code), '[]') FROM staff_roles r"
    "   LEFT JOIN units un ON un.id = r.unit_id WHERE r.user_id = u.id) END"
    " FROM users u WHERE u.id = $1 AND u.status = 'active'"
)


class FloorSummary(msgspec.Struct):
    id: uuid.UUID
    code: str
    kind: str
    status: str
    category_code: str
    description: str
    area_code: str
    created_at: datetime
    updated_at: datetime
    thumbnail_url: str | None


class FloorReportPage(msgspec.Struct):
    items: list[FloorSummary]
    next_cursor: str | None


_MINE_SQL = (
    "SELECT r.id, r.code, r.kind, r.status, r.category_code, r.description, r.area_code,"
    " r.created_at, r.updated_at, (SELECT p.thumb_key FROM report_photos p"
    "   WHERE p.report_id = r.id AND p.hidden_reason IS NULL ORDER BY p.position LIMIT 1)"
    " FROM reports r WHERE r.reporter_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT 21"
)


class FloorPoint(msgspec.Struct):
    lat: float
    lon: float


class FloorPhoto(msgspec.Struct):
    id: uuid.UUID
    width: int
    height: int
    url: str
    thumbnail_url: str
    taken_at: datetime | None
    has_geotag: bool
    expires_at: datetime | None


class FloorUnitRef(msgspec.Struct):
    code: str
    name_vi: str
    name_en: str


class FloorEvent(msgspec.Struct):
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    body: str | None
    by: str
    unit: FloorUnitRef | None = None


class FloorDetail(msgspec.Struct):
    id: uuid.UUID
    code: str
    kind: str
    status: str
    category_code: str
    description: str
    address_text: str | None
    location: FloorPoint
    area_code: str
    hide_identity: bool
    supporters_count: int
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    photos: list[FloorPhoto]
    timeline: list[FloorEvent]
    allowed_actions: list[str]


_DETAIL_SQL = (
    "SELECT r.id, r.code, r.kind, r.status, r.category_code, r.description, r.address_text,"
    " ST_Y(r.location), ST_X(r.location), r.area_code, r.hide_identity, r.supporters_count,"
    " r.created_at, r.updated_at, r.due_at,"
    " (SELECT json_agg(json_build_array(p.id, p.width, p.height, p.display_key, p.thumb_key,"
    "   p.taken_at, p.geotag IS NOT NULL, p.expires_at) ORDER BY p.position)"
    "   FROM report_photos p WHERE p.report_id = r.id AND p.hidden_reason IS NULL),"
    " (SELECT json_agg(json_build_array(e.at, e.kind, e.from_status, e.to_status, e.body,"
    "   e.actor_kind, un.code, un.name_vi, un.name_en) ORDER BY e.id)"
    "   FROM report_events e LEFT JOIN units un ON un.id = e.unit_id"
    "   WHERE e.report_id = r.id AND e.public AND e.hidden_reason IS NULL)"
    " FROM reports r WHERE r.id = $1 AND r.reporter_id = $2"
)
_PhotoRow = tuple[uuid.UUID, int, int, str, str, datetime | None, bool, datetime | None]
_EventRow = tuple[datetime, str, str | None, str | None, str | None, str, str | None, Any, Any]
_photo_rows = msgspec.json.Decoder(list[_PhotoRow] | None)
_event_rows = msgspec.json.Decoder(list[_EventRow] | None)


class FloorNotification(msgspec.Struct):
    id: int
    kind: str
    title: str
    body: str
    report_code: str | None
    link: str | None
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class FloorNotificationPage(msgspec.Struct):
    items: list[FloorNotification]
    next_cursor: str | None


_NOTIFICATIONS_SQL = (
    "SELECT id, kind, title, body, data::text, created_at, read_at FROM notifications"
    " WHERE user_id = $1 ORDER BY id DESC LIMIT 21"
)
_data = msgspec.json.Decoder(dict[str, Any])


class FloorArea(msgspec.Struct):
    code: str
    name: str
    kind: str
    province_code: str
    synthetic_boundary: bool


_AREA_SQL = (
    "SELECT code, name, kind, province_code, synthetic FROM areas"
    " WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) ORDER BY code LIMIT 1"
)

# the public map: the snapshot's cells (bench.scenarios.feed_city's query) and street-level
# points written as JSON by PostgreSQL (app.complaints.public._POINTS_SQL)
_CELLS_SQL = (
    "SELECT s.as_of, c.n, c.sum_lon, c.sum_lat, c.min_code FROM report_map_state s"
    " LEFT JOIN LATERAL (SELECT cell.n, cell.sum_lon, cell.sum_lat, cell.min_code, cell.cx,"
    "   cell.cy FROM report_map_cells cell WHERE cell.zoom = $1 AND cell.cx BETWEEN $2 AND $3"
    "   AND cell.cy BETWEEN $4 AND $5 ORDER BY cell.n DESC, cell.cx, cell.cy LIMIT 2001) c"
    " ON true WHERE s.id = 1 AND s.as_of >= now() - interval '10 minutes'"
    " ORDER BY c.n DESC, c.cx, c.cy"
)
_STREET_SQL = (
    "SELECT '[' || coalesce(string_agg(f.feature, ',' ORDER BY f.rn)"
    " FILTER (WHERE f.rn <= 2000), '') || ']', count(*) > 2000 FROM ("
    " SELECT row_number() OVER () AS rn, concat("
    '  \'{"type":"Feature","geometry":{"type":"Point","coordinates":[\','
    "  round(ST_X(r.location) * 1e6) / 1e6, ',', round(ST_Y(r.location) * 1e6) / 1e6,"
    '  \']},"properties":{"cluster":false,"count":1,"code":\', to_json(r.code),'
    "  ',\"kind\":', to_json(r.kind), ',\"status\":', to_json(r.status),"
    "  ',\"category_code\":', to_json(r.category_code),"
    "  ',\"created_at\":', to_json(r.created_at), '}}') AS feature"
    " FROM (SELECT code, kind, status, category_code, created_at, location FROM reports"
    "  WHERE location && ST_MakeEnvelope($1, $2, $3, $4, 4326) AND status <> 'withdrawn'"
    "  ORDER BY created_at DESC, code LIMIT 2001) r) f"
)


class FloorGeometry(msgspec.Struct):
    type: str
    coordinates: list[float]


class FloorFeatureProps(msgspec.Struct, omit_defaults=True):
    cluster: bool
    count: int
    code: str | None = None


class FloorFeature(msgspec.Struct):
    type: str
    geometry: FloorGeometry
    properties: FloorFeatureProps


class FloorFeatures(msgspec.Struct):
    type: str
    features: list[FloorFeature] | msgspec.Raw
    bbox: list[float]
    clustered: bool
    truncated: bool
    as_of: datetime | None


def _bbox(bbox: str) -> list[float]:
    return [float(v) for v in bbox.split(",")]


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants ``postgresql://``; accept the SQLAlchemy driver suffix as well."""
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@get("/floor")
async def floor() -> Floor:
    return _FLOOR


@get("/floor-db")
async def floor_db(state: State) -> Response[Floor]:
    pool: asyncpg.Pool | None = state.get("pool")
    if pool is None:
        return Response(Floor(ok=False, n=0), status_code=503)
    n = await pool.fetchval("SELECT 1")
    return Response(Floor(ok=True, n=n))


@get("/floor/categories")
async def floor_categories(state: State) -> list[FloorCategory]:
    rows = await state.pool.fetch(_CATEGORIES_SQL)
    return [FloorCategory(*row) for row in rows]


@get("/floor/units")
async def floor_units(state: State) -> list[FloorUnit]:
    rows = await state.pool.fetch(_UNITS_SQL)
    return [FloorUnit(*row) for row in rows]


@get("/floor/me")
async def floor_me(state: State, request: Request) -> FloorProfile:
    row = await state.pool.fetchrow(_ME_SQL, _caller(request))
    if row is None:
        raise NotAuthorizedException()
    roles = [FloorRole(*r) for r in msgspec.json.decode(row[10])] if row[10] else []
    return FloorProfile(*row[:10], roles=roles)


@get("/floor/reports/mine")
async def floor_reports_mine(state: State, request: Request) -> FloorReportPage:
    rows = await state.pool.fetch(_MINE_SQL, _caller(request))
    items = [FloorSummary(*r[:9], _signed(r[9]) if r[9] else None) for r in rows[:20]]
    cursor = f"{rows[19][7].isoformat()}|{rows[19][0]}" if len(rows) > 20 else None
    return FloorReportPage(items=items, next_cursor=cursor)


@get("/floor/reports/{report_id:uuid}")
async def floor_report_detail(
    state: State, request: Request, report_id: FromPath[uuid.UUID]
) -> FloorDetail:
    row = await state.pool.fetchrow(_DETAIL_SQL, report_id, _caller(request))
    if row is None:
        raise NotFoundException()
    photos = [
        FloorPhoto(p[0], p[1], p[2], _signed(p[3]), _signed(p[4]), p[5], p[6], p[7])
        for p in _photo_rows.decode(row[15] or "null") or ()
    ]
    timeline = [
        FloorEvent(*e[:6], unit=FloorUnitRef(*e[6:]) if e[6] else None)
        for e in _event_rows.decode(row[16] or "null") or ()
    ]
    return FloorDetail(
        *row[:7], FloorPoint(row[7], row[8]), *row[9:15], photos, timeline, ["withdraw"]
    )


@get("/floor/notifications")
async def floor_notifications(state: State, request: Request) -> FloorNotificationPage:
    rows = await state.pool.fetch(_NOTIFICATIONS_SQL, _caller(request))
    items = []
    for r in rows[:20]:
        data = _data.decode(r[4])
        link, code = data.get("link"), data.get("report_code")
        items.append(FloorNotification(r[0], r[1], r[2], r[3], code, link, data, r[5], r[6]))
    return FloorNotificationPage(
        items=items, next_cursor=str(rows[19][0]) if len(rows) > 20 else None
    )


@get("/floor/areas/lookup")
async def floor_area_lookup(
    state: State, lat: FromQuery[float], lon: FromQuery[float]
) -> FloorArea:
    row = await state.pool.fetchrow(_AREA_SQL, lon, lat)
    if row is None:
        raise NotFoundException()
    return FloorArea(*row)


@get("/floor/feed", media_type="application/geo+json")
async def floor_feed(state: State, bbox: FromQuery[str], zoom: FromQuery[int]) -> FloorFeatures:
    box = _bbox(bbox)
    if zoom >= 16:
        features, truncated = await state.pool.fetchrow(_STREET_SQL, *box)
        return FloorFeatures(
            "FeatureCollection", msgspec.Raw(features.encode()), box, False, truncated, None
        )
    side = 360.0 / (2**zoom) / 4  # the app's cell_side
    window = (zoom, math.floor(box[0] / side), math.floor(box[2] / side))
    window += (math.floor(box[1] / side), math.floor(box[3] / side))
    rows = await state.pool.fetch(_CELLS_SQL, *window)
    feats = [
        FloorFeature(
            "Feature",
            FloorGeometry("Point", [round(sx / n, 6), round(sy / n, 6)]),
            FloorFeatureProps(n > 1, n, code if n == 1 else None),
        )
        for _, n, sx, sy, code in rows[:2000]
        if n is not None
    ]
    return FloorFeatures("FeatureCollection", feats, box, True, len(rows) > 2000, rows[0][0])


async def _open_pool(app: Litestar) -> None:
    size = int(os.environ.get("DB_POOL_SIZE", "10"))
    dsn = asyncpg_dsn(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    try:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=2 * size, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        log.warning("floor: no database pool (%s); /floor-db will answer 503", exc)
        app.state.pool = None


async def _close_pool(app: Litestar) -> None:
    pool = app.state.get("pool")
    if pool is not None:
        await pool.close()


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[
            floor,
            floor_db,
            floor_categories,
            floor_units,
            floor_me,
            floor_reports_mine,
            floor_report_detail,
            floor_notifications,
            floor_area_lookup,
            floor_feed,
        ],
        on_startup=[_open_pool],
        on_shutdown=[_close_pool],
    )


app = create_app()
