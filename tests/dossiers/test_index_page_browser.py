"""The unit's service-index page with its agencies' tables in a real browser (Debian's
Chromium through Playwright, the API in a granian process of its own): no serious or
critical axe-core (WCAG 2.1 A/AA) violation, in Vietnamese and in English (issue 19,
second pass, item 7)."""

from __future__ import annotations

from tests.accounts.factories import create_staff
from tests.dossiers.test_index_page import scene
from tests.web.conftest import (  # noqa: F401 (fixtures)
    browser,
    context,
    live_server,
    page,
    screenshot,
    screenshot_dir,
)
from tests.web.test_console_browser import no_serious_violations, sign_in


async def test_the_index_page_with_agencies_passes_axe(app, client, page, screenshot):  # noqa: F811
    parent, _ = await scene(app)
    email = await create_staff(app, [("manager", parent)])
    await sign_in(page, email)
    path = f"/console/units/{parent}/index"
    await page.goto(path)
    await page.get_by_role(
        "table", name="Hồ sơ thủ tục hành chính theo cơ quan (Toàn bộ)"
    ).wait_for()
    await page.get_by_role("rowheader", name="Sở Xây dựng (thử)").first.wait_for()
    await no_serious_violations(page, path)
    await screenshot("index-vi")
    await page.get_by_role("link", name="English").click()
    await page.get_by_role("table", name="Administrative dossiers by agency (All time)").wait_for()
    await no_serious_violations(page, f"{path} (en)")
