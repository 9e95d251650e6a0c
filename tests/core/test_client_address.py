"""TRUSTED_PROXIES (issue 17, item 9): X-Forwarded-For counts only when the TCP peer is
a trusted proxy; then per-address limits and the audit log see the real client."""

from __future__ import annotations

import logging
import uuid

import httpx
import msgspec
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.client_address import client_address
from tests.accounts.factories import new_phone, sent_code
from tests.conftest import running

PROXY = "10.0.0.5"


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address("203.0.113.7", ["198.51.100.1"], "") == "203.0.113.7"


def test_a_header_from_an_untrusted_peer_is_ignored():
    assert client_address("203.0.113.7", ["198.51.100.1"], "10.0.0.0/8") == "203.0.113.7"


def test_from_a_trusted_peer_the_rightmost_untrusted_hop_is_the_client():
    trusted = "10.0.0.0/8, 192.0.2.1"
    # the client forged a first entry; our two proxies appended what they saw
    chain = ["1.2.3.4, 198.51.100.9", "192.0.2.1"]
    assert client_address(PROXY, chain, trusted) == "198.51.100.9"
    assert client_address(PROXY, [], trusted) == PROXY
    assert client_address(PROXY, ["garbage"], trusted) == PROXY
    assert client_address(PROXY, ["[2001:db8::7]:443"], trusted) == "2001:db8::7"
    assert client_address(PROXY, ["198.51.100.9:5000"], trusted) == "198.51.100.9"
    assert client_address("::ffff:10.0.0.5", ["198.51.100.9"], trusted) == "198.51.100.9"
    assert client_address(None, ["198.51.100.9"], trusted) == "unknown"


def through(application, peer: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application, client=(peer, 40000)),
        base_url="http://testserver.local",
    )


def strict_app(settings, trusted: str):
    from app.main import create_app

    return create_app(
        msgspec.structs.replace(
            settings,
            otp_rate_per_ip="2/minute",
            trusted_proxies=trusted,
            redis_prefix=f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}",
        )
    )


async def request_codes(http, forwarded_for: list[str]) -> list[int]:
    return [
        (
            await http.post(
                "/api/v1/auth/otp", json={"phone": new_phone()}, headers={"X-Forwarded-For": xff}
            )
        ).status_code
        for xff in forwarded_for
    ]


async def test_a_spoofed_header_does_not_escape_the_otp_limit(settings, database):
    application = strict_app(settings, trusted="10.0.0.0/8")
    async with running(application):
        attacker = through(application, "198.51.100.66")
        spoofed = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        assert await request_codes(attacker, spoofed) == [202, 202, 429]


async def test_behind_a_trusted_proxy_each_client_has_its_own_otp_bucket(settings, database):
    application = strict_app(settings, trusted="10.0.0.0/8")
    async with running(application):
        proxy = through(application, PROXY)
        # without TRUSTED_PROXIES these would all be the proxy's one bucket
        assert await request_codes(proxy, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) == [202] * 3
        assert await request_codes(proxy, ["192.0.2.1", "192.0.2.1"]) == [202, 429]


async def test_the_audit_row_names_the_client_behind_the_proxy(settings, database, caplog):
    caplog.set_level(logging.INFO, logger="city.sms")
    application = strict_app(settings, trusted="10.0.0.0/8")
    async with running(application):
        for peer, xff, expected in (
            (PROXY, "192.0.2.44", "192.0.2.44"),
            ("198.51.100.67", "192.0.2.45", "198.51.100.67"),
        ):
            http = through(application, peer)
            phone = new_phone()
            sent = await http.post(
                "/api/v1/auth/otp", json={"phone": phone}, headers={"X-Forwarded-For": xff}
            )
            code = sent_code(caplog, sent.json()["phone"])
            verified = await http.post(
                "/api/v1/auth/otp/verify",
                json={"phone": phone, "code": code},
                headers={"X-Forwarded-For": xff},
            )
            assert verified.status_code == 200, verified.text
            async with application.state.sessionmaker() as s:
                ip = await s.scalar(
                    select(AuditEntry.ip).where(
                        AuditEntry.actor_id == uuid.UUID(verified.json()["user_id"]),
                        AuditEntry.action == "auth.sign_in_otp",
                    )
                )
            assert str(ip) == expected
