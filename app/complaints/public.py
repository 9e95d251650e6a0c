"""Public views (no sign-in): a report by its code and a GeoJSON (RFC 7946) feed by
bounding box, clustered on a grid at low zoom. Never the reporter's identity or
contact; hidden photos and texts are left out."""

from __future__ import annotations

from datetime import datetime

import msgspec
from geoalchemy2.shape import to_shape
from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints.codes import normalize_code
from app.complaints.models import Report, ReportEvent, ReportPhoto
from app.complaints.schemas import EventOut, Point
from app.core import i18n
from app.core.errors import BadRequest, FieldError, NotFound
from app.core.storage import Storage

CLUSTER_BELOW_ZOOM = 16  # at zoom 16+ (a few streets) every report is its own feature
CELLS_PER_TILE = 4  # grid cells per 256 px map tile side: ~64 px clusters
MAX_FEATURES = 2000

i18n.register(
    {
        "bbox_invalid": {
            "vi": "Khung bản đồ (bbox) không hợp lệ: cần minLon,minLat,maxLon,maxLat.",
            "en": "Invalid bbox: expected minLon,minLat,maxLon,maxLat.",
        },
    }
)


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


class FeatureProperties(msgspec.Struct, omit_defaults=True):
    cluster: bool
    count: int
    code: str | None = None
    kind: str | None = None
    status: str | None = None
    category_code: str | None = None
    created_at: datetime | None = None


class Geometry(msgspec.Struct):
    type: str
    coordinates: list[float]


class Feature(msgspec.Struct):
    type: str
    geometry: Geometry
    properties: FeatureProperties


class FeatureCollection(msgspec.Struct):
    type: str
    features: list[Feature]
    bbox: list[float]
    clustered: bool
    truncated: bool


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
    envelope = func.ST_MakeEnvelope(*bbox, 4326)
    conditions = [Report.location.op("&&")(envelope), Report.status != "withdrawn"]
    if category:
        conditions.append(Report.category_code == category)
    if status:
        conditions.append(Report.status == status)
    if kind:
        conditions.append(Report.kind == kind)
    if since:
        conditions.append(Report.created_at >= since)

    if zoom >= CLUSTER_BELOW_ZOOM:
        rows = await session.execute(
            select(
                Report.code,
                Report.kind,
                Report.status,
                Report.category_code,
                Report.created_at,
                func.ST_X(Report.location),
                func.ST_Y(Report.location),
            )
            .where(*conditions)
            .order_by(Report.created_at.desc())
            .limit(MAX_FEATURES + 1)
        )
        items = rows.all()
        features = [
            Feature(
                type="Feature",
                geometry=Geometry(type="Point", coordinates=[round(x, 6), round(y, 6)]),
                properties=FeatureProperties(
                    cluster=False,
                    count=1,
                    code=code,
                    kind=k,
                    status=s,
                    category_code=c,
                    created_at=at,
                ),
            )
            for code, k, s, c, at, x, y in items[:MAX_FEATURES]
        ]
        return FeatureCollection(
            type="FeatureCollection",
            features=features,
            bbox=list(bbox),
            clustered=False,
            truncated=len(items) > MAX_FEATURES,
        )

    cell = 360.0 / (2**zoom) / CELLS_PER_TILE
    gx = func.floor(func.ST_X(Report.location) / cell)
    gy = func.floor(func.ST_Y(Report.location) / cell)
    rows = await session.execute(
        select(
            func.count(),
            func.avg(func.ST_X(Report.location)),
            func.avg(func.ST_Y(Report.location)),
            func.min(Report.code),
        )
        .where(*conditions)
        .group_by(gx, gy)
        .order_by(literal_column("1").desc())
        .limit(MAX_FEATURES + 1)
    )
    groups = rows.all()
    features = [
        Feature(
            type="Feature",
            geometry=Geometry(type="Point", coordinates=[round(x, 6), round(y, 6)]),
            properties=FeatureProperties(
                cluster=count > 1, count=count, code=code if count == 1 else None
            ),
        )
        for count, x, y, code in groups[:MAX_FEATURES]
    ]
    return FeatureCollection(
        type="FeatureCollection",
        features=features,
        bbox=list(bbox),
        clustered=True,
        truncated=len(groups) > MAX_FEATURES,
    )


async def report_by_code(session: AsyncSession, storage: Storage, raw_code: str) -> PublicReport:
    report = await session.scalar(
        select(Report).where(Report.code == normalize_code(raw_code), Report.status != "withdrawn")
    )
    if report is None:
        raise NotFound("report_not_found")
    photos = await session.scalars(
        select(ReportPhoto)
        .where(ReportPhoto.report_id == report.id, ReportPhoto.hidden_reason.is_(None))
        .order_by(ReportPhoto.position)
    )
    events = await session.scalars(
        select(ReportEvent)
        .where(
            ReportEvent.report_id == report.id,
            ReportEvent.public.is_(True),
            ReportEvent.hidden_reason.is_(None),
        )
        .order_by(ReportEvent.id)
    )
    point = to_shape(report.location)
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
                url=await storage.signed_url(p.display_key),
                thumbnail_url=await storage.signed_url(p.thumb_key),
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
            )
            for e in events
        ],
    )
