"""Bulk work on the queue (issue 22 item 2): ``POST /api/v1/console/reports/bulk`` answering
200 reports with one template in one request, against the same 200 answered one request
at a time (``POST /api/v1/console/templates/send/{id}``). Target: the bulk answer of 200
reports < 2 s.

    export UV_PYTHON_DOWNLOADS=never
    flock /tmp/bench.lock uv run python -m bench.bulk_answer            # seed, measure, drop
    flock /tmp/bench.lock uv run python -m bench.bulk_answer --keep     # keep the database

**Data**: a database of its own (``--database``, default ``city_bench_bulk``; the name must
start with ``city_bench``), created, migrated and loaded with Hanoi's reference data by
``python -m app.cli setup``; then ``200 × (1 + --rounds)`` reports of one ward committee
(``ubnd-00070``) in progress, each with its own resident reporter (so every answer
notifies someone), points on the ward; an officer of the unit; two templates of the unit
(a reply, and a resolution for reports in progress) with every placeholder.

**Measurement**: the app (``create_app``) in this process, requests through httpx's ASGI
transport (no network: the figure is the server's work,
PostgreSQL and Redis included).
Each measured request is one transaction, as in production: 200 savepoints, 200 lock +
action + timeline event + notification + audit row, push jobs enqueued after commit.

Each round (``--rounds``, interleaved so all three see the same load on a shared machine):

1. **bulk reply**: one request answering the same 200 reports with the reply
   template (a reply leaves the status, so every round answers the same reports);
2. **single reply**: the same 200 reports answered one request each;
   per request and the sum over 200 (the same work as one bulk request);
3. **bulk resolution**: one request resolving 200 fresh reports in
   progress with the resolution template (the heavier action: on-time verdict, working
   days, rating request).

p50/p95 over the rounds (a bulk request is one sample), printed as JSON and written to
``bench/results/bulk-answer-<timestamp>.json``. The database is dropped at the end unless
``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench bulk answer password"
UNIT = "ubnd-00070"
BATCH = 200


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def bench_url(name: str) -> str:
    if not name.startswith("city_bench"):
        raise SystemExit(f"refusing database {name!r}: a bench database starts with city_bench")
    base = os.environ.get("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/city")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


SEED = """
WITH unit AS (SELECT id, area_code FROM units WHERE code = :unit),
residents AS (
    INSERT INTO users (id, kind, identity_level)
    SELECT gen_random_uuid(), 'resident', 1 FROM generate_series(1, :n)
    RETURNING id
),
numbered AS (SELECT id, row_number() OVER () AS n FROM residents)
INSERT INTO reports (id, code, kind, status, category_code, description, location, area_code,
                     reporter_id, hide_identity, unit_id, routed_at, due_at, created_at,
                     updated_at)
SELECT gen_random_uuid(), 'BULK' || lpad(r.n::text, 6, '0'), 'complaint', 'in_progress', 'roads',
       'Ổ gà trên đường, cần vá lại.', ST_PointOnSurface(a.geom), unit.area_code, r.id, false,
       unit.id, now() - interval '1 hour', now() + interval '6 days',
       now() - interval '2 hours', now()
  FROM numbered r, unit JOIN areas a ON a.code = unit.area_code
"""

TEMPLATES = """
INSERT INTO response_templates (id, unit_id, category_code, for_status, title, body_vi, body_en,
                                target_status)
SELECT :id, u.id, 'roads', :for_status, :title,
       'Phản ánh {code} ({category}) đã được {unit} xử lý; hạn {deadline}, '
       || 'còn {working_days} ngày làm việc.',
       'Report {code} ({category}) was handled by {unit}; due {deadline}, '
       || '{working_days} working days left.',
       :target
  FROM units u WHERE u.code = :unit
"""


async def seed(url: str, reports: int) -> tuple[uuid.UUID, uuid.UUID]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.accounts import service as accounts
    from app.core import db

    engine = create_async_engine(url)
    reply, resolve = uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(SEED), {"unit": UNIT, "n": reports})
            for tid, target, for_status, title in (
                (reply, None, None, "Trả lời"),
                (resolve, "resolved", "in_progress", "Đã xử lý"),
            ):
                await conn.execute(
                    text(TEMPLATES),
                    {
                        "id": tid,
                        "unit": UNIT,
                        "target": target,
                        "for_status": for_status,
                        "title": title,
                    },
                )
        async with db.transaction(db.make_sessionmaker(engine), None) as session:
            await accounts.create_staff(
                session, "bench-bulk@city.test", "Cán bộ bench", PASSWORD, [("officer", UNIT)]
            )
        async with engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("VACUUM (ANALYZE)"))
    finally:
        await engine.dispose()
    return reply, resolve


async def measure(url: str, rounds: int, reply: uuid.UUID, resolve: uuid.UUID) -> dict:
    import httpx
    import msgspec
    from sqlalchemy import text

    from app.main import create_app
    from app.settings import get_settings

    settings = msgspec.structs.replace(
        get_settings(),
        database_url=url,
        redis_prefix=f"bench-bulk-{uuid.uuid4().hex[:6]}",
        report_rate_per_resident="100000/hour",
    )
    app = create_app(settings)
    results: dict = {}
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    # the app's lifespan (engine, Redis, reference data) around the measured requests
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://b") as http:
        login = await http.post(
            "/api/v1/auth/staff/login",
            json={"email": "bench-bulk@city.test", "password": PASSWORD},
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        async with app.state.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, code FROM reports ORDER BY code"))).all()
        batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        first, fresh = batches[0], batches[1:]

        async def timed(method: str, path: str, body: dict) -> float:
            t0 = time.perf_counter()
            r = await http.request(method, path, json=body, headers=headers)
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            return elapsed

        async def bulk(template: uuid.UUID, batch: list) -> float:
            t0 = time.perf_counter()
            r = await http.post(
                "/api/v1/console/reports/bulk",
                json={
                    "action": "answer",
                    "template_id": str(template),
                    "codes": [row.code for row in batch],
                },
                headers=headers,
            )
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200 and r.json()["done"] == len(batch), r.text[:500]
            return elapsed

        await bulk(reply, first)  # warm-up (connections, statement caches)
        bulk_reply: list[float] = []
        singles: list[float] = []
        sums: list[float] = []
        bulk_resolve: list[float] = []
        load_before = os.getloadavg()[0]
        # interleaved, so the three see the same load on a shared machine
        for batch in fresh[:rounds]:
            bulk_reply.append(await bulk(reply, first))
            one_round = [
                await timed(
                    "POST",
                    f"/api/v1/console/templates/send/{row.id}",
                    {"template_id": str(reply)},
                )
                for row in first
            ]
            singles += one_round
            sums.append(sum(one_round))
            bulk_resolve.append(await bulk(resolve, batch))
        results["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]

    def summary(xs: list[float]) -> dict:
        return {
            "n": len(xs),
            "p50_ms": round(percentile(xs, 0.5) * 1000, 1),
            "p95_ms": round(percentile(xs, 0.95) * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1),
        }

    results["bulk_reply_200"] = summary(bulk_reply)
    results["single_reply"] = summary(singles)
    results["single_reply_x200_sum"] = summary(sums)
    results["bulk_resolve_200"] = summary(bulk_resolve)
    results["ratio_bulk_to_200_singles"] = round(
        statistics.median(bulk_reply) / statistics.median(sums), 2
    )
    results["target_bulk_200_under_ms"] = 2000
    return results


def drop(name: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}"'],
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="city_bench_bulk")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = bench_url(args.database)
    drop(args.database)
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run(
        [sys.executable, "-m", "app.cli", "setup"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        reply, resolve = asyncio.run(seed(url, BATCH * (1 + args.rounds)))
        results = asyncio.run(measure(url, args.rounds, reply, resolve))
        results["at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["cpus"] = os.cpu_count()
        print(json.dumps(results, indent=2))
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        (out / f"bulk-answer-{stamp}.json").write_text(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            drop(args.database)


if __name__ == "__main__":
    main()
