"""Issue 17 item 9: the console's pages work under their Content-Security-Policy in a real
browser: no violation reported on any page, and the maps (Leaflet, console.js) run."""

from __future__ import annotations

from tests.accounts.factories import create_staff
from tests.routing.conftest import clock  # noqa: F401 (fixture)
from tests.web.test_console_browser import overdue_report, sign_in

# every violation the page sees, kept on the window (the event carries the directive)
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


async def test_the_pages_work_under_their_policy(app, client, caplog, clock, page):
    item = await overdue_report(app, client, caplog, clock)
    email = await create_staff(app, [("manager", item["unit"])])
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    await page.add_init_script(RECORD_VIOLATIONS)
    await sign_in(page, email)
    for path in (
        "/console/queue",
        f"/console/reports/{item['id']}",
        "/console/map",
        "/console/inbox",
        f"/console/units/{item['unit']}/index",
        f"/console/units/{item['unit']}/audit",
    ):
        response = await page.goto(path)
        assert "content-security-policy" in response.headers, path
        await page.wait_for_load_state("networkidle")
        if path in ("/console/map", f"/console/reports/{item['id']}"):
            # the map ran: Leaflet drew its container and the ward outlines (SVG paths)
            await page.wait_for_selector(
                ".leaflet-container path.leaflet-interactive, .leaflet-container path",
                state="attached",
            )
        assert await page.evaluate("window.__csp") == [], path
    assert not [m for m in messages if "Content Security Policy" in m], messages
