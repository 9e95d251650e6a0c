"""Issue 18 item 3: the console's forms are decoded by Litestar into msgspec Structs
(app/web/forms.py) and their field errors come from Litestar's structured error, shown on
the page in the reader's language."""

from __future__ import annotations

import msgspec
from litestar.enums import RequestEncodingType
from litestar.params import BodyKwarg
from sqlalchemy import func, select

from app.complaints.models import ReportEvent
from app.main import create_app
from tests.routing.conftest import clock  # noqa: F401 (fixture)
from tests.web.test_pages import browser_for, ward  # noqa: F401 (fixture)


def test_every_form_handler_receives_a_struct_decoded_by_litestar():
    handlers = {
        h
        for route in create_app().routes
        if route.path.startswith("/console/")
        for h in getattr(route, "route_handlers", [])
        if "POST" in h.http_methods and h.handler_name != "unknown_action"
    }
    # + the dossier file upload (issue 19 item 2), + the second factor's code, enrolment,
    # recovery codes and reset forms (issue 22 item 3), + suspend, lift, flag and unflag
    # (issue 22 item 6), + redact a photo (issue 22 item 5)
    # + the response templates' write, change, delete and send, and the queue's bulk form
    # (issue 22 items 1-2)
    assert len(handlers) == 23 + 5 + 5
    for handler in handlers:
        data = handler.parsed_fn_signature.parameters["data"]
        assert isinstance(data.kwarg_definition, BodyKwarg), handler.handler_name
        assert data.kwarg_definition.media_type in (
            RequestEncodingType.URL_ENCODED,
            RequestEncodingType.MULTI_PART,
        )
        assert issubclass(data.annotation, msgspec.Struct), handler.handler_name


async def _events(app, report_id) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(
            select(func.count()).select_from(ReportEvent).where(ReportEvent.report_id == report_id)
        )


async def test_bad_fields_are_a_422_page_naming_them_in_the_readers_language(app, ward):
    """Since issue 23 the page is the form's own page again (errors in place,
    tests/web/test_errors_in_place.py), each bad field named by its label, never its code."""
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    before = await _events(app, ward["id"])

    # a text past the command's limit: the same limit as the JSON API (MessageIn)
    r = await officer.post_form(path, f"{path}/reply", {"body": "x" * 4001})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert (
        "Trả lời người dân (công khai): tối đa 4.000 ký tự." in r.text
        and 'href="#msg-reply"' in r.text
    )
    # the button pressed must be one the form offers (it used to read as "decline")
    r = await officer.post_form(path, f"{path}/extension_decision", {"decision": "maybe"})
    assert r.status_code == 422
    assert "Quyết định gia hạn: hãy chọn một trong các lựa chọn có sẵn." in r.text
    # a field sent twice is not silently the last one
    page = await officer.http.get(path)
    from tests.web.test_pages import csrf_of

    token = csrf_of(page.text)
    r = await officer.http.post(
        f"{path}/note", content=f"csrf={token}&body=a&body=b".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert r.status_code == 422 and "Ghi chú nội bộ: chỉ được gửi một giá trị." in r.text
    # a field no form has is refused, as the JSON API refuses it
    r = await officer.post_form(path, f"{path}/note", {"body": "ok", "unit_code": "x"})
    assert r.status_code == 422 and "Biểu mẫu gửi lên có trường mà trang không có" in r.text
    assert await _events(app, ward["id"]) == before

    # in English for a reader who chose English
    officer.http.cookies.set("city_lang", "en", path="/console")
    r = await officer.post_form(
        path, f"{path}/extension_request", {"due_date": "2026-02-30", "reason": "Chờ vật tư"}
    )
    assert r.status_code == 422
    assert "New deadline (a working day): not a real date" in r.text
    assert "due_date" not in r.text.replace('name="due_date"', "")  # the label, not the code
    # a bad query value names its parameter (a 400 page, as before: no form to keep)
    r = await officer.get("/console/queue?status=closed")
    assert r.status_code == 400 and "Some fields are not valid: status." in r.text
    # and a good form still goes through
    r = await officer.post_form(path, f"{path}/note", {"body": "Chờ vật tư từ kho."})
    assert r.status_code == 303 and await _events(app, ward["id"]) == before + 1
