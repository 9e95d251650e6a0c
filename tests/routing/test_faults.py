"""Faults that must not lose work: the same job twice, Redis flushed or down while
reports are filed, two workers racing, a worker killed mid-job. In every case each
report ends routed once, with one timeline event and one notification per person."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import msgspec
from sqlalchemy import func, select, text

from app.complaints import lifecycle
from app.complaints.models import Report, ReportEvent
from app.core.jobs import qualified_job_id
from app.notifications.models import Notification
from tests.conftest import running
from tests.routing.conftest import report_row, resident_now, run_worker, worker_for
from tests.routing.test_routing import file_petition

ROOT = Path(__file__).resolve().parents[2]


async def assert_routed_once(app, report_ids: list[str]) -> None:
    ids = [uuid.UUID(i) for i in report_ids]
    async with app.state.sessionmaker() as s:
        statuses = set(await s.scalars(select(Report.status).where(Report.id.in_(ids))))
        per_report = dict(
            (
                await s.execute(
                    select(ReportEvent.report_id, func.count())
                    .where(ReportEvent.report_id.in_(ids), ReportEvent.to_status == "assigned")
                    .group_by(ReportEvent.report_id)
                )
            ).all()
        )
        told = Counter(
            await s.scalars(
                select(Notification.data["report_code"].astext).where(
                    Notification.kind == "report_routed"
                )
            )
        )
        codes = list(await s.scalars(select(Report.code).where(Report.id.in_(ids))))
    assert statuses == {"assigned"}
    assert per_report == {i: 1 for i in ids}
    assert {c: told.get(c) for c in codes} == {c: 1 for c in codes}


async def test_the_same_job_enqueued_twice_is_one_job_and_a_rerun_changes_nothing(
    app, client, caplog, clock
):
    resident = await resident_now(client, caplog, clock)
    filed = await file_petition(client, resident["headers"])
    job_id = qualified_job_id(app.state.redis, lifecycle.route_job_id(uuid.UUID(filed["id"])))
    # the API already enqueued it: a second enqueue with the same id is refused by arq
    assert await app.state.redis.enqueue_job("route_report", filed["id"], _job_id=job_id) is None
    await run_worker(clock)
    # a retried job (another id, as arq's retry or the reconciler would run it)
    await app.state.redis.enqueue_job("route_report", filed["id"], _job_id=f"retry-{job_id}")
    await app.state.redis.enqueue_job("route_waiting", _job_id=f"again-{job_id}")
    await run_worker(clock)
    await assert_routed_once(app, [filed["id"]])


async def test_reports_filed_before_redis_lost_its_data_are_routed_by_the_reconciler(
    app, client, caplog, clock
):
    resident = await resident_now(client, caplog, clock)
    filed = [(await file_petition(client, resident["headers"]))["id"] for _ in range(5)]
    # Redis restarted empty: every key of this deployment is gone, queued jobs with them
    prefix = app.state.settings.redis_prefix
    keys = [k async for k in app.state.redis.scan_iter(match=f"{prefix}:*")]
    keys += [k async for k in app.state.redis.scan_iter(match=f"arq:job:{prefix}:*")]
    if keys:
        await app.state.redis.delete(*keys)
    assert await app.state.redis.zcard(app.state.settings.queue_name) == 0

    await run_worker(clock)  # nothing to do yet: the reports are younger than a minute
    assert {(await report_row(app, uuid.UUID(i))).status for i in filed} == {"submitted"}
    clock.advance(timedelta(seconds=61))
    await run_worker(clock)  # the reconcile cron runs at start-up and finds them
    await assert_routed_once(app, filed)


async def test_filing_while_redis_is_down_still_succeeds_and_nothing_is_lost(
    app, client, caplog, clock, settings
):
    from app.main import create_app

    resident = await resident_now(client, caplog, clock)
    down = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0")
    offline = create_app(down)
    offline.state.clock = clock
    async with running(offline) as offline_client:
        response = await offline_client.post(
            "/api/v1/reports",
            json={
                "kind": "petition",
                "category_code": "waste",
                "description": "Rác thải tồn đọng nhiều ngày ở đầu ngõ.",
                "location": {"lat": 21.0288, "lon": 105.8525},
            },
            headers=resident["headers"],
        )
    assert response.status_code == 201, response.text
    report_id = response.json()["id"]
    assert "enqueue_failed" in caplog.text
    clock.advance(timedelta(minutes=2))
    await run_worker(clock)
    await assert_routed_once(app, [report_id])


async def test_two_workers_racing_route_each_report_once(app, client, caplog, clock):
    residents = [await resident_now(client, caplog, clock) for _ in range(3)]
    filed = [(await file_petition(client, residents[n % 3]["headers"]))["id"] for n in range(30)]
    first, second = worker_for(clock), worker_for(clock)
    try:
        await asyncio.gather(first.main(), second.main())
    finally:
        await first.close()
        await second.close()
    assert first.jobs_failed == second.jobs_failed == 0
    await assert_routed_once(app, filed)


async def test_a_worker_killed_mid_job_loses_nothing(app, client, caplog, clock, session):
    resident = await resident_now(client, caplog, clock)
    filed = await file_petition(client, resident["headers"])
    # hold the categories table so the routing statement blocks half-way, rows locked
    await session.execute(text("LOCK TABLE categories IN ACCESS EXCLUSIVE MODE"))
    # a short job timeout: arq hands a dead worker's job to another after timeout + 10 s
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKER_JOB_TIMEOUT_SECONDS": "1"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        waiting = 0
        for _ in range(300):  # up to 30 s for the worker to start and block
            async with app.state.engine.connect() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%SKIP LOCKED%' AND datname = current_database()"
                    )
                )
            if waiting:
                break
            await asyncio.sleep(0.1)
        assert waiting, "the worker never started routing"
        os.killpg(worker.pid, signal.SIGKILL)  # kill -9, mid-transaction
        await asyncio.wait_for(worker.wait(), 10)
    finally:
        if worker.returncode is None:
            os.killpg(worker.pid, signal.SIGKILL)
        await session.rollback()  # release the lock: the dead worker's statement aborts

    assert (await report_row(app, uuid.UUID(filed["id"]))).status == "submitted"
    # the killed job stays "in progress" in arq until its timeout; the reconciler does
    # not wait for it, and when arq finally runs the killed job again it does nothing
    # (crons the killed worker was running are dropped by arq — a cron gets one try —
    # and simply run at their next minute, so failures are not checked here)
    clock.advance(timedelta(minutes=2))
    worker = worker_for(clock)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_complete >= 2  # route_waiting, and the killed job's second run
    await assert_routed_once(app, [filed["id"]])
