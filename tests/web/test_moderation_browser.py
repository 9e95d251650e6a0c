"""The moderation pages in a real browser (issue 22 items 5 and 6; Debian's Chromium
through Playwright against the API in a granian process of its own): an admin suspends a
resident from the suspensions page and lifts it; an officer flags a report abusive from
its page, unflags it, and blacks out a rectangle of its photo with the numeric form.
Every page on the way has no serious or critical axe-core violation (WCAG 2.1 A/AA)."""

from __future__ import annotations

from tests.accounts.factories import create_staff, sign_in_resident
from tests.complaints.factories import HOAN_KIEM, file_with_photo
from tests.complaints.test_abuse_flags import map_snapshot_dropped  # noqa: F401 (fixture)
from tests.routing.conftest import clock, run_worker  # noqa: F401 (fixture)
from tests.web.test_console_browser import no_serious_violations, sign_in


async def test_an_admin_suspends_and_lifts_in_the_browser(app, client, caplog, page, screenshot):
    resident = await sign_in_resident(client, caplog)
    email = await create_staff(app, [("admin", None)])
    await sign_in(page, email)

    await page.get_by_role("link", name="Tài khoản bị tạm khóa").click()
    await page.wait_for_url("**/console/moderation/suspensions")
    await no_serious_violations(page, "suspensions page")
    await page.get_by_label("Số điện thoại của người dân").fill(resident["phone"])
    await page.get_by_label("Lý do (người dân sẽ đọc)").fill("Đăng tin quảng cáo nhiều lần")
    await page.get_by_label("Tạm khóa đến ngày").fill("2099-12-31")
    await page.get_by_role("button", name="Tạm khóa", exact=True).click()
    await page.get_by_role("status").filter(has_text="Đã tạm khóa tài khoản.").wait_for()
    row = page.get_by_role("row").filter(has_text="Đăng tin quảng cáo nhiều lần")
    await row.get_by_text("23:59 31/12/2099").wait_for()
    await no_serious_violations(page, "suspensions page with a suspension")
    await screenshot("suspensions")

    await row.get_by_role("button", name="Mở khóa").click()
    await page.get_by_role("status").filter(has_text="Đã mở khóa tài khoản.").wait_for()
    own = await client.get("/api/v1/me/suspension", headers=resident["headers"])
    assert own.status_code == 404


async def test_an_officer_flags_a_report_and_redacts_its_photo_in_the_browser(
    app, client, caplog, clock, page, screenshot
):
    resident = await sign_in_resident(client, caplog)
    report = await file_with_photo(client, resident["headers"])
    await run_worker(clock)
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    email = await create_staff(app, [("officer", f"ubnd-{area}")])
    await sign_in(page, email)

    await page.goto(f"/console/reports/{report['id']}")
    await page.get_by_label("Mã lý do").select_option("spam")
    await page.get_by_role("button", name="Gắn cờ lạm dụng (ẩn khỏi công khai)").click()
    await page.get_by_text("Bị gắn cờ lạm dụng: Tin rác, quảng cáo.").wait_for()
    await no_serious_violations(page, "report page, flagged")
    public = await client.get(f"/api/v1/public/reports/{report['code']}")
    assert public.status_code == 404
    await page.get_by_role("button", name="Gỡ cờ lạm dụng").click()
    await page.get_by_label("Mã lý do").wait_for()
    assert (await client.get(f"/api/v1/public/reports/{report['code']}")).status_code == 200

    await page.get_by_role("link", name="Che một phần ảnh 1").click()
    await page.wait_for_url("**/console/moderation/photos/*/redact")
    await no_serious_violations(page, "redaction page")
    group = page.get_by_role("group", name="Hình chữ nhật 1")
    await group.get_by_label("x (từ trái)").fill("100")
    await group.get_by_label("y (từ trên)").fill("150")
    await group.get_by_label("Chiều rộng").fill("200")
    await group.get_by_label("Chiều cao").fill("120")
    # the optional drawing: a drag on the photo fills the next empty rectangle, in the
    # photo's own pixels whatever size it is shown at
    photo = page.get_by_role("img", name="Ảnh của phản ánh")
    box = await photo.bounding_box()
    scale = box["width"] / 600
    await page.mouse.move(box["x"] + 300 * scale, box["y"] + 600 * scale)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 400 * scale, box["y"] + 650 * scale, steps=5)
    await page.mouse.up()
    second = page.get_by_role("group", name="Hình chữ nhật 2")
    drawn = [
        int(await second.get_by_label(name).input_value())
        for name in ("x (từ trái)", "y (từ trên)", "Chiều rộng", "Chiều cao")
    ]
    assert [abs(a - b) <= 3 for a, b in zip(drawn, [300, 600, 100, 50], strict=True)] == [True] * 4
    await page.get_by_role("button", name="Che các vùng đã nhập").click()
    await page.get_by_role("status").filter(has_text="Đã che ảnh").wait_for()
    await page.get_by_text("Đã che 2 hình chữ nhật.").wait_for()
    await no_serious_violations(page, "redaction page after redacting")
    await screenshot("redacted")
