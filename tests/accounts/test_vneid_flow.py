"""Identity level 2: a resident verifies with a VNeID-style OpenID Connect provider (a
local issuer that signs real ID tokens). The citizen ID is kept only as a keyed hash
plus its last four digits."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import msgspec
import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.core.security import keyed_hash
from tests.accounts.factories import sign_in_resident
from tests.standins.oidc import oidc_issuer  # noqa: F401

CCCD = "001203004567"


@pytest.fixture
async def vneid_app(settings, client, oidc_issuer):  # noqa: F811
    """An app configured with the local issuer (``client`` empties the user tables)."""
    from app.main import create_app
    from tests.conftest import running

    configured = msgspec.structs.replace(
        settings,
        oidc_issuer=oidc_issuer.issuer,
        oidc_client_id=oidc_issuer.client_id,
        oidc_client_secret=oidc_issuer.client_secret,
        oidc_redirect_uri=oidc_issuer.redirect_uri,
    )
    application = create_app(configured)
    async with running(application) as vneid_client:
        yield application, vneid_client


async def verify(client, oidc_issuer, headers, claims) -> httpx.Response:  # noqa: F811
    started = await client.post("/api/v1/auth/vneid/start", headers=headers)
    assert started.status_code == 200, started.text
    oidc_issuer.login_as(claims)
    async with httpx.AsyncClient() as browser:
        redirect = await browser.get(started.json()["authorization_url"])
    assert redirect.status_code == 302
    back = parse_qs(urlparse(redirect.headers["location"]).query)
    assert back["state"] == [started.json()["state"]]
    return await client.post(
        "/api/v1/auth/vneid/complete",
        json={"state": back["state"][0], "code": back["code"][0]},
        headers=headers,
    )


def claims(cccd: str = CCCD, sub: str = "vneid-sub-1") -> dict:
    return {"sub": sub, "name": "Nguyễn Thị Hoa", "citizen_id": cccd}


async def test_verification_raises_the_account_to_level_2(
    vneid_app,
    oidc_issuer,
    caplog,  # noqa: F811
):
    application, client = vneid_app
    resident = await sign_in_resident(client, caplog)
    done = await verify(client, oidc_issuer, resident["headers"], claims())
    assert done.status_code == 200, done.text
    profile = done.json()
    assert profile["identity_level"] == 2
    assert profile["citizen_id_last4"] == "4567"
    assert profile["full_name"] == "Nguyễn Thị Hoa"
    # the stored form: HMAC under the configured key, never the number itself
    async with application.state.sessionmaker() as s:
        user = await s.scalar(select(User).where(User.id == profile["id"]))
    key = application.state.settings.citizen_id_hash_key
    assert user.citizen_id_hash == keyed_hash(key, CCCD)
    row_text = repr({c.name: getattr(user, c.name) for c in User.__table__.columns})
    assert CCCD not in row_text
    # a refreshed access token carries the new level
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": resident["refresh_token"]}
    )
    from app.core.auth import decode_access_token

    token = refreshed.json()["access_token"]
    assert decode_access_token(application.state.settings, token).identity_level == 2


async def test_one_citizen_id_cannot_bind_two_accounts(vneid_app, oidc_issuer, caplog):  # noqa: F811
    _, client = vneid_app
    first = await sign_in_resident(client, caplog)
    second = await sign_in_resident(client, caplog)
    assert (await verify(client, oidc_issuer, first["headers"], claims())).status_code == 200
    clash = await verify(client, oidc_issuer, second["headers"], claims(sub="vneid-sub-2"))
    assert clash.status_code == 409
    assert clash.json()["code"] == "citizen_id_bound_elsewhere"
    me = await client.get("/api/v1/me", headers=second["headers"])
    assert me.json()["identity_level"] == 1 and me.json()["citizen_id_last4"] is None


async def test_state_is_single_use_and_bound_to_the_resident(
    vneid_app,
    oidc_issuer,
    caplog,  # noqa: F811
):
    _, client = vneid_app
    alice = await sign_in_resident(client, caplog)
    bob = await sign_in_resident(client, caplog)
    started = await client.post("/api/v1/auth/vneid/start", headers=alice["headers"])
    state = started.json()["state"]
    # Bob cannot finish Alice's flow
    stolen = await client.post(
        "/api/v1/auth/vneid/complete",
        json={"state": state, "code": "whatever"},
        headers=bob["headers"],
    )
    assert stolen.status_code == 400 and stolen.json()["code"] == "vneid_state_invalid"
    # and the state is gone once tried
    again = await client.post(
        "/api/v1/auth/vneid/complete",
        json={"state": state, "code": "whatever"},
        headers=alice["headers"],
    )
    assert again.status_code == 400 and again.json()["code"] == "vneid_state_invalid"


async def test_a_refused_id_token_leaves_the_account_at_level_1(
    vneid_app,
    oidc_issuer,
    caplog,  # noqa: F811
):
    _, client = vneid_app
    resident = await sign_in_resident(client, caplog)
    oidc_issuer.misbehave(audience="someone-else")
    done = await verify(client, oidc_issuer, resident["headers"], claims())
    assert done.status_code == 400 and done.json()["code"] == "vneid_token_invalid"
    me = await client.get("/api/v1/me", headers=resident["headers"])
    assert me.json()["identity_level"] == 1


async def test_staff_cannot_start_vneid(client, app):
    from tests.accounts.factories import sign_in_staff

    staff = await sign_in_staff(client, app, [("dispatcher", None)])
    r = await client.post("/api/v1/auth/vneid/start", headers=staff["headers"])
    assert r.status_code == 403 and r.json()["code"] == "residents_only"
