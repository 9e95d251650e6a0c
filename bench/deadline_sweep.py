"""Time the deadline sweep (``routing.sweep_deadlines``: reminders at 75 %, overdue marks,
escalations) over 1,000,000 open items.

    export UV_PYTHON_DOWNLOADS=never
    export DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_sweep
    uv run python -m bench.deadline_sweep --count 1000000 --crossing 1000,10000,100000 \\
        --runs 3 --explain --time-enqueue

The database must be a bench one (its name starts with ``city_bench``). The script runs
``python -m app.cli setup`` (idempotent), adds bench staff (a manager and officers per
unit, two dispatchers: the audience of the staff notifications, see bench.routing) and
seeds the missing bench reports with ``bench.seed_reports`` (one INSERT ... SELECT). Once
per database it then makes every bench report open in one UPDATE: ``assigned`` to a
unit (the ward's People's Committee for 80 %, a city department or utility for the
rest) with its three instants spread over past and future around a reference instant
``t0`` (kept in the table ``bench_sweep_state``):

- ``due_at`` uniform in [t0 - 15 days, t0 + 30 days];
- ``remind_at`` 1 to 3 days before ``due_at``; ``escalate_at`` 2 to 3 days after it;
- instants already past at ``t0`` carry their mark (``reminded_at``, ``overdue_at``,
  ``escalated_at``), as the every-minute sweep would have left them.

For each number K of ``--crossing``, the sweep's ``now`` is the K-th instant after
``t0`` still unmarked (one query over the three partial indexes), so about K items cross
a deadline between the last sweep (t0) and this one. Each run times
``routing.sweep_deadlines(session, now)`` (the three UPDATEs and the notification insert,
as the worker's cron calls it, commit excluded) in a transaction that is rolled back,
then ``VACUUM reports, notifications, report_events`` so every run starts from the same
state. Medians of ``--runs``. ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the
three statements for each K (executed in order in one transaction, rolled back) and
whether they used ix_reports_open_remind / ix_reports_open_due / ix_reports_open_escalate.
The jobs the sweep leaves for after its commit (one push job per notification) are
counted; ``--time-enqueue`` also times sending them to arq, as the worker's boundary
does after the commit (first run of each case, into a queue no worker reads, deleted
afterwards). ``--try-fixes`` swaps in, for the run only, a rewritten escalation UPDATE
and notification INSERT (see ``try_fixes``) to measure what they would change.
Results go to ``bench/results/deadline-sweep-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bench.routing import check_bench_database, clear_redis, ensure_bench_people, setup_database
from bench.seed_reports import BENCH_REPORTER_ID, seed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_sweep"
ENQUEUE_PREFIX = "bench-sweep"  # --time-enqueue: a queue no worker reads
OPEN = "('assigned', 'in_progress', 'reopened')"
INDEXES = {
    "remind": "ix_reports_open_remind",
    "overdue": "ix_reports_open_due",
    "escalate": "ix_reports_open_escalate",
}

OPEN_SQL = text(
    """
WITH ward_units AS (
    SELECT area_code, id FROM units WHERE kind = 'ward_committee'
),
city_units AS (
    SELECT array_agg(id ORDER BY code) AS ids FROM units WHERE kind IN ('department', 'utility')
),
x AS (
    SELECT r.id,
           CAST(:t0 AS timestamptz) + (random() * 45 - 15) * interval '1 day' AS due,
           (1 + random() * 2) * interval '1 day' AS before_due,
           (2 + random()) * interval '1 day' AS after_due,
           CASE WHEN random() < 0.8 THEN w.id
                ELSE c.ids[1 + floor(random() * cardinality(c.ids))::int] END AS unit_id
      FROM reports r JOIN ward_units w ON w.area_code = r.area_code, city_units c
     WHERE r.reporter_id = :reporter_id
)
UPDATE reports r
   SET status = 'assigned', unit_id = x.unit_id,
       routed_at = r.created_at + interval '1 hour', updated_at = CAST(:t0 AS timestamptz),
       due_at = x.due, remind_at = x.due - x.before_due, escalate_at = x.due + x.after_due,
       reminded_at = CASE WHEN x.due - x.before_due <= :t0 THEN x.due - x.before_due END,
       overdue_at = CASE WHEN x.due <= :t0 THEN x.due END,
       escalated_at = CASE WHEN x.due + x.after_due <= :t0 THEN x.due + x.after_due END,
       resolved_at = NULL, closed_at = NULL, closed_reason = NULL, resolved_on_time = NULL,
       handling_working_days = NULL, original_due_at = NULL, reopen_count = 0
  FROM x
 WHERE r.id = x.id
"""
)

# the K-th instant after t0 that a sweep would act on (merge of the three partial indexes)
KTH_INSTANT = text(
    f"""
SELECT t FROM (
    SELECT remind_at AS t FROM reports
     WHERE reminded_at IS NULL AND status IN {OPEN} AND remind_at > :t0
    UNION ALL
    SELECT due_at FROM reports WHERE overdue_at IS NULL AND status IN {OPEN} AND due_at > :t0
    UNION ALL
    SELECT escalate_at FROM reports
     WHERE escalated_at IS NULL AND status IN {OPEN} AND escalate_at > :t0
) x ORDER BY t OFFSET :k - 1 LIMIT 1
"""
)


# --try-fixes: two statements rewritten, swapped in for this process only (app/ is not
# edited), to measure what they would change. Same rows written.
# 1. escalation: the UPDATE joined its SKIP LOCKED target to reports by hash join over a
#    seq scan of the whole table (the planner expects ~25 % of the open rows to be due
#    for escalation: it cannot know that past instants are already marked); an
#    ``= ANY(ARRAY(...))`` condition on the primary key makes it index lookups.
# 2. notification insert: recipients per notice came from a LATERAL (re-run per notice,
#    seq scan of staff_roles through an OR); joined set-wise instead (hash joins).
NOTIFY_SET_BASED = """
WITH n AS MATERIALIZED (
    SELECT * FROM unnest(
        CAST(:report_ids AS uuid[]), CAST(:unit_ids AS uuid[]), CAST(:audiences AS text[]),
        CAST(:kinds AS text[]), CAST(:titles_vi AS text[]), CAST(:titles_en AS text[]),
        CAST(:bodies_vi AS text[]), CAST(:bodies_en AS text[]), CAST(:datas AS text[]),
        CAST(:dedupe_keys AS text[])
    ) WITH ORDINALITY AS n(report_id, unit_id, audience, kind, title_vi, title_en, body_vi,
                           body_en, data, dedupe_key, i)
), r AS (
    SELECT n.i, rep.reporter_id AS user_id
      FROM n JOIN reports rep ON rep.id = n.report_id WHERE n.audience = 'followers'
    UNION
    SELECT n.i, s.user_id
      FROM n JOIN report_supporters s ON s.report_id = n.report_id
     WHERE n.audience = 'followers'
    UNION
    SELECT n.i, sr.user_id
      FROM n JOIN staff_roles sr ON sr.unit_id = n.unit_id
     WHERE n.audience = 'unit' AND sr.role IN ('officer', 'manager')
    UNION
    SELECT n.i, sr.user_id
      FROM n JOIN units un ON un.id = n.unit_id AND un.kind = 'dispatcher'
      JOIN staff_roles sr ON sr.role = 'dispatcher'
     WHERE n.audience = 'unit'
)
INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, created_at)
SELECT DISTINCT ON (r.user_id, n.dedupe_key)
       r.user_id, n.kind,
       CASE WHEN u.locale = 'en' THEN n.title_en ELSE n.title_vi END,
       CASE WHEN u.locale = 'en' THEN n.body_en ELSE n.body_vi END,
       CAST(n.data AS jsonb), n.dedupe_key, :now
  FROM r JOIN n ON n.i = r.i
  JOIN users u ON u.id = r.user_id AND u.deleted_at IS NULL AND u.status = 'active'
 ORDER BY r.user_id, n.dedupe_key
ON CONFLICT (user_id, dedupe_key) DO NOTHING
RETURNING id
"""


def try_fixes() -> None:
    from app.notifications import service as notifications
    from app.routing import service as routing

    original = routing._ESCALATE.text
    patched = original.replace(
        "     WHERE r.id = t.id\n",
        "     WHERE r.id = t.id AND r.id = ANY(ARRAY(SELECT id FROM target))\n",
    )
    if patched == original or "unnest(" not in notifications._INSERT.text:
        raise SystemExit("--try-fixes: the statements changed; update bench/deadline_sweep.py")
    routing._ESCALATE = text(patched)
    notifications._INSERT = text(NOTIFY_SET_BASED)


def med(xs) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


async def prepare(engine: AsyncEngine, count: int, staff_per_unit: int) -> datetime:
    """Staff, reports, the open UPDATE (once); returns t0."""
    async with engine.begin() as conn:
        await ensure_bench_people(conn, staff_per_unit)
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS bench_sweep_state "
                "(t0 timestamptz NOT NULL, reports int NOT NULL)"
            )
        )
        have = await conn.scalar(
            text("SELECT count(*) FROM reports WHERE reporter_id = :id"), {"id": BENCH_REPORTER_ID}
        )
    if have < count:
        t = time.perf_counter()
        async with engine.begin() as conn:
            added = await seed(conn, count - have)
        print(f"seeded {added} reports in {time.perf_counter() - t:.1f} s", flush=True)
        have += added
    async with engine.connect() as conn:
        # statistics everywhere (this server may run without autovacuum): a never analyzed
        # users table turns the notification insert into users x notices loops
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
        state = (await conn.execute(text("SELECT t0, reports FROM bench_sweep_state"))).first()
    if state is not None and state.reports == have:
        return state.t0
    t0 = datetime.now(UTC).replace(microsecond=0)
    t = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("SELECT setseed(0.17)"))
        opened = (
            await conn.execute(OPEN_SQL, {"t0": t0, "reporter_id": BENCH_REPORTER_ID})
        ).rowcount
        await conn.execute(text("DELETE FROM bench_sweep_state"))
        await conn.execute(
            text("INSERT INTO bench_sweep_state VALUES (:t0, :n)"), {"t0": t0, "n": have}
        )
    print(f"opened {opened} reports (t0 {t0.isoformat()}) in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    await vacuum(engine, analyze=True)
    print(f"vacuumed and analyzed in {time.perf_counter() - t:.1f} s", flush=True)
    return t0


async def vacuum(engine: AsyncEngine, analyze: bool = False) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        opts = "(ANALYZE)" if analyze else ""
        await conn.execute(text(f"VACUUM {opts} reports, notifications, report_events"))


async def describe(engine: AsyncEngine, t0: datetime) -> dict:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    f"""
                    SELECT count(*) AS open,
                           count(*) FILTER (WHERE reminded_at IS NULL) AS to_remind,
                           count(*) FILTER (WHERE overdue_at IS NULL) AS to_overdue,
                           count(*) FILTER (WHERE escalated_at IS NULL) AS to_escalate,
                           count(*) FILTER (WHERE overdue_at IS NOT NULL) AS overdue
                      FROM reports WHERE status IN {OPEN}
                    """
                )
            )
        ).one()
        total = await conn.scalar(text("SELECT count(*) FROM reports"))
        size = await conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('reports'))"))
    return {"reports": total, **row._asdict(), "reports_size": size}


async def now_for(engine: AsyncEngine, t0: datetime, k: int) -> datetime:
    async with engine.connect() as conn:
        return await conn.scalar(KTH_INSTANT, {"t0": t0, "k": k})


def statement_timer(engine: AsyncEngine) -> list[tuple[float, str]]:
    """Per statement wall time (driver execute), for the breakdown."""
    timings: list[tuple[float, str]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def before(conn, cursor, statement, params, context, executemany):
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def after(conn, cursor, statement, params, context, executemany):
        t = conn.info.pop("bench_t", None)
        if t is not None:
            timings.append((time.perf_counter() - t, statement))

    return timings


def label(statement: str) -> str:
    s = " ".join(statement.split())
    if "SET reminded_at" in s:
        return "remind"
    if "SET overdue_at" in s:
        return "overdue"
    if "SET escalated_at" in s:
        return "escalate"
    if "INSERT INTO notifications" in s:
        return "notify"
    return "other"


async def time_sweep(engine: AsyncEngine, timings: list, now: datetime, redis=None) -> dict:
    """One sweep in a transaction that is rolled back. The jobs the sweep collects for
    after its commit (one push job per notification, where notify enqueues them) are
    counted; with ``redis``, sending them to arq (what the worker's boundary does after
    the commit) is timed too, into a queue no worker reads, deleted afterwards."""
    from app.core import jobs
    from app.routing import service as routing

    sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    async with sessionmaker() as session:
        await session.execute(text("SELECT 1"))  # connection checked out, not timed
        pending = jobs.begin()
        timings.clear()
        t = time.perf_counter()
        result = await routing.sweep_deadlines(session, now)
        elapsed = time.perf_counter() - t
        await session.rollback()
    after_commit_jobs = len(pending.jobs)
    enqueue_ms = float("nan")
    if redis is not None and after_commit_jobs:
        t = time.perf_counter()
        await jobs.flush(pending, redis)
        enqueue_ms = round((time.perf_counter() - t) * 1000, 1)
        await clear_redis(redis, ENQUEUE_PREFIX)
    jobs.discard(pending)
    parts: dict[str, float] = {}
    for seconds, statement in timings:
        parts[label(statement)] = parts.get(label(statement), 0.0) + seconds * 1000
    return {
        "ms": round(elapsed * 1000, 1),
        "reminded": result.reminded,
        "overdue": result.overdue,
        "escalated": result.escalated,
        "crossing": result.reminded + result.overdue + result.escalated,
        "sql_ms": {k: round(v, 1) for k, v in parts.items()},
        "python_ms": round(elapsed * 1000 - sum(parts.values()), 1),
        "after_commit_jobs": after_commit_jobs,
        "enqueue_ms": enqueue_ms,
    }


async def explain(engine: AsyncEngine, now: datetime) -> dict[str, str]:
    from app.routing import service as routing

    plans: dict[str, str] = {}
    async with engine.connect() as conn:
        async with conn.begin() as tx:
            for name, stmt in (
                ("remind", routing._REMIND),
                ("overdue", routing._OVERDUE),
                ("escalate", routing._ESCALATE),
            ):
                rows = await conn.execute(
                    text("EXPLAIN (ANALYZE, BUFFERS) " + stmt.text), {"now": now}
                )
                plans[name] = "\n".join(r[0] for r in rows)
            await tx.rollback()
    return plans


def plan_summary(plans: dict[str, str]) -> dict[str, dict]:
    out = {}
    for name, plan in plans.items():
        lines = plan.splitlines()
        total = next((ln for ln in lines if ln.startswith("Execution Time")), "")
        out[name] = {
            "index_used": INDEXES[name] in plan,
            "seq_scan_on_reports": "Seq Scan on reports" in plan,
            "jit": "JIT:" in plan,
            "execution_ms": float(total.split(":")[1].split()[0]) if total else float("nan"),
        }
    return out


async def main_async(args: argparse.Namespace) -> int:
    check_bench_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    if args.try_fixes:
        try_fixes()
        print("== --try-fixes: escalation UPDATE and notification INSERT rewritten (this run only)")
    t = time.perf_counter()
    setup_database(args.database_url)
    engine = create_async_engine(args.database_url, pool_size=2)
    timings = statement_timer(engine)
    redis = None
    if args.time_enqueue:
        from arq.connections import RedisSettings, create_pool

        redis = await create_pool(
            RedisSettings.from_dsn(args.redis_url), default_queue_name=f"{ENQUEUE_PREFIX}:queue"
        )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out: dict = {"meta": {"started": stamp, "args": vars(args)}, "cases": []}
    try:
        t0 = await prepare(engine, args.count, args.staff_per_unit)
        state = await describe(engine, t0)
        out["meta"]["state"] = state
        out["meta"]["t0"] = t0.isoformat()
        print(
            f"== {make_url(args.database_url).database} ready in {time.perf_counter() - t:.0f} s: "
            f"{state['reports']:,} reports ({state['reports_size']}), {state['open']:,} open; "
            f"unmarked: remind {state['to_remind']:,}, due {state['to_overdue']:,}, "
            f"escalate {state['to_escalate']:,}; t0 {t0.isoformat()}",
            flush=True,
        )
        from bench.run import cpu_busy

        print(f"   CPU busy before start: {cpu_busy(1.0):.0f}%  loadavg {os.getloadavg()}")
        await vacuum(engine)
        for k in args.crossing:
            now = await now_for(engine, t0, k)
            case: dict = {"k": k, "now": now.isoformat(), "window_s": (now - t0).total_seconds()}
            runs = []
            for run in range(1, args.runs + 1):
                # sending the after-commit jobs is timed in the first run only
                r = await time_sweep(engine, timings, now, redis if run == 1 else None)
                await vacuum(engine)
                runs.append(r)
                print(
                    f"K={k:>7,} run {run}: {r['ms']:9,.1f} ms  reminded {r['reminded']:,} "
                    f"overdue {r['overdue']:,} escalated {r['escalated']:,}  sql "
                    + " ".join(f"{n} {v:,.0f}" for n, v in r["sql_ms"].items())
                    + f"  python {r['python_ms']:,.0f}; after-commit jobs "
                    f"{r['after_commit_jobs']:,}"
                    + (
                        f" sent in {r['enqueue_ms']:,.0f} ms"
                        if not math.isnan(r["enqueue_ms"])
                        else ""
                    ),
                    flush=True,
                )
            case["runs"] = runs
            case["median_ms"] = med(r["ms"] for r in runs)
            case["median_sql_ms"] = {
                n: med(r["sql_ms"].get(n, float("nan")) for r in runs)
                for n in ("remind", "overdue", "escalate", "notify")
            }
            case["median_python_ms"] = med(r["python_ms"] for r in runs)
            case["after_commit_jobs"] = runs[0]["after_commit_jobs"]
            case["enqueue_ms"] = runs[0]["enqueue_ms"]
            if args.explain:
                plans = await explain(engine, now)
                await vacuum(engine)
                case["plans"] = plans
                case["plan_summary"] = plan_summary(plans)
                if k == args.crossing[0] or args.explain_all:
                    for name, plan in plans.items():
                        print(f"\n-- EXPLAIN ANALYZE {name} (K={k:,})\n{plan}")
                print(f"   plans K={k:,}: {json.dumps(case['plan_summary'])}", flush=True)
            out["cases"].append(case)

        print()
        print(
            f"| items crossing (of {state['open']:,} open) | window | reminded / overdue / "
            "escalated | sweep ms, median (runs) | remind / overdue / escalate / notify "
            "ms | Python ms | < 2 s | jobs after commit (sent in ms) |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: |")
        for case in out["cases"]:
            r0 = case["runs"][0]
            sql = case["median_sql_ms"]
            runs_ms = ", ".join(f"{r['ms']:,.0f}" for r in case["runs"])
            print(
                f"| {r0['crossing']:,} | {case['window_s'] / 60:,.1f} min | {r0['reminded']:,} / "
                f"{r0['overdue']:,} / {r0['escalated']:,} | **{case['median_ms']:,.0f}** "
                f"({runs_ms}) | "
                + " / ".join(f"{sql[n]:,.0f}" for n in ("remind", "overdue", "escalate", "notify"))
                + f" | {case['median_python_ms']:,.0f} | "
                + ("yes" if case["median_ms"] < 2000 else "no")
                + f" | {case['after_commit_jobs']:,}"
                + (f" ({case['enqueue_ms']:,.0f})" if not math.isnan(case["enqueue_ms"]) else "")
                + " |"
            )
    finally:
        await engine.dispose()
        if redis is not None:
            await clear_redis(redis, ENQUEUE_PREFIX)
            await redis.aclose()
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"deadline-sweep-{stamp}.json"
        path.write_text(json.dumps(out, indent=2, default=str))
        print(f"\nresults: {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.deadline_sweep", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DB,
        help="a bench database (default: DATABASE_URL, else %(default)s)",
    )
    ap.add_argument("--count", type=int, default=1_000_000, help="open items")
    ap.add_argument(
        "--crossing",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1000, 10_000, 100_000],
        help="items crossing a deadline, comma-separated (default: %(default)s)",
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--staff-per-unit", type=int, default=3, help="1 manager + officers")
    ap.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each case")
    ap.add_argument("--explain-all", action="store_true", help="print every plan, not the first")
    ap.add_argument(
        "--time-enqueue",
        action="store_true",
        help="time sending the sweep's after-commit jobs to Redis (first run of each case)",
    )
    ap.add_argument(
        "--try-fixes",
        action="store_true",
        help="swap in the rewritten escalation UPDATE and notification INSERT (see the code)",
    )
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = ap.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
