"""Fixtures for the inbox and push tests: the inbox API mounted on the test app, a fixed
clock, a real arq worker (burst mode) running the project's jobs plus the push jobs with
an FCM sender (the real firebase-admin SDK) pointed at the stand-in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from arq.worker import Worker
from litestar import Router
from litestar.di import Provide
from sqlalchemy import insert, select

from app.accounts.models import Device
from app.core import db
from app.core.clock import FixedClock
from app.core.push import FcmPushSender
from app.notifications import jobs as notification_jobs
from app.notifications.api import (
    AnnouncementController,
    FollowedAreasController,
    InboxController,
    PreferencesController,
)
from app.notifications.models import Notification, NotificationDelivery
from app.notifications.push import PushPolicy
from app.notifications.service import Notice, notify
from app.settings import Settings
from tests.accounts.factories import sign_in_resident
from tests.routing.test_routing import file_petition
from tests.standins.fcm import FcmStandin
from workers import main as worker_main

INBOX = "/api/v1/me/notifications"
PREFERENCES = "/api/v1/me/notification-preferences"
FOLLOWED = "/api/v1/me/followed-areas"
ANNOUNCEMENTS = "/api/v1/announcements"
CONTROLLERS = {
    INBOX: InboxController,
    PREFERENCES: PreferencesController,
    FOLLOWED: FollowedAreasController,
    ANNOUNCEMENTS: AnnouncementController,
}

# quick retries for tests: 0.05 s, 0.1 s, … (Retry-After still wins when FCM sends one)
FAST = PushPolicy(max_attempts=3, backoff_base_seconds=0.05, backoff_max_seconds=0.2)


@pytest.fixture(scope="session")
def inbox_mounted(app) -> None:
    """Until ``app/main.py`` lists the notification controllers, mount the missing ones
    on the test app here (a no-op once it does)."""
    paths = {route.path for route in app.routes}
    missing = [controller for path, controller in CONTROLLERS.items() if path not in paths]
    if missing:
        from app.main import provide_session

        app.register(
            Router(
                path="/api/v1",
                route_handlers=missing,
                dependencies={"session": Provide(provide_session)},
            )
        )


@pytest.fixture
def inbox(client, inbox_mounted):
    """The test client, with the inbox API mounted."""
    return client


@pytest.fixture
def clock(app):
    """A clock for the API and the worker, at the real time until a test moves it."""
    real = app.state.clock
    fixed = FixedClock(real.now())
    app.state.clock = fixed
    yield fixed
    app.state.clock = real


async def user_id(client, headers) -> uuid.UUID:
    r = await client.get("/api/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    return uuid.UUID(r.json()["id"])


async def register_device(client, headers, platform: str, token: str | None = None) -> str:
    token = token or f"{platform}-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    r = await client.post(
        "/api/v1/me/devices", json={"token": token, "platform": platform}, headers=headers
    )
    assert r.status_code == 201, r.text
    return token


async def resident_with_devices(client, caplog, *platforms: str) -> tuple[dict, list[str]]:
    resident = await sign_in_resident(client, caplog)
    tokens = [await register_device(client, resident["headers"], p) for p in platforms]
    return resident, tokens


async def routed_report(client, resident: dict, run_worker) -> dict:
    """A report filed by the resident through the API and routed by the worker (whose own
    notification is settled before the test registers any device)."""
    filed = await file_petition(client, resident["headers"])
    await run_worker()
    return filed


def notice_about(filed: dict, n: int = 1) -> Notice:
    """A notice about the report for its followers; ``n`` makes another one."""
    return Notice(
        kind="report_routed",
        report_id=uuid.UUID(filed["id"]),
        report_code=filed["code"],
        audience="followers",
        dedupe_key=f"test:{filed['id']}:{n}",
        unit_vi="UBND phường Hàng Trống",
        unit_en="Hang Trong Ward People's Committee",
        due=datetime(2026, 12, 2, 10, tzinfo=UTC),
        data={"link": f"cityapp://reports/{filed['id']}", "rate": True},
    )


async def write_notices(app, notices: list[Notice], now: datetime, *, enqueue=True) -> list[int]:
    """notify() in a transaction of its own, as routing does; ``enqueue=False`` loses the
    push jobs (as if Redis were down)."""
    redis = app.state.redis if enqueue else None
    async with db.transaction(app.state.sessionmaker, redis) as session:
        return await notify(session, notices, now)


async def insert_notifications(session, user: uuid.UUID, count: int, **values: Any) -> list[int]:
    """Inbox rows written directly (already pushed, unless told otherwise)."""
    now = datetime.now(UTC)
    rows = [
        {
            "user_id": user,
            "kind": "report_routed",
            "title": f"Thông báo {i}",
            "body": f"Nội dung {i}",
            "data": {"report_code": f"PA{i:06d}", "link": f"cityapp://reports/{i}"},
            "dedupe_key": f"direct:{uuid.uuid4().hex}",
            "created_at": now + timedelta(seconds=i),
            "push_status": "sent",
            **values,
        }
        for i in range(count)
    ]
    ids = list(await session.scalars(insert(Notification).returning(Notification.id), rows))
    await session.commit()
    return ids


async def notification(app, notification_id: int) -> Notification:
    async with app.state.sessionmaker() as s:
        return await s.get(Notification, notification_id)


async def deliveries(app, notification_id: int) -> dict[str, NotificationDelivery]:
    """The notification's deliveries by device token."""
    async with app.state.sessionmaker() as s:
        rows = await s.execute(
            select(Device.token, NotificationDelivery)
            .join(Device, Device.id == NotificationDelivery.device_id)
            .where(NotificationDelivery.notification_id == notification_id)
        )
        return dict(rows.all())


async def device(app, token: str) -> Device:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(Device).where(Device.token == token))


@pytest.fixture
def fcm_settings(fcm_standin: FcmStandin, tmp_path: Path) -> Settings:
    """Settings whose service account the stand-in trusts and whose FCM_URL is the
    stand-in's."""
    path = fcm_standin.write_service_account(tmp_path / "service-account.json")
    return Settings(firebase_credentials_file=str(path), fcm_url=fcm_standin.send_url_template)


@pytest.fixture
def run_worker(app, clock, fcm_settings) -> Callable[..., Any]:
    """Run a real arq worker until its queue is empty (deferred retries included): the
    project's jobs plus the notification jobs, no crons unless given, the FCM sender on
    the stand-in; keyword arguments go into the jobs' ctx (``announcement_batch``).
    Returns the worker (its counters)."""

    async def run(
        policy: PushPolicy = FAST,
        cron_jobs: list | None = None,
        check: bool = True,
        **ctx: Any,
    ) -> Worker:
        cls = worker_main.WorkerSettings
        functions = [*cls.functions, *push_functions()]
        sender = FcmPushSender(fcm_settings)

        async def startup(ctx: dict[str, Any]) -> None:
            await worker_main.startup(ctx)
            await ctx["push"].close()
            ctx["push"] = sender

        worker = Worker(
            functions=functions,
            cron_jobs=cron_jobs or [],
            on_startup=startup,
            on_shutdown=cls.on_shutdown,
            redis_settings=cls.redis_settings,
            queue_name=cls.queue_name,
            burst=True,
            poll_delay=0.05,
            handle_signals=False,
            max_tries=cls.max_tries,
            ctx={"clock": clock, "push_policy": policy, **ctx},
        )
        try:
            await worker.main()
        finally:
            await worker.close()
        if check:
            assert worker.jobs_failed == 0
        return worker

    return run


def push_functions() -> list:
    """The push jobs (arq names them by function name, so listing them again once
    ``workers/main.py`` registers them changes nothing)."""
    return [
        notification_jobs.push_notification,
        notification_jobs.push_notification_batch,
        notification_jobs.send_announcement,
        notification_jobs.reconcile_pushes,
        notification_jobs.release_deferred_pushes,
    ]
