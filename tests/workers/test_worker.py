"""The real arq worker, in burst mode, on the machine's Redis and the test database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

from arq.worker import Worker
from sqlalchemy import select

from app.accounts.models import OtpChallenge, SessionRevocation
from app.core.auth import deny_list_marker_key, revoked_session_key
from app.core.clock import FixedClock
from app.core.ops import heartbeat_key
from workers import main as worker_main

ROOT = Path(__file__).resolve().parents[2]


def burst_worker(extra_ctx: dict | None = None) -> Worker:
    cls = worker_main.WorkerSettings
    return Worker(
        functions=cls.functions,
        # arq keeps a cron's next run on the CronJob itself: fresh ones, so that this
        # worker runs the start-up crons as a newly started process does
        cron_jobs=[dataclasses.replace(c, next_run=None) for c in cls.cron_jobs],
        on_startup=cls.on_startup,
        on_shutdown=cls.on_shutdown,
        redis_settings=cls.redis_settings,
        queue_name=cls.queue_name,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        ctx=extra_ctx or {},
    )


async def test_purge_job_removes_expired_codes_and_keeps_fresh_ones(app, client, session):
    now = app.state.clock.now()
    old_id, fresh_id = uuid.uuid4(), uuid.uuid4()
    session.add_all(
        [
            OtpChallenge(
                id=old_id,
                phone="+84910000001",
                code_hash=b"x" * 32,
                expires_at=now - timedelta(days=2),
            ),
            OtpChallenge(
                id=fresh_id,
                phone="+84910000002",
                code_hash=b"y" * 32,
                expires_at=now + timedelta(minutes=5),
            ),
        ]
    )
    await session.commit()
    await app.state.redis.enqueue_job(
        "purge_expired_sign_in_data", _job_id=f"purge:{uuid.uuid4().hex}"
    )
    worker = burst_worker({"clock": FixedClock(now)})
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_complete >= 1 and worker.jobs_failed == 0
    async with app.state.sessionmaker() as s:
        left = set(await s.scalars(select(OtpChallenge.id)))
    assert fresh_id in left and old_id not in left


async def test_purge_job_removes_revocations_whose_tokens_have_all_expired(app, client, session):
    """Issue 17 item 4: nothing deleted expired session_revocations rows before."""
    now = app.state.clock.now()
    gone, kept = uuid.uuid4(), uuid.uuid4()
    session.add_all(
        [
            SessionRevocation(sid=gone, expires_at=now - timedelta(seconds=1)),
            SessionRevocation(sid=kept, expires_at=now + timedelta(minutes=10)),
        ]
    )
    await session.commit()
    await app.state.redis.enqueue_job(
        "purge_expired_sign_in_data", _job_id=f"purge:{uuid.uuid4().hex}"
    )
    worker = burst_worker({"clock": FixedClock(now)})
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    async with app.state.sessionmaker() as s:
        left = set(
            await s.scalars(
                select(SessionRevocation.sid).where(SessionRevocation.sid.in_([gone, kept]))
            )
        )
    assert left == {kept}


async def test_a_worker_cron_republishes_the_deny_list_when_redis_lost_it(app, client, session):
    """Issue 17 item 4: if the API process that saw Redis fail dies before Redis returns,
    nobody republished the revocations; the worker's cron does, when the marker is gone."""
    now = app.state.clock.now()
    prefix = app.state.settings.redis_prefix
    sids = [uuid.uuid4(), uuid.uuid4()]
    session.add_all(
        [SessionRevocation(sid=sid, expires_at=now + timedelta(minutes=10)) for sid in sids]
    )
    await session.commit()
    redis = app.state.redis
    # Redis lost the deny list: its keys and the marker (a restart, a flush)
    await redis.delete(
        deny_list_marker_key(prefix), *(revoked_session_key(prefix, s) for s in sids)
    )
    worker = burst_worker({"clock": FixedClock(now)})
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    assert await redis.get(deny_list_marker_key(prefix)) is not None
    for sid in sids:
        assert await redis.get(revoked_session_key(prefix, sid)) is not None
        assert 0 < await redis.ttl(revoked_session_key(prefix, sid)) <= 600


async def test_the_worker_lists_every_task_under_its_old_name():
    """Queued jobs of a running deployment find their function after the move to the
    contexts' tasks.py: arq registers a job under its function's name."""
    names = {f.__name__ for f in worker_main.WorkerSettings.functions}
    assert names == {
        "purge_expired_sign_in_data",
        "purge_unattached_photos",
        "refresh_report_map",
        "route_report",
        "route_waiting",
        "sweep_deadlines",
        "close_unrated",
        "reconcile",
        "refresh_service_index",
        "push_notification",
        "reconcile_pushes",
        "push_notification_batch",
        "send_announcement",
        "run_health_import",  # issue 20
        "import_dossier_file",  # issue 19
        "purge_dossier_import_files",  # issue 19 (second pass)
        "fetch_open311_media",  # issue 21
        "purge_open311_contacts",
        "publish_open_data",  # issue 22 item 4
        "purge_expired_uploads",  # issue 24 item 3
    }
    for function in worker_main.WorkerSettings.functions:
        assert function.__module__.startswith("app.") and function.__module__.endswith(".tasks")


async def test_worker_publishes_a_heartbeat(app, client):
    key = heartbeat_key(app.state.settings.redis_prefix)
    await app.state.redis.delete(key)
    worker = burst_worker()
    try:
        await worker.main()
    finally:
        await worker.close()
    assert await app.state.redis.get(key) is not None


async def test_readiness_and_metrics_show_the_worker_and_the_routing_backlog(
    app, client, caplog, session
):
    from sqlalchemy import text

    from tests.accounts.factories import sign_in_resident
    from tests.complaints.factories import report_body

    worker = burst_worker()
    try:
        await worker.main()
    finally:
        await worker.close()
    ready = (await client.get("/health/ready")).json()
    assert ready["worker"]["ok"] is True
    assert 0 <= ready["worker"]["heartbeat_age_seconds"] < 90
    assert ready["worker"]["reports_unrouted"] == 0

    # a report left unrouted for two minutes (its job lost, no worker running)
    resident = await sign_in_resident(client, caplog)
    filed = await client.post(
        "/api/v1/reports", json=report_body(kind="petition"), headers=resident["headers"]
    )
    await session.execute(
        text("UPDATE reports SET updated_at = now() - interval '2 minutes' WHERE id = :id"),
        {"id": filed.json()["id"]},
    )
    await session.commit()
    ready = await client.get("/health/ready")
    assert ready.status_code == 200  # the API itself is fine
    assert ready.json()["worker"]["ok"] is False
    assert ready.json()["worker"]["reports_unrouted"] == 1
    metrics = (await client.get("/metrics")).text
    assert "city_reports_unrouted 1.0" in metrics
    assert "city_worker_heartbeat_age_seconds" in metrics


async def test_the_worker_process_stops_gracefully_on_sigterm(app):
    import asyncio
    import os
    import signal
    import sys
    import time

    root = ROOT
    key = heartbeat_key(app.state.settings.redis_prefix)
    await app.state.redis.delete(key)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90  # importing the app takes 20-30 s on a busy machine
        while await app.state.redis.get(key) is None:
            assert time.monotonic() < deadline, "the worker never started"
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0
    assert b"worker_stopped" in output  # the shutdown hook ran: connections closed
