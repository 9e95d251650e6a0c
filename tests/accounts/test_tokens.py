"""Short-lived access tokens, rotating refresh tokens, reuse detection, logout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.accounts.models import RefreshToken
from app.core.clock import FixedClock
from tests.accounts.factories import sign_in_resident


async def refresh(client, token: str):
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_the_new_pair_works(client, caplog):
    tokens = await sign_in_resident(client, caplog)
    rotated = await refresh(client, tokens["refresh_token"])
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert me.status_code == 200
    # and the newest refresh token rotates again
    assert (await refresh(client, new["refresh_token"])).status_code == 200


async def test_refresh_tokens_are_stored_hashed(client, session, caplog):
    tokens = await sign_in_resident(client, caplog)
    hashes = list(await session.scalars(select(RefreshToken.token_hash)))
    assert len(hashes) == 1
    assert tokens["refresh_token"].encode() not in hashes[0]


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(client, session, caplog):
    tokens = await sign_in_resident(client, caplog)
    first = (await refresh(client, tokens["refresh_token"])).json()
    second = (await refresh(client, first["refresh_token"])).json()
    # an attacker replays the very first token
    replay = await refresh(client, tokens["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    # the legitimate holder's latest refresh token is dead too
    latest = await refresh(client, second["refresh_token"])
    assert latest.status_code == 401
    assert latest.json()["code"] == "refresh_token_invalid"
    # and so is its access token, at once
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"
    revoked = list(await session.scalars(select(RefreshToken.revoked_at)))
    assert revoked and all(r is not None for r in revoked)


async def test_other_sessions_survive_reuse_in_one_family(client, caplog):
    phone_session = await sign_in_resident(client, caplog)
    tablet = await sign_in_resident(client, caplog, phone=phone_session["phone"])
    await refresh(client, phone_session["refresh_token"])
    await refresh(client, phone_session["refresh_token"])  # reuse: family revoked
    assert (await client.get("/api/v1/me", headers=tablet["headers"])).status_code == 200
    assert (await refresh(client, tablet["refresh_token"])).status_code == 200


async def test_logout_revokes_refresh_and_access(client, caplog):
    tokens = await sign_in_resident(client, caplog)
    out = await client.post("/api/v1/auth/logout", headers=tokens["headers"])
    assert out.status_code == 204
    assert (await client.get("/api/v1/me", headers=tokens["headers"])).status_code == 401
    assert (await refresh(client, tokens["refresh_token"])).status_code == 401


async def test_access_token_expires(client, app, caplog):
    tokens = await sign_in_resident(client, caplog)
    real = app.state.clock
    # tokens are checked against wall time by PyJWT; issue one that is already old
    app.state.clock = FixedClock(real.now() - timedelta(seconds=901))
    try:
        old = await refresh(client, tokens["refresh_token"])
    finally:
        app.state.clock = real
    assert old.status_code == 200
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {old.json()['access_token']}"}
    )
    assert me.status_code == 401
    assert me.json()["code"] == "token_expired"


async def test_expired_refresh_token_is_refused(client, app, caplog):
    tokens = await sign_in_resident(client, caplog)
    real = app.state.clock
    app.state.clock = FixedClock(real.now() + timedelta(days=31))
    try:
        response = await refresh(client, tokens["refresh_token"])
    finally:
        app.state.clock = real
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"


async def test_garbage_and_forged_tokens_are_401_problems(client, caplog):
    assert (await refresh(client, "x" * 43)).status_code == 401
    forged = await client.get("/api/v1/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401
    assert forged.json()["code"] == "token_invalid"
    assert forged.headers["content-type"].startswith("application/problem+json")
    none = await client.get("/api/v1/me")
    assert none.status_code == 401 and none.json()["code"] == "unauthenticated"


async def test_a_refused_token_is_logged_as_401_with_its_request_id(client, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="city.access")
    r = await client.get(
        "/api/v1/me", headers={"Authorization": "Bearer x.y.z", "X-Request-ID": "rid-401-check"}
    )
    assert r.status_code == 401 and r.headers["x-request-id"] == "rid-401-check"
    lines = [
        rec.msg
        for rec in caplog.records
        if isinstance(rec.msg, dict) and rec.msg.get("request_id") == "rid-401-check"
    ]
    assert lines and lines[0]["status"] == 401


async def test_tokens_still_work_while_redis_is_down(settings, client, caplog):
    """The deny list lives in Redis; when Redis is unreachable a valid token is served
    (it is signed and expires in minutes) rather than locking everyone out."""
    import msgspec

    from app.main import create_app
    from tests.conftest import running

    tokens = await sign_in_resident(client, caplog)
    broken = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0")
    async with running(create_app(broken)) as other:
        me = await other.get("/api/v1/me", headers=tokens["headers"])
    assert me.status_code == 200
