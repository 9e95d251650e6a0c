"""Announcement fan-out and push throughput of ONE worker process, against the FCM
stand-in, with the worker's peak memory.

    cd /work/main && UV_PYTHON_DOWNLOADS=never uv run python -m bench.push_fanout

That runs both scenarios, three times each, on ``city_bench_push`` (created and migrated
with ``python -m app.cli setup`` if missing):

(a) throughput — an announcement to ``--throughput-followers`` (20,000) residents of one
    ward, each with one device: pushes per second;
(b) scale — an announcement to ``--followers`` (200,000) residents of another ward, each
    with one device (``--device-share`` to change that): wall time, peak worker RSS (the
    kernel's ``VmHWM`` of the worker process), every inbox row written and every device
    pushed exactly once.

(sender) ``--scenario sender``: ``FcmPushSender.send`` alone, no database or queue (the
    client's floor: messages/s and CPU per message of the sender and the stand-in).

``--scenario a|b|both|sender``, ``--runs N``, ``--database-url`` and ``--redis-url`` change
that; ``--in-flight N`` tries another ``app.core.push.IN_FLIGHT`` in the worker (messages
in flight per sender) and ``--push-batch N`` another ``push.PUSH_JOB_BATCH``
(notifications per push job) without editing the code. The database's name must start with
``city_bench``: the script deletes its own rows (bench users are named ``bench-push``;
their announcements, inbox rows and deliveries) before each run.

What runs
    - The FCM stand-in of the tests (``tests/standins/fcm.py``: OAuth token endpoint and
      ``messages:send``, the real wire protocol) in a child process of its own, on
      loopback; a thread there drains its request log every half second, counting sends,
      answers and the distinct device tokens delivered to (so a push sent twice shows).
    - A fresh worker process per run: ``workers.main``'s WorkerSettings (start-up, max_jobs
      20, job timeout, retries) plus the notification jobs, no crons, with
      ``FIREBASE_CREDENTIALS_FILE`` / ``FCM_URL`` pointing the real firebase-admin SDK at
      the stand-in (exactly as ``tests/notifications/conftest.py`` configures the sender).
      The sender speaks HTTP/1.1 to it over kept-alive connections
      (``app.core.http1``), as it does to real FCM (there over TLS, which costs the worker
      more CPU than this).
    - The announcement is created by the service (``create_announcement``: the row, the
      audit entry, the fan-out job enqueued after the commit) as an admin, **urgent** so
      that quiet hours (on by default, 22:00–06:00 Hanoi time) do not hold it whatever
      the hour the bench runs at.
    - The database holds ``--history`` (200,000) old inbox rows of other residents, with
      their deliveries, written once and kept: a city that has been running, so that the
      tables and PostgreSQL's statistics look like production's, not a fresh install's.
    - The script polls the announcement (status, inbox rows, rows still pending) and the
      worker's RSS every 0.25 s until every row is settled.

Figures per run: how long after the announcement was committed each push reached the
stand-in (p50/p95/p99, from the stand-in's answer times on the system-wide monotonic
clock); wall time (announcement committed → last row settled); pushes/s over
that wall time (the fan-out overlaps the pushes) and over the push span (the last poll
before the first row settled → the last settled); inbox rows per second of the fan-out
(committed → status ``done``); worker RSS after start-up and peak;
CPU seconds used by the worker, the stand-in and everything else during the run (from
/proc), and the load average — other benchmarks may share the machine. Medians of the
runs; everything goes to ``bench/results/push-fanout-<timestamp>.json``, the worker's
logs next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_push"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
BENCH_NAME = "bench-push"
ADMIN_ID = uuid.uuid5(uuid.NAMESPACE_URL, "city-bench-push-admin")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0])
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (and its waited-for children), seconds."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as file:
        values = [int(x) for x in file.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


# ------------------------------------------------------------------------- the stand-in


def _standin_main(conn, service_account: str, tls: bool = False, delay: float = 0.0) -> None:
    """Child process: the FCM stand-in, its log drained and counted."""
    sys.path.insert(0, str(ROOT))
    from tests.standins.fcm import FcmStandin

    standin = FcmStandin(tls=tls, delay=delay).start()
    standin.write_service_account(Path(service_account))
    conn.send((standin.send_url_template, standin.ca_file))
    lock = threading.Lock()
    counts: dict[str, Any] = {"sends": 0, "ok": 0, "errors": 0, "token_requests": 0}
    seen: set[str] = set()
    duplicates = [0]
    answered: list[float] = []  # time.monotonic() of each 200 answer (system-wide clock)

    def drain() -> None:
        with standin._lock:
            requests, standin.requests = standin.requests, []
            delivered, standin.delivered = standin.delivered, []
        with lock:
            for request in requests:
                if request.path == "/token":
                    counts["token_requests"] += 1
                else:
                    counts["sends"] += 1
                    counts["ok" if request.status == 200 else "errors"] += 1
                    if request.status == 200:
                        answered.append(request.received_at)
            for message in delivered:
                token = message.get("token")
                if token in seen:
                    duplicates[0] += 1
                else:
                    seen.add(token)

    def drain_forever() -> None:
        while True:
            time.sleep(0.5)
            drain()

    threading.Thread(target=drain_forever, daemon=True).start()
    while True:
        command = conn.recv()
        if command == "stats":
            drain()
            with lock:
                conn.send(
                    {
                        **counts,
                        "distinct_tokens": len(seen),
                        "duplicates": duplicates[0],
                        "answered_at": sorted(answered),
                    }
                )
        elif command == "reset":
            drain()
            with lock:
                counts.update(sends=0, ok=0, errors=0, token_requests=0)
                seen.clear()
                duplicates[0] = 0
                answered.clear()
            conn.send("ok")
        else:
            standin.stop()
            conn.send("stopped")
            return


class Standin:
    """The stand-in in a child process; ``tls`` serves HTTPS (trust ``ca_file``),
    ``delay`` holds every answer that many seconds (an added round trip)."""

    def __init__(self, directory: Path, *, tls: bool = False, delay: float = 0.0) -> None:
        self.service_account = str(directory / "service-account.json")
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=_standin_main, args=(child, self.service_account, tls, delay), daemon=True
        )
        self.process.start()
        self.send_url_template, self.ca_file = self._conn.recv()
        self.ca_file = self.ca_file or ""

    def call(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        try:
            self.call("stop")
        finally:
            self.process.join(timeout=5)


# ------------------------------------------------------------------------- the worker


def worker_main() -> None:
    """``python -m bench.push_fanout worker``: the real worker settings plus the
    notification jobs (until workers/main.py lists them), no crons."""
    from arq.worker import Worker

    from app.notifications import jobs as notification_jobs
    from workers import main as worker_main_module

    push_batch = os.environ.get("BENCH_PUSH_BATCH")
    if push_batch:  # experiment: notifications per push job of an announcement
        from app.notifications import push

        push.PUSH_JOB_BATCH = int(push_batch)
    in_flight = os.environ.get("BENCH_PUSH_IN_FLIGHT")
    if in_flight:  # experiment: app.core.push's concurrency per sender (see --in-flight)
        import app.core.push

        app.core.push.IN_FLIGHT = int(in_flight)
    if os.environ.get("BENCH_PUSH_TRANSPORT") == "aiohttp":  # the comparison (--transport)
        from bench import aiohttp_transport

        aiohttp_transport.install()
    if os.environ.get("BENCH_UVLOOP"):  # experiment
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if os.environ.get("BENCH_GC_THRESHOLD"):  # experiment, e.g. 10000,10,10
        import gc

        gc.set_threshold(*(int(n) for n in os.environ["BENCH_GC_THRESHOLD"].split(",")))
    cls = worker_main_module.WorkerSettings
    on_startup = cls.on_startup
    fanout_batch = os.environ.get("BENCH_FANOUT_BATCH")
    if fanout_batch:  # experiment: followers per fan-out step (announcements.FANOUT_BATCH)

        async def on_startup(ctx: dict[str, Any]) -> None:
            await cls.on_startup(ctx)
            ctx["announcement_batch"] = int(fanout_batch)

    functions = {
        f.__name__: f
        for f in [
            *cls.functions,
            notification_jobs.push_notification,
            notification_jobs.push_notification_batch,
            notification_jobs.send_announcement,
            notification_jobs.reconcile_pushes,
            notification_jobs.release_deferred_pushes,
        ]
    }
    worker = Worker(
        functions=list(functions.values()),
        cron_jobs=[],
        on_startup=on_startup,
        on_shutdown=cls.on_shutdown,
        redis_settings=cls.redis_settings,
        queue_name=cls.queue_name,
        max_jobs=cls.max_jobs,
        job_timeout=cls.job_timeout,
        keep_result=cls.keep_result,
        max_tries=cls.max_tries,
        health_check_key=cls.health_check_key,
    )
    worker.run()


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "w") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.push_fanout", "worker"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip


# ------------------------------------------------------------------------- data


def check_bench_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database or ""
    if not name.startswith("city_bench"):
        raise SystemExit(f"refusing to run on {name!r}: use a database named city_bench*")


def setup_database(url: str) -> None:
    env = dict(os.environ, DATABASE_URL=url, ENVIRONMENT="bench")
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "setup"], cwd=ROOT, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"app.cli setup failed:\n{proc.stderr[-3000:]}")


SEED_USERS = """
INSERT INTO users (id, kind, locale, home_area_code, identity_level, full_name)
SELECT CAST(md5('bench-push:' || :area || ':' || g) AS uuid), 'resident',
       CASE WHEN g % 5 = 0 THEN 'en' ELSE 'vi' END, :area, 1, :name
  FROM generate_series(1, :n) AS g
ON CONFLICT (id) DO NOTHING
"""

SEED_DEVICES = """
INSERT INTO devices (id, user_id, token, platform)
SELECT CAST(md5('bench-push-device:' || :area || ':' || g) AS uuid),
       CAST(md5('bench-push:' || :area || ':' || g) AS uuid),
       'bench-' || :area || '-' || g || ':' || repeat('x', 140), 'android'
  FROM generate_series(1, :n) AS g
 WHERE g % 1000 < :per_mille
ON CONFLICT DO NOTHING
"""


HISTORY_NAME = "bench-history"
SEED_HISTORY = [
    """
    INSERT INTO users (id, kind, locale, identity_level, full_name)
    SELECT CAST(md5('bench-history:' || g) AS uuid), 'resident', 'vi', 1, :name
      FROM generate_series(1, :users) AS g
    """,
    """
    INSERT INTO devices (id, user_id, token, platform, disabled_at)
    SELECT CAST(md5('bench-history-device:' || g) AS uuid),
           CAST(md5('bench-history:' || g) AS uuid),
           'history-' || g || ':' || repeat('y', 140), 'android',
           CASE WHEN g % 10 = 0 THEN now() - interval '30 days' END
      FROM generate_series(1, :users) AS g
    """,
    """
    INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, created_at,
                               read_at, push_status)
    SELECT CAST(md5('bench-history:' || u) AS uuid), 'report_answered',
           'Phản ánh của bạn đã có trả lời', 'Phường đã trả lời phản ánh của bạn.',
           jsonb_build_object('report_code', 'HIST-' || u || '-' || k),
           'history:' || u || ':' || k,
           now() - (k * interval '7 days') - (u * interval '1 second'),
           CASE WHEN k > 1 THEN now() - (k * interval '6 days') END,
           CASE WHEN u % 10 = 0 THEN 'no_device' ELSE 'sent' END
      FROM generate_series(1, :users) AS u, generate_series(1, :per_user) AS k
    """,
    """
    INSERT INTO notification_deliveries (notification_id, device_id, status, attempts,
                                         fcm_message_id, created_at, attempted_at, sent_at)
    SELECT n.id, d.id, 'sent', 1, 'projects/p/messages/history-' || n.id,
           n.created_at, n.created_at, n.created_at
      FROM notifications n JOIN devices d ON d.user_id = n.user_id AND d.disabled_at IS NULL
      JOIN users u ON u.id = n.user_id AND u.full_name = :name
    """,
]


async def ensure_history(engine, notifications: int) -> None:
    """A city that has been running: ``notifications`` old inbox rows (4 per resident, of
    residents who follow no ward, 90 % with a device and a ``sent`` delivery), made once
    and kept between runs, so that the tables and the planner's statistics look like
    production's rather than like a fresh install's (empty tables, on which PostgreSQL
    plans as if they stayed empty)."""
    from sqlalchemy import text

    per_user = 4
    users = notifications // per_user
    async with engine.begin() as conn:
        have = await conn.scalar(
            text("SELECT count(*) FROM users WHERE full_name = :name"), {"name": HISTORY_NAME}
        )
        if have == users:
            return
        print(f"writing the history: {users * per_user} notifications …", flush=True)
        await conn.execute(
            text("DELETE FROM users WHERE full_name = :name"), {"name": HISTORY_NAME}
        )
        for statement in SEED_HISTORY:
            await conn.execute(
                text(statement), {"name": HISTORY_NAME, "users": users, "per_user": per_user}
            )


async def prepare(engine, area: str, followers: int, device_share: float) -> int:
    """The bench admin; ``followers`` bench residents of ``area`` (more are removed),
    ``device_share`` of them with a device. Returns the number of devices."""
    from sqlalchemy import text

    per_mille = round(device_share * 1000)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, kind, identity_level, full_name) "
                "VALUES (:id, 'staff', 0, :name) ON CONFLICT (id) DO NOTHING"
            ),
            {"id": ADMIN_ID, "name": BENCH_NAME},
        )
        await conn.execute(
            text(
                "INSERT INTO staff_roles (id, user_id, role) SELECT :rid, :id, 'admin' "
                "WHERE NOT EXISTS (SELECT 1 FROM staff_roles WHERE user_id = :id)"
            ),
            {"rid": uuid.uuid5(ADMIN_ID, "role"), "id": ADMIN_ID},
        )
        have = await conn.scalar(
            text("SELECT count(*) FROM users WHERE full_name = :name AND home_area_code = :area"),
            {"name": BENCH_NAME, "area": area},
        )
        if have > followers:  # another size before: start this area over
            await conn.execute(
                text("DELETE FROM users WHERE full_name = :name AND home_area_code = :area"),
                {"name": BENCH_NAME, "area": area},
            )
        params = {"area": area, "n": followers, "name": BENCH_NAME}
        await conn.execute(text(SEED_USERS), params)
        await conn.execute(
            text(
                "DELETE FROM devices d USING users u WHERE d.user_id = u.id "
                "AND u.full_name = :name AND u.home_area_code = :area"
            ),
            {"name": BENCH_NAME, "area": area},
        )
        await conn.execute(text(SEED_DEVICES), {**params, "per_mille": per_mille})
        devices = await conn.scalar(
            text(
                "SELECT count(*) FROM devices d JOIN users u ON u.id = d.user_id "
                "WHERE u.full_name = :name AND u.home_area_code = :area"
            ),
            {"name": BENCH_NAME, "area": area},
        )
    return int(devices)


async def clean(engine) -> None:
    """Delete the bench's announcements (their inbox rows and deliveries go with them),
    then VACUUM so every run starts from the same state."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM announcements WHERE sender_id = :id"), {"id": ADMIN_ID}
        )
        await conn.execute(text("DELETE FROM audit_log WHERE actor_id = :id"), {"id": ADMIN_ID})
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(
            text("VACUUM ANALYZE notifications, notification_deliveries, users, devices")
        )


async def wards(engine) -> list[str]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = await conn.scalars(
            text(
                "SELECT area_code FROM units WHERE kind = 'ward_committee' "
                "AND area_code IS NOT NULL ORDER BY code LIMIT 2"
            )
        )
        return list(rows)


# ------------------------------------------------------------------------- one run


async def one_run(
    args,
    engine,
    standin: Standin,
    area: str,
    devices: int,
    log_dir: Path,
    tag: str,
    transport: str = "http1",
) -> dict:
    from arq.connections import ArqRedis
    from redis.asyncio import ConnectionPool
    from sqlalchemy import text

    from app.core import db
    from app.core.auth import Principal, RoleGrant
    from app.notifications.announcements import create_announcement
    from app.notifications.schemas import AnnouncementIn, AnnouncementText, AnnouncementTexts
    from app.policy import build_actor

    await clean(engine)
    standin.call("reset")
    prefix = f"bench-push:{tag}"
    env = dict(
        os.environ,
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        REDIS_PREFIX=prefix,
        FIREBASE_CREDENTIALS_FILE=standin.service_account,
        FCM_URL=standin.send_url_template,
        FCM_CA_FILE=standin.ca_file,
        BENCH_PUSH_TRANSPORT=transport,
        LOG_LEVEL="INFO",
        ENVIRONMENT="bench",
    )
    if args.in_flight:
        env["BENCH_PUSH_IN_FLIGHT"] = str(args.in_flight)
    if args.push_batch:
        env["BENCH_PUSH_BATCH"] = str(args.push_batch)
    log_path = log_dir / f"worker-{tag}.log"
    worker = start_worker(env, log_path)
    redis = ArqRedis(
        pool_or_conn=ConnectionPool.from_url(args.redis_url), default_queue_name=f"{prefix}:queue"
    )
    try:
        # wait for the worker's start-up (its heartbeat)
        deadline = time.monotonic() + 60
        while not await redis.exists(f"{prefix}:worker:heartbeat"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start; see {log_path}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        rss_idle = proc_status(worker.pid)["VmRSS"]
        load_before = os.getloadavg()
        busy0, total0 = machine_cpu()
        worker_cpu0 = proc_cpu(worker.pid)
        standin_cpu0 = proc_cpu(standin.process.pid)

        sessionmaker = db.make_sessionmaker(engine)
        principal = Principal(ADMIN_ID, "staff", 0, uuid.uuid4(), (RoleGrant("admin"),))
        body = AnnouncementIn(
            texts=AnnouncementTexts(
                vi=AnnouncementText(
                    title="Cảnh báo ngập úng",
                    body="Mưa lớn, nước dâng trên nhiều tuyến phố. Hạn chế ra đường.",
                ),
                en=AnnouncementText(
                    title="Flood warning", body="Heavy rain, streets flooding. Stay home."
                ),
            ),
            area_codes=[area],
            urgent=True,
        )
        started = time.monotonic()
        async with db.transaction(sessionmaker, redis) as session:
            # an admin's actor (the action layer takes an actor since issue 18 item 3)
            now = datetime.now(UTC)
            actor = build_actor(principal, frozenset(), now)
            created = await create_announcement(session, actor, body, now)
        peak_sampled = rss_idle
        written_at = None
        first_push_after = None
        last_elapsed = 0.0
        samples = []
        while True:
            await asyncio.sleep(0.25)
            if worker.poll() is not None:
                raise SystemExit(f"worker died; see {log_path}")
            rss = proc_status(worker.pid)["VmRSS"]
            peak_sampled = max(peak_sampled, rss)
            # as little work as the question needs (the polls share the machine with what
            # they measure): whether any row has settled until one has, then the
            # announcement's row until the fan-out is done, then the rows still pending
            async with engine.connect() as conn:
                status, rows = (
                    await conn.execute(
                        text("SELECT status, inbox_rows FROM announcements WHERE id = :id"),
                        {"id": created.id},
                    )
                ).one()
                if first_push_after is None and await conn.scalar(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM notifications WHERE announcement_id = :id"
                        " AND push_status <> 'pending')"
                    ),
                    {"id": created.id},
                ):
                    first_push_after = last_elapsed  # the last sample before one settled
                pending = None
                if status == "done":
                    pending = await conn.scalar(
                        text(
                            "SELECT count(*) FROM notifications "
                            "WHERE announcement_id = :id AND push_status = 'pending'"
                        ),
                        {"id": created.id},
                    )
            elapsed = time.monotonic() - started
            samples.append((round(elapsed, 2), rss, rows, pending))
            last_elapsed = elapsed
            if status == "done" and written_at is None:
                written_at = elapsed
            if status == "done" and pending == 0:
                break
            if elapsed > args.timeout:
                raise SystemExit(f"run timed out after {elapsed:.0f} s; see {log_path}")
        wall = time.monotonic() - started
        status_now = proc_status(worker.pid)
        worker_cpu = proc_cpu(worker.pid) - worker_cpu0
        standin_cpu = proc_cpu(standin.process.pid) - standin_cpu0
        busy1, total1 = machine_cpu()
        load_after = os.getloadavg()
        async with engine.connect() as conn:
            facts = (
                await conn.execute(
                    text(
                        """
                        SELECT a.inbox_rows, a.recipients,
                               extract(epoch FROM a.finished_at - a.started_at),
                               (SELECT count(*) FROM notifications n
                                 WHERE n.announcement_id = a.id AND n.push_status = 'sent'),
                               (SELECT count(*) FROM notification_deliveries d
                                  JOIN notifications n ON n.id = d.notification_id
                                 WHERE n.announcement_id = a.id AND d.status = 'sent')
                          FROM announcements a WHERE a.id = :id
                        """
                    ),
                    {"id": created.id},
                )
            ).one()
        inbox_rows, recipients, fanout_s, notif_sent, deliveries_sent = facts
        fcm = standin.call("stats")
        # how long after the announcement was committed each push reached FCM
        reached = [t - started for t in fcm.pop("answered_at")]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        await redis.aclose()
    cores = (busy1 - busy0) / ((total1 - total0) / os.cpu_count()) if total1 > total0 else 0
    result = {
        "followers": recipients,
        "devices": devices,
        "inbox_rows": inbox_rows,
        "notifications_sent": notif_sent,
        "deliveries_sent": deliveries_sent,
        "fcm": fcm,
        "wall_s": round(wall, 2),
        "inbox_rows_done_s": round(written_at or 0, 2),
        "fanout_rows_per_s": round(inbox_rows / written_at, 0) if written_at else None,
        "fanout_steps_s": round(float(fanout_s or 0), 2),
        "pushes_per_s_wall": round(deliveries_sent / wall, 1),
        "push_span_s": round(wall - (first_push_after or 0), 2),
        "pushes_per_s_span": round(deliveries_sent / (wall - (first_push_after or 0)), 1),
        "reached_fcm_s": {
            f"p{q}": round(reached[min(len(reached) - 1, len(reached) * q // 100)], 2)
            for q in (50, 95, 99)
        }
        if reached
        else None,
        "worker_rss_idle_mb": round(rss_idle / 1024, 1),
        "worker_rss_peak_mb": round(status_now["VmHWM"] / 1024, 1),
        "worker_rss_peak_sampled_mb": round(peak_sampled / 1024, 1),
        "worker_cpu_s": round(worker_cpu, 2),
        "worker_cpu_us_per_push": round(1e6 * worker_cpu / deliveries_sent, 0)
        if deliveries_sent
        else None,
        "standin_cpu_s": round(standin_cpu, 2),
        "machine_busy_cores": round(cores, 2),
        "others_cpu_s": round((busy1 - busy0) - worker_cpu - standin_cpu, 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "ok": inbox_rows == recipients
        and deliveries_sent == devices
        and fcm["distinct_tokens"] == devices
        and fcm["duplicates"] == 0
        and fcm["errors"] == 0,
        "samples": samples[:: max(1, len(samples) // 60)],
    }
    return result


def summary(runs: list[dict]) -> dict:
    keys = [
        "wall_s",
        "inbox_rows_done_s",
        "fanout_rows_per_s",
        "pushes_per_s_wall",
        "pushes_per_s_span",
        "worker_rss_idle_mb",
        "worker_rss_peak_mb",
        "worker_cpu_us_per_push",
        "machine_busy_cores",
    ]
    out = {}
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    out["reached_fcm_s"] = {
        q: statistics.median(r["reached_fcm_s"][q] for r in runs) for q in ("p50", "p95", "p99")
    }
    out["max_worker_rss_peak_mb"] = max(r["worker_rss_peak_mb"] for r in runs)
    out["all_ok"] = all(r["ok"] for r in runs)
    return out


def show(name: str, run: dict) -> None:
    print(
        f"  {name}: {run['followers']:>7} followers {run['devices']:>7} devices | "
        f"wall {run['wall_s']:7.1f} s (rows done {run['inbox_rows_done_s']:6.1f} s, "
        f"{run['fanout_rows_per_s']} rows/s) | "
        f"{run['pushes_per_s_wall']:7.1f} pushes/s wall, {run['pushes_per_s_span']} span | "
        f"reached FCM after p50/p95/p99 {'/'.join(map(str, run['reached_fcm_s'].values()))} s | "
        f"RSS {run['worker_rss_idle_mb']} → peak {run['worker_rss_peak_mb']} MB | "
        f"worker {run['worker_cpu_us_per_push']} µs CPU/push | busy cores "
        f"{run['machine_busy_cores']} load {run['load_before'][0]}→{run['load_after'][0]} | "
        f"ok={run['ok']}",
        flush=True,
    )


async def floor_rate(standin: Standin, messages: int = 20_000, runs: int = 3) -> dict:
    """The floor: the same FCM v1 requests from a bare :class:`app.core.http1.Http1Pool`
    (``IN_FLIGHT`` connections, 500 requests started at a time; no SDK, no database, no
    queue) to the same stand-in (over TLS when it speaks TLS). Median messages/s of
    ``runs`` and CPU µs per message of this process and of the stand-in."""
    import ssl

    import google.auth.transport.requests

    from app.core.http1 import Http1Pool
    from app.core.push import IN_FLIGHT, load_credential
    from app.settings import Settings

    settings = Settings(
        firebase_credentials_file=standin.service_account, fcm_url=standin.send_url_template
    )
    certificate = load_credential(settings)
    credential = certificate.get_credential()
    auth_request = google.auth.transport.requests.Request()
    verify = standin.ca_file or True
    await asyncio.to_thread(credential.refresh, functools.partial(auth_request, verify=verify))
    url = standin.send_url_template.format(certificate.project_id)
    context = ssl.create_default_context(cafile=standin.ca_file) if standin.ca_file else None
    pool = Http1Pool(url, size=IN_FLIGHT, ssl_context=context)
    target = url[len(pool.origin) :]
    headers = (
        f"authorization: Bearer {credential.token}\r\ncontent-type: application/json\r\n"
    ).encode()

    def body(i: int) -> bytes:
        return json.dumps(
            {
                "message": {
                    "token": f"floor-{i}:" + "x" * 140,
                    "notification": {"title": "Cảnh báo ngập úng", "body": "Mưa lớn."},
                    "data": {"notification_id": str(i), "kind": "announcement_urgent"},
                    "android": {"priority": "high", "notification": {"sound": "default"}},
                    "apns": {"payload": {"aps": {"badge": 1, "sound": "default"}}},
                }
            },
            ensure_ascii=False,
        ).encode()

    async def one(i: int) -> None:
        response = await pool.request("POST", target, headers=headers, body=body(i))
        if response.status != 200:
            raise SystemExit(f"floor: the stand-in answered {response.status}")

    rates, cpu, standin_cpu = [], [], []
    try:
        for _ in range(runs):
            cpu0, s0 = time.process_time(), proc_cpu(standin.process.pid)
            started = time.perf_counter()
            for start in range(0, messages, 500):
                await asyncio.gather(*(one(i) for i in range(start, start + 500)))
            rates.append(messages / (time.perf_counter() - started))
            cpu.append(1e6 * (time.process_time() - cpu0) / messages)
            standin_cpu.append(1e6 * (proc_cpu(standin.process.pid) - s0) / messages)
    finally:
        await pool.aclose()
    standin.call("reset")
    floor = {
        "messages_per_s": round(statistics.median(rates)),
        "runs": [round(r) for r in rates],
        "client_cpu_us": round(statistics.median(cpu), 1),
        "standin_cpu_us": round(statistics.median(standin_cpu), 1),
    }
    print(f"floor (bare Http1Pool → stand-in): {json.dumps(floor)}", flush=True)
    await asyncio.sleep(0)
    return floor


async def sender_only(args) -> None:
    """``--scenario sender``: ``FcmPushSender.send`` alone (no database, no queue, no arq)
    in this process, ``--sender-messages`` messages in batches of 500, ``--sender-batches``
    batches at once (as several push jobs would), to the stand-in in its own process.
    Prints messages/s and CPU µs per message of this process and of the stand-in."""
    import app.core.push
    from app.core.push import FcmPushSender, PushMessage
    from app.settings import Settings

    if args.in_flight:
        app.core.push.IN_FLIGHT = args.in_flight

    def batch(tag: str) -> list[PushMessage]:
        return [
            PushMessage(
                token=f"bench-{tag}-{i}:" + "x" * 140,
                title="Cảnh báo ngập úng",
                body="Mưa lớn, nước dâng trên nhiều tuyến phố. Hạn chế ra đường.",
                data={"notification_id": str(i), "kind": "announcement_urgent"},
                badge=1,
            )
            for i in range(500)
        ]

    transports = transports_of(args)
    with tempfile.TemporaryDirectory() as tmp:
        standin = Standin(Path(tmp), tls=args.tls, delay=args.rtt_ms / 1000)
        settings = Settings(
            firebase_credentials_file=standin.service_account,
            fcm_url=standin.send_url_template,
            fcm_ca_file=standin.ca_file,
        )
        per: dict[str, dict[str, list[float]]] = {
            t: {"rate": [], "cpu_us": [], "standin_us": []} for t in transports
        }
        floors = []
        try:
            for run in range(args.runs):
                floors.append(await floor_rate(standin, runs=1))
                # alternate which transport goes first, so a drift hits both alike
                for transport in transports if run % 2 == 0 else transports[::-1]:
                    if transport == "aiohttp":
                        from bench import aiohttp_transport

                        aiohttp_transport.install()
                    else:
                        app.core.push.HTTP_CLIENT = app.core.push._FcmHttpClient
                    sender = FcmPushSender(settings)
                    try:
                        await sender.send(batch("warm-up")[:100])
                        standin.call("reset")
                        batches = [batch(f"{run}-{b}") for b in range(args.sender_messages // 500)]
                        window = asyncio.Semaphore(args.sender_batches)

                        async def send(
                            messages: list[PushMessage], window=window, s=sender
                        ) -> None:
                            async with window:
                                results = await s.send(messages)
                            if not all(r.ok for r in results):
                                raise SystemExit("a push failed")

                        standin_cpu0, cpu0 = proc_cpu(standin.process.pid), time.process_time()
                        started = time.perf_counter()
                        await asyncio.gather(*(send(b) for b in batches))
                        wall = time.perf_counter() - started
                    finally:
                        await sender.close()
                    n = 500 * len(batches)
                    cpu_us = 1e6 * (time.process_time() - cpu0) / n
                    standin_us = 1e6 * (proc_cpu(standin.process.pid) - standin_cpu0) / n
                    per[transport]["rate"].append(n / wall)
                    per[transport]["cpu_us"].append(cpu_us)
                    per[transport]["standin_us"].append(standin_us)
                    print(
                        f"  run {run + 1} {transport:>7}: {n / wall:7.0f} messages/s | sender "
                        f"{cpu_us:5.0f} µs CPU/message | stand-in {standin_us:5.0f} µs "
                        f"CPU/message | load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
            floor = statistics.median(f["messages_per_s"] for f in floors)
            out: dict[str, Any] = {
                "tls": args.tls,
                "rtt_ms": args.rtt_ms,
                "floor_messages_per_s": [f["messages_per_s"] for f in floors],
                "floor_client_cpu_us": [f["client_cpu_us"] for f in floors],
            }
            for transport, figures in per.items():
                median = statistics.median(figures["rate"])
                out[transport] = {
                    **{k: [round(v, 1) for v in vs] for k, vs in figures.items()},
                    "median_rate": round(median),
                    "median_cpu_us": round(statistics.median(figures["cpu_us"]), 1),
                    "ratio_to_floor": round(median / floor, 3),
                }
                print(
                    f"  {transport}: median {median:.0f} messages/s (ratio to the floor "
                    f"{median / floor:.2f}), {out[transport]['median_cpu_us']} µs CPU/message",
                    flush=True,
                )
            RESULTS.mkdir(exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            path = RESULTS / f"push-sender-{stamp}.json"
            path.write_text(json.dumps(out, indent=2))
            print(f"results: {path}", flush=True)
        finally:
            standin.stop()


def transports_of(args) -> list[str]:
    return ["aiohttp", "http1"] if args.transport == "both" else [args.transport]


async def main(args) -> None:
    if args.scenario == "sender":
        await sender_only(args)
        return
    from sqlalchemy.ext.asyncio import create_async_engine

    check_bench_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    setup_database(args.database_url)
    engine = create_async_engine(args.database_url, pool_size=4)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    log_dir = RESULTS / f"push-fanout-{stamp}-logs"
    log_dir.mkdir()
    ward_a, ward_b = await wards(engine)
    if args.history:
        await ensure_history(engine, args.history)
    scenarios = []
    if args.scenario in ("a", "both"):
        scenarios.append(("a", ward_a, args.throughput_followers, 1.0))
    if args.scenario in ("b", "both"):
        scenarios.append(("b", ward_b, args.followers, args.device_share))
    results: dict[str, Any] = {
        "started": stamp,
        "cpus": os.cpu_count(),
        "args": vars(args),
        "scenarios": {},
    }
    transports = transports_of(args)
    with tempfile.TemporaryDirectory() as tmp:
        standin = Standin(Path(tmp), tls=args.tls, delay=args.rtt_ms / 1000)
        try:
            results["floor"] = floor = await floor_rate(standin)
            for name, area, followers, share in scenarios:
                devices = await prepare(engine, area, followers, share)
                print(f"scenario {name}: ward {area}, {followers} followers, {devices} devices")
                runs: dict[str, list[dict]] = {t: [] for t in transports}
                for i in range(args.runs):
                    # alternate which transport goes first, so a drift hits both alike
                    for transport in transports if i % 2 == 0 else transports[::-1]:
                        run = await one_run(
                            args,
                            engine,
                            standin,
                            area,
                            devices,
                            log_dir,
                            f"{stamp}-{name}{i}-{transport}",
                            transport,
                        )
                        show(f"run {i + 1} {transport}", run)
                        runs[transport].append(run)
                for transport in transports:
                    med = summary(runs[transport])
                    for key in ("pushes_per_s_wall", "pushes_per_s_span"):
                        med[f"{key}_ratio_to_floor"] = round(med[key] / floor["messages_per_s"], 3)
                    print(f"  median {transport}: {json.dumps(med)}", flush=True)
                    results["scenarios"][f"{name}-{transport}"] = {
                        "area": area,
                        "followers": followers,
                        "devices": devices,
                        "transport": transport,
                        "runs": runs[transport],
                        "median": med,
                    }
        finally:
            standin.stop()
            await clean(engine)
            await engine.dispose()
    out = RESULTS / f"push-fanout-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {out}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("a", "b", "both", "sender"), default="both")
    parser.add_argument("--sender-messages", type=int, default=10_000)
    parser.add_argument("--sender-batches", type=int, default=4, help="batches sent at once")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--throughput-followers", type=int, default=20_000)
    parser.add_argument("--followers", type=int, default=200_000)
    parser.add_argument("--device-share", type=float, default=1.0)
    parser.add_argument(
        "--history",
        type=int,
        default=200_000,
        help="old inbox rows of other residents kept in the database (0: none)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=0,
        help="experiment: set app.core.push.IN_FLIGHT in the worker (default: the code's)",
    )
    parser.add_argument(
        "--push-batch",
        type=int,
        default=0,
        help="experiment: notifications per push job (push.PUSH_JOB_BATCH)",
    )
    parser.add_argument(
        "--transport",
        choices=("aiohttp", "http1", "both"),
        default="http1",
        help="the push sender's HTTP client: the app's pool (http1) or aiohttp, to compare",
    )
    parser.add_argument("--tls", action="store_true", help="the stand-in speaks HTTPS")
    parser.add_argument(
        "--rtt-ms", type=float, default=0, help="the stand-in holds each answer this long"
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    return parser.parse_args(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main()
    else:
        asyncio.run(main(parse_args(sys.argv[1:])))
