"""What the public predicate's abuse-flag test costs (issue 22 item 6): the street-level
map read and the map snapshot's rebuild, with ``status <> 'withdrawn'`` alone (before)
and with ``app.complaints.abuse.public_report_sql`` (after), on a seeded database.

    uv run python -m bench.seed_reports --count 1000000 --database-url URL
    uv run python -m bench.public_predicate --database-url URL [--flags 1000] [-n 30]

The street read is ``app.complaints.public``'s statement for a central bbox at zoom 17
(~2001 rows read), timed with EXPLAIN (ANALYZE) per run, custom plans as the API uses;
the plan's scan and its heap fetches are printed. The rebuild is
``clusters.refresh_map_cells``'s statement. Both with no flag and with ``--flags`` flags on
random reports, inserted in a transaction that is rolled back (the database is left as
it was).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.complaints import clusters, public
from app.complaints.abuse import public_report_sql
from app.complaints.models import KINDS, STATUSES

CENTRAL = {"min_lon": 105.846, "min_lat": 21.024, "max_lon": 105.856, "max_lat": 21.032}
BEFORE = "reports.status <> 'withdrawn'"


def _points_sql(predicate: str) -> str:
    return public._POINTS_SQL.format(public=predicate, filters="")


async def _street(conn: AsyncConnection, predicate: str, runs: int) -> tuple[float, str]:
    sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + _points_sql(predicate)
    params = {**CENTRAL, "limit": public.MAX_FEATURES}
    times, plan = [], None
    for _ in range(runs):
        raw = (await conn.execute(text(sql), params)).scalar_one()
        plan = raw if isinstance(raw, list) else json.loads(raw)
        times.append(plan[0]["Execution Time"])
    return statistics.median(times), _scans(plan[0]["Plan"]) if plan else ""


def _scans(node: dict) -> str:
    found = []
    if "Scan" in node["Node Type"] and node.get("Relation Name"):
        fetches = node.get("Heap Fetches")
        extra = f", heap fetches {fetches}" if fetches is not None else ""
        found.append(f"{node['Node Type']} on {node['Relation Name']}{extra}")
    for child in node.get("Plans", []):
        found.extend(filter(None, [_scans(child)]))
    return "; ".join(found)


async def _rebuild(conn: AsyncConnection, predicate_r: str, runs: int) -> float:
    sql = clusters._build_sql()
    if predicate_r != public_report_sql("r"):
        sql = sql.replace(public_report_sql("r"), predicate_r)
    params = {
        "finest_side": clusters.cell_side(clusters.FINEST_ZOOM),
        "statuses": list(STATUSES),
        "kinds": list(KINDS),
    }
    times = []
    for _ in range(runs):
        await conn.execute(text("SAVEPOINT rebuild"))
        await conn.execute(text("SET LOCAL jit = off"))
        await conn.execute(text("SET LOCAL work_mem = '64MB'"))
        await conn.execute(
            text("WITH f AS (DELETE FROM report_map_facets) DELETE FROM report_map_cells")
        )
        start = time.perf_counter()
        await conn.execute(text(sql), params)
        times.append((time.perf_counter() - start) * 1000)
        await conn.execute(text("ROLLBACK TO SAVEPOINT rebuild"))
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--flags", type=int, default=1000)
    parser.add_argument("-n", type=int, default=30, help="runs of the street read")
    parser.add_argument("--rebuilds", type=int, default=3)
    args = parser.parse_args()
    engine = create_async_engine(args.database_url)
    async with engine.connect() as conn:
        await conn.execute(text("SET plan_cache_mode = force_custom_plan"))
        for label, flags in (("no flag", 0), (f"{args.flags} flags", args.flags)):
            if flags:
                await conn.execute(
                    text(
                        "INSERT INTO report_abuse_flags"
                        " (report_id, report_code, reason_code, flagged_at)"
                        " SELECT id, code, 'spam', now() FROM reports ORDER BY random() LIMIT :n"
                    ),
                    {"n": flags},
                )
                await conn.execute(text("ANALYZE report_abuse_flags"))
            for name, predicate, predicate_r in (
                ("before", BEFORE, "r.status <> 'withdrawn'"),
                ("after", public_report_sql("reports"), public_report_sql("r")),
            ):
                street_ms, scans = await _street(conn, predicate, args.n)
                rebuild_ms = await _rebuild(conn, predicate_r, args.rebuilds)
                print(
                    f"{label:>12} | {name:>6} | street p50 {street_ms:6.2f} ms | "
                    f"rebuild p50 {rebuild_ms:7.0f} ms | {scans}"
                )
        await conn.rollback()  # the flags go: the database is left as it was
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
