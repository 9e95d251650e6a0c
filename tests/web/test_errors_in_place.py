"""Issue 23 items 2-3 over HTTP through the real app: a refused console form comes back
on its own page (GOV.UK's pattern) with what was typed, a summary linking to each bad
field, the message beside the field named by its label, and "Lỗi: "/"Error: " in the
title; nothing is written. After an action, the next page says what happened with the
report's code and the unit's name, in an element focused on load."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from app.complaints.models import Report, ReportEvent
from tests.complaints.test_redaction import filed  # noqa: F401 (fixture)
from tests.routing.conftest import clock  # noqa: F401 (fixture)
from tests.web.test_pages import Browser, browser_for, csrf_of, ward  # noqa: F401 (fixture)


async def _events(app, report_id) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(
            select(func.count()).select_from(ReportEvent).where(ReportEvent.report_id == report_id)
        )


async def _report(app, report_id) -> Report:
    async with app.state.sessionmaker() as s:
        return await s.get_one(Report, report_id)


def _title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    assert found, "no title"
    return html.unescape(found[1]).strip()


def _summary(page: str) -> str:
    found = re.search(r'<div class="error-summary"(.*?)</div>', page, re.S)
    assert found, "no error summary"
    return found[0]


def _tag(page: str, element_id: str) -> str:
    """The opening tag of the element with this id."""
    found = re.search(rf'<(?:input|textarea|select|button)[^>]*\bid="{element_id}"[^>]*>', page)
    assert found, f"no control #{element_id}"
    return found[0]


def assert_in_place(page: str, field_id: str, label: str, code: str, prefix: str) -> str:
    """The GOV.UK pattern for one bad field; returns the message beside it."""
    summary = _summary(page)
    assert 'tabindex="-1"' in summary and "data-focus-on-load" in summary
    assert 'role="alert"' not in summary  # focus reads it out; an alert would read it twice
    assert f'href="#{field_id}"' in summary
    tag = _tag(page, field_id)
    assert 'aria-invalid="true"' in tag
    described = re.search(r'aria-describedby="([^"]+)"', tag)
    assert described and f"{field_id}-error" in described[1].split()
    message = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', page, re.S)
    assert message, "no message beside the field"
    text = html.unescape(re.sub(r"<[^>]+>", "", message[1]))
    assert label in text and code not in text.replace(prefix, "")
    assert label in html.unescape(summary)
    assert _title(page).startswith(f"{prefix} ")
    return text


async def test_an_extension_in_the_past_comes_back_in_place_in_vi_and_en(app, ward):
    manager = await browser_for(app, [("manager", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    before = await _events(app, ward["id"])
    typed = {"due_date": "2026-11-02", "reason": "Chờ vật tư <thép> từ kho"}
    r = await manager.post_form(path, f"{path}/extension", typed)
    assert r.status_code == 422, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    # a personal page like any other: not stored, under the console's script policy
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers.get("content-security-policy", "")
    page = r.text
    text = assert_in_place(page, "extension-date", "Hạn mới (ngày làm việc)", "due_date", "Lỗi:")
    assert "Hạn mới phải sau hạn hiện tại" in text
    # every value kept (escaped), the report page with its data as on GET
    assert 'value="2026-11-02"' in _tag(page, "extension-date")
    assert 'value="Chờ vật tư &lt;thép&gt; từ kho"' in _tag(page, "extension-reason")
    assert ward["report"]["code"] in page and 'name="csrf"' in page
    assert "due_date" not in _summary(page)
    assert await _events(app, ward["id"]) == before
    assert (await _report(app, ward["id"])).original_due_at is None

    manager.http.cookies.set("city_lang", "en", path="/console")
    r = await manager.post_form(path, f"{path}/extension", typed)
    assert r.status_code == 422
    assert_in_place(r.text, "extension-date", "New deadline (a working day)", "due_date", "Error:")
    assert 'value="2026-11-02"' in _tag(r.text, "extension-date")
    # a date that does not exist is the same page (Litestar's decoding error, a 422)
    r = await manager.post_form(path, f"{path}/extension", {**typed, "due_date": "2026-02-30"})
    assert r.status_code == 422
    text = assert_in_place(r.text, "extension-date", "New deadline", "due_date", "Error:")
    assert "not a real date" in text
    assert 'value="2026-02-30"' in _tag(r.text, "extension-date")
    assert await _events(app, ward["id"]) == before


LONG = "x" * 4001
# form → what is posted → the control the summary links to, its label (catalogue key),
# the kind of message, and the status. Every one writes nothing.
REPORT_FORMS = [
    ("reply", {"body": LONG}, "msg-reply", "reply", "tối đa 4.000 ký tự", 422),
    ("reply", {"body": ""}, "msg-reply", "reply", "chưa nhập", 422),
    ("note", {"body": LONG}, "msg-note", "note", "tối đa", 422),
    ("info_request", {"body": ""}, "msg-info_request", "info_request", "chưa nhập", 422),
    (
        "transfer",
        {"unit_code": "no-such-unit", "reason": "Sai địa bàn"},
        "unit_code",
        "to_unit",
        "Đơn vị không tồn tại",
        422,
    ),
    (
        "transfer",
        {"unit_code": "no-such-unit", "reason": "ab"},
        "transfer-reason",
        "reason",
        "ít nhất 5",
        422,
    ),
    ("reject", {"reason": "ab"}, "reject-reason", "reason", "ít nhất 5", 422),
    (
        "merge",
        {"original_code": "PA-1999-99999"},
        "original_code",
        "original_code",
        "PA-1999-99999",
        422,
    ),
    ("hide_text", {"reason": ""}, "hide-reason", "reason", "chưa nhập", 422),
    (
        "extension",
        {"due_date": "", "reason": "Chờ vật tư"},
        "extension-date",
        "new_due_date",
        "",
        422,
    ),
]


@pytest.mark.parametrize(
    ("action", "values", "field_id", "label", "says", "status"),
    REPORT_FORMS,
    ids=[f"{case[0]}-{case[2]}-{i}" for i, case in enumerate(REPORT_FORMS)],
)
async def test_every_report_form_comes_back_in_place(
    app, ward, action, values, field_id, label, says, status
):
    from app.web.texts import text

    manager = await browser_for(app, [("manager", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    before = await _events(app, ward["id"])
    r = await manager.post_form(path, f"{path}/{action}", values)
    assert r.status_code == status, r.text[:400]
    message = assert_in_place(r.text, field_id, text(label, "vi"), "§", "Lỗi:")
    assert says in message
    for name, value in values.items():
        if value and len(value) < 100 and name != "unit_code":
            assert f"{html.escape(value, quote=True)}" in r.text, name
    assert await _events(app, ward["id"]) == before


async def test_a_resolution_too_short_comes_back_in_place_with_the_answer(app, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    accepted = await officer.post_form(path, f"{path}/accept", {})
    assert accepted.status_code == 303
    page = await officer.get(accepted.headers["location"])
    # the confirmation of the accept names the report
    assert _confirmation(page.text) == f"Đã nhận xử lý phản ánh {ward['report']['code']}."
    page = await officer.get(path)
    assert 'id="confirmation"' not in page.text  # said once, not on every later visit
    before = await _events(app, ward["id"])
    r = await officer.http.post(
        f"{path}/resolve",
        data={"csrf": csrf_of(page.text), "answer": "Đã sửa"},
        files={"photos": ("", b"", "application/octet-stream")},
    )
    assert r.status_code == 422, r.text[:300]
    message = assert_in_place(r.text, "answer", "Kết quả xử lý", "answer", "Lỗi:")
    assert "ít nhất 10" in message
    assert ">Đã sửa</textarea>" in r.text
    assert await _events(app, ward["id"]) == before


async def test_a_refusal_about_no_field_is_in_place_with_the_values_kept(app, ward):
    """A conflict (the report is already at that unit) is the summary's text; the page
    and what was typed stay."""
    manager = await browser_for(app, [("manager", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    # a unit the list offers is any other one; the report's own unit is refused
    r = await manager.post_form(
        path, f"{path}/transfer", {"unit_code": ward["unit"], "reason": "Thử lại lần nữa"}
    )
    assert r.status_code == 409
    summary = _summary(r.text)
    assert "Phản ánh đã thuộc đơn vị này." in html.unescape(summary)
    assert _title(r.text).startswith("Lỗi: ")
    assert 'value="Thử lại lần nữa"' in _tag(r.text, "transfer-reason")
    # a field no form has: the form's message, the page still there
    r = await manager.post_form(path, f"{path}/note", {"body": "ghi chú", "unit_code": "x"})
    assert r.status_code == 422
    assert "trường mà trang không có" in html.unescape(_summary(r.text))
    assert ">ghi chú</textarea>" in r.text
    # a report that is not there: the error page, as before (nothing to re-render)
    other = "/console/reports/00000000-0000-4000-8000-000000000000"
    r = await manager.http.post(f"{other}/note", data={"csrf": csrf_of(r.text), "body": "ghi chú"})
    assert r.status_code == 404 and 'role="alert"' in r.text and "error-summary" not in r.text
    # a forged form (no token) is still the CSRF check's 403 page
    r = await manager.http.post(f"{path}/note", data={"csrf": "0" * 64, "body": "ghi chú"})
    assert r.status_code == 403 and "error-summary" not in r.text


async def test_sign_in_refused_is_announced_in_place(app, ward):
    from tests.accounts.factories import create_staff

    email = await create_staff(app, [("officer", ward["unit"])])
    anonymous = Browser(app, email)
    form = await anonymous.get("/console/login")
    r = await anonymous.http.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "email": email, "password": "sai mật khẩu"},
    )
    assert r.status_code == 401
    assert_in_place(r.text, "email", "Email", "email", "Lỗi:")
    assert f'value="{email}"' in _tag(r.text, "email")
    assert "sai mật khẩu" not in r.text  # a password is never sent back
    assert 'value=""' not in _tag(r.text, "password") and "value=" not in _tag(r.text, "password")
    assert "city_console=" not in r.headers.get("set-cookie", "")


async def test_a_transfer_is_confirmed_with_the_code_and_the_unit(app, ward):
    from app.places.models import Unit

    async with app.state.sessionmaker() as s:
        unit_name = await s.scalar(select(Unit.name_vi).where(Unit.code == "evn-hanoi"))
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    r = await officer.post_form(
        path, f"{path}/transfer", {"unit_code": "evn-hanoi", "reason": "Đèn đường do điện lực"}
    )
    assert r.status_code == 303, r.text[:300]
    # sent out of the ward: the report page is no longer theirs, so the queue, which
    # names the report and the unit from the ids in the URL
    location = r.headers["location"]
    assert location.startswith("/console/queue?") and location.endswith("done=transferred")
    page = await officer.get(location)
    assert page.status_code == 200 and "<h1>Hàng đợi" in page.text  # the queue, unfiltered
    expected = f"Đã chuyển phản ánh {ward['report']['code']} sang {unit_name}."
    assert _confirmation(page.text) == expected
    # the URL carries ids, never text: a unit code nobody has names no unit
    forged = location.replace("done_unit=evn-hanoi", "done_unit=%3Cb%3Eevil")
    page = await officer.get(forged)
    assert page.status_code == 200
    assert "<b>evil" not in page.text and "&lt;b&gt;evil" not in page.text
    assert _confirmation(page.text) == f"Đã chuyển phản ánh {ward['report']['code']}."
    # and someone who never saw the report learns nothing from its id
    stranger = await browser_for(app, [("officer", "ubnd-00070")])
    page = await stranger.get(location)
    assert page.status_code == 200
    assert ward["report"]["code"] not in page.text and _confirmation(page.text) == "Đã lưu."


def _confirmation(page: str) -> str:
    found = re.search(
        r'<p class="ok confirmation" id="confirmation" role="status" tabindex="-1"'
        r" data-focus-on-load>"
        r"(.*?)</p>",
        page,
    )
    assert found, "no confirmation"
    return html.unescape(found[1])


async def test_the_dispatch_pages_assign_form_comes_back_on_the_dispatch_page(app, ward):
    from app.places.models import Unit

    async with app.state.sessionmaker() as s:
        desk = await s.scalar(select(Unit.code).where(Unit.kind == "dispatcher").limit(1))
    dispatcher = await browser_for(app, [("dispatcher", None)])
    path = f"/console/reports/{ward['id']}"
    # the report waits at the dispatch desk (sent back by the ward)
    r = await dispatcher.post_form(
        path, f"{path}/transfer", {"unit_code": desk, "reason": "Sai địa bàn"}
    )
    assert r.status_code == 303, r.text[:300]
    before = await _events(app, ward["id"])
    r = await dispatcher.post_form(
        "/console/dispatch",
        f"{path}/transfer",
        {"unit_code": "no-such-unit", "reason": "Điện lực xử lý", "back": "/console/dispatch"},
    )
    assert r.status_code == 422
    assert "<h1>Điều phối</h1>" in r.text  # the dispatch page, not the report's
    rid = ward["id"]
    assert_in_place(r.text, f"unit-{rid}", "Đơn vị nhận", "unit_code", "Lỗi:")
    assert 'value="Điện lực xử lý"' in _tag(r.text, f"reason-{rid}")
    # the language link goes to the page, not to the form's action
    assert 'next=/console/dispatch"' in r.text
    assert await _events(app, ward["id"]) == before


async def test_suspension_and_staff_forms_come_back_in_place(app, client, caplog, ward):
    from tests.accounts.factories import sign_in_resident

    resident = await sign_in_resident(client, caplog)
    admin = await browser_for(app, [("admin", None)])
    page = "/console/moderation/suspensions"
    r = await admin.post_form(page, page, {"phone": "0912", "reason": "Tin rác quảng cáo"})
    assert r.status_code == 422
    assert_in_place(r.text, "suspend-phone", "Số điện thoại", "phone", "Lỗi:")
    assert ">Tin rác quảng cáo</textarea>" in r.text
    typed = {"phone": resident["phone"], "reason": "Tin rác", "until": "2099-02-30"}
    r = await admin.post_form(page, page, typed)
    assert r.status_code == 400
    assert_in_place(r.text, "suspend-until", "Tạm khóa đến ngày", "until", "Lỗi:")
    assert f'value="{resident["phone"]}"' in _tag(r.text, "suspend-phone")
    # an unknown phone is about no field: the summary says so, the values stay
    r = await admin.post_form(page, page, {"phone": "0919999999", "reason": "Tin rác"})
    assert r.status_code == 404 and 'id="error-summary"' in r.text
    assert 'value="0919999999"' in _tag(r.text, "suspend-phone")

    # a unit's staff page: resetting a second factor that is not there
    staff = f"/console/units/{ward['unit']}/staff"
    r = await admin.post_form(
        staff,
        "/console/staff/00000000-0000-4000-8000-000000000000/second-factor/reset",
        {"back": staff},
    )
    assert 400 <= r.status_code < 500 and 'id="error-summary"' in r.text
    assert _title(r.text).startswith("Lỗi: ") and "<h1>" in r.text and "staff" in r.text


async def test_a_half_filled_redaction_row_comes_back_in_place(app, client, filed):
    from tests.complaints.test_redaction import FACE

    officer = await browser_for(app, [("officer", filed["unit"])])
    path = f"/console/moderation/photos/{filed['photo'].id}/redact"
    row = {"x1": FACE["x"], "y1": FACE["y"], "w1": FACE["width"], "h1": FACE["height"]}
    r = await officer.post_form(path, path, {**{k: str(v) for k, v in row.items()}, "x2": "10"})
    assert r.status_code == 400
    assert_in_place(r.text, "x2", "Hình chữ nhật 2", "rectangle", "Lỗi:")
    assert f'value="{FACE["x"]}"' in _tag(r.text, "x1") and 'value="10"' in _tag(r.text, "x2")
    # outside the photo: the service's error, named by the row the form has
    r = await officer.post_form(path, path, {**{k: str(v) for k, v in row.items()}, "x1": "550"})
    assert r.status_code == 400
    assert_in_place(r.text, "x1", "Hình chữ nhật 1", "rectangles[0]", "Lỗi:")


# forms that have no field anyone types (a button), so nothing to mark beside a field
BUTTONS = {"accept", "route_now", "lift", "unflag", "template_delete", "second_factor_reset"}
# handlers that answer their refusal themselves (api.refused) or have no page to go back
# to (sign out, a notification opened, all read, a path no form posts to)
OWN_ANSWER = {"verify", "confirm", "regenerate", "logout", "open_notification", "read_all"}


def test_every_console_form_names_the_page_it_comes_back_on():
    """Designed once: each form handler names its page (``form_page``) and its form's
    fields have a control id and a label in ``forms.FORMS``."""
    from app.main import create_app
    from app.web.api import PAGES
    from app.web.forms import FORMS

    handlers = [
        h
        for route in create_app().routes
        if route.path.startswith("/console/")
        for h in getattr(route, "route_handlers", [])
        if "POST" in h.http_methods and h.handler_name != "unknown_action"
    ]
    assert len(handlers) >= 33
    for handler in handlers:
        if handler.handler_name in OWN_ANSWER:
            continue
        opt = handler.opt
        assert opt.get("form_page") in PAGES, handler.handler_name
        assert opt["form_key"] in FORMS or opt["form_key"] in BUTTONS, handler.handler_name
    # every field's label is in the catalogue, in both languages (the loader checks those)
    from app.core import i18n

    for key, fields in FORMS.items():
        for name, (_control, label) in fields.items():
            assert i18n.has("console." + label) or i18n.has(label), (key, name, label)
