"""The agency side of the service index (issue 19 item 7) and the overdue sweep.

Overdue sweep (``sweep_overdue``, a worker cron every minute): an open dossier
(``lifecycle.OPEN_STATUSES``) whose due date (NgayHenTra, as the agency sent it and as
supplements moved it) has passed gets ``overdue_at``; one whose due date was moved past
now again loses it; a dossier finished since gets its working days frozen. Three indexed
UPDATEs (``ix_dossiers_open_due``, ``ix_dossiers_open_overdue``,
``ix_dossiers_unmeasured``), idempotent, the same shape as the reports' sweep.

The index (``agency_stats``) is kept from counters (migration 0022): every statement
that writes ``dossiers`` (the ingest, the file import, the sweep, a rating) appends its
change per agency and local day of receipt to ``agency_count_deltas`` through a
statement-level trigger; ``refresh_agency_stats`` (a worker cron) folds them into
``agency_day_counts`` and sums the days into each agency's periods, in one transaction
(readers see the previous figures until the commit). A nightly run recounts the days
from the dossiers and reports any drift. Per agency and period ('all', 'last-30-days':
the 30 local days ending today, each month of receipt 'YYYY-MM' in local time), for the
dossiers *received* in the period:

- received: every dossier (withdrawn ones too: received − finished − open = withdrawn);
- finished: completed, result returned or refused (``lifecycle.FINISHED_STATUSES``);
  finished on time / late: the verdict frozen at the first finish (``finished_on_time``;
  a dossier without a due date has none and is in neither);
- open, and open and overdue (``overdue_at``, kept by the sweep);
- online: fully online (toàn trình);
- rated / satisfied / accept / not satisfied: the residents' ratings;
- median working days taken, received → first finish (read in order from the partial
  indexes of the measured dossiers, for the months and agencies whose measured set
  changed; the last 30 days' each time), on the city's working-day
  calendar (``app/core/calendar.py``: office hours on working days, Tết included): frozen
  on the dossier by the sweep once it is finished (``handling_working_days``, computed in
  SQL from the calendar passed as two arrays), as reports' handling days are.

Percentages are computed when read (``pct``): none when nothing is counted, never
rounded up to 100 % (or down to 0 %) when a part is missing (or present).
"""

from __future__ import annotations

import base64
import functools
import logging
import time
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.core.calendar import TIMEZONE, WorkingCalendar
from app.core.db import rowcount
from app.core.errors import BadRequest, FieldError, Forbidden, NotFound
from app.dossiers.lifecycle import FINISHED_STATUSES, OPEN_STATUSES, sql_in
from app.policy import Actor
from app.stats.service import ALL, LAST_30_DAYS, RECENT_WINDOW, parse_period

log = logging.getLogger("city.dossiers.index")

# pg_try_advisory_xact_lock key: one rebuild at a time, whatever the number of workers
_REFRESH_LOCK_KEY = 0x6167656E63797374  # "agencyst"
CALENDAR_YEARS_BACK = 20  # dossiers received earlier get no working-days figure
PAGE_SIZE = 50

# ----------------------------------------------------------------------------- sweep

_OPEN = sql_in(OPEN_STATUSES)
_FINISHED = sql_in(FINISHED_STATUSES)

# the predicate of ix_dossiers_open_due, word for word, so the partial index serves it
_MARK_OVERDUE = text(
    f"""
    UPDATE dossiers SET overdue_at = :now, updated_at = :now
     WHERE status IN ({_OPEN}) AND due_at IS NOT NULL AND overdue_at IS NULL
       AND due_at <= :now
    """
)
# a due date moved past now (a supplement, a corrected NgayHenTra) or withdrawn by the
# agency: no longer overdue (ix_dossiers_open_overdue)
_CLEAR_OVERDUE = text(
    f"""
    UPDATE dossiers SET overdue_at = NULL, updated_at = :now
     WHERE status IN ({_OPEN}) AND overdue_at IS NOT NULL
       AND (due_at IS NULL OR due_at > :now)
    """
)


class SweepResult(msgspec.Struct, frozen=True):
    marked: int
    cleared: int
    measured: int = 0


MEASURE_BATCH = 20_000


async def sweep_overdue(
    session: AsyncSession, now: datetime, calendar: WorkingCalendar | None = None
) -> SweepResult:
    """Mark open dossiers past their due date overdue; unmark those whose due date moved
    past now; with a calendar, freeze the working days of dossiers finished since (up to
    ``MEASURE_BATCH``). Idempotent: a rerun changes nothing."""
    marked = rowcount(await session.execute(_MARK_OVERDUE, {"now": now}))
    cleared = rowcount(await session.execute(_CLEAR_OVERDUE, {"now": now}))
    measured = 0
    if calendar is not None:
        params = calendar_params(calendar, now)
        since = datetime.combine(params["cal_first"], datetime.min.time(), TIMEZONE)
        measured = rowcount(
            await session.execute(
                text(_MEASURE_SQL),
                {**params, "tz": TIMEZONE.key, "now": now, "window": since, "batch": MEASURE_BATCH},
            )
        )
    return SweepResult(marked=marked, cleared=cleared, measured=measured)


# ----------------------------------------------------------------------------- calendar


@functools.lru_cache(maxsize=4)
def calendar_arrays(
    calendar: WorkingCalendar, first: date, last: date
) -> tuple[list[bool], list[int]]:
    """Every day from ``first`` to ``last``: is it a working day, and how many working
    days there are from ``first`` to it, inclusive. The calendar as two SQL arrays,
    indexed by the day's distance from ``first`` (no join per dossier)."""
    working, cum = [], []
    count = 0
    day = first
    while day <= last:
        is_working = calendar.is_working_day(day)
        count += is_working
        working.append(is_working)
        cum.append(count)
        day += timedelta(days=1)
    return working, cum


def calendar_params(calendar: WorkingCalendar, now: datetime) -> dict[str, Any]:
    today = calendar.local(now).date()
    first = today.replace(year=today.year - CALENDAR_YEARS_BACK, day=1)
    working, cum = calendar_arrays(
        calendar,
        first,
        today + timedelta(days=366),  # an agency's clock ahead of ours
    )
    return {
        "cal_first": first,
        "cal_working": working,
        "cal_cum": cum,
        "opens": timedelta(hours=calendar.opens.hour, minutes=calendar.opens.minute),
        "closes": timedelta(hours=calendar.closes.hour, minutes=calendar.closes.minute),
        "office_seconds": (
            (calendar.closes.hour - calendar.opens.hour) * 3600
            + (calendar.closes.minute - calendar.opens.minute) * 60
        ),
    }


_OFFICE = "CAST(:office_seconds AS float8)"


def _day(stamp: str) -> str:
    """The 1-based position of a local timestamp's day in the calendar arrays."""
    return f"(CAST({stamp} AS date) - CAST(:cal_first AS date) + 1)"


def _working(stamp: str) -> str:
    return f"(CAST(:cal_working AS boolean[]))[{_day(stamp)}]"


def _cum(stamp: str) -> str:
    return f"(CAST(:cal_cum AS int[]))[{_day(stamp)}]"


def _office_seconds(day_of: str, lo: str, hi: str) -> str:
    """Office seconds of ``day_of``'s day inside [lo, hi] (local timestamps)."""
    day = f"date_trunc('day', {day_of})"
    return (
        f"CASE WHEN {_working(day_of)} THEN greatest(0, extract(epoch FROM"
        f" least({hi}, {day} + CAST(:closes AS interval))"
        f" - greatest({lo}, {day} + CAST(:opens AS interval)))) ELSE 0 END"
    )


def working_days_sql(s: str, e: str) -> str:
    """Working days between the local timestamps ``s`` and ``e``, as
    ``WorkingCalendar.working_days_between``: office hours on the first and the last day,
    whole office days between; NULL outside the calendar's window."""
    return f"""
    CASE WHEN {_cum(s)} IS NULL OR {_cum(e)} IS NULL THEN NULL
         WHEN {e} <= {s} THEN 0
         ELSE round(CAST(({_office_seconds(s, s, e)}
                  + CASE WHEN CAST({e} AS date) = CAST({s} AS date) THEN 0
                         ELSE {_office_seconds(e, s, e)}
                              + ({_cum(e)} - CAST({_working(e)} AS int) - {_cum(s)}) * {_OFFICE}
                    END) / {_OFFICE} AS numeric), 2)
    END"""


# the working days of dossiers finished since the last sweep, received → first finish,
# frozen once (ix_dossiers_unmeasured); the index reads the number
_MEASURE_SQL = f"""
UPDATE dossiers d SET handling_working_days = m.days, updated_at = :now
  FROM (SELECT x.id, {working_days_sql("x.s", "x.e")} AS days
          FROM (SELECT id, received_at AT TIME ZONE CAST(:tz AS text) AS s,
                       least(completed_at, closed_at) AT TIME ZONE CAST(:tz AS text) AS e
                  FROM dossiers
                 WHERE status IN ({_FINISHED}) AND handling_working_days IS NULL
                   AND received_at >= :window
                   AND least(completed_at, closed_at) IS NOT NULL
                 LIMIT :batch) x) m
 WHERE d.id = m.id AND m.days IS NOT NULL
"""


# ----------------------------------------------------------------------------- rebuild

SESSION_SETTINGS = "set_config('jit', 'off', true), set_config('work_mem', '256MB', true)"
# the counters, as migration 0022's trigger and agency_day_counts name them
COUNTERS = (
    "received",
    "finished",
    "finished_on_time",
    "finished_late",
    "open",
    "open_overdue",
    "online",
    "rated",
    "satisfied",
    "accepted",
    "not_satisfied",
    "measured",
)
RECENT_DAYS = RECENT_WINDOW.days  # 'last-30-days': the 30 local days ending today
_MEASURED = f"handling_working_days IS NOT NULL AND status IN ({_FINISHED})"

# 1. fold: the deltas the writers appended become the days' counts (one statement; the
#    refresh's snapshot decides which deltas it takes, later ones wait for the next)
_FOLD = text(
    f"""
    WITH taken AS (DELETE FROM agency_count_deltas RETURNING *),
    moved AS (
        SELECT agency_id, day, {", ".join(f"sum({c}) AS {c}" for c in COUNTERS)}
          FROM taken GROUP BY agency_id, day
    ),
    kept AS (
        INSERT INTO agency_day_counts AS c (agency_id, day, {", ".join(COUNTERS)})
        SELECT agency_id, day, {", ".join(COUNTERS)} FROM moved
         ORDER BY agency_id, day
        ON CONFLICT (agency_id, day) DO UPDATE
           SET {", ".join(f"{c} = c.{c} + excluded.{c}" for c in COUNTERS)}
    )
    SELECT DISTINCT agency_id, CAST(date_trunc('month', day) AS date)
      FROM moved WHERE measured <> 0
    """
)
# 1'. recount (``full``): the days' counts again from the dossiers, and how many differed
_RECOUNT = f"""
WITH fresh AS (
    SELECT r.agency_id, CAST(r.received_at AT TIME ZONE CAST(:tz AS text) AS date) AS day,
           count(*) AS received,
           count(*) FILTER (WHERE r.status IN ({_FINISHED})) AS finished,
           count(*) FILTER (WHERE r.status IN ({_FINISHED}) AND r.finished_on_time)
               AS finished_on_time,
           count(*) FILTER (WHERE r.status IN ({_FINISHED}) AND NOT r.finished_on_time)
               AS finished_late,
           count(*) FILTER (WHERE r.status IN ({_OPEN})) AS open,
           count(*) FILTER (WHERE r.status IN ({_OPEN}) AND r.overdue_at IS NOT NULL)
               AS open_overdue,
           count(*) FILTER (WHERE r.online) AS online,
           count(*) FILTER (WHERE r.rating IS NOT NULL) AS rated,
           count(*) FILTER (WHERE r.rating = 'satisfied') AS satisfied,
           count(*) FILTER (WHERE r.rating = 'accept') AS accepted,
           count(*) FILTER (WHERE r.rating = 'not_satisfied') AS not_satisfied,
           count(*) FILTER (WHERE r.handling_working_days IS NOT NULL
                                  AND r.status IN ({_FINISHED})) AS measured
      FROM dossiers r GROUP BY 1, 2
)
SELECT agency_id, day, {", ".join(COUNTERS)} FROM fresh
"""
# 2. the figures: per agency, all time, each month of receipt and the last 30 days, as
#    sums of the days (GROUPING SETS, as unit_stats); rows no longer counted go
_FIGURES = text(
    f"""
    WITH days AS (
        SELECT c.*, date_trunc('month', c.day) AS month,
               c.day > CAST(:today AS date) - {RECENT_DAYS} AND c.day <= :today AS recent
          FROM agency_day_counts c
    ),
    figures AS (
        SELECT agency_id,
               CASE WHEN GROUPING(month) = 0 THEN to_char(month, 'YYYY-MM')
                    WHEN GROUPING(recent) = 0 THEN 'last-30-days'
                    ELSE 'all' END AS period,
               {", ".join(f"sum({c}) AS {c}" for c in COUNTERS)}
          FROM days
         GROUP BY GROUPING SETS ((agency_id), (agency_id, month), (agency_id, recent))
        HAVING GROUPING(recent) = 1 OR recent
    ),
    kept AS (
        INSERT INTO agency_stats AS s (agency_id, period, {", ".join(COUNTERS)}, refreshed_at)
        SELECT agency_id, period, {", ".join(COUNTERS)}, :now FROM figures
         WHERE received > 0
        ON CONFLICT (agency_id, period) DO UPDATE
           SET {", ".join(f"{c} = excluded.{c}" for c in COUNTERS)},
               refreshed_at = excluded.refreshed_at
        RETURNING agency_id, period
    )
    DELETE FROM agency_stats s
     WHERE NOT EXISTS (SELECT 1 FROM kept k WHERE k.agency_id = s.agency_id
                                              AND k.period = s.period)
    """
)
# 3. the medians of working days (received → first finish), from the partial indexes of
#    the measured dossiers, index-only: a month's (and the last 30 days') by agency and
#    time of receipt; all time's read in order at the middle one or two of ``measured``
#    (percentile_cont(0.5): the mean of the two middle values when the count is even)
_MIDDLE = "OFFSET (s.measured - 1) / 2 LIMIT 2 - s.measured % 2"
_MONTH_START = "(CAST(to_date(s.period, 'YYYY-MM') AS timestamp) AT TIME ZONE 'Asia/Ho_Chi_Minh')"
_MONTH_AFTER = (
    "((CAST(to_date(s.period, 'YYYY-MM') AS timestamp) + interval '1 month')"
    " AT TIME ZONE 'Asia/Ho_Chi_Minh')"
)
_MONTH_MEDIANS = text(
    f"""
    UPDATE agency_stats s
       SET median_handling_working_days = (
           SELECT round(CAST(percentile_cont(0.5) WITHIN GROUP
                      (ORDER BY handling_working_days) AS numeric), 2)
             FROM dossiers
            WHERE agency_id = s.agency_id
              AND received_at >= {_MONTH_START} AND received_at < {_MONTH_AFTER}
              AND {_MEASURED})
     WHERE s.period ~ '^[0-9]{{4}}-[0-9]{{2}}$'
       AND (CAST(:every AS boolean)
            OR (s.agency_id, s.period) IN (
                SELECT * FROM unnest(CAST(:agencies AS uuid[]), CAST(:periods AS text[]))))
    """
)
_ALL_MEDIANS = text(
    f"""
    UPDATE agency_stats s
       SET median_handling_working_days = CASE WHEN s.measured = 0 THEN NULL ELSE (
           SELECT round(avg(m.v), 2) FROM (
               SELECT handling_working_days AS v FROM dossiers
                WHERE agency_id = s.agency_id AND {_MEASURED}
                ORDER BY handling_working_days {_MIDDLE}) m) END
     WHERE s.period = 'all'
       AND (CAST(:every AS boolean) OR s.agency_id = ANY(CAST(:agencies AS uuid[])))
    """
)
# the last 30 days move every day: their medians are recomputed each time, from the
# dossiers received in them (ix_dossiers_agency_received)
_RECENT_MEDIANS = text(
    f"""
    UPDATE agency_stats s
       SET median_handling_working_days = (
           SELECT round(CAST(percentile_cont(0.5) WITHIN GROUP
                      (ORDER BY handling_working_days) AS numeric), 2)
             FROM dossiers
            WHERE agency_id = s.agency_id
              AND received_at >= :first AND received_at < :after AND {_MEASURED})
     WHERE s.period = 'last-30-days'
    """
)


class RefreshResult(msgspec.Struct, frozen=True):
    refreshed_at: datetime
    mode: str  # full (the days recounted from the dossiers) | changes (the deltas folded)
    months: int  # (agency, month) medians recomputed
    cells: int  # rows in agency_stats afterwards
    build_ms: int
    # full: (agency, day) counts the recount found different from the kept ones; a
    # non-zero figure means a write escaped the trigger (the operator is told: a metric)
    drift: int = 0


async def refresh_agency_stats(
    session: AsyncSession, calendar: WorkingCalendar, now: datetime, *, full: bool = False
) -> RefreshResult | None:
    """Refresh ``agency_stats``; None, doing nothing, when another refresh holds the lock.
    Must be the first thing its transaction does: it reads at REPEATABLE READ, so the
    deltas it folds and the dossiers whose medians it reads are the same snapshot.

    Every write to ``dossiers`` appends its change per (agency, day of receipt) to
    ``agency_count_deltas`` (migration 0022's trigger). The refresh folds those into
    ``agency_day_counts``, sums the days into every agency's periods ('all', each month,
    the last 30 local days), and recomputes the medians of working days where the
    measured set changed (every month and agency on the first refresh or ``full``), the
    last 30 days' each time. ``full`` also recounts the days from the dossiers (a nightly
    reconciliation: ``drift`` says how many days differed, which should be none)."""
    started = time.perf_counter()
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    locked = await session.scalar(
        text(f"SELECT pg_try_advisory_xact_lock(:key), {SESSION_SETTINGS}"),
        {"key": _REFRESH_LOCK_KEY},
    )
    if not locked:
        return None
    first = (await session.scalar(text("SELECT NOT EXISTS (SELECT 1 FROM agency_stats)"))) or False
    drift = 0
    touched: list[tuple[uuid.UUID, date]] = []
    if full:
        await session.execute(text("DELETE FROM agency_count_deltas"))
        await session.execute(
            text(f"CREATE TEMP TABLE fresh_counts ON COMMIT DROP AS {_RECOUNT}"),
            {"tz": TIMEZONE.key},
        )
        drift = (
            await session.scalar(
                text(
                    """
                    SELECT count(DISTINCT (agency_id, day)) FROM (
                        (SELECT * FROM fresh_counts EXCEPT ALL SELECT * FROM agency_day_counts)
                        UNION ALL
                        (SELECT * FROM agency_day_counts EXCEPT ALL SELECT * FROM fresh_counts)
                    ) differ
                    """
                )
            )
        ) or 0
        await session.execute(text("DELETE FROM agency_day_counts"))
        await session.execute(text("INSERT INTO agency_day_counts SELECT * FROM fresh_counts"))
    else:
        touched = [(row[0], row[1]) for row in (await session.execute(_FOLD)).all()]
        # a day whose dossiers all went (deleted) is no day: as the recount would have it
        await session.execute(text("DELETE FROM agency_day_counts WHERE received = 0"))
    today = calendar.local(now).date()
    await session.execute(_FIGURES, {"today": today, "now": now})
    every = full or first
    months = rowcount(
        await session.execute(
            _MONTH_MEDIANS,
            {
                "every": every,
                "agencies": [agency for agency, _ in touched],
                "periods": [month.strftime("%Y-%m") for _, month in touched],
            },
        )
    )
    await session.execute(
        _ALL_MEDIANS, {"every": every, "agencies": list({agency for agency, _ in touched})}
    )
    recent_first = datetime.combine(
        today - timedelta(days=RECENT_DAYS - 1), datetime.min.time(), TIMEZONE
    )
    await session.execute(
        _RECENT_MEDIANS,
        {"first": recent_first, "after": recent_first + timedelta(days=RECENT_DAYS)},
    )
    cells = await session.scalar(text("SELECT count(*) FROM agency_stats")) or 0
    if drift:
        # a write escaped the trigger (disabled, a restore, a bug): corrected now; say so
        log.warning("agency_counts_drift", extra={"days": drift})
    return RefreshResult(
        refreshed_at=now,
        mode="full" if full else "changes",
        months=months,
        cells=cells,
        build_ms=round((time.perf_counter() - started) * 1000),
        drift=drift,
    )


# ----------------------------------------------------------------------------- reading

Percent = float | None


def pct(part: int, whole: int) -> Percent:
    """part / whole in percent, one decimal; None when whole is 0. Honest at the ends: a
    part short of the whole never shows 100.0, a part above zero never shows 0.0."""
    if whole <= 0:
        return None
    value = round(100 * part / whole, 1)
    if part < whole:
        value = min(value, 99.9)
    if part > 0:
        value = max(value, 0.1)
    return value


class AgencyFigures(msgspec.Struct):
    """An agency's figures for one period (dossiers received in it). Counts only."""

    received: int
    finished: int  # completed, returned or refused
    finished_on_time: int  # by the verdict frozen at the first finish
    finished_late: int
    on_time_pct: Percent  # on time / (on time + late)
    open: int
    open_overdue: int
    overdue_pct: Percent  # open_overdue / open
    online: int  # fully online (toàn trình)
    online_pct: Percent  # online / received
    rated: int
    satisfied: int
    accepted: int
    not_satisfied: int
    satisfaction_pct: Percent  # (satisfied + accept) / rated
    median_handling_working_days: float | None  # received → first finish


class AgencyServiceIndex(msgspec.Struct):
    """One agency's figures for a period, as published (no dossier, no person)."""

    agency_code: str
    agency_name_vi: str
    agency_name_en: str
    unit_code: str
    period: str
    refreshed_at: datetime | None
    figures: AgencyFigures


class AgencyPeriod(msgspec.Struct):
    period: str
    figures: AgencyFigures


class AgencyTrend(msgspec.Struct):
    """One agency over time: all time, the last 30 days and month by month (oldest first)."""

    agency_code: str
    agency_name_vi: str
    agency_name_en: str
    unit_code: str
    refreshed_at: datetime | None
    all: AgencyFigures
    last_30_days: AgencyFigures
    months: list[AgencyPeriod]


_STATS_COLUMNS = (
    "received, finished, finished_on_time, finished_late, open, open_overdue, online, "
    "rated, satisfied, accepted, not_satisfied, median_handling_working_days"
)
_EMPTY = (0,) * 11 + (None,)


def figures(row: tuple[Any, ...] | None) -> AgencyFigures:
    """Figures with their rates from the stats columns in ``_STATS_COLUMNS`` order."""
    (
        received,
        finished,
        on_time,
        late,
        open_,
        overdue,
        online,
        rated,
        satisfied,
        accepted,
        not_satisfied,
        median,
    ) = row if row is not None else _EMPTY
    return AgencyFigures(
        received=received,
        finished=finished,
        finished_on_time=on_time,
        finished_late=late,
        on_time_pct=pct(on_time, on_time + late),
        open=open_,
        open_overdue=overdue,
        overdue_pct=pct(overdue, open_),
        online=online,
        online_pct=pct(online, received),
        rated=rated,
        satisfied=satisfied,
        accepted=accepted,
        not_satisfied=not_satisfied,
        satisfaction_pct=pct(satisfied + accepted, rated),
        median_handling_working_days=float(median) if isinstance(median, Decimal) else median,
    )


_INDEX_SQL = text(
    f"""
    SELECT a.code, a.name_vi, a.name_en, u.code, s.refreshed_at, {_STATS_COLUMNS}
      FROM agency_stats s
      JOIN agencies a ON a.id = s.agency_id
      JOIN units u ON u.id = a.unit_id
     WHERE s.period = :period AND (CAST(:units AS uuid[]) IS NULL OR a.unit_id = ANY(:units))
     ORDER BY a.code
    """
)


def _scope_param(scope: frozenset[uuid.UUID] | None) -> list[uuid.UUID] | None:
    return None if scope is None else sorted(scope)


async def public_index(session: AsyncSession, period: str) -> list[AgencyServiceIndex]:
    """Every agency with figures for the period, by agency code."""
    period = parse_period(period)
    rows = await session.execute(_INDEX_SQL, {"period": period, "units": None})
    return [_index_item(row, period) for row in rows]


async def index_for_staff(
    session: AsyncSession, actor: Actor, period: str
) -> list[AgencyServiceIndex]:
    """The agencies the actor may see (app/policy.py), for the console."""
    period = parse_period(period)
    if not actor.is_staff:
        raise Forbidden("not_your_unit")
    scope = policy.agency_index_scope(actor)
    rows = await session.execute(_INDEX_SQL, {"period": period, "units": _scope_param(scope)})
    return [_index_item(row, period) for row in rows]


def _index_item(row: Any, period: str) -> AgencyServiceIndex:
    return AgencyServiceIndex(
        agency_code=row[0],
        agency_name_vi=row[1],
        agency_name_en=row[2],
        unit_code=row[3],
        period=period,
        refreshed_at=row[4],
        figures=figures(tuple(row[5:])),
    )


class AgencyRef(msgspec.Struct, frozen=True):
    id: uuid.UUID
    code: str
    name_vi: str
    name_en: str
    unit_id: uuid.UUID
    unit_code: str


async def agency_for_staff(session: AsyncSession, actor: Actor, code: str) -> AgencyRef:
    """The agency by code: unknown 404, outside the actor's units 403."""
    row = (
        await session.execute(
            text(
                "SELECT a.id, a.code, a.name_vi, a.name_en, a.unit_id, u.code FROM agencies a"
                " JOIN units u ON u.id = a.unit_id WHERE a.code = :code"
            ),
            {"code": code},
        )
    ).first()
    if row is None:
        raise NotFound("dossier_index.agency_not_found")
    agency = AgencyRef(*row)
    if not policy.may_view_agency_index(actor, agency.unit_id):
        raise Forbidden("not_your_unit")
    return agency


async def agency_trend(session: AsyncSession, actor: Actor, code: str) -> AgencyTrend:
    """One agency's figures over time, for its unit's staff and the city's supervisors."""
    agency = await agency_for_staff(session, actor, code)
    rows = await session.execute(
        text(
            f"SELECT period, refreshed_at, {_STATS_COLUMNS} FROM agency_stats"
            " WHERE agency_id = :id ORDER BY period"
        ),
        {"id": agency.id},
    )
    periods = {row[0]: row for row in rows}

    def of(period: str) -> AgencyFigures:
        row = periods.get(period)
        return figures(tuple(row[2:]) if row is not None else None)

    return AgencyTrend(
        agency_code=agency.code,
        agency_name_vi=agency.name_vi,
        agency_name_en=agency.name_en,
        unit_code=agency.unit_code,
        refreshed_at=max((row[1] for row in periods.values()), default=None),
        all=of(ALL),
        last_30_days=of(LAST_30_DAYS),
        months=[
            AgencyPeriod(period=p, figures=of(p))
            for p in sorted(periods)
            if p not in (ALL, LAST_30_DAYS)
        ],
    )


# ----------------------------------------------------------------------------- supervisors


class AgencyLateness(msgspec.Struct):
    rank: int  # 1: the latest
    agency_code: str
    agency_name_vi: str
    agency_name_en: str
    unit_code: str
    figures: AgencyFigures


class AgencyRanking(msgspec.Struct):
    """Agencies ranked by lateness: most open-and-overdue dossiers first, then the lowest
    share finished on time, then by code. Agencies with no dossiers yet are last."""

    period: str
    refreshed_at: datetime | None
    agencies: list[AgencyLateness]


_RANKING_SQL = text(
    f"""
    SELECT a.code, a.name_vi, a.name_en, u.code, s.refreshed_at,
           {", ".join(f"s.{c.strip()}" for c in _STATS_COLUMNS.split(","))}
      FROM agencies a
      JOIN units u ON u.id = a.unit_id
      LEFT JOIN agency_stats s ON s.agency_id = a.id AND s.period = :period
     WHERE CAST(:units AS uuid[]) IS NULL OR a.unit_id = ANY(:units)
    """
)


def _lateness_key(item: AgencyServiceIndex) -> tuple[Any, ...]:
    f = item.figures
    on_time = f.on_time_pct if f.on_time_pct is not None else 101.0  # none judged: last
    return (-f.open_overdue, on_time, item.agency_code)


async def ranking(session: AsyncSession, actor: Actor, period: str) -> AgencyRanking:
    """The supervisors' ranking: every agency for the city-wide roles, the agencies of
    the actor's units for the others (app/policy.py)."""
    period = parse_period(period)
    if not actor.is_staff:
        raise Forbidden("not_your_unit")
    scope = policy.agency_index_scope(actor)
    rows = await session.execute(_RANKING_SQL, {"period": period, "units": _scope_param(scope)})
    items = []
    for row in rows:
        stats = tuple(row[5:]) if row[4] is not None else None
        items.append(
            AgencyServiceIndex(
                agency_code=row[0],
                agency_name_vi=row[1],
                agency_name_en=row[2],
                unit_code=row[3],
                period=period,
                refreshed_at=row[4],
                figures=figures(stats),
            )
        )
    items.sort(key=_lateness_key)
    return AgencyRanking(
        period=period,
        refreshed_at=max((i.refreshed_at for i in items if i.refreshed_at), default=None),
        agencies=[
            AgencyLateness(
                rank=n,
                agency_code=i.agency_code,
                agency_name_vi=i.agency_name_vi,
                agency_name_en=i.agency_name_en,
                unit_code=i.unit_code,
                figures=i.figures,
            )
            for n, i in enumerate(items, start=1)
        ],
    )


class OverdueDossier(msgspec.Struct):
    """An open dossier past its due date, as a supervisor sees it: no applicant, no
    contact, no handler."""

    code: str
    procedure_code: str
    procedure_name: str
    status: str
    received_at: datetime
    due_at: datetime
    working_days_overdue: int  # working days after the due day, up to today (local)


class OverduePage(msgspec.Struct):
    agency_code: str
    agency_name_vi: str
    agency_name_en: str
    as_of: datetime
    items: list[OverdueDossier]
    next_cursor: str | None


# ix_dossiers_open_overdue (agency_id, due_at, id) WHERE open AND overdue_at IS NOT NULL
_OVERDUE_SQL = f"""
    SELECT d.code, d.procedure_code, d.procedure_name, d.status, d.received_at, d.due_at,
           d.id
      FROM dossiers d
     WHERE d.agency_id = :agency_id AND d.status IN ({_OPEN}) AND d.overdue_at IS NOT NULL
       {{after}}
     ORDER BY d.due_at, d.id
     LIMIT :limit
"""
_OVERDUE_FIRST = text(_OVERDUE_SQL.format(after=""))
_OVERDUE_AFTER = text(_OVERDUE_SQL.format(after="AND (d.due_at, d.id) > (:due, :after_id)"))


def encode_cursor(due_at: datetime, dossier_id: uuid.UUID) -> str:
    raw = f"{due_at.isoformat()}|{dossier_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, rid = raw.partition("|")
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(rid)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "cursor_invalid",
            errors=[FieldError(field="cursor", message="malformed", source="query")],
        ) from exc


async def overdue_dossiers(
    session: AsyncSession,
    actor: Actor,
    calendar: WorkingCalendar,
    agency_code: str,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> OverduePage:
    """An agency's open dossiers past their due date, the longest overdue first, ``limit``
    at a time (keyset on the due date)."""
    agency = await agency_for_staff(session, actor, agency_code)
    params: dict[str, Any] = {"agency_id": agency.id, "limit": limit + 1}
    if cursor:
        params["due"], params["after_id"] = decode_cursor(cursor)
    rows = (await session.execute(_OVERDUE_AFTER if cursor else _OVERDUE_FIRST, params)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    today = calendar.local(actor.now).date()
    overdue_by = _working_days_after(calendar, [row[5] for row in rows], today)
    items = [
        OverdueDossier(
            code=row[0],
            procedure_code=row[1],
            procedure_name=row[2],
            status=row[3],
            received_at=row[4],
            due_at=row[5],
            working_days_overdue=days,
        )
        for row, days in zip(rows, overdue_by, strict=True)
    ]
    return OverduePage(
        agency_code=agency.code,
        agency_name_vi=agency.name_vi,
        agency_name_en=agency.name_en,
        as_of=actor.now,
        items=items,
        next_cursor=encode_cursor(rows[-1][5], rows[-1][6]) if more else None,
    )


def _working_days_after(calendar: WorkingCalendar, dues: list[datetime], today: date) -> list[int]:
    """For each due instant, the working days in (its day, today]: 0 on the due day."""
    due_days = [calendar.local(due).date() for due in dues]
    first = min(due_days, default=today)
    if first >= today:
        return [0] * len(dues)
    cumulative: dict[date, int] = {}
    count, day = 0, first
    while day <= today:
        count += calendar.is_working_day(day)
        cumulative[day] = count
        day += timedelta(days=1)
    return [max(0, count - cumulative[d]) if d < today else 0 for d in due_days]
