"""The health book's benchmark (issue 20): NDJSON import rate and memory, and the
summary lookup's latency with Hanoi's 2.5 million patients loaded.

    # import: seed the files (bench/health_seed.py), import them with the real runner
    python -m bench.health_bench import --patients 2500000 --per-patient 5
    # lookup: residents at level 2 matched to random patients, the summary under load
    python -m bench.health_bench lookup --users 2000 --duration 20 --concurrency 16

Database ``city_bench_health`` (created and migrated if missing; ``--database-url`` to
change it), Redis prefix ``helper-hh``, the API on port 18610 (granian, one worker, as
the other benchmarks serve it). Prints one JSON object of figures at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_health"
PORT = 18610


def _env(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("REDIS_PREFIX", "helper-hh")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def prepare(database_url: str) -> None:
    """Create the database if missing and migrate it (no reference data needed)."""
    from alembic import command
    from alembic.config import Config

    from app.cli import _ensure_database

    await _ensure_database(database_url)
    conn = await asyncpg.connect(_plain(database_url))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        await conn.close()
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = database_url
    await asyncio.to_thread(command.upgrade, cfg, "head")


# ---------------------------------------------------------------- import


def _size_of(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.ndjson"))


async def bench_import(args: argparse.Namespace) -> dict:
    from app import policy
    from app.core import db
    from app.core.clock import Clock
    from app.health import runner, service
    from app.settings import get_settings
    from bench import health_seed

    await prepare(args.database_url)
    settings = msgspec.structs.replace(
        get_settings(),
        health_import_slice_seconds=10**6,
        health_import_batch_lines=args.batch,
    )
    directory = Path(args.dir or f"/tmp/city-bench-health/{args.patients}x{args.per_patient}")
    if not await asyncio.to_thread((directory / "Patient.ndjson").exists):
        started = time.perf_counter()
        counts = await asyncio.to_thread(
            health_seed.seed, str(directory), args.patients, args.per_patient
        )
        print(f"seeded {sum(counts.values()):,} lines in {time.perf_counter() - started:.0f} s")
    size = await asyncio.to_thread(_size_of, directory)
    engine = db.make_engine(settings)
    sessionmaker = db.make_sessionmaker(engine)
    if not args.keep:
        async with engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(
                text("TRUNCATE health_patients, health_parties, health_import_jobs CASCADE")
            )
    figures: dict = {"patients": args.patients, "per_patient": args.per_patient}
    figures["file_bytes"] = size
    for label in ("first", "again") if args.again else ("first",):
        async with db.transaction(sessionmaker, None) as session:
            job_id = await service.create_file_job(
                session, policy.system_actor(Clock().now()), [str(directory)]
            )
        started = time.perf_counter()
        cpu = time.process_time()
        while (await runner.run_job(engine, settings, job_id)).outcome not in ("finished", "gone"):
            pass
        took = time.perf_counter() - started
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            job = await raw.driver_connection.fetchrow(
                "SELECT lines, imported, unchanged, errors FROM health_import_jobs WHERE id = $1",
                job_id,
            )
        figures[label] = {
            "seconds": round(took, 1),
            "lines": job["lines"],
            "imported": job["imported"],
            "unchanged": job["unchanged"],
            "errors": job["errors"],
            "lines_per_second": round(job["lines"] / took),
            "python_cpu_seconds": round(time.process_time() - cpu, 1),
        }
        print(label, figures[label], flush=True)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    await engine.dispose()
    return figures


# ---------------------------------------------------------------- lookup


async def _users(database_url: str, settings, count: int) -> list[str]:
    """``count`` residents at level 2, each matched to a random seeded patient; their
    access tokens."""
    from app.core.auth import Principal, issue_access_token
    from app.core.security import keyed_hash
    from bench.health_seed import bench_cccd

    conn = await asyncpg.connect(_plain(database_url))
    try:
        patients = await conn.fetchval("SELECT count(*) FROM health_patients")
        assert patients, "import first: python -m bench.health_bench import"
        await conn.execute("DELETE FROM users WHERE phone LIKE '+8490999%'")
        picks = random.Random(5).sample(range(1, patients + 1), count)
        rows = [
            (
                uuid.uuid4(),
                f"+8490999{n:04d}",
                keyed_hash(settings.citizen_id_hash_key, bench_cccd(p)),
                bench_cccd(p)[-4:],
            )
            for n, p in enumerate(picks)
        ]
        await conn.executemany(
            "INSERT INTO users (id, kind, phone, identity_level, citizen_id_hash,"
            " citizen_id_last4) VALUES ($1, 'resident', $2, 2, $3, $4)",
            rows,
        )
    finally:
        await conn.close()
    now = time.time()
    return [
        issue_access_token(settings, Principal(r[0], "resident", 2, uuid.uuid4()), now)
        for r in rows
    ]


def _serve(database_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--workers", "1", "--log-level", "warning", "--host", "127.0.0.1",
            "--port", str(PORT), "app.main:create_app",
        ],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def _explain(database_url: str, settings) -> float:
    """The summary statement's own time in PostgreSQL for one patient (EXPLAIN ANALYZE,
    in a transaction rolled back: its access-log row is not kept)."""
    from app.health.service import SUMMARY_SQL

    conn = await asyncpg.connect(_plain(database_url))
    try:
        pid = await conn.fetchval("SELECT id FROM health_patients ORDER BY random() LIMIT 1")
        user = await conn.fetchval("SELECT id FROM users WHERE phone LIKE '+8490999%' LIMIT 1")
        tr = conn.transaction()
        await tr.start()
        plan = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + SUMMARY_SQL,
            pid, user, datetime.now(UTC), "summary", None, None, None, None,
        )  # fmt: skip
        await tr.rollback()
    finally:
        await conn.close()
    return round(json.loads(plan)[0]["Execution Time"], 2)


async def bench_lookup(args: argparse.Namespace) -> dict:
    from app.settings import get_settings
    from bench.loadgen import LoadSpec, run_load

    settings = get_settings()
    tokens = await _users(args.database_url, settings, args.users)
    server = _serve(args.database_url)
    try:
        import httpx

        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"http://127.0.0.1:{PORT}/health/live")).status_code:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            probe = await client.get(
                f"http://127.0.0.1:{PORT}/api/v1/me/health",
                headers={"Authorization": f"Bearer {tokens[0]}"},
            )
            assert probe.status_code == 200, probe.text
        spec = LoadSpec(
            url=f"http://127.0.0.1:{PORT}",
            path="/api/v1/me/health",
            headers={"Authorization": "Bearer {{token}}", "User-Agent": "bench"},
            values={"token": tokens},
            concurrency=args.concurrency,
            duration=args.duration,
            rate=args.rate,
            expect=[200],
        )
        result = await asyncio.to_thread(run_load, spec, engine="wrk", warmup=2.0)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
    patients = 0
    conn = await asyncpg.connect(_plain(args.database_url))
    try:
        patients = await conn.fetchval("SELECT count(*) FROM health_patients")
        resources = await conn.fetchval("SELECT count(*) FROM health_resources")
        logged = await conn.fetchval("SELECT count(*) FROM health_access_log")
    finally:
        await conn.close()
    return {
        "patients": patients,
        "resources": resources,
        "access_log_rows": logged,
        "users": args.users,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "rps": result["rps"],
        "latency_ms": result["latency_ms"],
        "errors": result["errors"],
        "statement_ms": await _explain(args.database_url, settings),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.health_bench")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="seed NDJSON and import it")
    imp.add_argument("--patients", type=int, default=2_500_000)
    imp.add_argument("--per-patient", type=int, default=5)
    imp.add_argument("--batch", type=int, default=20000)  # HEALTH_IMPORT_BATCH_LINES
    imp.add_argument("--dir", help="where the seeded files are (made if missing)")
    imp.add_argument("--keep", action="store_true", help="do not empty the tables first")
    imp.add_argument("--again", action="store_true", help="import the same files twice")
    look = sub.add_parser("lookup", help="the summary lookup under load")
    look.add_argument("--users", type=int, default=2000)
    look.add_argument("--duration", type=float, default=20)
    look.add_argument("--concurrency", type=int, default=16)
    look.add_argument("--rate", type=float, help="open loop: requests started per second")
    args = parser.parse_args(argv)
    _env(args.database_url)
    runner = bench_import if args.command == "import" else bench_lookup
    figures = asyncio.run(runner(args))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
