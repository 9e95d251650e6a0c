"""What the console reads: a unit's queue (sorted by deadline, with counts per filter)
and one report as staff see it (internal timeline, photo flags, the reporter's contact
for the roles allowed to see it — each such read is audit-logged).

Who sees what is app/policy.py's answer: officers their units, managers theirs and every
unit below them, dispatchers and admins every unit.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts.models import User
from app.complaints import lifecycle
from app.complaints.models import Report, ReportEvent, ReportPhoto, ReportRating
from app.complaints.schemas import Point
from app.complaints.service import event_units, photo_out
from app.console.schemas import (
    ExtensionRequestOut,
    QueueCounts,
    QueueItem,
    QueuePage,
    RatingOut,
    ReporterContact,
    StaffEventOut,
    StaffPhotoOut,
    StaffReportDetail,
)
from app.core import audit
from app.core.calendar import WorkingCalendar
from app.core.errors import BadRequest, FieldError, Forbidden, NotFound
from app.core.storage import Storage
from app.open311 import filing as open311_filing
from app.places.models import Unit
from app.policy import Actor


def _cursor(due_at: datetime | None, report_id: uuid.UUID) -> str:
    raw = f"{due_at.isoformat() if due_at else ''}|{report_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode(cursor: str) -> tuple[datetime | None, uuid.UUID]:
    try:
        due, report_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return (datetime.fromisoformat(due) if due else None), uuid.UUID(report_id)
    except ValueError as exc:
        raise BadRequest(
            "cursor_invalid", errors=[FieldError(field="cursor", message="bad", source="query")]
        ) from exc


async def queue(
    session: AsyncSession,
    calendar: WorkingCalendar,
    actor: Actor,
    *,
    unit_code: str | None = None,
    status: str | None = None,
    category: str | None = None,
    overdue: bool | None = None,
    due_soon: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> QueuePage:
    """Open reports of the visible units, soonest deadline first (none last), keyset
    paginated; counts are for the whole queue before the status/overdue/due-soon filters
    so the console can show them on its filter buttons."""
    now = actor.now
    visible = policy.report_scope(actor)
    scope: list[ColumnElement[bool]] = [Report.status.in_(lifecycle.OPEN_STATUSES)]
    if unit_code is not None:
        unit_id = await session.scalar(select(Unit.id).where(Unit.code == unit_code))
        if unit_id is None:
            raise NotFound("unit_not_found")
        if not policy.may_view_unit_queue(actor, unit_id):
            raise Forbidden("not_your_unit_queue")
        scope.append(Report.unit_id == unit_id)
    elif visible is not None:
        scope.append(Report.unit_id.in_(visible))
    if category:
        scope.append(Report.category_code == category)
    # "due within one working day": by the office close of the next working day
    soon = calendar.close_of(calendar.nth_working_day(calendar.local(now).date(), 1))

    counts_row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Report.overdue_at.is_not(None)),
                func.count().filter(Report.due_at > now, Report.due_at <= soon),
                func.count().filter(Report.status == "assigned"),
                func.count().filter(Report.status == "in_progress"),
            ).where(*scope)
        )
    ).one()
    counts = QueueCounts(*counts_row)

    filters = list(scope)
    if status:
        filters.append(Report.status == status)
    if overdue is True:
        filters.append(Report.overdue_at.is_not(None))
    elif overdue is False:
        filters.append(Report.overdue_at.is_(None))
    if due_soon:
        filters.extend([Report.due_at > now, Report.due_at <= soon])
    if cursor:
        due, last_id = _decode(cursor)
        if due is None:
            filters.append(and_(Report.due_at.is_(None), Report.id > last_id))
        else:
            filters.append(
                or_(
                    Report.due_at > due,
                    and_(Report.due_at == due, Report.id > last_id),
                    Report.due_at.is_(None),
                )
            )
    # only the columns the queue shows (not the whole row with its geometry)
    rows = (
        await session.execute(
            select(
                Report.id,
                Report.code,
                Report.kind,
                Report.status,
                Report.category_code,
                Report.description,
                Report.description_hidden_reason,
                Report.area_code,
                Unit.code.label("unit_code"),
                Report.created_at,
                Report.due_at,
                Report.overdue_at,
                Report.supporters_count,
                Report.filed_by_staff_id,
                # the reporter's latest verdict (issue 17 item 12: a marker in the queue)
                select(ReportRating.rating)
                .where(ReportRating.report_id == Report.id)
                .order_by(ReportRating.resolution_round.desc())
                .limit(1)
                .scalar_subquery()
                .label("rating"),
            )
            .outerjoin(Unit, Unit.id == Report.unit_id)
            .where(*filters)
            .order_by(Report.due_at.asc().nulls_last(), Report.id)
            .limit(limit + 1)
        )
    ).all()
    items = [
        QueueItem(
            id=r.id,
            code=r.code,
            kind=r.kind,
            status=r.status,
            category_code=r.category_code,
            description=r.description if not r.description_hidden_reason else "",
            area_code=r.area_code,
            unit_code=r.unit_code,
            created_at=r.created_at,
            due_at=r.due_at,
            overdue=r.overdue_at is not None,
            supporters_count=r.supporters_count,
            filed_by_staff=r.filed_by_staff_id is not None,
            rating=r.rating,
        )
        for r in rows[:limit]
    ]
    next_cursor = _cursor(rows[limit - 1].due_at, rows[limit - 1].id) if len(rows) > limit else None
    return QueuePage(items=items, counts=counts, next_cursor=next_cursor)


async def report_for_staff(
    session: AsyncSession,
    storage: Storage,
    actor: Actor,
    report_id: uuid.UUID,
) -> StaffReportDetail:
    report = await session.get(Report, report_id)
    if report is None:
        raise NotFound("report_not_found")
    if not policy.may_see_report(actor, report.unit_id):
        raise Forbidden("not_your_report")
    photos = list(
        await session.scalars(
            select(ReportPhoto)
            .where(ReportPhoto.report_id == report.id)
            .order_by(ReportPhoto.position)
        )
    )
    events = list(
        await session.scalars(
            select(ReportEvent).where(ReportEvent.report_id == report.id).order_by(ReportEvent.id)
        )
    )
    units = await event_units(session, events)
    ratings = [
        RatingOut(
            resolution_round=r.resolution_round, rating=r.rating, comment=r.comment, at=r.created_at
        )
        for r in await session.scalars(
            select(ReportRating)
            .where(ReportRating.report_id == report.id)
            .order_by(ReportRating.resolution_round)
        )
    ]
    unit = await session.get(Unit, report.unit_id) if report.unit_id else None
    contact = None
    if policy.may_see_reporter_contact(actor, report.unit_id):
        if report.open311_key_id is not None:
            # a third-party app's user: what the app sent (app/open311), not its account
            sent = await open311_filing.submitter_contact(session, report.id)
            if sent is not None and (sent.first_name or sent.last_name or sent.phone or sent.email):
                name = " ".join(n for n in (sent.first_name, sent.last_name) if n) or None
                contact = ReporterContact(name=name, phone=sent.phone, email=sent.email)
        else:
            reporter = await session.get(User, report.reporter_id)
            if reporter is not None and reporter.deleted_at is None:
                contact = ReporterContact(name=reporter.full_name, phone=reporter.phone)
        if contact is not None:
            await audit.record(
                session,
                actor_id=actor.user_id,
                actor_kind="staff",
                action="report.reporter_contact_viewed",
                object_type="report",
                object_id=report.code,
                ip=actor.ip,
            )
    point = to_shape(report.location)
    assert isinstance(point, shapely.Point)  # a report's location is a POINT column
    staff_actions = policy.report_actions(
        actor,
        status=report.status,
        unit_id=report.unit_id,
        has_deadline=report.due_at is not None,
        extended=report.original_due_at is not None,
        extension_requested=report.extension_requested_at is not None,
        staff_targets=lifecycle.allowed_from(report.status, "staff"),
    )
    return StaffReportDetail(
        id=report.id,
        code=report.code,
        kind=report.kind,
        status=report.status,
        category_code=report.category_code,
        description=report.description,
        description_hidden_reason=report.description_hidden_reason,
        address_text=report.address_text,
        location=Point(lat=point.y, lon=point.x),
        area_code=report.area_code,
        unit_code=unit.code if unit else None,
        created_at=report.created_at,
        due_at=report.due_at,
        original_due_at=report.original_due_at,
        overdue=report.overdue_at is not None,
        escalated=report.escalated_at is not None,
        transfer_count=report.transfer_count,
        extension_request=ExtensionRequestOut(
            due_date=report.extension_requested_until,
            reason=report.extension_request_reason or "",
            requested_at=report.extension_requested_at,
        )
        if report.extension_requested_at and report.extension_requested_until
        else None,
        resolved_on_time=report.resolved_on_time,
        supporters_count=report.supporters_count,
        filed_by_staff=report.filed_by_staff_id is not None,
        third_party=report.open311_key_id is not None,
        location_approximate=report.location_approximate,
        attributes=report.attributes or {},
        hide_identity=report.hide_identity,
        reporter=contact,
        photos=[
            StaffPhotoOut(
                photo=await photo_out(storage, p),
                geotag_far=p.geotag_far,
                taken_long_before=p.taken_long_before,
                hidden_reason=p.hidden_reason,
                event_id=p.event_id,
            )
            for p in photos
        ],
        timeline=[
            StaffEventOut(
                id=e.id,
                at=e.at,
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                body=e.body,
                by=e.actor_kind,
                public=e.public,
                unit_code=units[e.unit_id].code if e.unit_id in units else None,
            )
            for e in events
        ],
        allowed_actions=staff_actions,
        ratings=ratings,
    )


# ---------------------------------------------------------------- the queue on a map

MAP_POINTS_ZOOM = 15  # from this zoom on, single reports; below, grid clusters
MAP_MAX_POINTS = 2000


async def queue_map(
    session: AsyncSession,
    actor: Actor,
    bbox: tuple[float, float, float, float],
    zoom: int,
) -> dict:
    """The open reports of the visible units in a box as GeoJSON (RFC 7946): clusters on
    a grid that shrinks with the zoom (like the public feed), single reports up close.
    Staff-only: codes and deadlines, never the reporter."""
    visible = policy.report_scope(actor)
    min_lon, min_lat, max_lon, max_lat = bbox
    params: dict = {
        "min_lon": min_lon,
        "min_lat": min_lat,
        "max_lon": max_lon,
        "max_lat": max_lat,
        "units": list(visible) if visible is not None else None,
        "now": actor.now,
        "open": list(lifecycle.OPEN_STATUSES),
    }
    scope = """
        status = ANY(CAST(:open AS text[]))
        AND location && ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326)
        AND (CAST(:units AS uuid[]) IS NULL OR unit_id = ANY(CAST(:units AS uuid[])))
    """
    if zoom >= MAP_POINTS_ZOOM:
        rows = await session.execute(
            text(
                f"""
                SELECT id, code, status, category_code, ST_X(location), ST_Y(location),
                       due_at, overdue_at IS NOT NULL
                  FROM reports WHERE {scope}
                 ORDER BY due_at NULLS LAST LIMIT {MAP_MAX_POINTS}
                """
            ),
            params,
        )
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "id": str(rid),
                    "code": code,
                    "status": status,
                    "category": category,
                    "due_at": due.isoformat() if due else None,
                    "overdue": late,
                },
            }
            for rid, code, status, category, lon, lat, due, late in rows
        ]
    else:
        # a cell of about 60 px: 360° / 2^zoom / 256 px per tile * 60
        cell = 360.0 / (2**zoom) / 256 * 60
        rows = await session.execute(
            text(
                f"""
                SELECT count(*), count(*) FILTER (WHERE overdue_at IS NOT NULL),
                       ST_X(ST_Centroid(ST_Collect(location))),
                       ST_Y(ST_Centroid(ST_Collect(location)))
                  FROM reports WHERE {scope}
                 GROUP BY ST_SnapToGrid(location, :cell)
                """
            ),
            {**params, "cell": cell},
        )
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"cluster": True, "count": n, "overdue": late},
            }
            for n, late, lon, lat in rows
        ]
    return {"type": "FeatureCollection", "features": features}


async def units_visible(session: AsyncSession, actor: Actor) -> list[Unit]:
    visible = policy.report_scope(actor)
    stmt = select(Unit).order_by(Unit.kind, Unit.code)
    if visible is not None:
        stmt = stmt.where(Unit.id.in_(visible))
    return list(await session.scalars(stmt))


async def area_outlines(session: AsyncSession) -> object:
    """Ward outlines, simplified (~50 m), as GeoJSON built by PostGIS: the console maps'
    base layer, so they stay readable with no tile server."""
    return await session.scalar(
        text(
            """
            SELECT json_build_object('type', 'FeatureCollection', 'features',
                   coalesce(json_agg(json_build_object(
                       'type', 'Feature',
                       'properties', json_build_object('code', code, 'name', name),
                       'geometry', CAST(ST_AsGeoJSON(
                           ST_SimplifyPreserveTopology(geom, 0.0005), 5) AS json))), '[]'))
              FROM areas
            """
        )
    )
