"""The browser-test stack works end to end: Debian's Chromium driven by Playwright
against the API running in a granian process of its own on this run's database and
Redis, axe-core finding (and not inventing) accessibility violations, and the vendored
Leaflet loading in the browser."""

from __future__ import annotations

import json

from tests.web.browser import ROOT, assert_accessible, axe_violations, describe_violations

LEAFLET = ROOT / "app" / "web" / "static" / "vendor" / "leaflet"


async def test_the_browser_shows_the_live_api_on_this_runs_services(page, screenshot):
    response = await page.goto("/health/live")
    assert response is not None and response.status == 200
    # Chromium shows a JSON document as text: read what is on the screen
    assert json.loads(await page.inner_text("body")) == {"status": "alive"}

    # the separate process reaches this run's database, Redis and storage
    response = await page.goto("/health/ready")
    assert response is not None and response.status == 200, await page.inner_text("body")
    ready = json.loads(await page.inner_text("body"))
    assert ready["status"] == "ready"
    assert {c["name"]: c["ok"] for c in ready["checks"]} == {
        "database": True,
        "redis": True,
        "storage": True,
    }
    assert (await screenshot("ready")).stat().st_size > 0

    # the API reference page is HTML rendered by the server (its script comes from a CDN
    # this machine cannot reach, so only the server-rendered part is checked)
    response = await page.goto("/docs", wait_until="domcontentloaded")
    assert response is not None and response.status == 200
    assert await page.title() == "City app API"


BROKEN = """<!doctype html>
<html lang="en"><head><title>Sign in</title></head>
<body><main>
  <h1>Sign in</h1>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
  <form><input type="text" name="phone"><button type="submit">Send code</button></form>
</main></body></html>"""

FIXED = """<!doctype html>
<html lang="en"><head><title>Sign in</title></head>
<body><main>
  <h1>Sign in</h1>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="City logo">
  <form>
    <label for="phone">Phone number</label>
    <input id="phone" type="text" name="phone" autocomplete="tel">
    <button type="submit">Send code</button>
  </form>
</main></body></html>"""


async def test_axe_finds_serious_violations_and_none_on_a_correct_page(page):
    await page.set_content(BROKEN)
    violations = await axe_violations(page)
    found = {v["id"]: v for v in violations}
    assert {"image-alt", "label"} <= found.keys(), describe_violations(violations)
    assert found["image-alt"]["impact"] == "critical"
    assert found["image-alt"]["nodes"][0]["target"] == ["img"]
    assert "image-alt" in describe_violations(violations)

    await page.set_content(FIXED)
    assert await axe_violations(page, impacts=("minor", "moderate", "serious", "critical")) == []
    await assert_accessible(page)


async def test_the_vendored_leaflet_draws_a_map(page):
    await page.set_content(
        '<!doctype html><html lang="en"><head><title>Map</title></head>'
        '<body><div id="map" style="height:300px"></div></body></html>'
    )
    await page.add_style_tag(path=LEAFLET / "leaflet.css")
    await page.add_script_tag(path=LEAFLET / "leaflet.js")
    assert await page.evaluate("L.version") == "1.9.4"
    await page.evaluate(
        "const map = L.map('map').setView([21.0288, 105.8525], 15);"
        "L.marker([21.0288, 105.8525]).addTo(map);"
    )
    assert await page.locator("#map .leaflet-marker-icon").count() == 1
    # leaflet.css is applied: the map pane is positioned by it
    assert (
        await page.eval_on_selector("#map .leaflet-pane", "el => getComputedStyle(el).position")
        == "absolute"
    )
