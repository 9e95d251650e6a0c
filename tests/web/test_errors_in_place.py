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
