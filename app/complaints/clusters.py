"""Grid clusters for the public map (bản đồ phản ánh), two ways to the same answer.

Cells: at zoom z the map is cut into square cells of ``cell_side(z) = 90 / 2**z``
degrees, four per side of a 256 px tile (~64 px). A report's cell is
``(floor(lon / side), floor(lat / side))``. The side halves exactly from one zoom to the
next (a power-of-two scaling is exact in binary floating point), so the cell at zoom z
is the zoom-15 cell shifted right by 15 - z bits: the snapshot rolls zoom 15 up to zoom
0 without going back to the reports, and both ways put every report in the same cell.

A view's bbox is widened to whole cells: a cell is shown with all its reports or not at
all. Clusters then do not change as the map pans, and the two ways agree exactly.

- **Snapshot** (``snapshot_clusters``): ``report_map_cells``, rebuilt from ``reports`` by
  ``refresh_map_cells`` (one statement; an arq cron runs it every minute). A view reads
  one row per cell, or unnests the cell's (category, status, kind) facets when filtered.
  Used while the snapshot is younger than ``SNAPSHOT_MAX_AGE``; the response carries the
  snapshot's ``as_of``, so the map says it can be up to a minute old.
- **Live** (``live_clusters``): GROUP BY over the reports in the window. Used with a
  ``since`` filter (the snapshot has no time dimension), and when there is no fresh
  snapshot (worker down, fresh install, tests): correct, but it reads every report in
  the view, so it is slow on a city-wide view of a large table.

Neither way exposes who reported: a cluster is a count, a centroid and, for a single
report, its public code. Withdrawn reports are never counted.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.complaints.abuse import PUBLIC_REPORT, public_report_sql
from app.complaints.models import KINDS, STATUSES, Report

CLUSTER_BELOW_ZOOM = 16  # at zoom 16+ (a few streets) every report is its own feature
CELLS_PER_TILE = 4  # grid cells per 256 px map tile side: ~64 px clusters
FINEST_ZOOM = CLUSTER_BELOW_ZOOM - 1  # the finest zoom the snapshot holds
# The cron refreshes every minute; a snapshot older than this (the worker is down, or
# refreshes fail) is not trusted and the feed answers from live data (slower at scale,
# never wrong). Ten minutes leaves room for a slower cadence (every 5 min) too.
SNAPSHOT_MAX_AGE = timedelta(minutes=10)
# pg_try_advisory_xact_lock key: one refresh at a time, whatever the number of workers
_REFRESH_LOCK_KEY = 0x7265706F72746D61  # "reportma"


def cell_side(zoom: int) -> float:
    """Side of a cell in degrees; exact in binary floating point (90 * 2**-zoom)."""
    return 360.0 / (2**zoom) / CELLS_PER_TILE


class GridWindow(msgspec.Struct, frozen=True):
    """The cells ``x0..x1`` by ``y0..y1`` (inclusive) covering a bbox at a zoom."""

    zoom: int
    x0: int
    y0: int
    x1: int
    y1: int

    def envelope(self) -> tuple[float, float, float, float]:
        side = cell_side(self.zoom)
        return self.x0 * side, self.y0 * side, (self.x1 + 1) * side, (self.y1 + 1) * side


def grid_window(bbox: tuple[float, float, float, float], zoom: int) -> GridWindow:
    side = cell_side(zoom)
    min_lon, min_lat, max_lon, max_lat = bbox
    return GridWindow(
        zoom=zoom,
        x0=math.floor(min_lon / side),
        y0=math.floor(min_lat / side),
        x1=math.floor(max_lon / side),
        y1=math.floor(max_lat / side),
    )


class Cluster(msgspec.Struct, frozen=True):
    count: int
    lon: float  # centroid of the cell's reports
    lat: float
    code: str | None  # the report's code when count == 1


class ClusterPage(msgspec.Struct, frozen=True):
    as_of: datetime  # every change committed before this instant is counted
    clusters: list[Cluster]  # biggest first, at most ``limit``
    truncated: bool


def _page(as_of: datetime, rows: list, limit: int) -> ClusterPage:
    return ClusterPage(
        as_of=as_of,
        clusters=[
            Cluster(count=n, lon=sx / n, lat=sy / n, code=code if n == 1 else None)
            for n, sx, sy, code in rows[:limit]
        ],
        truncated=len(rows) > limit,
    )


# ----------------------------------------------------------------------------- live


async def use_custom_plans(session: AsyncSession) -> None:
    """Plan this transaction's statements with their parameters. asyncpg prepares every
    statement, and after five runs PostgreSQL may switch to a generic plan that cannot
    see the bbox or ``since``; for the live queries the best plan depends on them (a
    street: the GiST index; the whole city: a sequential scan, ~4 s vs ~0.5 s at 1M
    reports; the last week: the ``created_at`` index)."""
    await session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"))


async def live_clusters(
    session: AsyncSession,
    window: GridWindow,
    category: str | None,
    status: str | None,
    kind: str | None,
    since: datetime | None,
    limit: int,
) -> ClusterPage:
    as_of = datetime.now(UTC)  # taken before the query: everything committed before is in
    await use_custom_plans(session)
    side = cell_side(window.zoom)
    x, y = func.ST_X(Report.location), func.ST_Y(Report.location)
    gx, gy = func.floor(x / side), func.floor(y / side)
    conditions: list[ColumnElement[bool]] = [
        Report.location.op("&&")(func.ST_MakeEnvelope(*window.envelope(), 4326)),
        # a point exactly on the envelope's far edge belongs to the next cell
        gx.between(window.x0, window.x1),
        gy.between(window.y0, window.y1),
        PUBLIC_REPORT,  # not withdrawn, not flagged abusive
    ]
    if category:
        conditions.append(Report.category_code == category)
    if status:
        conditions.append(Report.status == status)
    if kind:
        conditions.append(Report.kind == kind)
    if since:
        conditions.append(Report.created_at >= since)
    connection = await session.connection()
    rows = await connection.execute(
        select(func.count(), func.sum(x), func.sum(y), func.min(Report.code.collate("C")))
        .where(*conditions)
        .group_by(gx, gy)
        .order_by(literal_column("1").desc(), gx, gy)
        .limit(limit + 1)
    )
    return _page(as_of, rows.all(), limit)


# ----------------------------------------------------------------------------- snapshot

# The state row is the gate: no row, or a row older than :max_age, returns no row at all
# (the caller goes live); a fresh snapshot returns one row per cluster, or one row of
# NULLs when the window is empty. One round trip either way.
_SNAPSHOT_SQL = """
SELECT s.as_of, c.n, c.sum_lon, c.sum_lat, c.min_code
FROM report_map_state s
LEFT JOIN LATERAL ({cells}) c ON true
WHERE s.id = 1 AND s.as_of >= now() - CAST(:max_age AS interval)
ORDER BY c.n DESC, c.cx, c.cy
"""

_ALL_CELLS = """
    SELECT cell.n, cell.sum_lon, cell.sum_lat, cell.min_code, cell.cx, cell.cy
    FROM report_map_cells cell
    WHERE cell.zoom = :zoom AND cell.cx BETWEEN :x0 AND :x1 AND cell.cy BETWEEN :y0 AND :y1
    ORDER BY cell.n DESC, cell.cx, cell.cy
    LIMIT :limit
"""

# A facet packs (category, status, kind) into one smallint: the three 1-based positions
# in the lists saved with the snapshot (s.categories, s.statuses, s.kinds), as
# category << 6 | status << 2 | kind. Sums read four fixed-width arrays; the codes array
# (text, slower to unnest) only for the cells left with a single report.
_FILTERED_CELLS = """
    SELECT m.n, m.sum_lon, m.sum_lat, cell.cx, cell.cy,
           CASE WHEN m.n = 1 THEN (
               SELECT f.code FROM unnest(cell.facet, cell.facet_min_code) AS f(facet, code)
               WHERE {facets} LIMIT 1
           ) END AS min_code
    FROM report_map_facets cell
    CROSS JOIN LATERAL (
        SELECT sum(f.n)::int AS n, sum(f.sum_lon) AS sum_lon, sum(f.sum_lat) AS sum_lat
        FROM unnest(cell.facet, cell.facet_n, cell.facet_sum_lon, cell.facet_sum_lat)
            AS f(facet, n, sum_lon, sum_lat)
        WHERE {facets}
    ) m
    WHERE cell.zoom = :zoom AND cell.cx BETWEEN :x0 AND :x1 AND cell.cy BETWEEN :y0 AND :y1
      AND m.n > 0
    ORDER BY m.n DESC, cell.cx, cell.cy
    LIMIT :limit
"""

_FACET_CONDITIONS = {
    "category": "f.facet >> 6 = array_position(s.categories, CAST(:category AS varchar))",
    "status": "(f.facet >> 2) & 15 = array_position(s.statuses, CAST(:status AS varchar))",
    "kind": "f.facet & 3 = array_position(s.kinds, CAST(:kind AS varchar))",
}
# the packing's limits: 3 bits are plenty for kinds, 4 for statuses; 511 categories
assert len(KINDS) < 4 and len(STATUSES) < 16


async def snapshot_clusters(
    session: AsyncSession,
    window: GridWindow,
    category: str | None,
    status: str | None,
    kind: str | None,
    limit: int,
) -> ClusterPage | None:
    """Clusters from the snapshot, or None when there is no fresh snapshot."""
    filters = {"category": category, "status": status, "kind": kind}
    wanted = {name: value for name, value in filters.items() if value}
    if wanted:
        facets = " AND ".join(_FACET_CONDITIONS[name] for name in wanted)
        cells = _FILTERED_CELLS.format(facets=facets)
    else:
        cells = _ALL_CELLS
    result = await session.execute(
        text(_SNAPSHOT_SQL.format(cells=cells)),
        {
            "zoom": window.zoom,
            "x0": window.x0,
            "x1": window.x1,
            "y0": window.y0,
            "y1": window.y1,
            "limit": limit + 1,
            "max_age": SNAPSHOT_MAX_AGE,
            **wanted,
        },
    )
    rows = result.all()
    if not rows:
        return None
    as_of = rows[0][0]
    return _page(as_of, [r[1:] for r in rows if r[1] is not None], limit)


# ----------------------------------------------------------------------------- refresh


class MapRefresh(msgspec.Struct, frozen=True):
    as_of: datetime
    cells: int
    reports: int
    build_ms: int


def _build_sql() -> str:
    """One statement: the zoom-15 cells per facet (category, status, kind) from ``reports``,
    each coarser zoom from the one below (``cx >> 1``), then one row per cell in
    ``report_map_cells`` (totals) and in ``report_map_facets`` (the facets as aligned
    arrays), then the state row. Aggregates of one GROUP BY see the rows in the same
    order, so the ``array_agg``s line up position by position."""
    levels = [
        f"""z{FINEST_ZOOM} AS (
    SELECT floor(p.x / CAST(:finest_side AS float8))::int AS cx,
           floor(p.y / CAST(:finest_side AS float8))::int AS cy, p.facet,
           count(*)::int AS n, sum(p.x) AS sx, sum(p.y) AS sy, min(p.code) AS code
    FROM points p
    GROUP BY 1, 2, 3
)"""
    ]
    for zoom in range(FINEST_ZOOM - 1, -1, -1):
        levels.append(
            f"""z{zoom} AS (
    SELECT cx >> 1 AS cx, cy >> 1 AS cy, facet,
           sum(n)::int AS n, sum(sx) AS sx, sum(sy) AS sy, min(code) AS code
    FROM z{zoom + 1}
    GROUP BY 1, 2, 3
)"""
        )
    union = "\n    UNION ALL ".join(
        f"SELECT {zoom} AS zoom, * FROM z{zoom}" for zoom in range(FINEST_ZOOM + 1)
    )
    return f"""
WITH dims AS (
    SELECT ARRAY(SELECT code::text FROM categories ORDER BY code) AS categories,
           CAST(:statuses AS text[]) AS statuses,
           CAST(:kinds AS text[]) AS kinds
),
points AS (
    SELECT ST_X(r.location) AS x, ST_Y(r.location) AS y,
           r.code::text COLLATE "C" AS code,
           -- PostgreSQL gives << and | the same precedence: parenthesize
           ((array_position(d.categories, r.category_code::text) << 6)
            | (array_position(d.statuses, r.status::text) << 2)
            | array_position(d.kinds, r.kind::text))::smallint AS facet
    FROM reports r CROSS JOIN dims d
    WHERE {public_report_sql("r")}
),
{",\n".join(levels)},
facets AS (
    {union}
),
cells AS (
    SELECT zoom, cx, cy, sum(n) AS n, sum(sx) AS sx, sum(sy) AS sy, min(code) AS code,
           array_agg(facet) AS facet, array_agg(n) AS facet_n, array_agg(sx) AS facet_sx,
           array_agg(sy) AS facet_sy, array_agg(code) AS facet_code
    FROM facets
    GROUP BY zoom, cx, cy
),
facets_inserted AS (
    INSERT INTO report_map_facets (zoom, cx, cy, facet, facet_n, facet_sum_lon,
                                   facet_sum_lat, facet_min_code)
    SELECT zoom, cx, cy, facet, facet_n, facet_sx, facet_sy, facet_code FROM cells
),
inserted AS (
    INSERT INTO report_map_cells (zoom, cx, cy, n, sum_lon, sum_lat, min_code)
    SELECT zoom, cx, cy, n, sx, sy, code FROM cells
    RETURNING zoom, n
),
totals AS (
    SELECT count(*)::int AS cells,
           coalesce(sum(n) FILTER (WHERE zoom = 0), 0)::int AS reports
    FROM inserted
)
INSERT INTO report_map_state AS s (id, as_of, categories, statuses, kinds, cells, reports,
                                   build_ms)
SELECT 1, now(), d.categories, d.statuses, d.kinds, t.cells, t.reports,
       (extract(epoch FROM clock_timestamp() - now()) * 1000)::int
FROM dims d CROSS JOIN totals t
ON CONFLICT (id) DO UPDATE SET
    as_of = excluded.as_of, categories = excluded.categories, statuses = excluded.statuses,
    kinds = excluded.kinds, cells = excluded.cells, reports = excluded.reports,
    build_ms = excluded.build_ms
RETURNING s.as_of, s.cells, s.reports, s.build_ms
"""


_BUILD = text(_build_sql())


async def refresh_map_cells(session: AsyncSession) -> MapRefresh | None:
    """Rebuild the snapshot in the caller's transaction: delete every cell, insert the new
    ones, update the state row. Readers see the old snapshot until the commit, then the
    new one, never an empty map. Returns None, doing nothing, when another refresh holds
    the lock (two at once would both do the same work; the second one is skipped).
    Each refresh leaves the previous snapshot's rows dead: run ``vacuum_map_cells``
    after the commit."""
    locked = await session.scalar(
        text(
            "SELECT pg_try_advisory_xact_lock(:key)"
            # a big aggregate: no JIT (compiling costs more than it saves here), and
            # room for the zoom-15 hash tables
            ", set_config('jit', 'off', true), set_config('work_mem', '64MB', true)"
        ),
        {"key": _REFRESH_LOCK_KEY},
    )
    if not locked:
        return None
    await session.execute(
        text("WITH facets AS (DELETE FROM report_map_facets) DELETE FROM report_map_cells")
    )
    row = (
        await session.execute(
            _BUILD,
            {
                "finest_side": cell_side(FINEST_ZOOM),
                "statuses": list(STATUSES),
                "kinds": list(KINDS),
            },
        )
    ).one()
    return MapRefresh(as_of=row[0], cells=row[1], reports=row[2], build_ms=row[3])


async def vacuum_map_cells(engine: AsyncEngine) -> None:
    """VACUUM the snapshot's tables (outside any transaction, after a refresh committed):
    each refresh deletes every row, and the space must not wait for autovacuum (which
    may be slow to come, or off). A few tens of ms for ~40k cells."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM report_map_cells, report_map_facets"))
