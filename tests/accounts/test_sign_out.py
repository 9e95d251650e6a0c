"""Sign-out never claims what it did not do (issue 17, item 4).

PostgreSQL records the revocation in the sign-out transaction; Redis's deny list is the
fast path every request reads. With Redis unreachable, sign-out answers 503 (the session
can no longer be renewed, the access token may still work) and the revocation reaches
Redis from the record as soon as Redis answers again, also after Redis lost its data.
Redis is really unreachable here: the app's pool points at a closed port.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from sqlalchemy import event, select

from app.accounts.models import SessionRevocation
from app.core.auth import deny_list_marker_key, revoked_session_key
from tests.accounts.factories import sign_in_resident

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


@asynccontextmanager
async def redis_unreachable(app):
    real = app.state.redis
    broken = ArqRedis(
        pool_or_conn=ConnectionPool.from_url(CLOSED_PORT_URL, socket_connect_timeout=1),
        default_queue_name=real.default_queue_name,
    )
    app.state.redis = broken
    try:
        yield
    finally:
        app.state.redis = real
        await broken.aclose()


async def refresh(client, token: str):
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_sign_out_with_redis_unreachable_is_503_and_recorded(client, app, session, caplog):
    tokens = await sign_in_resident(client, caplog)
    async with redis_unreachable(app):
        out = await client.post(
            "/api/v1/auth/logout", headers={**tokens["headers"], "Accept-Language": "en"}
        )
        assert out.status_code == 503
        assert out.headers["content-type"].startswith("application/problem+json")
        assert out.json()["code"] == "sign_out_unconfirmed"
        assert "15 more minutes" in out.json()["detail"]
        assert int(out.headers["retry-after"]) > 0
    # the record is committed: the session can no longer be renewed ...
    assert (await refresh(client, tokens["refresh_token"])).status_code == 401
    recorded = await session.scalar(select(SessionRevocation))
    assert recorded is not None
    # ... and once Redis answers again, the access token is refused too: this process
    # saw Redis fail and republished the record to Redis on its first successful use
    me = await client.get("/api/v1/me", headers=tokens["headers"])
    assert me.status_code == 401 and me.json()["code"] == "token_revoked"
    prefix = app.state.settings.redis_prefix
    assert await app.state.redis.exists(revoked_session_key(prefix, recorded.sid))


async def test_a_retried_sign_out_succeeds_once_redis_is_back(client, app, caplog):
    tokens = await sign_in_resident(client, caplog)
    async with redis_unreachable(app):
        out = await client.post("/api/v1/auth/logout", headers=tokens["headers"])
        assert out.status_code == 503
    # the app retries; whichever comes first (the retry or the republish), the access
    # token ends up refused
    retry = await client.post("/api/v1/auth/logout", headers=tokens["headers"])
    assert retry.status_code in (204, 401)
    assert (await client.get("/api/v1/me", headers=tokens["headers"])).status_code == 401


async def test_revocations_are_republished_after_redis_lost_them(client, app, caplog):
    """Redis restarted without its data: the deny-list key and the marker are gone. The
    next request that reaches Redis republishes PostgreSQL's record."""
    tokens = await sign_in_resident(client, caplog)
    assert (await client.post("/api/v1/auth/logout", headers=tokens["headers"])).status_code == 204
    prefix = app.state.settings.redis_prefix
    keys = [k async for k in app.state.redis.scan_iter(match=f"{prefix}:revoked-sid*")]
    assert keys
    await app.state.redis.delete(*keys)
    me = await client.get("/api/v1/me", headers=tokens["headers"])
    assert me.status_code == 401 and me.json()["code"] == "token_revoked"
    assert await app.state.redis.exists(deny_list_marker_key(prefix))


async def test_the_deny_list_check_reads_no_postgresql_while_redis_works(client, app, caplog):
    tokens = await sign_in_resident(client, caplog)
    await client.get("/api/v1/me", headers=tokens["headers"])  # any first sync is done
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append(statement)

    # hot reads run compiled statements on the driver's connection (app.core.reads.Query):
    # asyncpg's query log sees those
    drivers = []

    def logged(record) -> None:  # noqa: ANN001
        statements.append(record.query)

    def checkout(dbapi_connection, record, proxy) -> None:  # noqa: ANN001
        dbapi_connection.driver_connection.add_query_logger(logged)
        drivers.append(dbapi_connection.driver_connection)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    event.listen(engine, "checkout", checkout)
    try:
        for _ in range(3):
            assert (await client.get("/api/v1/me", headers=tokens["headers"])).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
        event.remove(engine, "checkout", checkout)
        for driver in drivers:
            driver.remove_query_logger(logged)
    assert statements, "the profile itself reads PostgreSQL"
    assert not [s for s in statements if "session_revocations" in s]
