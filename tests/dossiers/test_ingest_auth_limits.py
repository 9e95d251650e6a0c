"""Failed ingest sign-ins rate-limited (issue 19, second pass): 401s count per client
address and per agency code (app/core/ratelimit.py, on the real Redis); past the limit an
address gets 429 with Retry-After before any signature work (its right signature is not
even looked at); only failures count; the agency's own system, signing right from an
address that has not failed, is never slowed by other addresses' failures; with Redis
unreachable the gate is skipped and signed batches still land."""

from __future__ import annotations

import json
import secrets
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest
from sqlalchemy import text

from app.core.ratelimit import RateLimiter
from app.dossiers.signing import new_secret
from tests.dossiers.conftest import new_dossier_code, signed_headers


def new_address() -> str:
    """A documentation address (RFC 5737) of this test alone: counters start empty."""
    return f"198.51.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


@asynccontextmanager
async def from_address(app, address: str):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://testserver.local",
    ) as client:
        yield client


@pytest.fixture
def limits(app):
    original = app.state.settings

    def tighten(**rules: str) -> None:
        app.state.settings = msgspec.structs.replace(app.state.settings, **rules)

    yield tighten
    app.state.settings = original


async def post(client, agency, *, secret: str | None = None) -> httpx.Response:
    body = json.dumps({"events": [agency.upsert(new_dossier_code())]}).encode()
    headers = signed_headers(secret or agency.secret, body, agency.now())
    return await client.post(
        f"/api/v1/ingest/agencies/{agency.code}/events", content=body, headers=headers
    )


async def batches(app, agency) -> int:
    async with app.state.engine.connect() as conn:
        return await conn.scalar(
            text("SELECT count(*) FROM dossier_ingest_batches WHERE agency_id = :a"),
            {"a": agency.id},
        )


def refused_for_now(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


async def test_an_address_past_its_failures_waits_before_any_signature_work(
    app, agency, other_agency, limits
):
    limits(ingest_auth_failures_per_ip="3/minute", ingest_auth_failures_per_agency="1000/minute")
    attacker, office = new_address(), new_address()
    async with from_address(app, attacker) as client:
        for _ in range(3):
            r = await post(client, agency, secret=other_agency.secret)
            assert r.status_code == 401, r.text
        # past the limit: 429 even with the right signature (nothing was verified) and for
        # another agency (the address counts whatever the agency)
        refused_for_now(await post(client, agency))
        refused_for_now(await post(client, other_agency))
    assert await batches(app, agency) == 0
    # the agency's system at another address is not slowed by them
    async with from_address(app, office) as client:
        r = await post(client, agency)
        assert r.status_code == 200, r.text
    assert await batches(app, agency) == 1


async def test_only_failures_count(app, agency, limits):
    limits(ingest_auth_failures_per_ip="2/minute", ingest_auth_failures_per_agency="2/minute")
    async with from_address(app, new_address()) as client:
        for _ in range(5):
            r = await post(client, agency)
            assert r.status_code == 200, r.text


async def test_failures_for_one_agency_from_many_addresses_slow_those_addresses_only(
    app, agency, other_agency, limits
):
    limits(ingest_auth_failures_per_ip="1000/minute", ingest_auth_failures_per_agency="3/minute")
    bots = [new_address() for _ in range(3)]
    for bot in bots:
        async with from_address(app, bot) as client:
            r = await post(client, agency, secret=other_agency.secret)
            assert r.status_code == 401, r.text
    # the agency's count is full: an address that failed for it waits, right signature or not
    async with from_address(app, bots[0]) as client:
        refused_for_now(await post(client, agency))
        # and is not held back for another agency
        r = await post(client, other_agency)
        assert r.status_code == 200, r.text
    # an address without failures (the agency's own system) is served
    async with from_address(app, new_address()) as client:
        r = await post(client, agency)
        assert r.status_code == 200, r.text
    # a new address gets its first failure answered (401), then waits
    async with from_address(app, new_address()) as client:
        assert (await post(client, agency, secret=other_agency.secret)).status_code == 401
        refused_for_now(await post(client, agency))


async def test_unsigned_and_stale_requests_count_too(app, agency, limits):
    limits(ingest_auth_failures_per_ip="2/minute", ingest_auth_failures_per_agency="1000/minute")
    async with from_address(app, new_address()) as client:
        url = f"/api/v1/ingest/agencies/{agency.code}/events"
        r = await client.post(url, json={"events": []})
        assert r.json()["code"] == "ingest_unsigned"
        r = await client.post(url.replace(agency.code, "NO-SUCH-AGENCY"), json={"events": []})
        assert r.status_code == 401
        refused_for_now(await post(client, agency))


async def test_with_redis_unreachable_signed_batches_still_land(app, agency, caplog):
    real = app.state.limiter
    app.state.limiter = RateLimiter("redis://127.0.0.1:1/0", prefix="unreachable")
    try:
        async with from_address(app, new_address()) as client:
            r = await post(client, agency)
            assert r.status_code == 200, r.text
            r = await post(client, agency, secret=new_secret())
            assert r.status_code == 401
    finally:
        app.state.limiter = real
    assert "ingest_auth_limit_skipped" in caplog.text
