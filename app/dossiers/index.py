"""The agency side of the service index (issue 19 item 7) and the overdue sweep.

Overdue sweep (``sweep_overdue``, a worker cron every minute): an open dossier
(``lifecycle.OPEN_STATUSES``) whose due date (NgayHenTra, as the agency sent it and as
supplements moved it) has passed gets ``overdue_at``; one whose due date was moved past
now again loses it. Two indexed UPDATEs (``ix_dossiers_open_due``,
``ix_dossiers_open_overdue``), idempotent, the same shape as the reports' sweep.

The index (``agency_stats``) is rebuilt whole by ``refresh_agency_stats`` (a worker cron,
like ``unit_stats``) in one transaction: readers see the previous figures until the
commit. Per agency and period ('all', 'last-30-days', each month of receipt 'YYYY-MM' in
local time), for the dossiers *received* in the period:

- received: every dossier (withdrawn ones too: received − finished − open = withdrawn);
- finished: completed, result returned or refused (``lifecycle.FINISHED_STATUSES``);
  finished on time / late: the verdict frozen at the first finish (``finished_on_time``;
  a dossier without a due date has none and is in neither);
- open, and open and overdue (``overdue_at``, kept by the sweep);
- online: fully online (toàn trình);
- rated / satisfied / accept / not satisfied: the residents' ratings;
- median working days taken, received → first finish, on the city's working-day
  calendar (``app/core/calendar.py``: office hours on working days, Tết included),
  computed in SQL from a calendar table the rebuild passes as arrays.

Percentages are computed when read (``pct``): none when nothing is counted, never
rounded up to 100 % (or down to 0 %) when a part is missing (or present).
"""

from __future__ import annotations

import base64
import functools
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


async def sweep_overdue(session: AsyncSession, now: datetime) -> SweepResult:
    """Mark open dossiers past their due date overdue; unmark those whose due date moved
    past now. Idempotent: a rerun changes nothing."""
    marked = rowcount(await session.execute(_MARK_OVERDUE, {"now": now}))
    cleared = rowcount(await session.execute(_CLEAR_OVERDUE, {"now": now}))
    return SweepResult(marked=marked, cleared=cleared)


# ----------------------------------------------------------------------------- calendar


@functools.lru_cache(maxsize=4)
def calendar_arrays(
    calendar: WorkingCalendar, first: date, last: date
) -> tuple[list[date], list[bool], list[int]]:
    """Every day in [first, last] with whether it is a working day and how many working
    days there are from ``first`` to it, inclusive: the calendar as a SQL table."""
    days, working, cum = [], [], []
    count = 0
    day = first
    while day <= last:
        is_working = calendar.is_working_day(day)
        count += is_working
        days.append(day)
        working.append(is_working)
        cum.append(count)
        day += timedelta(days=1)
    return days, working, cum


def calendar_params(calendar: WorkingCalendar, now: datetime) -> dict[str, Any]:
    today = calendar.local(now).date()
    days, working, cum = calendar_arrays(
        calendar,
        today.replace(year=today.year - CALENDAR_YEARS_BACK, day=1),
        today + timedelta(days=366),  # an agency's clock ahead of ours
    )
    return {
        "cal_days": days,
        "cal_working": working,
        "cal_cum": cum,
        "opens": timedelta(hours=calendar.opens.hour, minutes=calendar.opens.minute),
        "closes": timedelta(hours=calendar.closes.hour, minutes=calendar.closes.minute),
        "office_seconds": (
            (calendar.closes.hour - calendar.opens.hour) * 3600
            + (calendar.closes.minute - calendar.opens.minute) * 60
        ),
    }


def _office_seconds(cal: str, lo: str, hi: str) -> str:
    """Office seconds of the calendar day ``cal`` inside [lo, hi] (local timestamps)."""
    return (
        f"CASE WHEN {cal}.working THEN greatest(0, extract(epoch FROM"
        f" least({hi}, {cal}.day + CAST(:closes AS interval))"
        f" - greatest({lo}, {cal}.day + CAST(:opens AS interval)))) ELSE 0 END"
    )


_OFFICE = "CAST(:office_seconds AS float8)"

# working days between s and e (local timestamps), as WorkingCalendar.working_days_between:
# office hours on the first and last day, whole office days between; NULL outside the
# calendar's window
WORKING_DAYS_SQL = f"""
    CASE WHEN e <= s THEN 0
         ELSE round(CAST(({_office_seconds("cs", "s", "e")}
                  + CASE WHEN ce.day = cs.day THEN 0
                         ELSE {_office_seconds("ce", "s", "e")}
                              + (ce.cum - CAST(ce.working AS int) - cs.cum) * {_OFFICE}
                    END) / {_OFFICE} AS numeric), 2)
    END
"""

CALENDAR_CTE = """
cal AS (
    SELECT * FROM unnest(CAST(:cal_days AS date[]), CAST(:cal_working AS boolean[]),
                         CAST(:cal_cum AS int[])) AS c(day, working, cum)
)"""


# ----------------------------------------------------------------------------- rebuild

SESSION_SETTINGS = "set_config('jit', 'off', true), set_config('work_mem', '256MB', true)"

# One statement: each dossier read once; GROUPING SETS give per agency the all-time
# figures, one row per month of receipt and the last 30 days (its "not recent" group is
# dropped by HAVING), as unit_stats.
BUILD_SQL = f"""
WITH {CALENDAR_CTE},
base AS (
    SELECT d.agency_id, d.received_at, d.online, d.rating, d.finished_on_time,
           d.status IN ({_FINISHED}) AS finished,
           d.status IN ({_OPEN}) AS open,
           d.overdue_at IS NOT NULL AS overdue,
           d.received_at AT TIME ZONE CAST(:tz AS text) AS s,
           CASE WHEN d.status IN ({_FINISHED})
                THEN least(d.completed_at, d.closed_at) AT TIME ZONE CAST(:tz AS text)
           END AS e
    FROM dossiers d
),
items AS (
    SELECT b.agency_id,
           date_trunc('month', b.s) AS month,
           b.received_at > :since AND b.received_at <= :now AS recent,
           b.finished, b.finished_on_time, b.open, b.overdue, b.online, b.rating,
           CASE WHEN b.finished THEN {WORKING_DAYS_SQL} END AS working_days
    FROM base b
    LEFT JOIN cal cs ON cs.day = CAST(b.s AS date) AND b.finished
    LEFT JOIN cal ce ON ce.day = CAST(b.e AS date) AND b.finished
),
figures AS (
    SELECT agency_id,
           CASE WHEN GROUPING(month) = 0 THEN to_char(month, 'YYYY-MM')
                WHEN GROUPING(recent) = 0 THEN 'last-30-days'
                ELSE 'all' END AS period,
           count(*) AS received,
           count(*) FILTER (WHERE finished) AS finished,
           count(*) FILTER (WHERE finished AND finished_on_time) AS finished_on_time,
           count(*) FILTER (WHERE finished AND NOT finished_on_time) AS finished_late,
           count(*) FILTER (WHERE open) AS open,
           count(*) FILTER (WHERE open AND overdue) AS open_overdue,
           count(*) FILTER (WHERE online) AS online,
           count(*) FILTER (WHERE rating IS NOT NULL) AS rated,
           count(*) FILTER (WHERE rating = 'satisfied') AS satisfied,
           count(*) FILTER (WHERE rating = 'accept') AS accepted,
           count(*) FILTER (WHERE rating = 'not_satisfied') AS not_satisfied,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY working_days)
               FILTER (WHERE working_days IS NOT NULL) AS median_working_days
    FROM items
    GROUP BY GROUPING SETS ((agency_id), (agency_id, month), (agency_id, recent))
    HAVING GROUPING(recent) = 1 OR recent
)
INSERT INTO agency_stats (agency_id, period, received, finished, finished_on_time,
                          finished_late, open, open_overdue, online, rated, satisfied,
                          accepted, not_satisfied, median_handling_working_days, refreshed_at)
SELECT agency_id, period, received, finished, finished_on_time, finished_late, open,
       open_overdue, online, rated, satisfied, accepted, not_satisfied,
       round(CAST(median_working_days AS numeric), 2), :now
FROM figures
"""

_BUILD = text(BUILD_SQL)


def build_params(calendar: WorkingCalendar, now: datetime) -> dict[str, Any]:
    return {
        "tz": TIMEZONE.key,
        "now": now,
        "since": now - RECENT_WINDOW,
        **calendar_params(calendar, now),
    }


class RefreshResult(msgspec.Struct, frozen=True):
    refreshed_at: datetime
    cells: int  # rows written to agency_stats
    build_ms: int


async def refresh_agency_stats(
    session: AsyncSession, calendar: WorkingCalendar, now: datetime
) -> RefreshResult | None:
    """Rebuild ``agency_stats`` in the caller's transaction (delete, then one INSERT ...
    SELECT). None, doing nothing, when another rebuild holds the lock."""
    started = time.perf_counter()
    locked = await session.scalar(
        text(f"SELECT pg_try_advisory_xact_lock(:key), {SESSION_SETTINGS}"),
        {"key": _REFRESH_LOCK_KEY},
    )
    if not locked:
        return None
    await session.execute(text("DELETE FROM agency_stats"))
    result = await session.execute(_BUILD, build_params(calendar, now))
    return RefreshResult(
        refreshed_at=now,
        cells=rowcount(result),
        build_ms=round((time.perf_counter() - started) * 1000),
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
