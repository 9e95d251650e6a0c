"""The real arq worker, in burst mode, on the machine's Redis and the test database."""

from __future__ import annotations

import uuid
from datetime import timedelta

from arq.worker import Worker
from sqlalchemy import select

from app.accounts.models import OtpChallenge
from app.core.clock import FixedClock
from workers import main as worker_main


def burst_worker(extra_ctx: dict | None = None) -> Worker:
    cls = worker_main.WorkerSettings
    return Worker(
        functions=cls.functions,
        cron_jobs=cls.cron_jobs,
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


async def test_worker_publishes_a_heartbeat(app, client):
    key = worker_main.heartbeat_key(app.state.settings.redis_prefix)
    await app.state.redis.delete(key)
    worker = burst_worker()
    try:
        await worker.main()
    finally:
        await worker.close()
    assert await app.state.redis.get(key) is not None
