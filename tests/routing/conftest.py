"""Fixtures for the worker side: a fixed clock shared by the API and a real arq worker
(burst mode) on the machine's Redis, against the test database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from arq.worker import Worker
from sqlalchemy import select, text

from app.complaints.models import Report, ReportEvent
from app.core.calendar import TIMEZONE
from app.core.clock import FixedClock
from app.notifications.models import Notification
from app.places.models import Unit
from workers import main as worker_main


def hanoi(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TIMEZONE)


WEDNESDAY = "2026-11-25 10:00"


@pytest.fixture
def clock(app):
    """A clock for the API and the workers that stands at the real time until a test
    sets it (sign in first: access tokens are checked against the real time), e.g. to
    ``hanoi(WEDNESDAY)``."""
    real = app.state.clock
    fixed = FixedClock(real.now())
    app.state.clock = fixed
    yield fixed
    app.state.clock = real


async def staff_now(client, app, clock: FixedClock, roles) -> dict:
    """Sign staff in at the real time (tokens are checked against it), then put the
    test's clock back."""
    from tests.accounts.factories import sign_in_staff

    saved = clock.now()
    clock.set(datetime.now(UTC))
    try:
        return await sign_in_staff(client, app, roles)
    finally:
        clock.set(saved)


async def resident_now(client, caplog, clock: FixedClock) -> dict:
    from tests.accounts.factories import sign_in_resident

    saved = clock.now()
    clock.set(datetime.now(UTC))
    try:
        return await sign_in_resident(client, caplog)
    finally:
        clock.set(saved)


def worker_for(clock: FixedClock, **overrides) -> Worker:
    cls = worker_main.WorkerSettings
    # arq keeps each cron's next run on the CronJob object: give every test worker fresh
    # ones, so start-up crons (sweeps, reconciliation) run as in a new worker process
    crons = [dataclasses.replace(job, next_run=None) for job in cls.cron_jobs]
    return Worker(
        functions=cls.functions,
        cron_jobs=crons,
        on_startup=cls.on_startup,
        on_shutdown=cls.on_shutdown,
        redis_settings=cls.redis_settings,
        queue_name=cls.queue_name,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        ctx={"clock": clock},
        **overrides,
    )


async def run_worker(clock: FixedClock) -> Worker:
    """Run a real worker until the queue is empty (its start-up crons included)."""
    worker = worker_for(clock)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    return worker


async def report_row(app, report_id) -> Report:
    async with app.state.sessionmaker() as s:
        return await s.get(Report, report_id)


async def unit_by_code(app, code: str) -> Unit:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(Unit).where(Unit.code == code))


async def events_of(app, report_id, kind: str | None = None) -> list[ReportEvent]:
    async with app.state.sessionmaker() as s:
        stmt = (
            select(ReportEvent).where(ReportEvent.report_id == report_id).order_by(ReportEvent.id)
        )
        if kind:
            stmt = stmt.where(ReportEvent.kind == kind)
        return list(await s.scalars(stmt))


async def notifications_for(app, user_id=None, kind: str | None = None) -> list[Notification]:
    async with app.state.sessionmaker() as s:
        stmt = select(Notification).order_by(Notification.id)
        if user_id is not None:
            stmt = stmt.where(Notification.user_id == user_id)
        if kind:
            stmt = stmt.where(Notification.kind == kind)
        return list(await s.scalars(stmt))


@pytest.fixture(autouse=True)
async def reference_rules_only(app):
    """Each test starts and ends with only the reference data's routing rules."""
    yield
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM routing_rules"
                " WHERE note IS DISTINCT FROM 'default rule (reference data)'"
            )
        )
