"""Issue 19's ingest target: ≥ 5,000 events/s in signed batches of 500 on one API
process, against a floor measured in the same run.

    uv run python -m bench.dossier_ingest                      # defaults below
    uv run python -m bench.dossier_ingest --batches 60 --concurrency 4 --rounds 3

What it does:

1. a database of its own (``--database``, default ``city_bench_dossier_da``), migrated
   and loaded with the reference data by ``python -m app.cli setup``; an agency with a
   signing secret registered through the admin service;
2. the app (``app.main:create_app``) served by granian, one worker, on ``--port``;
3. per round, ``--batches`` batches of 500 fresh events, half ``dossier.upsert`` creating
   new dossiers (with a citizen ID to hash, fees and a due date) and half
   ``dossier.progress`` moving dossiers of an earlier batch to ``processing`` — signed
   (Standard Webhooks, the spec's HMAC written out here) before the clock starts, posted
   by ``--concurrency`` connections (aiohttp), each answer checked (200, 500 results, no
   refusal);
4. the floor: the same rows (dossiers inserted with the same columns, updated to
   processing, timeline events with the same columns, the batch row with its results)
   written by a bare asyncpg script with the same concurrency, four statements in one
   transaction per batch: what writing costs, without HTTP, signature, parsing,
   validation, the locking read, the look-up of seen event ids, ordering or results;

and prints events/s, the batch latency (p50/p95/p99) and the ratio app/floor per round
and as medians. Redis keys under ``--redis-prefix`` (default ``helper-da``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench.run import Server, _proc_cpu_s

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# ----------------------------------------------------------------------------- set-up


def setup_database(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "LOAD_DEMO_DATA": "true"}
    subprocess.run([sys.executable, "-m", "app.cli", "setup"], cwd=ROOT, env=env, check=True)


async def register_agency(url: str) -> tuple[str, str]:
    """An agency with a fresh secret, through the admin service (as the CLI does)."""
    from sqlalchemy import select

    from app import policy
    from app.core import db
    from app.dossiers import agencies
    from app.dossiers.ingest_schemas import AgencyIn
    from app.places.models import Unit
    from app.settings import get_settings

    settings = get_settings()
    engine = db.make_engine(settings)
    code = f"BENCH-{uuid.uuid4().hex[:6].upper()}"
    try:
        async with db.transaction(db.make_sessionmaker(engine), None) as session:
            unit_code = await session.scalar(select(Unit.code).order_by(Unit.code).limit(1))
            assert unit_code is not None
            actor = policy.system_actor(datetime.now(UTC))
            await agencies.create_agency(
                session,
                actor,
                AgencyIn(code=code, name_vi="Sở bench", name_en="Bench", unit_code=unit_code),
            )
            issued = await agencies.issue_secret(session, actor, code, timedelta(hours=1))
    finally:
        await engine.dispose()
    return code, issued.secret


# ----------------------------------------------------------------------------- the events


class Workload:
    """Batches of fresh events: each batch creates 250 dossiers and moves 250 created by
    the batch ``concurrency`` earlier (so the same connection sent them before)."""

    def __init__(self, run: str, batches: int, concurrency: int) -> None:
        self.run = run
        self.batches = batches
        self.concurrency = concurrency

    def code(self, batch: int, i: int) -> str:
        return f"B{self.run}-{batch:05d}-{i:03d}"

    def events(self, batch: int, at: datetime) -> list[dict]:
        half = BATCH // 2
        due = (at + timedelta(days=7)).isoformat()
        out: list[dict] = []
        for i in range(half):
            out.append(
                {
                    "id": f"u-{self.run}-{batch}-{i}",
                    "type": "dossier.upsert",
                    "dossier_code": self.code(batch, i),
                    "at": at.isoformat(),
                    "dossier": {
                        "procedure_code": "1.004227",
                        "procedure_name": "Đăng ký khai sinh",
                        "field_code": "HT",
                        "applicant": {
                            "name": "Nguyễn Văn An",
                            "kind": "person",
                            "citizen_id": f"001{batch % 1000:03d}{i:06d}",
                            "phone": "0912345678",
                        },
                        "summary": "Đăng ký khai sinh cho con",
                        "received_at": at.isoformat(),
                        "due_at": due,
                        "online": True,
                        "handling_unit": "UBND phường",
                        "fees": [{"name": "Lệ phí", "amount": 8000, "paid": True}],
                    },
                }
            )
        earlier = batch - self.concurrency
        for i in range(BATCH - half):
            if earlier >= 0:
                out.append(
                    {
                        "id": f"p-{self.run}-{batch}-{i}",
                        "type": "dossier.progress",
                        "dossier_code": self.code(earlier, i),
                        "at": (at + timedelta(seconds=1)).isoformat(),
                        "status": "processing",
                        "handler": "Trần Thị Bình",
                        "content": "Thẩm định hồ sơ",
                    }
                )
            else:  # the first batches of each connection: more creations
                out.append(
                    {
                        **out[i],
                        "id": f"u2-{self.run}-{batch}-{i}",
                        "dossier_code": self.code(batch, half + i),
                    }
                )
        return out


def signed_batches(work: Workload, secret: str, at: datetime) -> list[tuple[bytes, dict]]:
    stamp = int(datetime.now(UTC).timestamp())
    out = []
    for b in range(work.batches):
        body = json.dumps({"events": work.events(b, at)}, ensure_ascii=False).encode()
        webhook_id = f"msg-{work.run}-{b}"
        out.append(
            (
                body,
                {
                    "content-type": "application/json",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(secret, webhook_id, stamp, body),
                },
            )
        )
    return out


# ----------------------------------------------------------------------------- the runs


async def run_app(url: str, batches: list[tuple[bytes, dict]], concurrency: int) -> dict:
    import aiohttp

    latencies: list[float] = []
    problems: list[str] = []

    async def worker(k: int, session: aiohttp.ClientSession) -> None:
        for b in range(k, len(batches), concurrency):
            body, headers = batches[b]
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                payload = await r.read()
                status = r.status
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                problems.append(f"{status} {payload[:200]!r}")
                continue
            counts = json.loads(payload)["counts"]
            if counts["applied"] != BATCH:
                problems.append(json.dumps(counts))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k, session) for k in range(concurrency)))
        wall = time.perf_counter() - t0
    if problems:
        raise SystemExit(f"{len(problems)} batches not fully applied, e.g. {problems[:3]}")
    return {"wall": wall, "latencies": latencies}


async def run_floor(dsn: str, work: Workload, agency_code: str, concurrency: int) -> dict:
    """The same rows with bare asyncpg: per batch one transaction of INSERT dossiers
    (unnest), UPDATE dossiers (unnest), INSERT dossier_events (unnest), INSERT batch row."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    agency_id = await pool.fetchval("SELECT id FROM agencies WHERE code = $1", agency_code)
    at = datetime.now(UTC) - timedelta(minutes=1)
    latencies: list[float] = []
    ids: dict[str, uuid.UUID] = {}

    async def one(b: int) -> None:
        events = work.events(b, at)
        new = [e for e in events if e["type"] == "dossier.upsert"]
        moves = [e for e in events if e["type"] == "dossier.progress"]
        for e in new:
            ids[e["dossier_code"]] = uuid.uuid4()
        t0 = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO dossiers (id, code, agency_id, procedure_code, procedure_name,"
                " field_code, applicant_name, applicant_kind, applicant_id_hash,"
                " applicant_id_last4, applicant_phone, summary, handling_unit_name, online,"
                " status, received_at, due_at, status_at, status_seq, fees, results,"
                " created_at, updated_at)"
                " SELECT u.id, u.code, $3, u.pc, u.pn, u.fc, u.an, 'person', u.h, u.l4, u.ph,"
                " u.su, u.hu, true, 'received', $4, $4::timestamptz + interval '7 days', $4, 0,"
                " u.fees::jsonb, '[]', $4, $4"
                " FROM unnest($1::uuid[], $2::text[], $5::text[], $6::text[], $7::text[],"
                " $8::text[], $9::bytea[], $10::text[], $11::text[], $12::text[], $13::text[],"
                " $14::text[]) AS u(id, code, pc, pn, fc, an, h, l4, ph, su, hu, fees)",
                [ids[e["dossier_code"]] for e in new],
                [e["dossier_code"] for e in new],
                agency_id,
                at,
                [e["dossier"]["procedure_code"] for e in new],
                [e["dossier"]["procedure_name"] for e in new],
                [e["dossier"]["field_code"] for e in new],
                [e["dossier"]["applicant"]["name"] for e in new],
                [
                    hmac.new(
                        b"k", e["dossier"]["applicant"]["citizen_id"].encode(), "sha256"
                    ).digest()
                    for e in new
                ],
                [e["dossier"]["applicant"]["citizen_id"][-4:] for e in new],
                [e["dossier"]["applicant"]["phone"] for e in new],
                [e["dossier"]["summary"] for e in new],
                [e["dossier"]["handling_unit"] for e in new],
                [json.dumps(e["dossier"]["fees"]) for e in new],
            )
            if moves:
                await conn.execute(
                    "UPDATE dossiers d SET status = 'processing', status_at = $2,"
                    " status_seq = 0, updated_at = $2"
                    " FROM unnest($1::text[]) AS u(code) WHERE d.code = u.code",
                    [e["dossier_code"] for e in moves],
                    at,
                )
            await conn.execute(
                "INSERT INTO dossier_events (dossier_id, agency_id, event_id, at, seq, kind,"
                " from_status, to_status, applied, handler, content, received_at)"
                " SELECT d.id, $1, u.event_id, $2, 0, u.kind, u.fr, u.tos, true, u.ha, u.co, $2"
                " FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
                " $8::text[], $9::text[]) AS u(event_id, code, kind, fr, tos, ha, co)"
                " JOIN dossiers d ON d.code = u.code",
                agency_id,
                at,
                [f"floor-{e['id']}" for e in events],
                [e["dossier_code"] for e in events],
                ["upsert" if e["type"] == "dossier.upsert" else "progress" for e in events],
                [None if e["type"] == "dossier.upsert" else "received" for e in events],
                ["received" if e["type"] == "dossier.upsert" else "processing" for e in events],
                [e.get("handler") for e in events],
                [e.get("content") for e in events],
            )
            results = {
                "results": [{"id": e["id"], "result": "applied"} for e in events],
                "counts": {"applied": len(events), "recorded": 0, "duplicate": 0, "refused": 0},
            }
            await conn.execute(
                "INSERT INTO dossier_ingest_batches (agency_id, webhook_id, body_sha256,"
                " results) VALUES ($1, $2, $3, $4::text::jsonb)",
                agency_id,
                f"floor-{work.run}-{b}",
                hashlib.sha256(str(b).encode()).digest(),
                json.dumps(results),
            )
        latencies.append(time.perf_counter() - t0)

    async def worker(k: int) -> None:
        for b in range(k, work.batches, concurrency):
            await one(b)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall = time.perf_counter() - t0
    await pool.close()
    return {"wall": wall, "latencies": latencies}


def summary(name: str, result: dict, events: int) -> dict:
    lat = result["latencies"]
    return {
        "name": name,
        "events_per_s": events / result["wall"],
        "p50_ms": percentile(lat, 0.5) * 1000,
        "p95_ms": percentile(lat, 0.95) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "wall_s": result["wall"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dossier_ingest")
    ap.add_argument("--database", default="city_bench_dossier_da")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--port", type=int, default=18231)
    ap.add_argument("--batches", type=int, default=60, help="batches of 500 per round")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis-prefix", default="helper-da")
    ap.add_argument("--skip-setup", action="store_true")
    args = ap.parse_args(argv)

    dsn = f"{args.pg}/{args.database}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://")
    os.environ.update(
        {
            "DATABASE_URL": url,
            "REDIS_PREFIX": args.redis_prefix,
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )
    if not args.skip_setup:
        setup_database(url)
    from app.settings import get_settings

    get_settings.cache_clear()
    agency_code, secret = asyncio.run(register_agency(url))

    server = Server(
        "app",
        "app.main:create_app",
        factory=True,
        cpus=None,
        extra=[],
        ready_path="/health/live",
        log_dir=Path(tempfile.mkdtemp(prefix="bench-dossier-ingest-")),
    )
    server.cmd[server.cmd.index(str(server.port))] = str(args.port)
    server.port, server.url = args.port, f"http://127.0.0.1:{args.port}"
    server.start()
    rows = []
    try:
        target = f"{server.url}/api/v1/ingest/agencies/{agency_code}/events"
        for r in range(args.rounds):
            run = f"{uuid.uuid4().hex[:6]}"
            work = Workload(run, args.batches, args.concurrency)
            at = datetime.now(UTC) - timedelta(minutes=1)
            batches = signed_batches(work, secret, at)
            events = args.batches * BATCH
            cpu0 = _proc_cpu_s(server.proc.pid)  # type: ignore[union-attr]
            app_result = asyncio.run(run_app(target, batches, args.concurrency))
            cpu = _proc_cpu_s(server.proc.pid) - cpu0  # type: ignore[union-attr]
            floor_work = Workload(f"f{run}", args.batches, args.concurrency)
            floor_result = asyncio.run(run_floor(dsn, floor_work, agency_code, args.concurrency))
            a = summary("app", app_result, events)
            f = summary("floor", floor_result, events)
            a["cpu_ms_per_batch"] = cpu * 1000 / args.batches
            ratio = a["events_per_s"] / f["events_per_s"]
            rows.append((a, f, ratio))
            print(
                f"round {r + 1}: app {a['events_per_s']:,.0f} events/s "
                f"(batch p50 {a['p50_ms']:.0f} ms, p95 {a['p95_ms']:.0f}, p99 {a['p99_ms']:.0f}; "
                f"API CPU {a['cpu_ms_per_batch']:.0f} ms/batch) | floor "
                f"{f['events_per_s']:,.0f} events/s (p50 {f['p50_ms']:.0f} ms) | "
                f"ratio {ratio:.2f}",
                flush=True,
            )
    finally:
        server.stop()
    med = statistics.median
    print(
        f"median of {len(rows)}: app {med(a['events_per_s'] for a, _, _ in rows):,.0f} events/s, "
        f"p50 {med(a['p50_ms'] for a, _, _ in rows):.0f} ms, "
        f"p95 {med(a['p95_ms'] for a, _, _ in rows):.0f} ms, "
        f"p99 {med(a['p99_ms'] for a, _, _ in rows):.0f} ms; "
        f"floor {med(f['events_per_s'] for _, f, _ in rows):,.0f} events/s; "
        f"ratio {med(r for _, _, r in rows):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
