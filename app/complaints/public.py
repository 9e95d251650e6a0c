"""Public views (no sign-in): a report by its code and a GeoJSON (RFC 7946) feed by
bounding box, clustered on a grid at low zoom. Never the reporter's identity or
contact; hidden photos and texts are left out.

The feed: from zoom 16 (a few streets) every report is a feature, read live. Below,
clusters come from the snapshot the worker rebuilds every minute, or, with ``since``
or without a fresh snapshot, from a live GROUP BY (``app.complaints.clusters``). Every
response says ``as_of``: the instant before which every change is on the map."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import clusters
from app.complaints.abuse import PUBLIC_REPORT, public_report_sql
from app.complaints.clusters import CLUSTER_BELOW_ZOOM
from app.complaints.codes import normalize_code
from app.complaints.models import Report
from app.complaints.schemas import EventOut, Point
from app.complaints.service import event_units, public_events, visible_photos
from app.core.errors import BadRequest, FieldError, NotFound
from app.core.storage import Storage

MAX_FEATURES = 2000


class PublicPhoto(msgspec.Struct):
    url: str
    thumbnail_url: str


class PublicReport(msgspec.Struct):
    code: str
    kind: str
    status: str
    category_code: str
    description: str | None  # None when moderators hid it
    address_text: str | None
    location: Point
    area_code: str
    supporters_count: int
    created_at: datetime
    updated_at: datetime
    photos: list[PublicPhoto]
    timeline: list[EventOut]


# gc=False: a response can hold 2000 of these and they never form
# reference cycles; untracked by the garbage collector they cost half as much to build.
class FeatureProperties(msgspec.Struct, omit_defaults=True, gc=False):
    cluster: bool
    count: int
    code: str | None = None
    kind: str | None = None
    status: str | None = None
    category_code: str | None = None
    created_at: datetime | None = None


class Geometry(msgspec.Struct, gc=False):
    type: str
    coordinates: list[float]


class Feature(msgspec.Struct, gc=False):
    type: str
    geometry: Geometry
    properties: FeatureProperties


class FeatureCollection(msgspec.Struct):
    type: str
    features: list[Feature]
    bbox: list[float]
    clustered: bool
    truncated: bool
    as_of: Annotated[
        datetime,
        msgspec.Meta(
            description=(
                "Every change committed before this instant is on the map. Clusters "
                "(below zoom 16, without `since`) come from a snapshot rebuilt every "
                "minute, so they can be about a minute old; other views are live."
            )
        ),
    ]


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    def bad(message: str) -> BadRequest:
        return BadRequest(
            "bbox_invalid", errors=[FieldError(field="bbox", message=message, source="query")]
        )

    parts = raw.split(",")
    if len(parts) != 4:
        raise bad("four comma-separated numbers")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError as exc:
        raise bad("not numbers") from exc
    if not all(map(_finite, (min_lon, min_lat, max_lon, max_lat))):
        raise bad("not finite")
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise bad("min must be below max, within -180..180 and -90..90")
    return min_lon, min_lat, max_lon, max_lat


def _finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


async def feed(
    session: AsyncSession,
    bbox: tuple[float, float, float, float],
    zoom: int,
    category: str | None,
    status: str | None,
    kind: str | None,
    since: datetime | None,
) -> FeatureCollection:
    if zoom >= CLUSTER_BELOW_ZOOM:
        return await _points(session, bbox, category, status, kind, since)

    window = clusters.grid_window(bbox, zoom)
    page = None
    if since is None:
        page = await clusters.snapshot_clusters(
            session, window, category, status, kind, MAX_FEATURES
        )
    if page is None:
        page = await clusters.live_clusters(
            session, window, category, status, kind, since, MAX_FEATURES
        )
    features = [
        Feature(
            type="Feature",
            geometry=Geometry(type="Point", coordinates=[round(c.lon, 6), round(c.lat, 6)]),
            properties=FeatureProperties(cluster=c.count > 1, count=c.count, code=c.code),
        )
        for c in page.clusters
    ]
    return FeatureCollection(
        type="FeatureCollection",
        features=features,
        bbox=list(bbox),
        clustered=True,
        truncated=page.truncated,
        as_of=page.as_of,
    )


# Street level: PostgreSQL writes each feature's JSON (the shape ``Feature`` has), and
# the list goes out pre-encoded. Building ~2000 Structs per response cost the API
# 20-40 ms of CPU on the bench machine (ORM rows, object churn, garbage collection);
# concat() costs PostgreSQL ~5 ms (json_build_object ~13 ms, || chains ~8). Strings
# go through to_json (escaping); coordinates are rounded to 6 decimals (~0.1 m); times
# are RFC 3339 with an offset. The newest ``:limit`` of at most ``:limit + 1`` rows.
# (The escaped colons keep SQLAlchemy's text() from reading :false and :1 as parameters.)
_POINTS_SQL = """
SELECT '[' || coalesce(
           string_agg(f.feature, ',' ORDER BY f.rn) FILTER (WHERE f.rn <= CAST(:limit AS int)),
           '') || ']' AS features,
       count(*) > CAST(:limit AS int) AS truncated
FROM (
    SELECT row_number() OVER () AS rn,  -- the order of r: newest first
           concat('{{"type":"Feature","geometry":{{"type":"Point","coordinates":[',
                  round(ST_X(r.location) * 1e6) / 1e6, ',',
                  round(ST_Y(r.location) * 1e6) / 1e6,
                  ']}},"properties":{{"cluster"\\:false,"count"\\:1,"code":', to_json(r.code),
                  ',"kind":', to_json(r.kind), ',"status":', to_json(r.status),
                  ',"category_code":', to_json(r.category_code),
                  ',"created_at":', to_json(r.created_at), '}}}}') AS feature
    FROM (
        SELECT code, kind, status, category_code, created_at, location
        FROM reports
        WHERE location && ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326)
          AND {public} {filters}
        ORDER BY created_at DESC, code
        LIMIT CAST(:limit AS int) + 1
    ) r
) f
"""
_POINT_FILTERS = {
    "category": "AND category_code = :category",
    "status": "AND status = :status",
    "kind": "AND kind = :kind",
    "since": "AND created_at >= :since",
}


async def _points(
    session: AsyncSession,
    bbox: tuple[float, float, float, float],
    category: str | None,
    status: str | None,
    kind: str | None,
    since: datetime | None,
) -> FeatureCollection:
    """Street level: each report, newest first, always live. A street-sized bbox reads
    the GiST index on ``location``; a large one (a client asking for points over the
    whole city) reads ``created_at`` backwards and stops at the limit: custom plans, so
    the planner sees the bbox (a cached generic plan would use GiST for both). The GiST
    index INCLUDEs every column read here, so the street case is an index-only scan."""
    as_of = datetime.now(UTC)
    await clusters.use_custom_plans(session)
    filters = {"category": category, "status": status, "kind": kind, "since": since}
    wanted = {name: value for name, value in filters.items() if value}
    min_lon, min_lat, max_lon, max_lat = bbox
    row = (
        await session.execute(
            text(
                _POINTS_SQL.format(
                    public=public_report_sql("reports"),
                    filters=" ".join(_POINT_FILTERS[n] for n in wanted),
                )
            ),
            {
                "min_lon": min_lon,
                "min_lat": min_lat,
                "max_lon": max_lon,
                "max_lat": max_lat,
                "limit": MAX_FEATURES,
                **wanted,
            },
        )
    ).one()
    return FeatureCollection(
        type="FeatureCollection",
        # pre-encoded JSON of list[Feature] (the annotation, and so the OpenAPI schema)
        features=msgspec.Raw(row.features.encode()),  # type: ignore[arg-type]
        bbox=list(bbox),
        clustered=False,
        truncated=row.truncated,
        as_of=as_of,
    )


async def report_by_code(session: AsyncSession, storage: Storage, raw_code: str) -> PublicReport:
    report = await session.scalar(
        select(Report).where(Report.code == normalize_code(raw_code), PUBLIC_REPORT)
    )
    if report is None:
        raise NotFound("report_not_found")
    photos = await visible_photos(session, report.id)
    events = await public_events(session, report.id)
    units = await event_units(session, events)
    point = to_shape(report.location)
    assert isinstance(point, shapely.Point)  # a report's location is a POINT column
    return PublicReport(
        code=report.code,
        kind=report.kind,
        status=report.status,
        category_code=report.category_code,
        description=None if report.description_hidden_reason else report.description,
        address_text=None if report.description_hidden_reason else report.address_text,
        location=Point(lat=point.y, lon=point.x),
        area_code=report.area_code,
        supporters_count=report.supporters_count,
        created_at=report.created_at,
        updated_at=report.updated_at,
        photos=[
            PublicPhoto(
                url=await storage.signed_url(p.display_key, stable=True),
                thumbnail_url=await storage.signed_url(p.thumb_key, stable=True),
            )
            for p in photos
        ],
        # comments from residents are theirs: the public sees transitions and staff replies
        timeline=[
            EventOut(
                at=e.at,
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                body=e.body if e.actor_kind != "resident" else None,
                by=e.actor_kind,
                unit=units.get(e.unit_id) if e.unit_id else None,
            )
            for e in events
        ],
    )
