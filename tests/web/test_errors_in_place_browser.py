"""Issue 23 items 2-3 in a real browser (Debian's Chromium through Playwright against the
API in a granian process of its own): a refused sign-in and a refused extension come back
in place, the error summary has focus when the page loads and its link takes focus to the
field, what was typed is still there, the title starts with "Lỗi: " / "Error: "; after a
transfer the focused element says which report went to which unit. axe-core finds no
serious or critical violation in these states."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.places.models import Unit
from tests.accounts.factories import STAFF_PASSWORD, create_staff
from tests.complaints.factories import HOAN_KIEM
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    clock,
    reference_rules_only,
    report_row,
    resident_now,
    run_worker,
)
from tests.routing.test_routing import file_petition
from tests.web.test_console_browser import no_serious_violations

FOCUSED = "document.activeElement && document.activeElement.id"
FOCUSED_TEXT = "document.activeElement ? document.activeElement.textContent.trim() : ''"


async def fresh_report(app, client, caplog, clock) -> dict:
    """A petition filed and routed now (the API process runs on the real clock), so its
    deadline is still ahead."""
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    resident = await resident_now(client, caplog, clock)
    clock.set(datetime.now(UTC))
    filed = await file_petition(client, resident["headers"], description="Hố ga mất nắp")
    await run_worker(clock)
    report_id = uuid.UUID(filed["id"])
    row = await report_row(app, report_id)
    assert row.due_at > datetime.now(UTC) + timedelta(days=1)
    return {"unit": f"ubnd-{area}", "report": filed, "id": report_id}


async def test_errors_are_in_place_and_confirmations_are_focused(
    app, client, caplog, clock, page, screenshot
):
    item = await fresh_report(app, client, caplog, clock)
    email = await create_staff(app, [("manager", item["unit"])])
    code = item["report"]["code"]

    # ---- sign-in refused: in place, announced by focus, the email kept
    await page.goto("/console/login")
    await page.get_by_label("Thư điện tử").fill(email)
    await page.get_by_label("Mật khẩu").fill("không đúng")
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.wait_for_load_state()
    assert await page.evaluate(FOCUSED) == "error-summary"
    assert (await page.title()).startswith("Lỗi: ")
    assert await page.get_by_label("Thư điện tử").input_value() == email
    assert await page.get_by_label("Mật khẩu").input_value() == ""
    assert await page.get_by_label("Thư điện tử").get_attribute("aria-invalid") == "true"
    await no_serious_violations(page, "sign-in refused")
    await page.get_by_label("Mật khẩu").fill(STAFF_PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.wait_for_url("**/console/queue")

    # ---- an extension to a day before the deadline: the report page again, in place
    await page.goto(f"/console/reports/{item['id']}")
    past = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    form = page.locator(f"form[action='/console/reports/{item['id']}/extension']")
    await form.get_by_label("Hạn mới (ngày làm việc)").fill(past)
    await form.get_by_label("Lý do").fill("Chờ vật tư từ kho thành phố")
    await form.get_by_role("button").click()
    await page.wait_for_load_state()
    assert await page.evaluate(FOCUSED) == "error-summary"
    assert (await page.title()).startswith("Lỗi: ")
    summary = page.locator("#error-summary")
    link = summary.get_by_role("link")
    assert await link.get_attribute("href") == "#extension-date"
    assert (await link.text_content()).startswith("Hạn mới (ngày làm việc): ")
    assert "due_date" not in await summary.text_content()
    field = page.locator("#extension-date")
    assert await field.input_value() == past
    assert await page.locator("#extension-reason").input_value() == "Chờ vật tư từ kho thành phố"
    assert await field.get_attribute("aria-invalid") == "true"
    described = (await field.get_attribute("aria-describedby") or "").split()
    assert "extension-date-error" in described
    beside = await page.locator("#extension-date-error").text_content()
    assert "Hạn mới phải sau hạn hiện tại" in beside
    await no_serious_violations(page, "report page with a refused extension")
    await screenshot("extension-refused")
    # the summary's link takes focus to the field, with the keyboard
    await link.focus()
    await page.keyboard.press("Enter")
    assert await page.evaluate(FOCUSED) == "extension-date"

    # ---- the same in English
    await page.get_by_role("link", name="English").click()
    await page.wait_for_load_state()
    form = page.locator(f"form[action='/console/reports/{item['id']}/extension']")
    await form.get_by_label("New deadline (a working day)").fill(past)
    await form.get_by_label("Reason").fill("Waiting for parts")
    await form.get_by_role("button").click()
    await page.wait_for_load_state()
    assert await page.evaluate(FOCUSED) == "error-summary"
    assert (await page.title()).startswith("Error: ")
    text = await page.locator("#error-summary").get_by_role("link").text_content()
    assert text.startswith("New deadline (a working day): ")
    assert await page.locator("#extension-reason").input_value() == "Waiting for parts"
    await no_serious_violations(page, "report page with a refused extension, in English")
    await page.get_by_role("link", name="Tiếng Việt").click()
    await page.wait_for_load_state()

    # ---- a transfer: the next page's focused element says which report went where
    async with app.state.sessionmaker() as s:
        unit_name = await s.scalar(select(Unit.name_vi).where(Unit.code == "evn-hanoi"))
    form = page.locator(f"form[action='/console/reports/{item['id']}/transfer']")
    await form.get_by_label("Đơn vị nhận").select_option("evn-hanoi")
    await form.get_by_label("Lý do").fill("Đèn đường do điện lực quản lý")
    await form.get_by_role("button").click()
    await page.wait_for_url("**/console/queue?*done=transferred")
    assert await page.evaluate(FOCUSED) == "confirmation"
    assert await page.evaluate(FOCUSED_TEXT) == f"Đã chuyển phản ánh {code} sang {unit_name}."
    await page.get_by_role("heading", level=1, name="Hàng đợi").wait_for()  # the queue itself
    await no_serious_violations(page, "queue with a confirmation")
    await screenshot("transfer-confirmed")
