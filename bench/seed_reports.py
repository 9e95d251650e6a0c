"""Seed many reports for the public-map benchmarks, in a few set-based statements.

    uv run python -m bench.seed_reports --count 1000000 [--reset] [--database-url URL]

Points are drawn inside Hanoi's areas (``ST_GeneratePoints`` per area), with a share
per area proportional to its surface times a density that is higher for urban wards
(phường) than for rural communes (xã) and falls off with the distance from Hoàn Kiếm;
so central wards are the densest, as in the real city. Category, kind and status
follow a realistic mix (most reports closed or resolved, some open; ~2 % withdrawn,
which the public map leaves out); ``created_at`` is spread over two years (open
reports over the last 60 days).

Every seeded row belongs to one bench resident (a fixed user id, no phone, no name)
and has a code ``BENCH`` + 7 digits: real codes are ``XXXX-XXXX`` from an alphabet
without ``0``/``1``, so the two can never collide. ``--reset`` deletes the bench
reporter's rows first; without it, new rows are appended after the last bench code.
No timeline events are written: the seeded rows exist for the map and the lists.
``VACUUM (ANALYZE) reports`` runs at the end (statistics, hint bits, visibility map).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.settings import get_settings

BENCH_REPORTER_ID = uuid.UUID("00000000-0000-4000-8000-0000000be4c0")
CODE_PREFIX = "BENCH"  # + 7 digits = 12 characters, the column's width
MAX_SEQ = 9_999_999
CENTRE = (105.8525, 21.0288)  # Hoàn Kiếm lake (lon, lat)

# relative frequency of each category; categories not listed get 1
CATEGORY_WEIGHTS = {
    "roads": 6,
    "waste": 6,
    "drainage-flooding": 4,
    "street-lighting": 3,
    "public-order": 3,
    "construction-order": 3,
    "trees-parks": 2,
    "traffic-signals": 2,
    "noise": 2,
    "water-supply": 2,
    "power-supply": 1,
    "other": 1,
}
# (status, percent): mostly finished, some open
STATUS_MIX = (
    ("closed", 55),
    ("resolved", 18),
    ("rejected", 4),
    ("duplicate", 3),
    ("withdrawn", 2),
    ("in_progress", 7),
    ("assigned", 4),
    ("submitted", 5),
    ("reopened", 2),
)
KIND_MIX = (("complaint", 85), ("petition", 10), ("initiative", 5))
OPEN_STATUSES = ("submitted", "assigned", "in_progress", "reopened")


def _expand(mix: tuple[tuple[str, int], ...]) -> list[str]:
    """A lookup array: each value repeated by its weight; a uniform pick is weighted."""
    return [value for value, weight in mix for _ in range(weight)]


# One statement: the number of points per area, the points, and every column.
# ST_GeneratePoints(geom, n, seed) is deterministic for a seed; random() is seeded by
# setseed() in the same transaction, so a run with the same --seed is reproducible.
SEED_SQL = text(
    """
WITH p AS (
    SELECT CAST(:count AS int) AS total,
           ST_SetSRID(ST_MakePoint(CAST(:centre_lon AS float8), CAST(:centre_lat AS float8)),
                      4326)::geography AS centre,
           CAST(:point_seed AS int) AS point_seed,
           CAST(:statuses AS text[]) AS statuses,
           CAST(:kinds AS text[]) AS kinds,
           CAST(:categories AS text[]) AS categories,
           CAST(:open_statuses AS text[]) AS open_statuses,
           CAST(:prefix AS text) AS prefix,
           CAST(:first_seq AS int) AS first_seq,
           CAST(:reporter_id AS uuid) AS reporter_id
),
area_weights AS (
    -- surface x density: wards 5x denser than communes, halving every ~5 km from the centre
    SELECT a.code, a.geom,
           ST_Area(a.geom::geography) / 1e6
             * CASE WHEN a.kind = 'ward' THEN 1.0 ELSE 0.2 END
             * exp(-ST_Distance(ST_PointOnSurface(a.geom)::geography, p.centre) / 7000.0) AS w
    FROM areas a, p
),
shares AS (
    SELECT code, geom, floor(p.total * w / sum(w) OVER ())::int AS base,
           row_number() OVER (ORDER BY w DESC) AS rank
    FROM area_weights, p
),
sized AS (
    -- the rounding remainder goes to the densest area, so the total is exactly :count
    SELECT code, geom,
           (base + CASE WHEN rank = 1 THEN p.total - sum(base) OVER () ELSE 0 END)::int AS n
    FROM shares, p
),
points AS (
    SELECT s.code AS area_code, d.geom AS location,
           random() AS r_status, random() AS r_kind, random() AS r_cat, random() AS r_age,
           random() AS r_took
    FROM sized s, p
    CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(s.geom, s.n, p.point_seed)) d
    WHERE s.n > 0
),
shaped AS (
    SELECT pt.area_code, pt.location, pt.r_took,
           p.statuses[1 + floor(pt.r_status * cardinality(p.statuses))::int] AS status,
           p.kinds[1 + floor(pt.r_kind * cardinality(p.kinds))::int] AS kind,
           p.categories[1 + floor(pt.r_cat * cardinality(p.categories))::int] AS category_code,
           pt.r_age
    FROM points pt, p
),
timed AS (
    SELECT s.*,
           now() - CASE WHEN s.status = ANY(p.open_statuses)
                        THEN s.r_age * interval '60 days'
                        ELSE s.r_age * interval '730 days' END AS created
    FROM shaped s, p
),
numbered AS (
    -- in filing order, as the table grows in production (the heap is ordered by time)
    SELECT t.*, row_number() OVER (ORDER BY t.created) AS n FROM timed t
)
INSERT INTO reports (id, code, kind, status, category_code, description, location,
                     area_code, reporter_id, hide_identity, supporters_count, reopen_count,
                     created_at, updated_at, resolved_at, closed_at)
SELECT gen_random_uuid(),
       p.prefix || lpad((p.first_seq + t.n - 1)::text, 7, '0'),
       t.kind, t.status, t.category_code,
       'Bench report ' || (p.first_seq + t.n - 1),
       t.location, t.area_code, p.reporter_id, false, 0,
       CASE WHEN t.status = 'reopened' THEN 1 ELSE 0 END,
       t.created,
       least(now(), t.created + t.r_took * interval '20 days'),
       CASE WHEN t.status IN ('resolved', 'closed')
            THEN least(now(), t.created + t.r_took * interval '15 days') END,
       CASE WHEN t.status = 'closed'
            THEN least(now(), t.created + t.r_took * interval '20 days') END
FROM numbered t, p
ORDER BY t.n
"""
)


async def ensure_bench_reporter(conn: AsyncConnection) -> None:
    await conn.execute(
        text(
            "INSERT INTO users (id, kind, identity_level, full_name) "
            "VALUES (:id, 'resident', 1, NULL) ON CONFLICT (id) DO NOTHING"
        ),
        {"id": BENCH_REPORTER_ID},
    )


async def reset(conn: AsyncConnection) -> int:
    """Delete the bench reporter's rows (and, by cascade, anything hanging off them).

    ``reports.duplicate_of_id`` references ``reports`` and has no index, so the foreign
    key check of each deleted row would scan the whole table (hours at 1M rows). A
    temporary index, dropped in the same transaction, makes it a lookup."""
    await conn.execute(
        text("CREATE INDEX bench_tmp_reports_duplicate_of_id ON reports (duplicate_of_id)")
    )
    result = await conn.execute(
        text("DELETE FROM reports WHERE reporter_id = :id"), {"id": BENCH_REPORTER_ID}
    )
    await conn.execute(text("DROP INDEX bench_tmp_reports_duplicate_of_id"))
    return result.rowcount


async def seed(conn: AsyncConnection, count: int, seed: int = 20261201) -> int:
    """Insert ``count`` reports (one INSERT ... SELECT); returns the number inserted.
    Runs in the caller's transaction."""
    if count <= 0:
        return 0
    await ensure_bench_reporter(conn)
    last = await conn.scalar(
        text(
            "SELECT coalesce(max(substr(code, :skip)::int), 0) FROM reports "
            "WHERE reporter_id = :id AND code LIKE :like"
        ),
        {"id": BENCH_REPORTER_ID, "skip": len(CODE_PREFIX) + 1, "like": CODE_PREFIX + "%"},
    )
    if last + count > MAX_SEQ:
        raise ValueError(f"bench codes would pass {MAX_SEQ}: use --reset")
    categories = list(
        (await conn.scalars(text("SELECT code FROM categories WHERE active ORDER BY code"))).all()
    )
    if not categories:
        raise RuntimeError("no categories: load the reference data first (python -m app.cli setup)")
    # setseed takes [-1, 1]
    await conn.execute(text("SELECT setseed(:s)"), {"s": (seed % 2000) / 1000.0 - 1.0})
    result = await conn.execute(
        SEED_SQL,
        {
            "count": count,
            "centre_lon": CENTRE[0],
            "centre_lat": CENTRE[1],
            "point_seed": seed,
            "statuses": _expand(STATUS_MIX),
            "kinds": _expand(KIND_MIX),
            "categories": [c for c in categories for _ in range(CATEGORY_WEIGHTS.get(c, 1))],
            "open_statuses": list(OPEN_STATUSES),
            "prefix": CODE_PREFIX,
            "first_seq": last + 1,
            "reporter_id": BENCH_REPORTER_ID,
        },
    )
    return result.rowcount


async def main_async(args: argparse.Namespace) -> None:
    url = args.database_url or get_settings().database_url
    engine = create_async_engine(url)
    try:
        t0 = time.perf_counter()
        async with engine.begin() as conn:
            if args.reset:
                deleted = await reset(conn)
                print(f"deleted {deleted} bench reports ({time.perf_counter() - t0:.1f} s)")
            t1 = time.perf_counter()
            inserted = await seed(conn, args.count, args.seed)
        print(f"inserted {inserted} reports in {time.perf_counter() - t1:.1f} s")
        t2 = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE) reports"))
        print(
            f"vacuumed and analyzed in {time.perf_counter() - t2:.1f} s; "
            f"total {time.perf_counter() - t0:.1f} s"
        )
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.seed_reports", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--count", type=int, default=1_000_000, help="reports to insert")
    ap.add_argument("--reset", action="store_true", help="delete earlier bench reports first")
    ap.add_argument("--seed", type=int, default=20261201, help="random seed (reproducible runs)")
    ap.add_argument("--database-url", help="default: DATABASE_URL / the app's settings")
    args = ap.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
