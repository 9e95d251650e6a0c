"""The console in a real browser (Debian's Chromium through Playwright) against the API in
a granian process of its own: an officer signs in, opens an overdue report, replies,
resolves it with a photo, and the resident's own API shows the answer. Every main page
passes axe-core's WCAG 2.1 A/AA rules with no serious or critical violation, and works
with the keyboard alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.accounts.factories import STAFF_PASSWORD, create_staff
from tests.complaints.factories import HOAN_KIEM
from tests.complaints.imagegen import jpeg_phone_photo
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    clock,
    reference_rules_only,
    report_row,
    resident_now,
    run_worker,
)
from tests.routing.test_routing import file_petition
from tests.web.browser import axe_violations, describe_violations


async def overdue_report(app, client, caplog, clock) -> dict:
    """A resident's petition, routed to the Hoàn Kiếm ward committee, then left past its
    deadline: the worker's sweep marks it overdue."""
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    resident = await resident_now(client, caplog, clock)
    # filed and routed three weeks ago (roads: 5 working days), swept now: overdue for
    # the API process too, which runs on the real clock
    clock.set(datetime.now(UTC) - timedelta(days=21))
    filed = await file_petition(client, resident["headers"], description="Cột đèn đổ nghiêng")
    await run_worker(clock)
    report_id = uuid.UUID(filed["id"])
    # the sweep a minute after its deadline (before escalation to the unit above)
    clock.set((await report_row(app, report_id)).due_at + timedelta(minutes=1))
    await run_worker(clock)
    row = await report_row(app, report_id)
    assert row.overdue_at is not None and row.escalated_at is None
    assert row.due_at < datetime.now(UTC)
    return {"unit": f"ubnd-{area}", "resident": resident, "report": filed, "id": report_id}


async def sign_in(page, email: str) -> None:
    await page.goto("/console/queue")
    # not signed in: the sign-in page, then back to the queue
    await page.wait_for_url("**/console/login?next=*")
    await page.get_by_label("Thư điện tử").fill(email)
    await page.get_by_label("Mật khẩu").fill(STAFF_PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.wait_for_url("**/console/queue")


async def no_serious_violations(page, where: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], f"{where}:\n{describe_violations(violations)}"


async def test_an_officer_answers_an_overdue_report_in_the_browser(
    app, client, caplog, clock, page, screenshot
):
    item = await overdue_report(app, client, caplog, clock)
    email = await create_staff(app, [("officer", item["unit"])])
    code = item["report"]["code"]

    await page.goto("/console/login")
    await no_serious_violations(page, "sign-in page")
    await sign_in(page, email)

    # the queue: the report is there, marked late in words (not by colour alone)
    row = page.get_by_role("row").filter(has_text=code)
    await row.get_by_text("QUÁ HẠN").wait_for()
    await no_serious_violations(page, "queue page")
    await screenshot("queue")

    await page.get_by_role("link", name=code).click()
    await page.wait_for_url(f"**/console/reports/{item['id']}")
    await no_serious_violations(page, "report page")
    await screenshot("report")

    await page.get_by_role("button", name="Tiếp nhận xử lý").click()
    # the confirmation names the report, and has focus (issue 23 item 3)
    await page.get_by_role("status").filter(has_text=f"Đã nhận xử lý phản ánh {code}.").wait_for()
    assert await page.evaluate("document.activeElement.id") == "confirmation"

    await page.get_by_label("Trả lời người dân (công khai)").fill(
        "Đội điện lực đang đến dựng lại cột."
    )
    await page.get_by_role("button", name="Gửi: Trả lời người dân (công khai)").click()
    await (
        page.get_by_role("status")
        .filter(has_text=f"Đã gửi trả lời cho phản ánh {code}.")
        .wait_for()
    )

    await page.get_by_label("Kết quả xử lý").fill("Đã dựng lại cột đèn và kiểm tra an toàn điện.")
    await page.get_by_label("Ảnh kết quả (không bắt buộc)").set_input_files(
        files=[
            {
                "name": "cot-den.jpg",
                "mimeType": "image/jpeg",
                "buffer": jpeg_phone_photo((1600, 1200)),
            }
        ]
    )
    await page.get_by_role("button", name="Hoàn thành xử lý").click()
    await (
        page.get_by_role("status")
        .filter(has_text=f"Đã giải quyết xong phản ánh {code}.")
        .wait_for()
    )
    await page.get_by_text("Đã giải quyết", exact=True).first.wait_for()
    await screenshot("resolved")

    # the resident's own API shows the answer, the reply and the photo
    mine = (
        await client.get(f"/api/v1/reports/{item['id']}", headers=item["resident"]["headers"])
    ).json()
    assert mine["status"] == "resolved"
    bodies = [e.get("body") for e in mine["timeline"]]
    assert "Đội điện lực đang đến dựng lại cột." in bodies
    assert "Đã dựng lại cột đèn và kiểm tra an toàn điện." in bodies
    assert len(mine["photos"]) == 1
    # and it counts as late: it was resolved after its deadline
    assert (await report_row(app, item["id"])).resolved_on_time is False


async def test_the_main_pages_pass_axe_and_work_by_keyboard(
    app, client, caplog, clock, page, screenshot
):
    item = await overdue_report(app, client, caplog, clock)
    email = await create_staff(app, [("manager", item["unit"])])
    await sign_in(page, email)

    for path in (
        "/console/queue",
        "/console/queue?overdue=true",
        f"/console/reports/{item['id']}",
        "/console/map",
        "/console/inbox",
        f"/console/units/{item['unit']}/index",
        f"/console/units/{item['unit']}/staff",
        f"/console/units/{item['unit']}/audit",
    ):
        await page.goto(path)
        await no_serious_violations(page, path)

    # English
    await page.goto("/console/queue")
    await page.get_by_role("link", name="English").click()
    await page.wait_for_url("**/console/queue")
    assert await page.get_attribute("html", "lang") == "en"
    await no_serious_violations(page, "queue (en)")

    # keyboard only: the first Tab reaches the skip link, Enter moves focus to the main
    # content; focus is visible (an outline is drawn)
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to main content"
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    # and the report is reachable with Tab + Enter alone
    for _ in range(60):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == item["report"]["code"]:
            break
    else:
        raise AssertionError("the report's link is not reachable with Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/console/reports/{item['id']}")
