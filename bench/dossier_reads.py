"""Issue 19's targets at 10 million dossiers: the public lookup, a resident's list, the
agency index rebuild and the overdue sweep.

    # once: 10 M dossiers in their own database (bench/seed_dossiers.py)
    uv run python -m bench.seed_dossiers --count 10000000

    # the reads, through the harness (scenarios dossier_* in bench/scenarios.py, whose
    # setups are below); the lookup's per-address limit raised, every request is 127.0.0.1
    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_dossiers \\
    DOSSIER_LOOKUP_RATE_PER_IP=1000000000/minute \\
        uv run python -m bench.run --start-app -r 3 -d 10 \\
        -s dossier_lookup,dossier_lookup_1000rps,dossier_list,dossier_list_300rps

    # once after seeding: the working days the sweep would have frozen
    uv run python -m bench.dossier_reads prepare
    # the index rebuild, its refresh, the nightly recount and the sweep, in process
    uv run python -m bench.dossier_reads rebuild --runs 3 [--touch 1000] [--recounts 1]

The setups pick codes at random over the whole seeded range (so most lookups miss the
cache, as enumeration or a city's worth of residents would), and make level-2 residents
whose verified citizen ID is one of the seeded applicants' (``citizen_id(i)``; four in
five from the frequent applicants, ≈ 14 dossiers each, the rest with one or two), with
access tokens minted by the app's code (same ``SECRET_KEY``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bench.seed_dossiers import (
    CODE_PREFIX,
    DEFAULT_URL,
    FREQUENT_APPLICANTS,
    OTHER_APPLICANTS,
    citizen_id,
    dossier_code,
)

LOOKUP_CODES = 50_000
RESIDENTS = 2_000


def _url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_URL


async def lookup_codes(base_url: str) -> dict[str, list[str]]:
    """Codes of seeded dossiers, uniformly over the range."""
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as conn:
            last = await conn.scalar(
                text("SELECT max(code) FROM dossiers WHERE code LIKE :p"),
                {"p": CODE_PREFIX + "%"},
            )
    finally:
        await engine.dispose()
    if not last:
        raise SystemExit("no seeded dossiers: run python -m bench.seed_dossiers first")
    count = int(last[len(CODE_PREFIX) :])
    rng = random.Random(7)
    return {"code": [dossier_code(rng.randint(1, count)) for _ in range(LOOKUP_CODES)]}


async def dossier_residents(base_url: str) -> dict[str, list[str]]:
    """Level-2 residents bound to seeded applicants' citizen IDs, with access tokens."""
    from app.core.auth import Principal, issue_access_token
    from app.core.security import keyed_hash
    from app.settings import get_settings

    settings = get_settings()
    rng = random.Random(11)
    people = set()
    while len(people) < RESIDENTS:
        if rng.random() < 0.8:
            people.add(rng.randrange(FREQUENT_APPLICANTS))
        else:
            people.add(FREQUENT_APPLICANTS + rng.randrange(OTHER_APPLICANTS))
    rows = []
    for i in sorted(people):
        cid = citizen_id(i)
        rows.append((uuid.uuid4(), keyed_hash(settings.citizen_id_hash_key, cid), cid[-4:]))
    engine = create_async_engine(_url())
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    """
                    INSERT INTO users (id, kind, identity_level, citizen_id_hash,
                                       citizen_id_last4)
                    SELECT id, 'resident', 2, h, l
                      FROM unnest(CAST(:ids AS uuid[]), CAST(:hashes AS bytea[]),
                                  CAST(:last4 AS text[])) AS t(id, h, l)
                    ON CONFLICT (citizen_id_hash) WHERE citizen_id_hash IS NOT NULL
                    DO NOTHING
                    """
                ),
                {
                    "ids": [r[0] for r in rows],
                    "hashes": [r[1] for r in rows],
                    "last4": [r[2] for r in rows],
                },
            )
            found = await conn.execute(
                text("SELECT id FROM users WHERE citizen_id_hash = ANY(CAST(:h AS bytea[]))"),
                {"h": [r[1] for r in rows]},
            )
            ids = [row[0] for row in found]
            await conn.execute(text("ANALYZE users"))
    finally:
        await engine.dispose()
    tokens = [
        issue_access_token(
            settings, Principal(user_id=i, kind="resident", identity_level=2, sid=uuid.uuid4())
        )
        for i in ids
    ]
    return {"token": tokens}


# ----------------------------------------------------------------------------- prepare

# a database seeded before migration 0021 took its final form
_CATCH_UP = (
    "ALTER TABLE dossiers ADD COLUMN IF NOT EXISTS handling_working_days numeric(7,2)",
    "CREATE INDEX IF NOT EXISTS ix_dossiers_unmeasured ON dossiers (id)"
    " WHERE status IN ('completed', 'returned', 'refused') AND handling_working_days IS NULL",
)


async def prepare(args: argparse.Namespace) -> None:
    """The working days of every seeded finished dossier, as the sweep would have frozen
    them one minute after each finish: the sweep's own expression, one agency per
    statement, ``updated_at`` left alone (nothing changed since); then VACUUM (ANALYZE)."""
    from app.core.calendar import TIMEZONE, working_calendar
    from app.dossiers import index

    engine = create_async_engine(_url())
    params = {
        **index.calendar_params(working_calendar(), datetime.now(UTC)),
        "tz": TIMEZONE.key,
    }
    measure = text(
        f"""
        UPDATE dossiers SET handling_working_days = {index.working_days_sql("s", "e")}
          FROM (SELECT id AS measured_id,
                       received_at AT TIME ZONE CAST(:tz AS text) AS s,
                       least(completed_at, closed_at) AT TIME ZONE CAST(:tz AS text) AS e
                  FROM dossiers
                 WHERE agency_id = :agency AND handling_working_days IS NULL
                   AND status IN ('completed', 'returned', 'refused')
                   AND received_at > now() - CAST(:days AS int) * interval '1 day') m
         WHERE id = m.measured_id
        """
    )
    try:
        async with engine.begin() as conn:
            for statement in _CATCH_UP:
                await conn.execute(text(statement))
            agencies = list(await conn.scalars(text("SELECT id FROM agencies ORDER BY code")))
        started = time.perf_counter()
        total = 0
        for agency in agencies:
            async with engine.begin() as conn:
                total += (
                    await conn.execute(measure, {**params, "agency": agency, "days": args.days})
                ).rowcount
        print(f"measured {total:,} finished dossiers in {time.perf_counter() - started:.0f} s")
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE) dossiers"))
    finally:
        await engine.dispose()


# ----------------------------------------------------------------------------- rebuild


async def _timed(sessionmaker, calendar, *, full: bool, label: str) -> float:
    from app.dossiers import index

    now = datetime.now(UTC)
    started = time.perf_counter()
    async with sessionmaker() as session, session.begin():
        result = await index.refresh_agency_stats(session, calendar, now, full=full)
    wall = (time.perf_counter() - started) * 1000
    assert result is not None, "another refresh held the lock"
    print(
        f"{label}: {result.cells} cells, {result.months} month medians, drift {result.drift},"
        f" build {result.build_ms} ms, with commit {wall:.0f} ms",
        flush=True,
    )
    return wall


# what a few minutes of ingest do: open dossiers received in the last 60 days finish
# (on time or late), finished ones are rated; one UPDATE a batch, as the ingest writes
_CHANGE = text(
    """
    WITH picked AS (
        (SELECT id, 'finish' AS what FROM dossiers TABLESAMPLE SYSTEM (0.5)
          WHERE status IN ('received', 'processing', 'supplement_requested')
            AND received_at > now() - interval '60 days' LIMIT :finish)
        UNION ALL
        (SELECT id, 'rate' FROM dossiers TABLESAMPLE SYSTEM (0.05)
          WHERE status IN ('completed', 'returned') AND rating IS NULL LIMIT :rate))
    UPDATE dossiers d
       SET status = CASE WHEN p.what = 'finish' THEN 'completed' ELSE d.status END,
           completed_at = CASE WHEN p.what = 'finish' THEN now() ELSE d.completed_at END,
           finished_on_time = CASE WHEN p.what = 'finish' THEN d.due_at IS NULL OR d.due_at >= now()
                                   ELSE d.finished_on_time END,
           rating = CASE WHEN p.what = 'rate' THEN 'satisfied' ELSE d.rating END,
           rated_at = CASE WHEN p.what = 'rate' THEN now() ELSE d.rated_at END,
           updated_at = now()
      FROM picked p WHERE d.id = p.id
    """
)


async def rebuild(args: argparse.Namespace) -> None:
    """The agency index at scale: the rebuild of every cell from the counters (the first
    refresh: every median read again), the refresh after ``--touch`` dossiers changed
    (the deltas folded, the medians of what changed), the nightly recount of the days from
    the dossiers, and the overdue sweep. The changes are real writes to the bench
    database (dossiers finish and get rated, as in production), kept."""
    from app.core.calendar import working_calendar
    from app.dossiers import index

    engine = create_async_engine(_url())
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    calendar = working_calendar()
    try:
        async with engine.connect() as conn:
            total = await conn.scalar(text("SELECT count(*) FROM dossiers"))
            agencies = await conn.scalar(text("SELECT count(*) FROM agencies"))
            days = await conn.scalar(text("SELECT count(*) FROM agency_day_counts"))
        print(f"dossiers: {total:,}, agencies: {agencies}, (agency, day) counts: {days:,}")
        rebuilds, refreshes, recounts, sweeps = [], [], [], []
        for run in range(1, args.runs + 1):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM agency_stats"))
            rebuilds.append(
                await _timed(sessionmaker, calendar, full=False, label=f"rebuild {run}")
            )
        for run in range(1, args.runs + 1):
            async with engine.begin() as conn:
                changed = (
                    await conn.execute(
                        _CHANGE, {"finish": args.touch * 9 // 10, "rate": args.touch // 10}
                    )
                ).rowcount
            started = time.perf_counter()
            async with sessionmaker() as session, session.begin():
                swept = await index.sweep_overdue(session, datetime.now(UTC), calendar)
            sweeps.append((time.perf_counter() - started) * 1000)
            print(f"changed {changed}; sweep measured {swept.measured}", flush=True)
            refreshes.append(
                await _timed(sessionmaker, calendar, full=False, label=f"refresh {run}")
            )
        for run in range(1, args.recounts + 1):
            recounts.append(await _timed(sessionmaker, calendar, full=True, label=f"recount {run}"))
        for label, values in (
            ("rebuild from the counters", rebuilds),
            (f"refresh after {args.touch} changes", refreshes),
            ("sweep (with measuring)", sweeps),
            ("recount from the dossiers", recounts),
        ):
            if values:
                print(f"{label}: median of {len(values)}: {statistics.median(values):.0f} ms")
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dossier_reads", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rebuild", help="time the agency index rebuild and the overdue sweep")
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--recounts", type=int, default=1, help="nightly recounts to time")
    r.add_argument("--touch", type=int, default=1000, help="dossiers changed between refreshes")
    p = sub.add_parser("prepare", help="freeze the seeded dossiers' working days (once)")
    p.add_argument("--days", type=int, default=100_000, help="only those received since")
    args = ap.parse_args(argv)
    if args.command == "rebuild":
        asyncio.run(rebuild(args))
    elif args.command == "prepare":
        asyncio.run(prepare(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
