"""Two-factor sign-in in a real browser (issue 22 item 3; Debian's Chromium through
Playwright against the API in a granian process of its own, on the real clock): an officer
turns it on from the settings page by reading the secret as typed text, gets ten recovery
codes, signs out and back in through the code page (a wrong code first, shown in place);
an admin resets it from the staff page. Every page on the way has no serious or critical
axe-core violation (WCAG 2.1 A/AA)."""

from __future__ import annotations

import time

import pyotp

from tests.accounts.factories import create_staff
from tests.web.test_console_browser import no_serious_violations, sign_in

WARD = "ubnd-00004"


async def test_an_officer_turns_on_two_factor_sign_in_and_uses_it(
    app, client, browser, live_server, page, screenshot
):
    email = await create_staff(app, [("officer", WARD)])
    await sign_in(page, email)

    await page.get_by_role("link", name="Xác thực hai lớp").click()
    await page.wait_for_url("**/console/two-factor/settings")
    await no_serious_violations(page, "second factor settings")
    await page.get_by_role("link", name="Thiết lập xác thực hai lớp").click()
    await page.wait_for_url("**/console/two-factor/enrol")
    await page.get_by_role("img", name="Mã QR của khóa xác thực hai lớp").wait_for()
    await no_serious_violations(page, "enrolment page")
    await screenshot("enrolment")

    secret = (await page.locator("#secret").inner_text()).replace(" ", "")
    app_totp = pyotp.TOTP(secret)  # as someone typing the key into their app
    code_field = page.get_by_label("Mã xác thực")
    assert await code_field.get_attribute("autocomplete") == "one-time-code"
    assert await code_field.get_attribute("inputmode") == "numeric"
    await code_field.fill(f"{(int(app_totp.now()) + 1) % 10**6:06d}")
    await page.get_by_role("button", name="Xác nhận và bật").click()
    # in place (issue 23): the error summary, focused on load, and the field marked
    await page.locator("#error-summary").filter(has_text="Mã không khớp").wait_for()
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    assert await page.get_by_label("Mã xác thực").get_attribute("aria-invalid") == "true"
    await no_serious_violations(page, "enrolment page with an error")

    await page.get_by_label("Mã xác thực").fill(app_totp.now())
    await page.get_by_role("button", name="Xác nhận và bật").click()
    await page.get_by_role("heading", name="Mã dự phòng").wait_for()
    assert await page.locator("ol.recovery-codes li").count() == 10
    await no_serious_violations(page, "recovery codes page")
    await screenshot("recovery-codes")

    # signed out, the password leads to the code page
    await page.get_by_role("button", name="Đăng xuất").click()
    await page.wait_for_url("**/console/login")
    await page.get_by_label("Thư điện tử").fill(email)
    await page.get_by_label("Mật khẩu").fill("correct horse battery staple")
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.wait_for_url("**/console/two-factor?next=*")
    await no_serious_violations(page, "code page")
    await page.get_by_label("Mã xác thực").fill("000000")
    await page.get_by_role("button", name="Xác nhận").click()
    await page.locator("#error-summary").filter(has_text="Mã xác thực không đúng").wait_for()
    await no_serious_violations(page, "code page with an error")
    await screenshot("code-wrong")
    # the next step's code (the enrolment spent the current step's)
    await page.get_by_label("Mã xác thực").fill(app_totp.at(time.time() + 30))
    await page.get_by_role("button", name="Xác nhận").click()
    await page.wait_for_url("**/console/queue")

    # an admin sees it on the staff page and resets it
    admin_email = await create_staff(app, [("admin", None)])
    admin_context = await browser.new_context(base_url=live_server)
    try:
        admin_page = await admin_context.new_page()
        await sign_in(admin_page, admin_email)
        await admin_page.goto(f"/console/units/{WARD}/staff")
        row = admin_page.get_by_role("row").filter(has_text=email)
        await row.get_by_text("Đã bật").wait_for()
        await no_serious_violations(admin_page, "staff page with a reset button")
        await row.get_by_role("button", name="Đặt lại").click()
        await admin_page.get_by_role("status").filter(has_text="Đã đặt lại").wait_for()
        await row.get_by_text("Chưa bật").wait_for()
    finally:
        await admin_context.close()
    # the officer's session ended: the next page asks for the password again
    await page.goto("/console/queue")
    await page.wait_for_url("**/console/login?next=*")
