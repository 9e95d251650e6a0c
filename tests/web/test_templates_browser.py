"""Response templates and bulk work in a real browser (issue 22 items 1-2; Debian's
Chromium through Playwright against the API in a granian process of its own): a manager
writes a template on the templates page (a wrong placeholder first, shown in place),
ticks reports in the queue with the keyboard and accepts them in one step, then answers
one from its report page with the template filled in. Every page on the way has no
serious or critical axe-core violation (WCAG 2.1 A/AA)."""

from __future__ import annotations

import uuid

from tests.accounts.factories import create_staff
from tests.complaints.test_bulk import queue_setup, statuses
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    clock,
    events_of,
    reference_rules_only,
)
from tests.web.test_console_browser import no_serious_violations, sign_in


async def test_a_manager_writes_a_template_and_works_the_queue_in_bulk(
    app, client, caplog, clock, page, screenshot
):
    ward, _p, ours, _theirs = await queue_setup(app, client, caplog, clock, n=2)
    email = await create_staff(app, [("manager", ward)])
    await sign_in(page, email)

    await page.get_by_role("link", name="Mẫu trả lời").click()
    await page.wait_for_url("**/console/templates")
    await no_serious_violations(page, "templates page")
    await page.get_by_label("Tiêu đề").fill("Đã tiếp nhận")
    await page.get_by_label("Đơn vị").select_option(ward)
    await page.get_by_label("Nội dung tiếng Việt").fill("Kính gửi {ten}: đã nhận {code}.")
    await page.get_by_label("Nội dung tiếng Anh").fill("Report {code} was received.")
    await page.get_by_role("button", name="Lưu mẫu").click()
    # in place (issue 23): the error summary, focused, names the field's problem
    await page.locator("#error-summary").filter(has_text="{ten}").wait_for()
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    field = page.get_by_label("Nội dung tiếng Việt")
    assert await field.get_attribute("aria-invalid") == "true"
    await no_serious_violations(page, "templates page with an error")
    await screenshot("template-error")
    await field.fill("Phản ánh {code} đã được {unit} tiếp nhận, hạn {deadline}.")
    await page.get_by_role("button", name="Lưu mẫu").click()
    await page.get_by_role("status").wait_for()
    await page.get_by_role("row").filter(has_text="Đã tiếp nhận").wait_for()
    await no_serious_violations(page, "templates page with a template")

    # the queue: two reports ticked with the keyboard, accepted in one step
    await page.goto("/console/queue")
    await no_serious_violations(page, "queue page with the bulk form")
    for report in ours:
        box = page.get_by_label(f"Chọn {report['code']}")
        await box.focus()
        await page.keyboard.press("Space")
        assert await box.is_checked()
    await page.get_by_label("Tiếp nhận xử lý", exact=True).check()
    await page.get_by_role("button", name="Áp dụng cho các phản ánh đã chọn").click()
    await page.get_by_role("status").filter(has_text="2 đã xong, 0 chưa thực hiện được.").wait_for()
    await no_serious_violations(page, "queue page with bulk results")
    await screenshot("bulk-results")
    assert await statuses(app, ours) == ["in_progress", "in_progress"]

    # a report page: the template picked, filled in, edited and sent
    report = ours[0]
    await page.goto(f"/console/reports/{report['id']}")
    await page.get_by_label("Mẫu trả lời").select_option(label="Đã tiếp nhận")
    await page.get_by_role("button", name="Điền nội dung").click()
    text = page.get_by_label("Nội dung (có thể sửa trước khi gửi)")
    assert (await text.input_value()).startswith(f"Phản ánh {report['code']} đã được ")
    await no_serious_violations(page, "report page with a template filled in")
    await text.fill(f"Phản ánh {report['code']} đã được tiếp nhận, tổ công tác đến chiều nay.")
    await page.get_by_role("button", name="Gửi theo mẫu này: Đã tiếp nhận").click()
    await page.get_by_role("status").wait_for()
    [reply] = await events_of(app, uuid.UUID(report["id"]), "reply")
    assert reply.body.endswith("tổ công tác đến chiều nay.")
