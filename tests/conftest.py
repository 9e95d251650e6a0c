"""Test set-up on the machine's real services.

A fresh PostgreSQL database per run (PostGIS enabled, migrated with Alembic to head,
Hanoi's reference data loaded), a Redis key prefix and arq queue of its own per run, and
the real app served in-process by Litestar's test client. Nothing here starts a service
that CI does not start; stand-ins exist only for services outside the city's network
(FCM, the identity provider) and for S3 (moto's server mode).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from alembic import command
from alembic.config import Config

RUN_ID = uuid.uuid4().hex[:10]
PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = f"city_test_{RUN_ID}"
_pg_base = PG_ADMIN_DSN.rsplit("/", 1)[0]
DATABASE_URL = f"{_pg_base.replace('postgresql://', 'postgresql+asyncpg://')}/{TEST_DB}"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
REDIS_PREFIX = f"citytest:{RUN_ID}"
STORAGE_DIR = f"/tmp/city-test-storage-{RUN_ID}"

os.environ.update(
    {
        "ENVIRONMENT": "test",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": REDIS_PREFIX,
        # 32 bytes at least: shorter HMAC keys are refused in production and warned about
        # by PyJWT (RFC 7518 section 3.2)
        "SECRET_KEY": f"test-secret-{RUN_ID}-{uuid.uuid4().hex}",
        "CITIZEN_ID_HASH_KEY": f"test-cccd-key-{RUN_ID}-{uuid.uuid4().hex}",
        "OTP_RATE_PER_IP": "1000/minute",
        "OTP_RATE_PER_PHONE": "3/10minutes;10/day",
        # every test calls from one address and files as it needs: own tests set low limits
        "OTP_VERIFY_FAILURES_PER_IP": "1000/minute",
        "REPORT_RATE_PER_RESIDENT": "1000/minute",
        "PHOTO_RATE_PER_RESIDENT": "1000/minute",
        "STORAGE_DIR": STORAGE_DIR,
        # no role requires a second factor, so the suite's managers and admins sign in
        # with a password; tests/accounts/test_totp*.py require it where they test it
        "STAFF_TOTP_REQUIRED_ROLES": "",
        "LOG_LEVEL": "INFO",
    }
)

from app.settings import get_settings  # noqa: E402

USER_TABLES = ("devices", "refresh_tokens", "otp_challenges", "staff_roles", "users", "audit_log")


def remove_run_data() -> None:
    """Delete what this run left outside its database: the photo store's directory and
    every Redis key of its prefix (its own, arq's ``arq:job:``/``arq:result:`` keys of its
    queue, the rate limiter's). Other runs' keys are left alone."""
    import redis

    shutil.rmtree(STORAGE_DIR, ignore_errors=True)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"*{REDIS_PREFIX}*", count=1000):
            batch.append(key)
            if len(batch) == 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    except redis.RedisError:  # a test left Redis unreachable: nothing to clean there
        pass
    finally:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def _run_data_removed_at_the_end():
    """Set up first, so torn down last: after the app and workers have stopped."""
    yield
    if not os.environ.get("KEEP_TEST_DB"):
        remove_run_data()


async def _create_database() -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{TEST_DB}"')
    finally:
        await conn.close()


async def _drop_database() -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    finally:
        await conn.close()


def alembic_config() -> Config:
    cfg = Config(os.path.join(os.path.dirname(__file__), "..", "alembic.ini"))
    cfg.attributes["database_url"] = DATABASE_URL
    return cfg


@pytest.fixture(scope="session")
def database() -> AsyncIterator[str]:
    asyncio.run(_create_database())
    command.upgrade(alembic_config(), "head")
    from app.places.demo import load_reference_data_sync

    load_reference_data_sync(DATABASE_URL)
    yield DATABASE_URL
    if not os.environ.get("KEEP_TEST_DB"):
        asyncio.run(_drop_database())


@pytest.fixture(scope="session")
def settings(database: str):
    return get_settings()


def client_for(application):
    """An HTTP client that calls the ASGI app in this event loop (no thread, no portal),
    so the app's connection pools and the tests' share one loop."""
    import httpx

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application, client=("203.0.113.7", 50000)),
        base_url="http://testserver.local",
    )


@asynccontextmanager
async def running(application) -> AsyncIterator:
    """Run the app's lifespan in a task of its own (anyio's cancel scopes must be left in
    the task that entered them, and pytest may tear a fixture down in another task) and
    yield a client for it."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with application.lifespan():
            started.set()
            await stop.wait()

    server = asyncio.create_task(serve())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({server, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not started.is_set():  # the lifespan failed to start: say why instead of hanging
        ready.cancel()
        await server  # raises the start-up error
        raise RuntimeError("the app's lifespan ended before it started")
    try:
        async with client_for(application) as client:
            yield client
    finally:
        stop.set()
        await server


@pytest.fixture(scope="session")
async def app(settings):
    from app.main import create_app

    application = create_app(settings)
    async with running(application) as client:
        application.state.test_client = client
        yield application


@pytest.fixture
async def client(app):
    """The app's test client; user tables are emptied before each test."""
    async with app.state.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(text(f"TRUNCATE {', '.join(USER_TABLES)} CASCADE"))
    yield app.state.test_client


@pytest.fixture
async def session(app):
    """A session for arranging and checking data directly (commits are real)."""
    async with app.state.sessionmaker() as s:
        yield s
