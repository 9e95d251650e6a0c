"""Issue 17 item 9 (headers): a Content-Security-Policy on console pages, HSTS over
HTTPS, and Cache-Control: no-store on every answer to a request with credentials."""

from __future__ import annotations

import httpx
import msgspec

from app.settings import Settings
from app.web.api import content_security_policy
from tests.accounts.factories import sign_in_resident
from tests.web.test_pages import browser_for


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


def test_the_policy_allows_our_files_the_photo_store_and_the_tile_host() -> None:
    tiles = Settings(
        console_tile_url="https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png",
        public_base_url="https://city.example.vn",
    )
    policy = directives(content_security_policy(tiles))
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["img-src"] == [
        "'self'",
        "data:",
        "https://city.example.vn",
        "https://*.tile.openstreetmap.org",
    ]
    assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert policy["base-uri"] == ["'none'"] and policy["object-src"] == ["'none'"]
    # photos on S3/MinIO: their host; no tile server: none
    s3 = Settings(s3_endpoint="minio.city.internal:9000", s3_secure=True, console_tile_url="")
    assert directives(content_security_policy(s3))["img-src"] == [
        "'self'",
        "data:",
        "https://minio.city.internal:9000",
    ]


async def test_console_pages_carry_the_policy_and_are_not_stored(app, client) -> None:
    officer = await browser_for(app, [("officer", "ubnd-00070")])
    for path in ("/console/queue", "/console/inbox", "/console/map"):
        page = await officer.get(path)
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == content_security_policy(
            app.state.settings
        )
        assert page.headers["cache-control"] == "no-store"
    # an error page too
    denied = await officer.get("/console/dispatch")
    assert denied.status_code == 403 and denied.headers["cache-control"] == "no-store"
    # the static files keep their own caching, even with the session cookie sent along
    css = await officer.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["cache-control"] == "max-age=3600"
    # the sign-in page (no session yet) has the policy; no HSTS over plain HTTP
    login = await client.get("/console/login")
    assert "content-security-policy" in login.headers
    assert "strict-transport-security" not in login.headers


async def test_personal_answers_are_no_store_and_public_ones_are_not(app, client, caplog):
    resident = await sign_in_resident(client, caplog)
    for path in (
        "/api/v1/me",
        "/api/v1/me/export",
        "/api/v1/reports/mine",
        "/api/v1/me/notifications",
    ):
        r = await client.get(path, headers=resident["headers"])
        assert r.status_code == 200, (path, r.text)
        assert r.headers["cache-control"] == "no-store", path
    # a refused token: still no-store; a public answer without credentials: untouched
    refused = await client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    public = await client.get("/api/v1/categories")
    assert public.status_code == 200 and public.headers.get("cache-control") != "no-store"


async def test_hsts_only_over_https(app) -> None:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://city.test") as tls:
        r = await tls.get("/api/v1/categories")
        assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        page = await tls.get("/console/login")
        assert "strict-transport-security" in page.headers
    async with httpx.AsyncClient(transport=transport, base_url="http://city.test") as plain:
        r = await plain.get("/api/v1/categories")
        assert "strict-transport-security" not in r.headers


async def test_hsts_behind_a_trusted_proxy_that_terminated_tls(app, settings) -> None:
    """X-Forwarded-Proto counts only from a peer named in TRUSTED_PROXIES."""
    from app.main import create_app
    from tests.conftest import running

    proxied = create_app(msgspec.structs.replace(settings, trusted_proxies="10.0.0.0/8"))
    async with running(proxied):
        for peer, proto, expected in (
            ("10.1.2.3", "https", True),  # the trusted proxy: TLS ended there
            ("10.1.2.3", "http", False),
            ("198.51.100.9", "https", False),  # anyone can write the header
        ):
            transport = httpx.ASGITransport(app=proxied, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://city.test") as h:
                r = await h.get("/api/v1/categories", headers={"X-Forwarded-Proto": proto})
                assert ("strict-transport-security" in r.headers) is expected, (peer, proto)
