"""Routing benchmarks: worker throughput, and submission-to-assignment latency under load.

    export UV_PYTHON_DOWNLOADS=never
    export DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_routing

    # 1. throughput of ONE worker process (burst): N submitted reports spread over all
    #    126 areas and the categories, one route_report job each (as filing enqueues them),
    #    then `python -m workers` drains the queue
    uv run python -m bench.routing throughput --count 20000 --runs 3

    # 1b. the same at a sustained arrival rate: reports inserted and their jobs enqueued
    #     every 100 ms while the worker runs
    uv run python -m bench.routing sustained --feed-rate 500 --duration 30 --runs 3

    # 2. latency: the API (granian, 1 worker, as bench.run --start-app) and one worker;
    #    petitions filed at a fixed 100/s for 30 s by 200 signed-in residents; per report
    #    routed_at - created_at from the database
    uv run python -m bench.routing latency --rate 100 --duration 30 --runs 3

    # all of them, then drop the bench database
    uv run python -m bench.routing all --drop

    # try a worker configuration without editing workers/main.py
    uv run python -m bench.routing sustained --worker-set poll_delay=0.05

The database must be a bench one (its name starts with ``city_bench``): the script runs
``python -m app.cli setup`` on it (idempotent: creates, migrates, loads Hanoi's areas,
categories, units and default routing rules), adds bench staff (``--staff-per-unit``:
a manager and officers per unit, plus two dispatchers, so every routed report writes
its inbox rows to a realistic audience: the reporter and the unit's staff) and 200
bench residents, runs ``ANALYZE``, and deletes its own rows before each run.

Jobs go to Redis under ``--redis-prefix`` (default ``bench-routing``): queue
``<prefix>:queue``, job ids ``<prefix>:queue:route:<id>:r0`` exactly as
``app.core.jobs.qualified_job_id`` / ``lifecycle.route_job_id`` name them; the worker
and the API get ``DATABASE_URL``, ``REDIS_URL`` and ``REDIS_PREFIX`` in their
environment. The worker is the real one (``python -m workers``: WorkerSettings,
max_jobs 20, its crons). arq keeps a job's result for 60 s, so results are collected
while the run goes (job start/finish times and how many reports each job routed:
0 = a no-op, the report had been routed by another job's batch).

Throughput figures: ``routed_at`` span (first to last ``routed_at``; ``routed_at`` is
the instant the routing job started, so the span leaves out the last batch's own
time), "to last commit" (first ``routed_at`` to the finish of the last job that routed
something) and wall clock (worker ready to queue empty, no-op jobs included).

Latency figures: ``routed_at - created_at`` per report (``created_at`` is taken by the
API before its INSERT, ``routed_at`` by the worker before its SELECT), and the same to
the *commit* of the routing transaction (the finish time of the arq job whose start
matches ``routed_at``), which is when the assignment becomes visible. The API's own
response times of the filing requests come from the open-loop generator
(``bench.loadgen``, latency counted from when each request was due). Residents are
signed in as bench.scenarios does it (tokens minted with the app's own code), so the
OTP rate limits do not apply.

Medians over ``--runs`` runs; every run and the medians go to
``bench/results/routing-<timestamp>.json``, worker and API logs next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import pickle
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_routing"
NS = uuid.UUID("6f1d4c1e-7c55-4a57-9f35-be4c0be4c0aa")  # uuid5 namespace of bench rows
CODE_PREFIX = "RBNCH"  # + 7 digits; real codes are XXXX-XXXX, seed_reports' are BENCH...
N_RESIDENTS = 200
LATENCY_TAG = "bench-latency"


# ----------------------------------------------------------------------------- helpers


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank, as bench.loadgen."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def med(xs: Iterable[float]) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else float("nan")


def fmt(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def resident_ids() -> list[uuid.UUID]:
    return [uuid.uuid5(NS, f"resident-{i}") for i in range(N_RESIDENTS)]


def check_bench_database(url: str) -> str:
    name = make_url(url).database or ""
    if not name.startswith("city_bench"):
        raise SystemExit(
            f"refusing to run on database {name!r}: this script deletes rows; "
            "use a bench database (name starting with city_bench)"
        )
    return name


def setup_database(url: str) -> None:
    """``python -m app.cli setup`` against the bench database (idempotent)."""
    env = dict(os.environ, DATABASE_URL=url)
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"app.cli setup failed:\n{proc.stderr[-3000:]}")


async def drop_database(url: str) -> None:
    import asyncpg

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


async def ensure_bench_people(conn: AsyncConnection, staff_per_unit: int) -> dict[str, int]:
    """Bench residents (fixed ids) and bench staff: per unit one manager and
    ``staff_per_unit - 1`` officers, plus two dispatchers. Idempotent."""
    residents = resident_ids()
    await conn.execute(
        text(
            "INSERT INTO users (id, kind, identity_level) "
            "SELECT id, 'resident', 1 FROM unnest(CAST(:ids AS uuid[])) AS id "
            "ON CONFLICT (id) DO NOTHING"
        ),
        {"ids": residents},
    )
    units = (await conn.execute(text("SELECT id, code, kind FROM units ORDER BY code"))).all()
    staff: list[tuple[uuid.UUID, str, uuid.UUID | None]] = []
    for unit_id, code, kind in units:
        if kind == "dispatcher":
            staff += [(uuid.uuid5(NS, f"staff-{code}-{i}"), "dispatcher", None) for i in range(2)]
        else:
            staff += [
                (uuid.uuid5(NS, f"staff-{code}-{i}"), "manager" if i == 0 else "officer", unit_id)
                for i in range(staff_per_unit)
            ]
    await conn.execute(
        text(
            "INSERT INTO users (id, kind, identity_level) "
            "SELECT id, 'staff', 0 FROM unnest(CAST(:ids AS uuid[])) AS id "
            "ON CONFLICT (id) DO NOTHING"
        ),
        {"ids": [s[0] for s in staff]},
    )
    await conn.execute(
        text(
            "INSERT INTO staff_roles (id, user_id, role, unit_id) "
            "SELECT gen_random_uuid(), u, r, un FROM unnest(CAST(:users AS uuid[]), "
            "CAST(:roles AS text[]), CAST(:units AS uuid[])) AS v(u, r, un) "
            "ON CONFLICT DO NOTHING"
        ),
        {
            "users": [s[0] for s in staff],
            "roles": [s[1] for s in staff],
            "units": [s[2] for s in staff],
        },
    )
    return {"residents": len(residents), "staff": len(staff)}


async def delete_bench_rows(engine: AsyncEngine) -> int:
    """Reports of the bench residents (cascade: timeline, photos...) and the bench
    people's inbox, then VACUUM ANALYZE so every run starts from the same state."""
    async with engine.begin() as conn:
        deleted = (
            await conn.execute(
                text("DELETE FROM reports WHERE reporter_id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": resident_ids()},
            )
        ).rowcount
        await conn.execute(text("DELETE FROM notifications"))  # a bench database: all ours
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM (ANALYZE) reports, report_events, notifications"))
    return deleted


# Submitted reports spread evenly over every area (points drawn inside each one) and
# round-robin over the active categories, in random filing order; created_at one
# millisecond apart, ending now.
INSERT_SUBMITTED = text(
    """
WITH a AS (
    SELECT code, geom, row_number() OVER (ORDER BY code) - 1 AS i, count(*) OVER () AS n
    FROM areas
),
per AS (
    SELECT code, geom,
           (CAST(:count AS int) / n
            + CASE WHEN i < CAST(:count AS int) % n THEN 1 ELSE 0 END)::int AS k
    FROM a
),
pts AS (
    SELECT p.code AS area_code, d.geom AS location
    FROM per p CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(p.geom, p.k, CAST(:seed AS int))) d
    WHERE p.k > 0
),
numbered AS (
    SELECT area_code, location, row_number() OVER (ORDER BY random()) AS seq FROM pts
),
cats AS (SELECT array_agg(code ORDER BY code) AS codes FROM categories WHERE active)
INSERT INTO reports (id, code, kind, status, category_code, description, location, area_code,
                     reporter_id, hide_identity, created_at, updated_at)
SELECT gen_random_uuid(), :prefix || lpad(t.seq::text, 7, '0'), 'petition', 'submitted',
       c.codes[1 + (t.seq % cardinality(c.codes))::int],
       'Bench routing report ' || t.seq, t.location, t.area_code,
       (CAST(:reporters AS uuid[]))[1 + (t.seq % :n_reporters)::int], false,
       now() - (CAST(:count AS int) - t.seq) * interval '1 millisecond',
       now() - (CAST(:count AS int) - t.seq) * interval '1 millisecond'
FROM numbered t, cats c
ORDER BY t.seq
RETURNING id
"""
)


def child_env(args: argparse.Namespace) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        REDIS_PREFIX=args.redis_prefix,
        PYTHONUNBUFFERED="1",
    )


async def redis_pool(args: argparse.Namespace) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(args.redis_url), default_queue_name=f"{args.redis_prefix}:queue"
    )


async def clear_redis(redis: ArqRedis, prefix: str) -> int:
    """Every key of this bench prefix: the queue, jobs, results, retries, heartbeat."""
    n = 0
    for pattern in (f"{prefix}:*", f"arq:*:{prefix}:*"):
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                n += await redis.delete(*batch)
                batch = []
        if batch:
            n += await redis.delete(*batch)
    return n


class ResultCollector:
    """arq keeps a job's result 60 s: read them as they appear. Keeps, per job id,
    (start ms, finish ms, success, result)."""

    def __init__(self, redis: ArqRedis, prefix: str):
        self.redis = redis
        self.match = f"arq:result:{prefix}:queue:*"
        self.results: dict[str, tuple[int, int, bool, object]] = {}

    async def collect(self) -> None:
        keys = [k async for k in self.redis.scan_iter(match=self.match, count=2000)]
        keys = [k for k in keys if k.decode()[len("arq:result:") :] not in self.results]
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            for key, raw in zip(chunk, await self.redis.mget(chunk), strict=True):
                if raw is None:
                    continue
                d = pickle.loads(raw)
                self.results[key.decode()[len("arq:result:") :]] = (
                    d["st"],
                    d["ft"],
                    d["s"],
                    d["r"],
                )

    def routing_jobs(self) -> dict[str, tuple[int, int, bool, object]]:
        return {k: v for k, v in self.results.items() if ":route:" in k or ":route-waiting:" in k}


async def _collect_every(collector: ResultCollector, seconds: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await collector.collect()
        except Exception as exc:  # noqa: BLE001 - a missed sweep is retried
            print(f"   (result collection: {exc!r})", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass


# ``--worker-set name=value``: the same worker with WorkerSettings attributes changed, to
# try a configuration without editing workers/main.py (default: none, ``python -m workers``)
WORKER_WITH_OVERRIDES = """
import json, sys
from arq import run_worker
from workers.main import WorkerSettings
for name, value in json.loads(sys.argv[1]).items():
    setattr(WorkerSettings, name, value)
run_worker(WorkerSettings)
"""


def worker_overrides(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--worker-set wants name=value, got {item!r}")
        out[name.strip()] = json.loads(value)
    return out


class Worker:
    """One ``python -m workers`` process that we started and will stop."""

    def __init__(self, args: argparse.Namespace, log_path: Path):
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    async def start(self, redis: ArqRedis, wait_s: float = 60.0) -> float:
        """Start and wait for its startup (the heartbeat key); returns that instant."""
        hb = f"{self.args.redis_prefix}:worker:heartbeat"
        await redis.delete(hb)
        self.log = open(self.log_path, "w")  # noqa: ASYNC230, SIM115 - lives with the worker
        overrides = worker_overrides(self.args.worker_set)
        cmd = [sys.executable, "-m", "workers"]
        if overrides:
            cmd = [sys.executable, "-c", WORKER_WITH_OVERRIDES, json.dumps(overrides)]
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            cmd,
            cwd=ROOT,
            env=child_env(self.args),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.proc.returncode}: see {self.log_path}"
                )
            if await redis.exists(hb):
                return time.time()
            await asyncio.sleep(0.02)
        raise RuntimeError(f"worker not ready after {wait_s}s: see {self.log_path}")

    def cpu_s(self) -> float:
        from bench.run import _proc_cpu_s

        return _proc_cpu_s(self.proc.pid) if self.proc else float("nan")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # arq: graceful shutdown
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


async def wait_queue_drained(
    redis: ArqRedis, queue: str, wait_s: float, poll: float = 0.05
) -> float | None:
    """Until only cron jobs are left in the queue (arq removes a job from its queue when
    it finishes): route jobs and what they enqueued (push jobs); returns that instant,
    or None on timeout."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        n = await redis.zcard(queue)
        if n < 200:
            members = await redis.zrange(queue, 0, -1)
            if all(m.startswith(b"cron:") for m in members):
                return time.time()
        await asyncio.sleep(poll)
    return None


# ----------------------------------------------------------------------------- throughput


async def throughput_run(
    args: argparse.Namespace, engine: AsyncEngine, run: int, log_dir: Path
) -> dict:
    from app.complaints.lifecycle import route_job_id
    from app.core.jobs import qualified_job_id
    from bench.run import _machine_cpu_s

    deleted = await delete_bench_rows(engine)
    redis = await redis_pool(args)
    queue = f"{args.redis_prefix}:queue"
    await clear_redis(redis, args.redis_prefix)
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("SELECT setseed(:s)"), {"s": (run % 100) / 100})
        ids = list(
            (
                await conn.scalars(
                    INSERT_SUBMITTED,
                    {
                        "count": args.count,
                        "seed": 20261201 + run,
                        "prefix": CODE_PREFIX,
                        "reporters": resident_ids(),
                        "n_reporters": N_RESIDENTS,
                    },
                )
            ).all()
        )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM (ANALYZE) reports"))
    async with engine.connect() as conn:
        spread = (
            await conn.execute(
                text(
                    "SELECT count(DISTINCT area_code), count(DISTINCT category_code) FROM reports "
                    "WHERE status = 'submitted'"
                )
            )
        ).one()
    t1 = time.perf_counter()

    # one job per report, as the API enqueues it after its commit
    async def enqueue(report_id: uuid.UUID) -> None:
        await redis.enqueue_job(
            "route_report",
            str(report_id),
            _job_id=qualified_job_id(redis, route_job_id(report_id)),
        )

    for i in range(0, len(ids), 200):
        await asyncio.gather(*(enqueue(r) for r in ids[i : i + 200]))
    t2 = time.perf_counter()
    queued = await redis.zcard(queue)
    print(
        f"run {run}: deleted {deleted} old bench reports; inserted {len(ids)} submitted "
        f"({spread[0]} areas, {spread[1]} categories) in {t1 - t0:.1f} s; "
        f"enqueued {queued} jobs in {t2 - t1:.1f} s ({len(ids) / (t2 - t1):,.0f}/s)",
        flush=True,
    )

    collector = ResultCollector(redis, args.redis_prefix)
    stop = asyncio.Event()
    worker = Worker(args, log_dir / f"worker-throughput-{run}.log")
    try:
        ready = await worker.start(redis)
        cpu0, m0, w0 = worker.cpu_s(), _machine_cpu_s(), time.monotonic()
        poller = asyncio.create_task(_collect_every(collector, 2.0, stop))
        drained = await wait_queue_drained(redis, queue, args.timeout)
        cpu1, m1, w1 = worker.cpu_s(), _machine_cpu_s(), time.monotonic()
        stop.set()
        await poller
        await collector.collect()
    finally:
        worker.stop()
    if drained is None:
        raise RuntimeError(f"queue not empty after {args.timeout} s")

    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    """
                    SELECT count(*) FILTER (WHERE routed_at IS NOT NULL) AS routed,
                           count(*) FILTER (WHERE status = 'submitted') AS left,
                           extract(epoch FROM min(routed_at)) AS first,
                           extract(epoch FROM max(routed_at)) AS last,
                           count(DISTINCT routed_at) AS batches,
                           count(DISTINCT unit_id) AS units
                      FROM reports WHERE code LIKE :like
                    """
                ),
                {"like": CODE_PREFIX + "%"},
            )
        ).one()
        reasons = dict(
            (
                await conn.execute(
                    text(
                        "SELECT u.kind, count(*) FROM reports r JOIN units u ON u.id = r.unit_id "
                        "WHERE r.code LIKE :like GROUP BY 1"
                    ),
                    {"like": CODE_PREFIX + "%"},
                )
            ).all()
        )
        notifications = await conn.scalar(text("SELECT count(*) FROM notifications"))
        events = await conn.scalar(
            text(
                "SELECT count(*) FROM report_events e JOIN reports r ON r.id = e.report_id "
                "WHERE r.code LIKE :like"
            ),
            {"like": CODE_PREFIX + "%"},
        )

    jobs = {k: v for k, v in collector.routing_jobs().items() if ":route:" in k}
    routing = [v for v in jobs.values() if v[2] and isinstance(v[3], int) and v[3] > 0]
    noop = [v for v in jobs.values() if v[2] and v[3] == 0]
    failed = [v for v in jobs.values() if not v[2]]
    other = [k for k in collector.results if ":route:" not in k and ":route-waiting:" not in k]
    route_jobs_done = max((v[1] for v in jobs.values()), default=0) / 1000
    first, last = float(row.first or 0), float(row.last or 0)
    last_commit = max((v[1] for v in routing), default=0) / 1000
    span = last - first
    to_commit = last_commit - first if last_commit else float("nan")
    wall = drained - ready
    batch_sizes = sorted(v[3] for v in routing)
    dur_routing = sorted(v[1] - v[0] for v in routing)
    dur_noop = sorted(v[1] - v[0] for v in noop)
    res = {
        "run": run,
        "reports": len(ids),
        "routed": row.routed,
        "left_unrouted": row.left,
        "areas": spread[0],
        "categories": spread[1],
        "units_used": row.units,
        "by_unit_kind": reasons,
        "notifications": notifications,
        "timeline_events": events,
        "jobs_enqueued": queued,
        "job_results_seen": len(jobs),
        "jobs_routing": len(routing),
        "jobs_noop": len(noop),
        "jobs_failed": len(failed),
        "routed_by_jobs": sum(batch_sizes),
        "batch_size_p50": percentile(batch_sizes, 50),
        "batch_size_max": batch_sizes[-1] if batch_sizes else 0,
        "distinct_routed_at": row.batches,
        "routed_at_span_s": round(span, 3),
        "items_per_s_routed_at": round(row.routed / span, 1) if span > 0 else float("nan"),
        "to_last_commit_s": round(to_commit, 3),
        "items_per_s_to_last_commit": round(row.routed / to_commit, 1) if to_commit > 0 else None,
        "route_jobs_wall_s": round(route_jobs_done - ready, 3),
        "items_per_s_route_jobs_wall": round(row.routed / (route_jobs_done - ready), 1),
        "other_jobs_done": len(other),  # e.g. the push jobs the routing enqueued
        "wall_s": round(wall, 3),
        "items_per_s_wall": round(row.routed / wall, 1),
        "jobs_per_s_wall": round((queued + len(other)) / wall, 1),
        "job_ms_routing_p50": percentile(dur_routing, 50),
        "job_ms_routing_p95": percentile(dur_routing, 95),
        "job_ms_noop_p50": percentile(dur_noop, 50),
        "job_ms_noop_p95": percentile(dur_noop, 95),
        "worker_cpu_s": round(cpu1 - cpu0, 2),
        "worker_cores": round((cpu1 - cpu0) / (w1 - w0), 2),
        "others_cores": round(max(0.0, (m1 - m0) - (cpu1 - cpu0)) / (w1 - w0), 2),
        "worker_cpu_ms_per_job": round((cpu1 - cpu0) * 1000 / max(1, queued + len(other)), 3),
    }
    print(
        f"run {run}: routed {row.routed}/{len(ids)} (left {row.left}); jobs {len(jobs)} seen: "
        f"{len(routing)} routing (batch p50 {res['batch_size_p50']}, max "
        f"{res['batch_size_max']}), {len(noop)} no-op, {len(failed)} failed; "
        f"routed_at span {span:.2f} s = {res['items_per_s_routed_at']:,} items/s; to last commit "
        f"{to_commit:.2f} s = {res['items_per_s_to_last_commit']} items/s; last route job done "
        f"after {res['route_jobs_wall_s']} s; {len(other)} other jobs (push); wall {wall:.2f} s = "
        f"{res['items_per_s_wall']:,} items/s ({res['jobs_per_s_wall']:,} jobs/s); worker "
        f"{res['worker_cores']} cores, others {res['others_cores']}",
        flush=True,
    )
    await clear_redis(redis, args.redis_prefix)
    await redis.aclose()
    return res


THROUGHPUT_ROWS = (
    ("reports routed", "routed", 0),
    ("left unrouted", "left_unrouted", 0),
    ("items/s, first→last routed_at", "items_per_s_routed_at", 0),
    ("items/s, first routed_at→last commit", "items_per_s_to_last_commit", 0),
    ("items/s, worker ready→last route job done", "items_per_s_route_jobs_wall", 0),
    ("items/s, wall (worker ready→queue empty)", "items_per_s_wall", 0),
    ("wall s: last route job / queue empty", ("route_jobs_wall_s", "wall_s"), 2),
    ("other jobs run (push jobs enqueued by routing)", "other_jobs_done", 0),
    ("jobs/s, wall (all jobs)", "jobs_per_s_wall", 0),
    ("jobs that routed something", "jobs_routing", 0),
    ("no-op jobs", "jobs_noop", 0),
    ("failed jobs", "jobs_failed", 0),
    ("batch size p50 (reports per routing job)", "batch_size_p50", 0),
    ("routing job ms p50 / p95", ("job_ms_routing_p50", "job_ms_routing_p95"), 0),
    ("no-op job ms p50 / p95", ("job_ms_noop_p50", "job_ms_noop_p95"), 0),
    ("worker CPU ms per job (all jobs)", "worker_cpu_ms_per_job", 2),
    ("worker cores / others (PostgreSQL, Redis)", ("worker_cores", "others_cores"), 2),
)


def print_table(runs: list[dict], rows: tuple, title: str) -> dict:
    medians: dict[str, float] = {}
    print()
    print(f"| {title} | " + " | ".join(f"run {r['run']}" for r in runs) + " | median |")
    print("| --- |" + " ---: |" * (len(runs) + 1))
    for label, key, digits in rows:
        keys = key if isinstance(key, tuple) else (key,)
        cells = [" / ".join(fmt(r.get(k), digits) for k in keys) for r in runs]
        ms = []
        for k in keys:
            medians[k] = med(r.get(k) for r in runs)
            ms.append(fmt(medians[k], digits))
        print(f"| {label} | " + " | ".join(cells) + f" | {' / '.join(ms)} |")
    return medians


async def throughput(args: argparse.Namespace, engine: AsyncEngine, log_dir: Path) -> dict:
    print(f"== throughput: {args.count} reports, one worker process, {args.runs} runs", flush=True)
    runs = [await throughput_run(args, engine, run, log_dir) for run in range(1, args.runs + 1)]
    medians = print_table(runs, THROUGHPUT_ROWS, f"routing throughput, {args.count} reports")
    return {"runs": runs, "median": medians}


# ----------------------------------------------------------------------------- sustained

INSERT_CHUNK = text(
    """
INSERT INTO reports (id, code, kind, status, category_code, description, location, area_code,
                     reporter_id, hide_identity, created_at, updated_at)
SELECT v.id, :prefix || lpad(v.seq::text, 7, '0'), 'petition', 'submitted', v.cat,
       'Bench routing report ' || v.seq, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326), v.area,
       v.reporter, false, clock_timestamp(), clock_timestamp()
FROM unnest(CAST(:ids AS uuid[]), CAST(:seqs AS int[]), CAST(:cats AS text[]),
            CAST(:lons AS float8[]), CAST(:lats AS float8[]), CAST(:areas AS text[]),
            CAST(:reporters AS uuid[])) AS v(id, seq, cat, lon, lat, area, reporter)
"""
)


async def point_pool(engine: AsyncEngine, per_area: int = 8) -> list[tuple[str, float, float]]:
    """(area, lat, lon): ``per_area`` points inside each area."""
    async with engine.connect() as conn:
        return [
            (r[0], float(r[1]), float(r[2]))
            for r in await conn.execute(
                text(
                    "SELECT a.code, ST_Y(d.geom), ST_X(d.geom) FROM areas a CROSS JOIN LATERAL "
                    "ST_Dump(ST_GeneratePoints(a.geom, :k, 7)) d ORDER BY 1"
                ),
                {"k": per_area},
            )
        ]


async def sustained_run(
    args: argparse.Namespace, engine: AsyncEngine, run: int, log_dir: Path
) -> dict:
    """Reports arrive at a fixed rate (inserted in chunks every 100 ms, each followed by
    its jobs, as filing does) while one worker routes them."""
    import random

    from app.complaints.lifecycle import route_job_id
    from app.core.jobs import qualified_job_id
    from bench.run import _machine_cpu_s

    await delete_bench_rows(engine)
    redis = await redis_pool(args)
    queue = f"{args.redis_prefix}:queue"
    await clear_redis(redis, args.redis_prefix)
    points = await point_pool(engine)
    async with engine.connect() as conn:
        categories = list(
            await conn.scalars(text("SELECT code FROM categories WHERE active ORDER BY code"))
        )
    residents = resident_ids()
    rng = random.Random(run)
    collector = ResultCollector(redis, args.redis_prefix)
    stop = asyncio.Event()
    worker = Worker(args, log_dir / f"worker-sustained-{run}.log")
    tick = 0.1
    per_tick = args.feed_rate * tick
    backlog: list[int] = []
    try:
        await worker.start(redis)
        poller = asyncio.create_task(_collect_every(collector, 2.0, stop))
        await asyncio.sleep(3.0)  # let the start-up crons run first
        cpu0, m0, w0 = worker.cpu_s(), _machine_cpu_s(), time.monotonic()
        t_start = time.monotonic()
        owed, seq, n_ticks = 0.0, 0, int(args.duration / tick)
        for i in range(n_ticks):
            owed += per_tick
            k = int(owed)
            owed -= k
            if k:
                rows = [rng.choice(points) for _ in range(k)]
                ids = [uuid.uuid4() for _ in range(k)]
                async with engine.begin() as conn:
                    await conn.execute(
                        INSERT_CHUNK,
                        {
                            "prefix": CODE_PREFIX,
                            "ids": ids,
                            "seqs": list(range(seq + 1, seq + k + 1)),
                            "cats": [rng.choice(categories) for _ in range(k)],
                            "lons": [p[2] for p in rows],
                            "lats": [p[1] for p in rows],
                            "areas": [p[0] for p in rows],
                            "reporters": [rng.choice(residents) for _ in range(k)],
                        },
                    )
                seq += k
                await asyncio.gather(
                    *(
                        redis.enqueue_job(
                            "route_report",
                            str(r),
                            _job_id=qualified_job_id(redis, route_job_id(r)),
                        )
                        for r in ids
                    )
                )
            if i % 10 == 9:
                backlog.append(await redis.zcard(queue))
            delay = t_start + (i + 1) * tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        feed_s = time.monotonic() - t_start
        cpu1, m1, w1 = worker.cpu_s(), _machine_cpu_s(), time.monotonic()
        backlog_end = await redis.zcard(queue)
        async with engine.connect() as conn:
            routed_in_feed = await conn.scalar(
                text("SELECT count(*) FROM reports WHERE code LIKE :l AND routed_at IS NOT NULL"),
                {"l": CODE_PREFIX + "%"},
            )
        t_end = time.time()
        drained = await wait_queue_drained(redis, queue, args.timeout, poll=0.2)
        stop.set()
        await poller
        await collector.collect()
    finally:
        stop.set()
        worker.stop()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT extract(epoch FROM routed_at - created_at) * 1000 FROM reports "
                    "WHERE code LIKE :l AND routed_at IS NOT NULL"
                ),
                {"l": CODE_PREFIX + "%"},
            )
        ).all()
        left = await conn.scalar(
            text("SELECT count(*) FROM reports WHERE code LIKE :l AND routed_at IS NULL"),
            {"l": CODE_PREFIX + "%"},
        )
    lat = sorted(float(r[0]) for r in rows)
    jobs = {k: v for k, v in collector.routing_jobs().items() if ":route:" in k}
    routing = [v for v in jobs.values() if v[2] and isinstance(v[3], int) and v[3] > 0]
    res = {
        "run": run,
        "offered_rate": args.feed_rate,
        "filed": seq,
        "feed_rate": round(seq / feed_s, 1),
        "routed_per_s_during_feed": round(routed_in_feed / feed_s, 1),
        "routed": len(rows),
        "left_unrouted": left,
        "ms_p50": round(percentile(lat, 50), 1),
        "ms_p95": round(percentile(lat, 95), 1),
        "ms_p99": round(percentile(lat, 99), 1),
        "ms_max": round(lat[-1], 1) if lat else float("nan"),
        "queue_at_end_of_feed": backlog_end,
        "queue_growth_per_s": round((backlog[-1] - backlog[0]) / (len(backlog) - 1), 1)
        if len(backlog) > 1
        else float("nan"),
        "drain_after_feed_s": round(drained - t_end, 1) if drained else float("nan"),
        "jobs_routing": len(routing),
        "jobs_noop": sum(1 for v in jobs.values() if v[2] and v[3] == 0),
        "batch_mean": round(sum(v[3] for v in routing) / len(routing), 2) if routing else 0,
        "worker_cores": round((cpu1 - cpu0) / (w1 - w0), 2),
        "others_cores": round(max(0.0, (m1 - m0) - (cpu1 - cpu0)) / (w1 - w0), 2),
    }
    print(
        f"run {run}: fed {seq} at {res['feed_rate']}/s; routed {res['routed_per_s_during_feed']}/s "
        f"during the feed; routed_at-created_at p50/p95/p99/max {res['ms_p50']}/{res['ms_p95']}/"
        f"{res['ms_p99']}/{res['ms_max']} ms; queue +{res['queue_growth_per_s']}/s, "
        f"{backlog_end} at the end, drained in {res['drain_after_feed_s']} s; "
        f"{res['jobs_routing']} routing jobs (mean {res['batch_mean']}), {res['jobs_noop']} "
        f"no-op; worker {res['worker_cores']} cores, others {res['others_cores']}",
        flush=True,
    )
    await clear_redis(redis, args.redis_prefix)
    await redis.aclose()
    return res


SUSTAINED_ROWS = (
    ("reports filed / feed rate per s", ("filed", "feed_rate"), 0),
    ("routed per s during the feed", "routed_per_s_during_feed", 0),
    ("routed / left unrouted", ("routed", "left_unrouted"), 0),
    ("routed_at − created_at p50 / p95 / p99 ms", ("ms_p50", "ms_p95", "ms_p99"), 0),
    ("routed_at − created_at max ms", "ms_max", 0),
    ("job queue growth per s during the feed", "queue_growth_per_s", 0),
    ("jobs queued at the end of the feed", "queue_at_end_of_feed", 0),
    ("s to drain the queue after the feed", "drain_after_feed_s", 1),
    ("routing jobs / no-op jobs", ("jobs_routing", "jobs_noop"), 0),
    ("mean reports per routing job", "batch_mean", 2),
    ("cores: worker / others", ("worker_cores", "others_cores"), 2),
)


async def sustained(args: argparse.Namespace, engine: AsyncEngine, log_dir: Path) -> dict:
    print(
        f"== sustained: {args.feed_rate:g} reports/s for {args.duration:g} s, one job each, "
        f"one worker process, {args.runs} runs",
        flush=True,
    )
    runs = [await sustained_run(args, engine, run, log_dir) for run in range(1, args.runs + 1)]
    title = f"routing at a sustained {args.feed_rate:g} reports/s"
    medians = print_table(runs, SUSTAINED_ROWS, title)
    return {"runs": runs, "median": medians}


# ----------------------------------------------------------------------------- latency


async def filing_values(engine: AsyncEngine, settings) -> dict[str, list[str]]:
    """Tokens of the bench residents (minted by the app's own code, as bench.scenarios
    does) and 8 points inside each area, each with a category."""
    import random

    from app.core.auth import Principal, issue_access_token

    tokens = [
        issue_access_token(
            settings, Principal(user_id=i, kind="resident", identity_level=1, sid=uuid.uuid4())
        )
        for i in resident_ids()
    ]
    async with engine.connect() as conn:
        points = (
            await conn.execute(
                text(
                    "SELECT a.code, ST_Y(d.geom), ST_X(d.geom) FROM areas a "
                    "CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(a.geom, 8, 7)) d ORDER BY 1"
                )
            )
        ).all()
        categories = list(
            (
                await conn.scalars(text("SELECT code FROM categories WHERE active ORDER BY code"))
            ).all()
        )
    rng = random.Random(42)
    rng.shuffle(points)
    return {
        "token": tokens,
        "lat": [f"{p[1]:.6f}" for p in points],
        "lon": [f"{p[2]:.6f}" for p in points],
        "cat": [rng.choice(categories) for _ in points],
    }


def filing_spec(base_url: str, values: dict, rate: float, duration: float, tag: str, seq: int):
    from bench.loadgen import LoadSpec

    body = (
        '{"kind": "petition", "category_code": "{{cat}}", '
        f'"description": "{tag} kien nghi so {{{{seq}}}}: de nghi sua chua duong", '
        '"location": {"lat": {{lat}}, "lon": {{lon}}}, '
        '"address_text": "Pho Dinh Tien Hoang", "photo_ids": []}'
    )
    return LoadSpec(
        url=base_url,
        method="POST",
        path="/api/v1/reports",
        headers={"Authorization": "Bearer {{token}}"},
        body=body,
        values=values,
        concurrency=64,
        duration=duration,
        rate=rate,
        timeout=10.0,
        expect=[201],
        seq_start=seq,
    )


async def wait_routed(engine: AsyncEngine, tag: str, wait_s: float) -> tuple[int, int]:
    """Until every report of this run is routed (or timeout): (filed, still waiting)."""
    deadline = time.monotonic() + wait_s
    q = text(
        "SELECT count(*), count(*) FILTER (WHERE routed_at IS NULL) FROM reports "
        "WHERE description LIKE :like"
    )
    while True:
        async with engine.connect() as conn:
            filed, waiting = (await conn.execute(q, {"like": tag + " %"})).one()
        if waiting == 0 or time.monotonic() > deadline:
            return filed, waiting
        await asyncio.sleep(0.5)


async def latency_run(
    args: argparse.Namespace,
    redis: ArqRedis,
    engine: AsyncEngine,
    base_url: str,
    values: dict,
    collector: ResultCollector,
    api,
    worker: Worker,
    run: int,
    seq: int,
) -> dict:
    from bench.loadgen import run_python_subprocess
    from bench.run import _machine_cpu_s, _proc_cpu_s

    tag = f"{LATENCY_TAG} {args.stamp} r{run}"
    spec = filing_spec(base_url, values, args.rate, args.duration, tag, seq)
    a0, k0, m0, w0 = _proc_cpu_s(api.proc.pid), worker.cpu_s(), _machine_cpu_s(), time.monotonic()
    load = await asyncio.to_thread(run_python_subprocess, spec)
    a1, k1, m1, w1 = _proc_cpu_s(api.proc.pid), worker.cpu_s(), _machine_cpu_s(), time.monotonic()
    queue_at_end = await redis.zcard(f"{args.redis_prefix}:queue")
    t_end = time.time()
    filed, waiting = await wait_routed(engine, tag, args.timeout)
    await asyncio.sleep(2.5)  # one more result sweep after the last commit
    await collector.collect()
    # the next run starts from an empty queue (push jobs the routing enqueued included)
    drained = await wait_queue_drained(redis, f"{args.redis_prefix}:queue", args.timeout, 0.2)
    await collector.collect()

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT extract(epoch FROM created_at) * 1000, "
                    "extract(epoch FROM routed_at) * 1000 FROM reports "
                    "WHERE description LIKE :like AND routed_at IS NOT NULL"
                ),
                {"like": tag + " %"},
            )
        ).all()
    created = [float(r[0]) for r in rows]
    routed = [float(r[1]) for r in rows]
    lat = sorted(r - c for c, r in zip(created, routed, strict=True))

    # The routing job behind each batch: its reports share one routed_at (taken just after
    # the job started); the job routed exactly that many and its finish is after commit.
    jobs = sorted(
        (v[0], v[1], v[3])
        for k, v in collector.routing_jobs().items()
        if v[2] and isinstance(v[3], int) and v[3] > 0
    )
    groups: dict[float, list[float]] = {}
    for c, r in zip(created, routed, strict=True):
        groups.setdefault(r, []).append(c)
    to_commit: list[float] = []
    matched = 0
    used: set[int] = set()
    for r, cs in sorted(groups.items()):
        candidates = [
            (abs(r - j[0]), i)
            for i, j in enumerate(jobs)
            if i not in used and -2 <= r - j[0] < 250 and j[2] >= len(cs)
        ]
        if not candidates:
            continue
        _, i = min(candidates)
        used.add(i)
        matched += len(cs)
        to_commit.extend(jobs[i][1] - c for c in cs)
    to_commit.sort()
    t_first = min(created, default=0)
    t_last = max(routed, default=0) + 1
    window = [
        v
        for k, v in collector.routing_jobs().items()
        if ":route:" in k and v[2] and t_first <= v[0] <= t_last
    ]
    window_jobs = [v for v in window if isinstance(v[3], int) and v[3] > 0]
    res = {
        "run": run,
        "offered_rate": args.rate,
        "duration_s": args.duration,
        "requests_ok": load["ok"],
        "request_errors": load["error_count"],
        "errors": load["errors"],
        "achieved_rps": load["ok_rps"],
        "http_ms_p50": round(load["latency_ms"]["p50"], 1),
        "http_ms_p95": round(load["latency_ms"]["p95"], 1),
        "http_ms_p99": round(load["latency_ms"]["p99"], 1),
        "generator_lag_ms_p99": load.get("sched_lag_ms_p99"),
        "filed": filed,
        "routed": len(rows),
        "left_unrouted": waiting,
        "ms_p50": round(percentile(lat, 50), 1),
        "ms_p95": round(percentile(lat, 95), 1),
        "ms_p99": round(percentile(lat, 99), 1),
        "ms_max": round(lat[-1], 1) if lat else float("nan"),
        "commit_matched": matched,
        "commit_ms_p50": round(percentile(to_commit, 50), 1),
        "commit_ms_p95": round(percentile(to_commit, 95), 1),
        "commit_ms_p99": round(percentile(to_commit, 99), 1),
        "commit_ms_max": round(to_commit[-1], 1) if to_commit else float("nan"),
        "routing_jobs": len(window_jobs),
        "noop_jobs": sum(1 for v in window if v[3] == 0),
        "batch_mean": round(sum(v[3] for v in window_jobs) / len(window_jobs), 2)
        if window_jobs
        else float("nan"),
        "api_cores": round((a1 - a0) / (w1 - w0), 2),
        "worker_cores": round((k1 - k0) / (w1 - w0), 2),
        "others_cores": round(max(0.0, (m1 - m0) - (a1 - a0) - (k1 - k0)) / (w1 - w0), 2),
        "queue_at_end": queue_at_end,
        "drain_s": round(drained - t_end, 1) if drained else float("nan"),
    }
    print(
        f"run {run}: {load['ok']} filed ok ({load['ok_rps']:.1f}/s, errors {load['error_count']}), "
        f"HTTP p50/p95/p99 {res['http_ms_p50']}/{res['http_ms_p95']}/{res['http_ms_p99']} ms; "
        f"routed {len(rows)}/{filed}; routed_at-created_at p50/p95/p99/max "
        f"{res['ms_p50']}/{res['ms_p95']}/{res['ms_p99']}/{res['ms_max']} ms; to commit "
        f"p95 {res['commit_ms_p95']} ms ({matched} matched); {res['routing_jobs']} routing jobs "
        f"(mean batch {res['batch_mean']}), {res['noop_jobs']} no-op; cores api "
        f"{res['api_cores']} worker {res['worker_cores']} others {res['others_cores']}",
        flush=True,
    )
    return res


LATENCY_ROWS = (
    ("filed (201) / errors", ("requests_ok", "request_errors"), 0),
    ("achieved filings/s", "achieved_rps", 1),
    ("routed / left unrouted", ("routed", "left_unrouted"), 0),
    ("**routed_at − created_at** p50 / p95 / p99 ms", ("ms_p50", "ms_p95", "ms_p99"), 0),
    ("routed_at − created_at max ms", "ms_max", 0),
    (
        "to routing commit p50 / p95 / p99 ms",
        ("commit_ms_p50", "commit_ms_p95", "commit_ms_p99"),
        0,
    ),
    ("to routing commit max ms", "commit_ms_max", 0),
    ("filing HTTP p50 / p95 / p99 ms", ("http_ms_p50", "http_ms_p95", "http_ms_p99"), 0),
    ("routing jobs / no-op jobs", ("routing_jobs", "noop_jobs"), 0),
    ("mean reports per routing job", "batch_mean", 2),
    ("cores: API / worker / others", ("api_cores", "worker_cores", "others_cores"), 2),
    ("jobs queued at the end of the load / s to drain", ("queue_at_end", "drain_s"), 1),
)


async def latency(args: argparse.Namespace, engine: AsyncEngine, log_dir: Path) -> dict:
    from app.settings import get_settings
    from bench.loadgen import run_python_subprocess
    from bench.run import Server

    print(
        f"== latency: petitions at {args.rate:g}/s for {args.duration:g} s, "
        f"{args.runs} runs (+{args.warmup:g} s warmup), API granian "
        f"{args.api_workers} worker(s) + one arq worker",
        flush=True,
    )
    await delete_bench_rows(engine)
    redis = await redis_pool(args)
    await clear_redis(redis, args.redis_prefix)
    values = await filing_values(engine, get_settings())
    os.environ.update(child_env(args))  # granian inherits the environment
    extra = ["--workers", str(args.api_workers)] if args.api_workers != 1 else []
    api = Server(
        "api",
        "app.main:create_app",
        factory=True,
        cpus=None,
        extra=extra,
        ready_path="/health/live",
        log_dir=log_dir,
    )
    worker = Worker(args, log_dir / "worker-latency.log")
    collector = ResultCollector(redis, args.redis_prefix)
    stop = asyncio.Event()
    runs = []
    try:
        await asyncio.to_thread(api.start)
        await worker.start(redis)
        poller = asyncio.create_task(_collect_every(collector, 2.0, stop))
        seq = 1_000_000
        if args.warmup > 0:
            warm = filing_spec(
                base_url=api.url,
                values=values,
                rate=args.rate,
                duration=args.warmup,
                tag=f"{LATENCY_TAG} {args.stamp} warmup",
                seq=seq,
            )
            w = await asyncio.to_thread(run_python_subprocess, warm)
            seq += w["seq_used"] + 1000
            await wait_routed(engine, f"{LATENCY_TAG} {args.stamp} warmup", args.timeout)
            print(f"warmup: {w['ok']} filed, HTTP p99 {w['latency_ms']['p99']:.0f} ms", flush=True)
        for run in range(1, args.runs + 1):
            runs.append(
                await latency_run(
                    args, redis, engine, api.url, values, collector, api, worker, run, seq
                )
            )
            seq += runs[-1]["requests_ok"] + runs[-1]["request_errors"] + 10_000
        stop.set()
        await poller
    finally:
        stop.set()
        worker.stop()
        api.stop()
        await clear_redis(redis, args.redis_prefix)
        await redis.aclose()
    title = f"submission→assignment, {args.rate:g} petitions/s for {args.duration:g} s"
    medians = print_table(runs, LATENCY_ROWS, title)
    return {"runs": runs, "median": medians}


# ----------------------------------------------------------------------------- main


async def main_async(args: argparse.Namespace) -> int:
    check_bench_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["REDIS_PREFIX"] = args.redis_prefix
    t = time.perf_counter()
    setup_database(args.database_url)
    engine = create_async_engine(args.database_url, pool_size=4)
    async with engine.begin() as conn:
        people = await ensure_bench_people(conn, args.staff_per_unit)
    async with engine.connect() as conn:
        # statistics for the fresh reference tables (this server may run without
        # autovacuum: a never analyzed users table makes the inbox insert loop per user)
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM (ANALYZE)"))
    print(
        f"== bench database {make_url(args.database_url).database} ready in "
        f"{time.perf_counter() - t:.1f} s ({people['residents']} bench residents, "
        f"{people['staff']} bench staff); Redis {args.redis_url} prefix {args.redis_prefix}",
        flush=True,
    )
    from bench.run import cpu_busy

    busy = cpu_busy(1.0)
    print(f"   CPU busy before start: {busy:.0f}%  loadavg {os.getloadavg()}", flush=True)
    args.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / f"routing-{args.stamp}-logs"
    log_dir.mkdir(exist_ok=True)
    out: dict = {
        "meta": {
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "nproc": os.cpu_count(),
            "cpu_busy_before_pct": round(busy, 1),
            "loadavg": os.getloadavg(),
            "args": {k: v for k, v in vars(args).items() if k != "func"},
        }
    }
    try:
        if args.command in ("throughput", "all"):
            out["throughput"] = await throughput(args, engine, log_dir)
        if args.command in ("sustained", "all"):
            out["sustained"] = await sustained(args, engine, log_dir)
        if args.command in ("latency", "all"):
            out["latency"] = await latency(args, engine, log_dir)
    finally:
        if not args.keep_rows:
            await delete_bench_rows(engine)
        await engine.dispose()
        path = RESULTS / f"routing-{args.stamp}.json"

        def clean(o):
            if isinstance(o, float) and math.isnan(o):
                return None
            if isinstance(o, dict):
                return {str(k): clean(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [clean(v) for v in o]
            return o

        path.write_text(json.dumps(clean(out), indent=2, default=str))
        print(f"\nresults: {path.relative_to(ROOT)}   logs: {log_dir.relative_to(ROOT)}")
        if args.drop:
            await drop_database(args.database_url)
            print(f"dropped database {make_url(args.database_url).database}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.routing", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("command", choices=("throughput", "sustained", "latency", "all"))
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DB,
        help="a bench database (default: DATABASE_URL, else %(default)s)",
    )
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--redis-prefix", default="bench-routing")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=20_000, help="throughput: reports per run")
    ap.add_argument("--feed-rate", type=float, default=500.0, help="sustained: reports per second")
    ap.add_argument("--rate", type=float, default=100.0, help="latency: filings per second")
    ap.add_argument(
        "--duration", type=float, default=30.0, help="sustained, latency: seconds per run"
    )
    ap.add_argument("--warmup", type=float, default=5.0, help="latency: discarded seconds first")
    ap.add_argument("--api-workers", type=int, default=1, help="latency: granian workers")
    ap.add_argument("--staff-per-unit", type=int, default=3, help="1 manager + officers")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for routing")
    ap.add_argument(
        "--worker-set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="override a WorkerSettings attribute, e.g. poll_delay=0.05 (repeatable)",
    )
    ap.add_argument("--keep-rows", action="store_true", help="keep the last run's reports")
    ap.add_argument("--drop", action="store_true", help="drop the bench database at the end")
    args = ap.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
