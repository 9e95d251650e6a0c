"""Staff two-factor sign-in in the web console (issue 22 item 3), over HTTP on the real
database and Redis: enrolment from the settings page, the code page after the password,
errors in place next to the field, a role that requires it sent to enrolment only, an
expired challenge, and an admin's reset button on the staff page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pyotp
import pytest

from tests.accounts.factories import STAFF_PASSWORD, create_staff
from tests.accounts.test_totp import (  # noqa: F401 (fixtures)
    WARD,
    clock,
    configure,
    enrolled,
    new_address,
    user_id_of,
)
from tests.conftest import client_for
from tests.web.test_pages import csrf_of

SECRET = re.compile(r'<code id="secret"[^>]*>([A-Z2-7 ]+)</code>')
CODES = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def console(app):
    """A browser of its own (cookie jar) from an address of its own."""
    import httpx

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(new_address(), 41000)),
        base_url="http://testserver.local",
    )


async def password(http, email: str, next_page: str = "/console/queue"):
    form = await http.get("/console/login")
    return await http.post(
        "/console/login",
        data={
            "csrf": csrf_of(form.text),
            "email": email,
            "password": STAFF_PASSWORD,
            "next": next_page,
        },
    )


async def post_page_form(http, page: str, action: str, data: dict):
    shown = await http.get(page)
    assert shown.status_code == 200, shown.text
    return await http.post(action, data={"csrf": csrf_of(shown.text), **data})


def field_error(page: str) -> str:
    """The error shown next to the code field (its id is named by the field)."""
    match = re.search(r'<p class="field-error" id="code-error">([^<]+)</p>', page)
    assert match, "no error next to the code field"
    return html.unescape(match.group(1))


async def test_an_officer_enrols_in_the_console_then_signs_in_with_a_code(app, client, clock):
    email = await create_staff(app, [("officer", WARD)])
    http = console(app)
    signed = await password(http, email)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/queue"

    settings = await http.get("/console/two-factor/settings")
    assert settings.status_code == 200 and "Tài khoản chưa bật xác thực hai lớp." in settings.text
    page = await http.get("/console/two-factor/enrol")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert '<svg role="img"' in page.text
    assert "<title>Mã QR của khóa xác thực hai lớp</title>" in page.text  # its name, in vi
    secret = SECRET.search(page.text).group(1).replace(" ", "")
    app_totp = pyotp.TOTP(secret)
    # shown again: the same pending seed (a reload does not invalidate the scanned QR)
    assert SECRET.search((await http.get("/console/two-factor/enrol")).text).group(1)

    # a wrong code: 422, the error next to the field, named by its label; still pending
    wrong = f"{(int(app_totp.at(clock.now())) + 1) % 10**6:06d}"
    r = await post_page_form(
        http, "/console/two-factor/enrol", "/console/two-factor/enrol", {"code": wrong}
    )
    assert r.status_code == 422
    assert field_error(r.text).startswith("Mã xác thực: Mã không khớp với khóa vừa tạo")
    assert 'aria-invalid="true"' in r.text and 'aria-describedby="code-help code-error"' in r.text
    assert SECRET.search(r.text).group(1).replace(" ", "") == secret
    r = await post_page_form(
        http, "/console/two-factor/enrol", "/console/two-factor/enrol", {"code": "12345"}
    )
    assert r.status_code == 422 and field_error(r.text) == "Mã xác thực: Mã xác thực gồm 6 chữ số."

    r = await post_page_form(
        http,
        "/console/two-factor/enrol",
        "/console/two-factor/enrol",
        {"code": app_totp.at(clock.now())},
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    codes = CODES.findall(r.text)
    assert len(codes) == 10 and "Đã bật xác thực hai lớp." in r.text
    assert "Đã bật từ" in (await http.get("/console/two-factor/settings")).text
    # on: the enrolment page sends back to the settings (a new seed needs an admin's reset)
    again = await http.get("/console/two-factor/enrol")
    assert again.status_code == 303 and again.headers["location"] == "/console/two-factor/settings"

    # sign out; the password now leads to the code page, not to a session
    await post_page_form(http, "/console/queue", "/console/logout", {})
    clock.advance(timedelta(seconds=30))
    r = await password(http, email)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/two-factor?next=%2Fconsole%2Fqueue"
    assert "city_console_2fa=" in r.headers["set-cookie"]
    assert "city_console=" not in r.headers["set-cookie"].replace("city_console_", "")
    assert (await http.get("/console/queue")).status_code == 303  # no session yet

    page = await http.get("/console/two-factor?next=%2Fconsole%2Fqueue")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert 'autocomplete="one-time-code"' in page.text and 'inputmode="numeric"' in page.text
    assert '<label for="code">Mã xác thực</label>' in page.text
    r = await http.post(
        "/console/two-factor",
        data={"csrf": csrf_of(page.text), "code": "000000", "next": "/console/queue"},
    )
    assert r.status_code == 401 and field_error(r.text) == "Mã xác thực: Mã xác thực không đúng."
    r = await http.post(
        "/console/two-factor",
        data={"csrf": csrf_of(page.text), "code": "12a", "next": "/console/queue"},
    )
    assert r.status_code == 422 and "gồm 6 chữ số" in field_error(r.text)
    # another session's (or no) CSRF token: refused, nothing checked
    r = await http.post("/console/two-factor", data={"csrf": "0" * 64, "code": "000000"})
    assert r.status_code == 403
    r = await http.post(
        "/console/two-factor",
        data={
            "csrf": csrf_of(page.text),
            "code": app_totp.at(clock.now()),
            "next": "/console/queue",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/queue"
    assert (await http.get("/console/queue")).status_code == 200

    # a recovery code from the code page's second form, once
    await post_page_form(http, "/console/queue", "/console/logout", {})
    await password(http, email)
    page = await http.get("/console/two-factor")
    r = await http.post(
        "/console/two-factor", data={"csrf": csrf_of(page.text), "recovery_code": codes[3]}
    )
    assert r.status_code == 303
    await post_page_form(http, "/console/queue", "/console/logout", {})
    await password(http, email)
    page = await http.get("/console/two-factor")
    r = await http.post(
        "/console/two-factor", data={"csrf": csrf_of(page.text), "recovery_code": codes[3]}
    )
    assert r.status_code == 401
    assert 'id="recovery-error">Mã dự phòng: Mã dự phòng này đã được dùng' in r.text


async def test_the_console_sends_a_role_that_requires_it_to_enrolment_only(
    app, client, clock, configure
):
    configure(staff_totp_required_roles="manager,admin")
    email = await create_staff(app, [("manager", WARD)])
    http = console(app)
    r = await password(http, email)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/two-factor/enrol?next=%2Fconsole%2Fqueue"
    # only enrolment: the console's pages want a session, which the password did not give
    assert (await http.get("/console/queue")).status_code == 303
    page = await http.get("/console/two-factor/enrol?next=%2Fconsole%2Fqueue")
    assert page.status_code == 200
    assert "Vai trò của bạn bắt buộc xác thực hai lớp" in page.text
    assert '<nav aria-label="' not in page.text  # no console navigation before enrolment
    app_totp = pyotp.TOTP(SECRET.search(page.text).group(1).replace(" ", ""))
    r = await http.post(
        "/console/two-factor/enrol",
        data={
            "csrf": csrf_of(page.text),
            "code": app_totp.at(clock.now()),
            "next": "/console/queue",
        },
    )
    assert r.status_code == 200 and len(CODES.findall(r.text)) == 10
    assert '<a href="/console/queue">Tiếp tục</a>' in r.text
    assert (await http.get("/console/queue")).status_code == 200  # the session came with it


async def test_an_expired_challenge_goes_back_to_the_password_page(app, client, clock):
    email = await create_staff(app, [("officer", WARD)])
    app_totp, _, _ = await enrolled(client_for(app), email, clock)
    http = console(app)
    await password(http, email)
    page = await http.get("/console/two-factor")
    clock.advance(timedelta(seconds=301))
    r = await http.post(
        "/console/two-factor", data={"csrf": csrf_of(page.text), "code": app_totp.at(clock.now())}
    )
    assert r.status_code == 401
    # in the sign-in page's error summary (issue 23), focused when the page loads
    assert (
        'id="error-summary-message">Đã quá thời gian nhập mã xác thực. Hãy đăng nhập lại.' in r.text
    )
    assert '<input id="password"' in r.text  # the sign-in form again
    assert (await http.get("/console/queue")).status_code == 303


@pytest.mark.parametrize("viewer", ["admin", "manager"])
async def test_the_staff_page_offers_the_reset_to_admins_only(app, client, clock, viewer):
    officer = await create_staff(app, [("officer", WARD)])
    officer_totp, _, _ = await enrolled(client_for(app), officer, clock)
    officer_id = await user_id_of(app, officer)
    # the officer is signed in to the console (with a code)
    officer_http = console(app)
    await password(officer_http, officer)
    page = await officer_http.get("/console/two-factor")
    r = await officer_http.post(
        "/console/two-factor",
        data={"csrf": csrf_of(page.text), "code": officer_totp.at(clock.now())},
    )
    assert r.status_code == 303

    roles = [("admin", None)] if viewer == "admin" else [("manager", WARD)]
    viewer_email = await create_staff(app, roles)
    http = console(app)
    assert (await password(http, viewer_email)).status_code == 303
    staff_page = f"/console/units/{WARD}/staff"
    shown = await http.get(staff_page)
    assert shown.status_code == 200 and "Đã bật" in shown.text
    action = f"/console/staff/{officer_id}/second-factor/reset"
    if viewer == "manager":
        assert action not in shown.text
        r = await http.post(action, data={"csrf": csrf_of(shown.text), "back": staff_page})
        assert r.status_code == 403 and "Chỉ quản trị viên" in r.text
        assert (await officer_http.get("/console/queue")).status_code == 200
        return
    assert f'action="{action}"' in shown.text
    r = await http.post(action, data={"csrf": csrf_of(shown.text), "back": staff_page})
    assert (
        r.status_code == 303 and r.headers["location"] == f"{staff_page}?done=second_factor_reset"
    )
    after = await http.get(r.headers["location"])
    assert "Đã đặt lại xác thực hai lớp" in after.text and action not in after.text
    # the officer's console session ended with it
    assert (await officer_http.get("/console/queue")).status_code == 303
    # an admin's own: refused
    admin_id = await user_id_of(app, viewer_email)
    r = await http.post(
        f"/console/staff/{admin_id}/second-factor/reset",
        data={"csrf": csrf_of(after.text), "back": staff_page},
    )
    assert r.status_code == 403
