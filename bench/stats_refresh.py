"""Time the service-index rebuild (``refresh_unit_stats``) over many reports.

    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_stats \\
        uv run python -m app.cli setup
    DATABASE_URL=... uv run python -m bench.stats_refresh --count 1000000 [--runs 3] [--explain]

Reuses the bench reports of ``bench.seed_reports`` and seeds the missing ones. The
seeder leaves the routing and rating columns empty, so the bench rows that have none
yet get them in one UPDATE (a responsible unit: the ward's People's Committee, or one
of the city's departments and utilities; ~10 % filed by staff; the on-time verdict,
working days and overdue marks; ``closed_reason``), and their ratings in the same
statement. Submitted reports stay unrouted, as they would be. Then ``runs`` refreshes,
each in its own transaction, and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker, create_async_engine

from app.settings import get_settings
from app.stats import service
from bench.seed_reports import BENCH_REPORTER_ID, seed

BENCH_STAFF_ID = uuid.UUID("00000000-0000-4000-8000-0000000be4c1")

# Bench rows not filled yet: submitted reports are never routed, every other one is.
FILL_SQL = text(
    """
WITH ward_units AS (
    SELECT area_code, id FROM units WHERE kind = 'ward_committee'
),
city_units AS (
    SELECT array_agg(id ORDER BY code) AS ids FROM units WHERE kind IN ('department', 'utility')
),
filled AS (
    UPDATE reports r
       SET unit_id = CASE WHEN random() < 0.8 THEN w.id
                          ELSE c.ids[1 + floor(random() * cardinality(c.ids))::int] END,
           routed_at = r.created_at + interval '1 hour',
           filed_by_staff_id = CASE WHEN random() < 0.1 THEN CAST(:staff_id AS uuid) END,
           resolved_on_time = CASE WHEN r.resolved_at IS NOT NULL THEN random() < 0.8 END,
           handling_working_days = CASE WHEN r.resolved_at IS NOT NULL
                                        THEN round(CAST(random() * 15 AS numeric), 2) END,
           overdue_at = CASE WHEN r.status IN ('assigned', 'in_progress', 'reopened')
                              AND random() < 0.3
                             THEN r.created_at + interval '10 days' END,
           closed_reason = CASE WHEN r.status = 'closed'
                                THEN CASE WHEN random() < 0.35 THEN 'not_rated' ELSE 'rated' END
                           END
      FROM ward_units w, city_units c
     WHERE w.area_code = r.area_code AND r.reporter_id = :reporter_id
       AND r.routed_at IS NULL AND r.status <> 'submitted'
    RETURNING r.id, r.status, r.closed_reason, r.reopen_count
)
INSERT INTO report_ratings (report_id, resolution_round, rating, created_at)
SELECT f.id,
       -- a reopened report was rated "not satisfied" on its first resolution
       CASE WHEN f.status = 'reopened' THEN 0 ELSE f.reopen_count END,
       CASE WHEN f.status = 'reopened' THEN 'not_satisfied'
            ELSE (ARRAY['satisfied', 'satisfied', 'accept', 'not_satisfied'])
                 [1 + floor(random() * 4)::int] END,
       now()
FROM filled f
WHERE f.closed_reason = 'rated' OR f.status = 'reopened'
   OR (f.status = 'resolved' AND random() < 0.3)
"""
)


async def ensure_reports(conn: AsyncConnection, count: int) -> int:
    """Seed bench reports up to ``count``; returns how many were added."""
    have = await conn.scalar(
        text("SELECT count(*) FROM reports WHERE reporter_id = :id"), {"id": BENCH_REPORTER_ID}
    )
    return await seed(conn, count - have) if have < count else 0


async def fill_columns(conn: AsyncConnection) -> tuple[int, int]:
    """Routing and rating columns for bench rows that have none; returns (rows, ratings)."""
    await conn.execute(
        text(
            "INSERT INTO users (id, kind, identity_level, full_name) "
            "VALUES (:id, 'staff', 0, NULL) ON CONFLICT (id) DO NOTHING"
        ),
        {"id": BENCH_STAFF_ID},
    )
    pending = await conn.scalar(
        text(
            "SELECT count(*) FROM reports WHERE reporter_id = :id "
            "AND routed_at IS NULL AND status <> 'submitted'"
        ),
        {"id": BENCH_REPORTER_ID},
    )
    if not pending:
        return 0, 0
    await conn.execute(text("SELECT setseed(0.42)"))
    result = await conn.execute(
        FILL_SQL, {"reporter_id": BENCH_REPORTER_ID, "staff_id": BENCH_STAFF_ID}
    )
    return pending, result.rowcount


async def explain(engine, now: datetime) -> str:
    """EXPLAIN ANALYZE of the rebuild, in a transaction that is rolled back."""
    async with engine.connect() as conn:
        async with conn.begin() as tx:
            await conn.execute(text(f"SELECT {service.SESSION_SETTINGS}"))
            await conn.execute(text("DELETE FROM unit_stats"))
            rows = await conn.execute(
                text(f"EXPLAIN (ANALYZE, BUFFERS) {service.BUILD_SQL}"), service.build_params(now)
            )
            plan = "\n".join(row[0] for row in rows)
            await tx.rollback()
    return plan


async def main_async(args: argparse.Namespace) -> None:
    url = args.database_url or get_settings().database_url
    engine = create_async_engine(url)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with engine.begin() as conn:
            t0 = time.perf_counter()
            added = await ensure_reports(conn, args.count)
            t1 = time.perf_counter()
            filled, ratings = await fill_columns(conn)
            t2 = time.perf_counter()
        if added or filled:
            print(f"seeded {added} reports in {t1 - t0:.1f} s")
            print(f"filled {filled} reports and {ratings} ratings in {t2 - t1:.1f} s")
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM (ANALYZE) reports, report_ratings"))
        async with engine.connect() as conn:
            total = await conn.scalar(text("SELECT count(*) FROM reports"))
            routed = await conn.scalar(
                text("SELECT count(*) FROM reports WHERE unit_id IS NOT NULL")
            )
            rated = await conn.scalar(text("SELECT count(*) FROM report_ratings"))
        print(f"reports: {total} ({routed} routed), ratings: {rated}")

        now = datetime.now(UTC)
        timings: list[float] = []
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            async with sessionmaker() as session, session.begin():
                result = await service.refresh_unit_stats(session, now)
            wall_ms = (time.perf_counter() - started) * 1000
            assert result is not None, "another refresh held the lock"
            timings.append(result.build_ms)
            print(
                f"run {run}: {result.cells} cells, build {result.build_ms} ms, "
                f"with commit {wall_ms:.0f} ms"
            )
        print(f"median of {len(timings)} runs: {statistics.median(timings):.0f} ms")
        if args.explain:
            print(await explain(engine, now))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.stats_refresh", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--count", type=int, default=1_000_000, help="bench reports wanted")
    ap.add_argument("--runs", type=int, default=3, help="timed refreshes")
    ap.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE at the end")
    ap.add_argument("--database-url", help="default: DATABASE_URL / the app's settings")
    args = ap.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
