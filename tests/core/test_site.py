"""/docs loads its viewer from our own static files, pinned (nothing from a CDN, so it
works offline), and the site has an icon (issue 17, item 17)."""

from __future__ import annotations

import re

from app.core.openapi import SCALAR_JS

URL_ATTRIBUTE = re.compile(r"""(?:src|href|data-url)\s*=\s*["']([^"']+)["']""")


async def test_docs_reference_no_other_host(client):
    r = await client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    urls = URL_ATTRIBUTE.findall(r.text)
    assert SCALAR_JS in urls
    assert "/favicon.ico" in urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"/docs loads {url}"
    assert "cdn.jsdelivr" not in r.text and "@latest" not in r.text
    # Scalar's default web fonts come from fonts.scalar.com: turned off
    assert '"withDefaultFonts":false' in r.text


async def test_docs_assets_are_served(client):
    page = (await client.get("/docs")).text
    for url in URL_ATTRIBUTE.findall(page):
        r = await client.get(url)
        assert r.status_code == 200, url
    viewer = await client.get(SCALAR_JS)
    assert "javascript" in viewer.headers["content-type"]
    assert len(viewer.content) > 1_000_000  # the self-contained bundle, not a stub


async def test_favicon(client):
    r = await client.get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age=86400" in r.headers["cache-control"]


async def test_console_pages_link_the_icon(client):
    page = await client.get("/console/login")
    assert page.status_code == 200 and '<link rel="icon" href="/favicon.ico">' in page.text
