"""The service index (Bộ chỉ số phục vụ): per responsible unit, period and channel, how
many reports it received, resolved, resolved on time, left overdue, and how residents
rated the resolutions.

``unit_stats`` is rebuilt whole by ``refresh_unit_stats`` (a worker cron) in one
transaction: readers see the previous figures until the commit, then the new ones.

The rules:
- A report counts for the unit now responsible for it (``unit_id``); reports not routed
  yet, withdrawn ones and duplicates are not counted at all.
- Channel 'staff': filed by staff on a resident's behalf (``filed_by_staff_id``), kept
  apart from what residents filed themselves ('resident'); channel 'open311': filed by a
  third-party app with an Open311 API key (``open311_key_id``), apart too.
- Periods: 'all', 'last-30-days' (received in the 30 days before the refresh) and each
  month of receipt 'YYYY-MM' in local time (Asia/Ho_Chi_Minh).
- Resolved: ``resolved_at`` set (the first resolution); on time: the verdict frozen then.
- The rating counted is the one of the report's latest resolution round
  (``resolution_round = reopen_count``), as the close-unrated sweep decides 'rated';
  'not rated' (the 7-day window lapsed) is counted apart, never as satisfied.
- Reopened: reports the reporter reopened after a resolution (not satisfied), counted
  for the unit now responsible; their first resolution's on-time verdict stands.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.complaints.lifecycle import OPEN_STATUSES
from app.core.calendar import TIMEZONE
from app.core.db import rowcount
from app.core.errors import BadRequest, FieldError, Forbidden, NotFound
from app.places.models import Unit
from app.policy import Actor
from app.stats.models import UnitStats
from app.stats.schemas import (
    ChannelFigures,
    PeriodFigures,
    UnitServiceIndex,
    UnitServiceTrend,
)

ALL = "all"
LAST_30_DAYS = "last-30-days"
RECENT_WINDOW = timedelta(days=30)
CHANNELS = ("resident", "staff", "open311")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# pg_try_advisory_xact_lock key: one rebuild at a time, whatever the number of workers
_REFRESH_LOCK_KEY = 0x756E697473746174  # "unitstat"


def parse_period(raw: str) -> str:
    """'all', 'last-30-days' or a month 'YYYY-MM'; anything else is a 400."""
    if raw in (ALL, LAST_30_DAYS) or _MONTH.match(raw):
        return raw
    raise BadRequest(
        "period_invalid",
        errors=[FieldError(field="period", message="all, last-30-days or YYYY-MM", source="query")],
    )


# ----------------------------------------------------------------------------- rebuild

# for the rebuild's transaction only: a big sort, no JIT (compiling costs more than it saves)
SESSION_SETTINGS = "set_config('jit', 'off', true), set_config('work_mem', '256MB', true)"

# One statement. Each report is read once; GROUPING SETS give, per unit and channel,
# the all-time figures, one row per month of receipt, and the last-30-days window
# (its "not recent" group is dropped by HAVING). The rating joined is the one of the
# report's latest round, so there is at most one row per report.
BUILD_SQL = """
WITH items AS (
    SELECT r.unit_id,
           CASE WHEN r.open311_key_id IS NOT NULL THEN 'open311'
                WHEN r.filed_by_staff_id IS NULL THEN 'resident' ELSE 'staff' END AS channel,
           date_trunc('month', r.created_at AT TIME ZONE CAST(:tz AS text)) AS month,
           r.created_at > :since AND r.created_at <= :now AS recent,
           r.resolved_at IS NOT NULL AS resolved,
           r.resolved_on_time,
           r.overdue_at IS NOT NULL
               AND r.status = ANY(CAST(:open_statuses AS text[])) AS open_overdue,
           CAST(r.handling_working_days AS float8) AS working_days,
           rt.rating,
           r.closed_reason,
           r.reopen_count
    FROM reports r
    LEFT JOIN report_ratings rt
           ON rt.report_id = r.id AND rt.resolution_round = r.reopen_count
    WHERE r.unit_id IS NOT NULL AND r.status NOT IN ('withdrawn', 'duplicate')
),
figures AS (
    SELECT unit_id, channel,
           CASE WHEN GROUPING(month) = 0 THEN to_char(month, 'YYYY-MM')
                WHEN GROUPING(recent) = 0 THEN 'last-30-days'
                ELSE 'all' END AS period,
           count(*) AS received,
           count(*) FILTER (WHERE resolved) AS resolved,
           count(*) FILTER (WHERE resolved AND resolved_on_time) AS resolved_on_time,
           count(*) FILTER (WHERE open_overdue) AS open_overdue,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY working_days)
               FILTER (WHERE resolved) AS median_working_days,
           count(*) FILTER (WHERE resolved AND rating IS NOT NULL) AS rated,
           count(*) FILTER (WHERE resolved AND rating = 'satisfied') AS satisfied,
           count(*) FILTER (WHERE resolved AND rating = 'accept') AS accepted,
           count(*) FILTER (WHERE resolved AND rating = 'not_satisfied') AS not_satisfied,
           count(*) FILTER (WHERE rating IS NULL AND closed_reason = 'not_rated') AS not_rated,
           count(*) FILTER (WHERE reopen_count > 0) AS reopened
    FROM items
    GROUP BY GROUPING SETS ((unit_id, channel), (unit_id, channel, month),
                            (unit_id, channel, recent))
    HAVING GROUPING(recent) = 1 OR recent
)
INSERT INTO unit_stats (unit_id, period, channel, received, resolved, resolved_on_time,
                        open_overdue, median_handling_working_days, rated, satisfied,
                        accepted, not_satisfied, not_rated, reopened, refreshed_at)
SELECT unit_id, period, channel, received, resolved, resolved_on_time, open_overdue,
       median_working_days, rated, satisfied, accepted, not_satisfied, not_rated, reopened,
       :now
FROM figures
"""

_BUILD = text(BUILD_SQL)


def build_params(now: datetime) -> dict:
    return {
        "tz": TIMEZONE.key,
        "now": now,
        "since": now - RECENT_WINDOW,
        "open_statuses": list(OPEN_STATUSES),
    }


class RefreshResult(msgspec.Struct, frozen=True):
    refreshed_at: datetime
    cells: int  # rows written to unit_stats
    build_ms: int


async def refresh_unit_stats(session: AsyncSession, now: datetime) -> RefreshResult | None:
    """Rebuild ``unit_stats`` in the caller's transaction (delete, then one INSERT ...
    SELECT). Returns None, doing nothing, when another rebuild holds the lock."""
    started = time.perf_counter()
    locked = await session.scalar(
        text(f"SELECT pg_try_advisory_xact_lock(:key), {SESSION_SETTINGS}"),
        {"key": _REFRESH_LOCK_KEY},
    )
    if not locked:
        return None
    await session.execute(text("DELETE FROM unit_stats"))
    result = await session.execute(_BUILD, build_params(now))
    return RefreshResult(
        refreshed_at=now,
        cells=rowcount(result),
        build_ms=round((time.perf_counter() - started) * 1000),
    )


# ----------------------------------------------------------------------------- reading


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


def _figures(row: UnitStats | None) -> ChannelFigures:
    """A channel's figures with their rates; zeros when the channel has no reports."""
    if row is None:
        return ChannelFigures(
            received=0,
            resolved=0,
            resolved_on_time=0,
            on_time_pct=None,
            open_overdue=0,
            median_handling_working_days=None,
            rated=0,
            satisfied=0,
            accepted=0,
            not_satisfied=0,
            not_rated=0,
            reopened=0,
            satisfaction_pct=None,
            rating_coverage_pct=None,
        )
    median = row.median_handling_working_days
    return ChannelFigures(
        received=row.received,
        resolved=row.resolved,
        resolved_on_time=row.resolved_on_time,
        on_time_pct=_pct(row.resolved_on_time, row.resolved),
        open_overdue=row.open_overdue,
        median_handling_working_days=float(median) if isinstance(median, Decimal) else median,
        rated=row.rated,
        satisfied=row.satisfied,
        accepted=row.accepted,
        not_satisfied=row.not_satisfied,
        not_rated=row.not_rated,
        reopened=row.reopened,
        satisfaction_pct=_pct(row.satisfied + row.accepted, row.rated),
        rating_coverage_pct=_pct(row.rated, row.resolved),
    )


def _by_channel(rows: list[UnitStats]) -> tuple[ChannelFigures, ChannelFigures, ChannelFigures]:
    """(resident, staff-filed, third-party) figures from a period's rows (at most one per
    channel)."""
    channel = {row.channel: row for row in rows}
    return (
        _figures(channel.get("resident")),
        _figures(channel.get("staff")),
        _figures(channel.get("open311")),
    )


async def public_index(session: AsyncSession, period: str) -> list[UnitServiceIndex]:
    """Every unit with figures for the period, by unit code."""
    period = parse_period(period)
    result = await session.execute(
        select(Unit.code, Unit.name_vi, Unit.name_en, UnitStats)
        .join(UnitStats, UnitStats.unit_id == Unit.id)
        .where(UnitStats.period == period)
        .order_by(Unit.code, UnitStats.channel)
    )
    units: dict[str, tuple[str, str, list[UnitStats]]] = {}
    for code, name_vi, name_en, row in result:
        units.setdefault(code, (name_vi, name_en, []))[2].append(row)
    index = []
    for code, (name_vi, name_en, rows) in units.items():
        resident, staff_filed, third_party = _by_channel(rows)
        index.append(
            UnitServiceIndex(
                unit_code=code,
                unit_name_vi=name_vi,
                unit_name_en=name_en,
                period=period,
                refreshed_at=max(row.refreshed_at for row in rows),
                resident=resident,
                staff_filed=staff_filed,
                third_party=third_party,
            )
        )
    return index


async def unit_index(session: AsyncSession, unit_id: uuid.UUID) -> UnitServiceTrend:
    """One unit: all time, the last 30 days and every month it received reports in."""
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("unit_not_found")
    rows = list(
        await session.scalars(
            select(UnitStats).where(UnitStats.unit_id == unit_id).order_by(UnitStats.period)
        )
    )
    periods: dict[str, list[UnitStats]] = {}
    for row in rows:
        periods.setdefault(row.period, []).append(row)

    def figures(period: str) -> PeriodFigures:
        resident, staff_filed, third_party = _by_channel(periods.get(period, []))
        return PeriodFigures(
            period=period, resident=resident, staff_filed=staff_filed, third_party=third_party
        )

    return UnitServiceTrend(
        unit_code=unit.code,
        unit_name_vi=unit.name_vi,
        unit_name_en=unit.name_en,
        refreshed_at=max((row.refreshed_at for row in rows), default=None),
        all=figures(ALL),
        last_30_days=figures(LAST_30_DAYS),
        months=[figures(period) for period in periods if _MONTH.match(period)],
    )


async def unit_index_for_staff(
    session: AsyncSession, actor: Actor, unit_code: str
) -> UnitServiceTrend:
    """A unit's figures for the console: unknown code 404, a unit outside the actor's
    scope (app/policy.py) 403."""
    unit_id = await session.scalar(select(Unit.id).where(Unit.code == unit_code))
    if unit_id is None:
        raise NotFound("unit_not_found")
    if not policy.may_view_unit_index(actor, unit_id):
        raise Forbidden("not_your_unit")
    return await unit_index(session, unit_id)


class RatingComment(msgspec.Struct):
    """A resident's comment on a resolution, as the unit's staff read it: the report's
    code, the verdict and when; never who wrote it."""

    report_code: str
    rating: str
    comment: str
    at: datetime


async def recent_rating_comments(
    session: AsyncSession, unit_code: str, limit: int = 20
) -> list[RatingComment]:
    """The latest comments residents left when rating the unit's resolutions (issue 17
    item 12), newest first. Call after ``unit_index_for_staff`` has checked access."""
    from app.complaints.models import Report, ReportRating

    rows = await session.execute(
        select(Report.code, ReportRating.rating, ReportRating.comment, ReportRating.created_at)
        .join(Report, Report.id == ReportRating.report_id)
        .join(Unit, Unit.id == Report.unit_id)
        .where(
            Unit.code == unit_code, ReportRating.comment.is_not(None), ReportRating.comment != ""
        )
        .order_by(ReportRating.created_at.desc(), ReportRating.id.desc())
        .limit(limit)
    )
    # the query keeps only non-empty comments: ``or ""`` only tells mypy the column's None
    return [RatingComment(report_code=c, rating=r, comment=t or "", at=a) for c, r, t, a in rows]
