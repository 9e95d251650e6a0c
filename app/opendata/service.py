"""Open data (issue 22 item 4): the city's reports as anyone may download them.

What is published of a report: its code, kind, category, area, unit, channel, status,
when it was filed, first answered (the first public answer from staff or the system),
first resolved, the on-time verdict and the working days frozen then, and the rating of
its latest resolution round; its position rounded to ``OPEN_DATA_POSITION_DECIMALS``
(3 decimals ≈ 100 m). Never a text anyone wrote (description, address, answers,
comments), never the reporter, never a photo. Withdrawn reports are left out, as in
every public view.

Two ways out, the same rows:

- the query ``GET /public/open-data/reports`` (a period of filing days, category, area,
  unit; keyset pagination by (filed, code); JSON or CSV), one statement per shape of
  filter, served by the index on ``reports.created_at``;
- daily files (CSV and GeoJSON) written to storage by the cron ``publish_open_data``:
  day D's files hold every report filed or changed (``updated_at``) on local day D as it
  stood at publication. A report appears again on each day it changed, so the newest
  file holding a code has its current row: folding the files by code gives the city's
  reports, from which the service index (per unit and channel: received, resolved,
  on time, ratings) is recomputed exactly (``tests/opendata``).

The licence (``OPEN_DATA_LICENCE``, CC BY 4.0 by default) and the precision are stated
in every answer (JSON ``meta``, GeoJSON ``metadata``, CSV ``Link``/``X-`` headers).
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
from datetime import date, datetime, time, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.calendar import TIMEZONE
from app.core.errors import BadRequest, FieldError, NotFound
from app.core.storage import Storage
from app.opendata.models import OpenDataFile
from app.opendata.schemas import (
    OpenDataFileList,
    OpenDataFileOut,
    OpenDataMeta,
    OpenReport,
    OpenReportPage,
)
from app.places.reference import Snapshot
from app.settings import Settings

FIELDS = tuple(OpenReport.__struct_fields__)
FORMATS = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}
FILE_PREFIX = "open-data/reports/"
MAX_PAGE = 5000


def meta(settings: Settings) -> OpenDataMeta:
    return OpenDataMeta(
        licence=settings.open_data_licence,
        licence_url=settings.open_data_licence_url,
        position_precision_decimals=settings.open_data_position_decimals,
        time_zone=TIMEZONE.key,
        publisher=settings.open_data_publisher,
    )


def licence_headers(settings: Settings) -> dict[str, str]:
    """The licence and precision as HTTP headers (the CSV has no place for them)."""
    return {
        "Link": f'<{settings.open_data_licence_url}>; rel="license"',
        "X-License": settings.open_data_licence,
        "X-Position-Precision-Decimals": str(settings.open_data_position_decimals),
    }


# ----------------------------------------------------------------------------- the rows

# One row per report; the first answer is one probe of ix_report_events_answers (its
# predicate written out the same way), the rating one probe of uq_report_ratings_round.
_SELECT = """
SELECT r.code, r.kind, r.category_code, r.area_code, u.code,
       CASE WHEN r.open311_key_id IS NOT NULL THEN 'open311'
            WHEN r.filed_by_staff_id IS NULL THEN 'resident' ELSE 'staff' END,
       r.status, r.created_at,
       (SELECT e.at FROM report_events e
         WHERE e.report_id = r.id
           AND e.public AND e.body IS NOT NULL AND e.actor_kind <> 'resident'
         ORDER BY e.id LIMIT 1),
       r.resolved_at, r.resolved_on_time, CAST(r.handling_working_days AS float8), rt.rating,
       CAST(round(CAST(ST_Y(r.location) AS numeric), CAST(:decimals AS int)) AS float8),
       CAST(round(CAST(ST_X(r.location) AS numeric), CAST(:decimals AS int)) AS float8)
  FROM reports r
  LEFT JOIN units u ON u.id = r.unit_id
  LEFT JOIN report_ratings rt ON rt.report_id = r.id AND rt.resolution_round = r.reopen_count
"""


@functools.cache
def _query(category: bool, area: bool, unit: bool, after: bool) -> Any:
    where = [
        "r.created_at >= :start",
        "r.created_at < :end",
        "r.status <> 'withdrawn'",
    ]
    if category:
        where.append("r.category_code = :category")
    if area:
        where.append("r.area_code = :area")
    if unit:
        where.append("r.unit_id = :unit")
    if after:
        where.append("(r.created_at, r.code) > (:after_at, :after_code)")
    return text(
        _SELECT + " WHERE " + " AND ".join(where) + " ORDER BY r.created_at, r.code LIMIT :limit"
    )


# a day's file: filed or changed that day (a seq scan once a day; no index needed)
_DAY = text(
    _SELECT
    + """
 WHERE r.status <> 'withdrawn'
   AND ((r.created_at >= :start AND r.created_at < :end)
        OR (r.updated_at >= :start AND r.updated_at < :end))
 ORDER BY r.created_at, r.code
"""
)


def _report(row: Any) -> OpenReport:
    return OpenReport(*row)


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) of local days first..last."""
    start = datetime.combine(first, time(), TIMEZONE)
    end = datetime.combine(last + timedelta(days=1), time(), TIMEZONE)
    return start, end


def encode_cursor(report: OpenReport) -> str:
    raw = f"{report.filed.isoformat()}|{report.code}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, sep, code = raw.partition("|")
        at = datetime.fromisoformat(stamp)
        if not sep or not code or at.tzinfo is None:
            raise ValueError(cursor)
        return at, code
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "cursor_invalid",
            errors=[FieldError(field="cursor", message="malformed", source="query")],
        ) from exc


def _unknown(field: str) -> BadRequest:
    return BadRequest(
        "open_data_filter_unknown",
        params={"field": field},
        errors=[FieldError(field=field, message="unknown code", source="query")],
    )


class ReportQuery(msgspec.Struct, kw_only=True):
    first_day: date
    last_day: date
    category: str | None = None
    area: str | None = None
    unit: str | None = None
    cursor: str | None = None
    limit: int = 1000


async def query_reports(
    session: AsyncSession, settings: Settings, names: Snapshot, q: ReportQuery
) -> OpenReportPage:
    """A page of the reports filed from ``first_day`` to ``last_day`` (local days, at
    most OPEN_DATA_MAX_PERIOD_DAYS), oldest first. Unknown codes and a bad period are
    400s naming the parameter."""
    if q.last_day < q.first_day:
        raise BadRequest(
            "open_data_period_invalid",
            params={"max": settings.open_data_max_period_days},
            errors=[FieldError(field="to", message="before from", source="query")],
        )
    if (q.last_day - q.first_day).days + 1 > settings.open_data_max_period_days:
        raise BadRequest(
            "open_data_period_invalid",
            params={"max": settings.open_data_max_period_days},
            errors=[FieldError(field="to", message="period too long", source="query")],
        )
    if q.category is not None and q.category not in names.categories:
        raise _unknown("category")
    if q.area is not None and q.area not in names.areas:
        raise _unknown("area")
    unit = names.units_by_code.get(q.unit) if q.unit is not None else None
    if q.unit is not None and unit is None:
        raise _unknown("unit")
    start, end = _bounds(q.first_day, q.last_day)
    values: dict[str, Any] = {
        "start": start,
        "end": end,
        "decimals": settings.open_data_position_decimals,
        "limit": q.limit + 1,
    }
    if q.category is not None:
        values["category"] = q.category
    if q.area is not None:
        values["area"] = q.area
    if unit is not None:
        values["unit"] = unit.id
    if q.cursor:
        values["after_at"], values["after_code"] = _decode_cursor(q.cursor)
    statement = _query(q.category is not None, q.area is not None, unit is not None, bool(q.cursor))
    rows = (await session.execute(statement, values)).all()
    items = [_report(r) for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return OpenReportPage(
        meta=meta(settings),
        items=items,
        next_cursor=encode_cursor(items[-1]) if more and items else None,
    )


# ----------------------------------------------------------------------------- formats


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def to_csv(items: list[OpenReport]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for item in items:
        writer.writerow([_cell(getattr(item, f)) for f in FIELDS])
    return out.getvalue().encode()


def to_geojson(items: list[OpenReport], settings: Settings) -> bytes:
    features = [
        {
            "type": "Feature",
            "id": item.code,
            "geometry": {"type": "Point", "coordinates": [item.lon, item.lat]},
            "properties": {f: getattr(item, f) for f in FIELDS if f not in ("lat", "lon")},
        }
        for item in items
    ]
    return msgspec.json.encode(
        {"type": "FeatureCollection", "metadata": meta(settings), "features": features}
    )


# ----------------------------------------------------------------------------- daily files


def file_key(day: date, fmt: str) -> str:
    return f"{FILE_PREFIX}{day.isoformat()}.{fmt}"


async def publish_day(
    session: AsyncSession, storage: Storage, settings: Settings, day: date, now: datetime
) -> int:
    """Write local day ``day``'s CSV and GeoJSON to storage and record them (again, if
    they were: a rerun replaces both). Returns the number of reports in them."""
    start, end = _bounds(day, day)
    rows = (
        await session.execute(
            _DAY, {"start": start, "end": end, "decimals": settings.open_data_position_decimals}
        )
    ).all()
    items = [_report(r) for r in rows]
    for fmt, data in (("csv", to_csv(items)), ("geojson", to_geojson(items, settings))):
        key = file_key(day, fmt)
        await storage.put(key, data, FORMATS[fmt])
        values = {
            "day": day,
            "format": fmt,
            "storage_key": key,
            "rows": len(items),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "published_at": now,
        }
        await session.execute(
            pg_insert(OpenDataFile)
            .values(values)
            .on_conflict_do_update(
                index_elements=["day", "format"],
                set_={k: v for k, v in values.items() if k not in ("day", "format")},
            )
        )
    return len(items)


def yesterday(now: datetime) -> date:
    return now.astimezone(TIMEZONE).date() - timedelta(days=1)


_MISSING_DAYS = text(
    """
    SELECT d::date AS day
      FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d
     WHERE d::date >= (SELECT (min(created_at) AT TIME ZONE :tz)::date FROM reports)
       AND (SELECT count(*) FROM open_data_files f WHERE f.day = d::date) < 2
     ORDER BY 1
    """
)


async def days_to_publish(session: AsyncSession, now: datetime, catch_up_days: int) -> list[date]:
    """Yesterday (always: a rerun replaces its files with the day's late changes) and the
    days of the catch-up window before it that have no files yet (a worker stopped over
    them), none before the first report was filed; oldest first."""
    last = yesterday(now)
    first = last - timedelta(days=max(catch_up_days, 1) - 1)
    missing = (
        await session.execute(_MISSING_DAYS, {"first": first, "last": last, "tz": TIMEZONE.key})
    ).scalars()
    return sorted({*missing, last})


async def list_files(session: AsyncSession, settings: Settings) -> OpenDataFileList:
    rows = (
        await session.execute(
            text(
                "SELECT day, format, rows, bytes, sha256, published_at FROM open_data_files"
                " ORDER BY day DESC, format"
            )
        )
    ).all()
    return OpenDataFileList(
        meta=meta(settings),
        files=[
            OpenDataFileOut(
                day=r.day,
                format=r.format,
                url=f"/api/v1/public/open-data/files/{r.day.isoformat()}.{r.format}",
                rows=r.rows,
                bytes=r.bytes,
                sha256=r.sha256,
                published_at=r.published_at,
            )
            for r in rows
        ],
    )


async def read_file(
    session: AsyncSession, storage: Storage, day: date, fmt: str
) -> tuple[bytes, str]:
    """A published file's bytes and content type; 404 for a day not published."""
    key = await session.scalar(
        text("SELECT storage_key FROM open_data_files WHERE day = :day AND format = :fmt"),
        {"day": day, "fmt": fmt},
    )
    if key is None:
        raise NotFound("open_data_file_not_found")
    return await storage.get(key), FORMATS[fmt]
