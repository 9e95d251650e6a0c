"""Issue 21's target: Open311 ``GET requests`` for a 90-day window over 1,000,000 reports,
1,000 rows, p95 < 100 ms, in JSON and XML.

    # once: a database of its own, migrated, Hanoi's reference data, 1 M reports
    export DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_o1_reports
    uv run python -m app.cli setup
    uv run python -m bench.seed_reports --count 1000000
    # once after seeding: what the seeder leaves out, for the reports of the window
    uv run python -m bench.open311_requests prepare
    # the reads, through the harness, against the floor (scenarios open311_* in
    # bench/scenarios.py)
    uv run python -m bench.run --start-app -r 3 -d 10 \\
        -s open311_requests_json,open311_requests_xml,open311_requests_json_20rps,\\
    open311_requests_xml_20rps,open311_updates_json
    # the statements' plans
    uv run python -m bench.open311_requests explain

``prepare`` gives the bench reports filed in the last 120 days what the seeder leaves
out and the answer shows: the unit responsible (the ward's People's Committee) and a
deadline for every routed one, a public timeline (filing, routing, acceptance, the
resolution with its answer, a staff reply on about a third) and one photo on four in
five; one set-based statement each, idempotent (the window's bench events and photos
are replaced). The photos are rows only (no files): the answer signs their keys.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.open311 import service
from app.settings import get_settings
from bench.seed_reports import BENCH_REPORTER_ID

WINDOW = "120 days"

PREPARE = [
    (
        "units and deadlines",
        f"""
        UPDATE reports r
           SET unit_id = u.id, routed_at = r.created_at + interval '1 hour',
               due_at = r.created_at + interval '7 days'
          FROM units u
         WHERE u.kind = 'ward_committee' AND u.area_code = r.area_code
           AND r.reporter_id = :reporter AND r.created_at > now() - interval '{WINDOW}'
           AND r.status NOT IN ('submitted', 'withdrawn')
        """,
    ),
    (
        "old photos",
        f"""
        DELETE FROM report_photos p USING reports r
         WHERE p.report_id = r.id AND r.reporter_id = :reporter
           AND r.created_at > now() - interval '{WINDOW}'
        """,
    ),
    (
        "old events",
        f"""
        DELETE FROM report_events e USING reports r
         WHERE e.report_id = r.id AND r.reporter_id = :reporter
           AND r.created_at > now() - interval '{WINDOW}'
        """,
    ),
    (
        "timelines",
        f"""
        INSERT INTO report_events (report_id, at, kind, from_status, to_status, actor_kind,
                                   public, body, unit_id)
        SELECT r.id, r.created_at + e.after, e.kind, e.from_status, e.to_status, e.actor,
               true, e.body, r.unit_id
          FROM reports r
         CROSS JOIN LATERAL (VALUES
              (interval '0', 'transition', NULL, 'submitted', 'resident', NULL, true),
              (interval '1 hour', 'transition', 'submitted', 'assigned', 'system', NULL,
               r.status <> 'submitted'),
              (interval '5 hours', 'reply', NULL, NULL, 'staff',
               'Phường đã nhận phản ánh và cử cán bộ kiểm tra hiện trường.',
               r.status <> 'submitted' AND random() < 0.33),
              (interval '1 day', 'transition', 'assigned', 'in_progress', 'staff', NULL,
               r.status IN ('in_progress', 'resolved', 'closed')),
              (interval '3 days', 'transition', 'in_progress', 'resolved', 'staff',
               'Đã xử lý xong: đơn vị đã khắc phục tại hiện trường.',
               r.status IN ('resolved', 'closed')),
              (interval '10 days', 'transition', 'resolved', 'closed', 'system', NULL,
               r.status = 'closed')
         ) AS e(after, kind, from_status, to_status, actor, body, wanted)
         WHERE r.reporter_id = :reporter AND r.created_at > now() - interval '{WINDOW}'
           AND r.status <> 'withdrawn' AND e.wanted
           AND r.created_at + e.after <= now()
         ORDER BY r.created_at + e.after
        """,
    ),
    (
        "photos",
        f"""
        INSERT INTO report_photos (id, owner_id, report_id, position, display_key, thumb_key,
                                   width, height, source_format, sha256)
        SELECT gen_random_uuid(), r.reporter_id, r.id, 0,
               'photos/bench/' || r.code || '.jpg', 'photos/bench/' || r.code || '-t.jpg',
               1600, 1200, 'jpeg', sha256(convert_to(r.code, 'UTF8'))
          FROM reports r
         WHERE r.reporter_id = :reporter AND r.created_at > now() - interval '{WINDOW}'
           AND random() < 0.8
        """,
    ),
]


def _bench_url() -> str:
    url = get_settings().database_url
    name = make_url(url).database or ""
    if not name.startswith("city_bench"):
        raise SystemExit(f"refusing to run on {name!r}: use a database named city_bench*")
    return url


async def prepare() -> None:
    engine = create_async_engine(_bench_url())
    try:
        async with engine.begin() as conn:
            for label, sql in PREPARE:
                t0 = time.perf_counter()
                result = await conn.execute(text(sql), {"reporter": BENCH_REPORTER_ID})
                print(f"{label}: {result.rowcount} rows in {time.perf_counter() - t0:.1f} s")
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("reports", "report_events", "report_photos"):
                await conn.execute(text(f"VACUUM (ANALYZE) {table}"))
        print("vacuumed and analyzed")
    finally:
        await engine.dispose()


async def explain() -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the default requests page and of the updates page,
    with the statements and parameters the app sends."""
    engine = create_async_engine(_bench_url())
    now = datetime.now(UTC)
    start, end = service.window(None, None, now)
    statements = [
        (
            "requests, 90 days, 1000 rows",
            service._requests_query(False, False, frozenset()),
            {"start": start, "end": end, "limit": 1000, "offset": 0},
        ),
        (
            "requests, 90 days, open, one service code",
            service._requests_query(False, True, frozenset({"open"})),
            {"start": start, "end": end, "limit": 1000, "offset": 0, "service_codes": ["noise"]},
        ),
        (
            "updates, 90 days, 1000 rows",
            service._UPDATES,
            {"start": start, "end": end, "limit": 1000, "offset": 0},
        ),
    ]
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            for label, query, values in statements:
                rows = await driver.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) " + query.sql, *query._args(values)
                )
                print(f"-- {label}")
                print("\n".join(row[0] for row in rows))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.open311_requests", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("command", choices=["prepare", "explain"])
    args = ap.parse_args(argv)
    asyncio.run(prepare() if args.command == "prepare" else explain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
