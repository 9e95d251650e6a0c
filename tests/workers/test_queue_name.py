"""Issue 18 item 4: the queue name is defined once (``Settings.queue_name``). The API
enqueues to it, a worker reads it, the health check counts it."""

from __future__ import annotations

import uuid

from app.core import jobs, ops
from workers import main as worker_main


async def test_the_api_the_worker_and_the_health_check_share_one_queue(app, client):
    settings, redis = app.state.settings, app.state.redis
    assert settings.queue_name == f"{settings.redis_prefix}:queue"
    assert redis.default_queue_name == settings.queue_name
    assert worker_main.WorkerSettings.queue_name == settings.queue_name

    # a job enqueued the API's way (after commit) is counted by the health check
    before = (await ops.worker_status(app.state)).queued_jobs
    job_id = f"probe:{uuid.uuid4()}"
    pending = jobs.begin()
    jobs.enqueue("route_waiting", job_id=job_id)
    await jobs.flush(pending, redis)
    try:
        qualified = jobs.qualified_job_id(redis, job_id)
        assert qualified == f"{settings.queue_name}:{job_id}"
        assert await redis.zscore(settings.queue_name, qualified) is not None
        assert (await ops.worker_status(app.state)).queued_jobs == before + 1
    finally:
        await redis.zrem(settings.queue_name, jobs.qualified_job_id(redis, job_id))
