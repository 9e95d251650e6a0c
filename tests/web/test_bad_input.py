"""Issue 17 item 6: bad input is a 4xx (problem+json on the API, an HTML page on the
console), never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.complaints.models import ReportEvent
from app.core.errors import PROBLEM_JSON
from tests.accounts.factories import sign_in_resident
from tests.routing.conftest import clock  # noqa: F401 (fixture)
from tests.web.test_pages import browser_for, csrf_of, ward  # noqa: F401 (fixture)

INT64_MAX = 2**63 - 1


def assert_problem_400(response) -> dict:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert problem["code"] == "validation_failed"
    return problem


def assert_page_4xx(response, status: int = 400, field: str | None = None) -> None:
    """An error page, or (issue 23) the form's own page with the error summary and the
    field ``field`` (its id) marked."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text or 'class="error-summary"' in response.text
    if field is not None:
        assert f'href="#{field}"' in response.text and f'id="{field}-error"' in response.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 50_000, "nested too deeply"),
        (b'{"full_name": "\xff\xfe Nguy\xe1n"}', "not valid UTF-8"),
    ],
    ids=["nested-50000", "not-utf8"],
)
async def test_json_bodies_that_cannot_be_decoded_are_a_400(app, client, caplog, body, message):
    resident = await sign_in_resident(client, caplog)
    headers = {**resident["headers"], "content-type": "application/json"}
    for method, path in (("PATCH", "/api/v1/me"), ("POST", "/api/v1/reports")):
        r = await client.request(method, path, content=body, headers=headers)
        problem = assert_problem_400(r)
        assert problem["errors"] == [{"field": "body", "message": message}]


async def test_console_ids_beyond_int64_are_a_400_page(app, client):
    officer = await browser_for(app, [("officer", "ubnd-00070")])
    token = csrf_of((await officer.get("/console/inbox")).text)
    r = await officer.http.post(f"/console/inbox/{INT64_MAX + 1}/open", data={"csrf": token})
    assert_page_4xx(r)
    for up_to in (str(2**70), "-3", "abc"):
        r = await officer.http.post(
            "/console/inbox/read-all", data={"csrf": token, "up_to_id": up_to}
        )
        assert_page_4xx(r)
        assert "up_to_id" in r.text
    # the largest id is fine (nothing that high to mark), and so is none
    for up_to in (str(INT64_MAX), ""):
        r = await officer.http.post(
            "/console/inbox/read-all", data={"csrf": token, "up_to_id": up_to}
        )
        assert r.status_code == 303, r.text


async def test_nul_in_console_forms_is_a_400_page_and_writes_nothing(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    before = await _events(app, ward["id"])
    lamp = "Đèn đường do điện lực"
    for action, data, field in (
        ("reply", {"body": "Đã tiếp nhận\x00 xin cảm ơn"}, "msg-reply"),
        ("note", {"body": "\x00"}, "msg-note"),
        ("transfer", {"unit_code": "evn-hanoi\x00", "reason": lamp}, "unit_code"),
        ("transfer", {"unit_code": "evn-hanoi", "reason": "Đèn\x00 đường"}, "transfer-reason"),
        ("reject", {"reason": "Không thuộc\x00 thẩm quyền"}, None),  # not offered: summary only
    ):
        r = await officer.post_form(path, f"{path}/{action}", data)
        assert_page_4xx(r, field=field)
        assert "U+0000" in r.text and "\x00" not in r.text
    assert await _events(app, ward["id"]) == before
    # a NUL in a query that reaches the database: the page handler turns it into a 400
    r = await officer.get("/console/queue?category=waste%00")
    assert_page_4xx(r)
    # the sign-in form too
    from tests.conftest import client_for

    fresh = client_for(app)
    form = await fresh.get("/console/login")
    r = await fresh.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "email": "a\x00@city.test", "password": "x"},
    )
    assert_page_4xx(r)


async def _events(app, report_id) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(
            select(func.count()).select_from(ReportEvent).where(ReportEvent.report_id == report_id)
        )
