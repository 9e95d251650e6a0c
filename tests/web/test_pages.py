"""The console's pages over HTTP: sign-in with a session cookie, CSRF on every form, the
queue, the detail page and each action, per-unit denials, dispatch, service index,
staff and audit pages. Each staff member browses with a cookie jar of their own."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from app.accounts.models import RefreshToken
from app.complaints.models import ReportEvent, ReportPhoto, ReportSupporter
from app.core.audit import AuditEntry
from tests.accounts.factories import STAFF_PASSWORD, create_staff
from tests.complaints.factories import HOAN_KIEM
from tests.complaints.imagegen import jpeg_phone_photo
from tests.conftest import client_for
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    WEDNESDAY,
    clock,
    hanoi,
    reference_rules_only,
    report_row,
    resident_now,
    run_worker,
)
from tests.routing.test_routing import file_petition

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Browser:
    """A staff member's browser: its own cookies, signed in through the form."""

    def __init__(self, app, email: str):
        self.http = client_for(app)
        self.email = email

    async def sign_in(self) -> None:
        form = await self.http.get("/console/login")
        assert form.status_code == 200
        r = await self.http.post(
            "/console/login",
            data={
                "csrf": csrf_of(form.text),
                "email": self.email,
                "password": STAFF_PASSWORD,
                "next": "/console/queue",
            },
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/console/queue"

    async def get(self, path: str, **kw):
        return await self.http.get(path, **kw)

    async def post_form(self, page_path: str, action: str, data: dict, files=None):
        """Open the page, take its CSRF token, post the form like a browser would."""
        page = await self.http.get(page_path)
        assert page.status_code == 200, page.text
        return await self.http.post(action, data={"csrf": csrf_of(page.text), **data}, files=files)


async def browser_for(app, roles) -> Browser:
    browser = Browser(app, await create_staff(app, roles))
    await browser.sign_in()
    return browser


@pytest.fixture
async def ward(app, client, caplog, clock):
    """A resident's petition routed to the Hoàn Kiếm ward committee, and its staff."""
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    unit = f"ubnd-{area}"
    resident = await resident_now(client, caplog, clock)
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(
        client, resident["headers"], description="Đèn đường hỏng <script>alert(1)</script>"
    )
    await run_worker(clock)
    return {"unit": unit, "resident": resident, "report": filed, "id": uuid.UUID(filed["id"])}


async def test_pages_need_a_session_and_sign_in_sets_a_safe_cookie(app, client, ward):
    anonymous = client_for(app)
    r = await anonymous.get("/console/queue?status=assigned")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue%3Fstatus%3Dassigned"

    email = await create_staff(app, [("officer", ward["unit"])])
    form = await anonymous.get("/console/login")
    assert '<html lang="vi">' in form.text and 'for="email"' in form.text
    token = csrf_of(form.text)
    # no token, or another token: refused before the password is even looked at
    for bad in ({}, {"csrf": "0" * 64}):
        r = await anonymous.post(
            "/console/login", data={"email": email, "password": STAFF_PASSWORD, **bad}
        )
        assert r.status_code == 403
        assert "city_console=" not in r.headers.get("set-cookie", "")
    # a wrong password: the form again, with the reason, status 401
    r = await anonymous.post(
        "/console/login", data={"csrf": token, "email": email, "password": "wrong password"}
    )
    assert r.status_code == 401
    # in place (issue 23): the summary, focused on load, and the email marked
    assert 'class="error-summary"' in r.text and 'aria-invalid="true"' in r.text
    assert "city_console=" not in r.headers.get("set-cookie", "")
    token = csrf_of(r.text)  # the form comes back with a fresh token
    # an open redirect is not followed
    r = await anonymous.post(
        "/console/login",
        data={
            "csrf": token,
            "email": email,
            "password": STAFF_PASSWORD,
            "next": "//evil.example/",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/queue"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("city_console="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Max-Age=36000" in cookie

    queue = await anonymous.get("/console/queue")
    assert queue.status_code == 200 and ward["report"]["code"] in queue.text
    assert queue.headers["x-frame-options"] == "DENY"
    assert queue.headers["content-type"].startswith("text/html")

    # sign out: the session is revoked in the database, the old cookie is dead
    token_cookie = anonymous.cookies.get("city_console")
    r = await anonymous.post("/console/logout", data={"csrf": csrf_of(queue.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    replay = client_for(app)
    replay.cookies.set("city_console", token_cookie, domain="testserver.local", path="/console")
    assert (await replay.get("/console/queue")).status_code == 303
    async with app.state.sessionmaker() as s:
        revoked = await s.scalar(select(func.count()).where(RefreshToken.revoked_at.is_not(None)))
    assert revoked == 1


async def test_the_queue_page_lists_my_units_reports_by_deadline_with_counts(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    page = await officer.get("/console/queue")
    assert page.status_code == 200
    text = page.text
    assert ward["report"]["code"] in text
    # counts on the filter links, a caption, scoped table headers, labelled selects
    assert re.search(r"Đang mở <strong>1</strong>", text)
    assert re.search(r"Quá hạn <strong>0</strong>", text)
    assert re.search(r'<th scope="col"[ >]', text) and 'for="f-category"' in text
    # the description is escaped, never markup
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;" in text
    # filtered out by category
    other = await officer.get("/console/queue?category=waste")
    assert ward["report"]["code"] not in other.text and "Không có phản ánh" in other.text

    # English
    switched = await officer.get("/console/lang?to=en&next=/console/queue")
    assert switched.status_code == 303 and switched.headers["location"] == "/console/queue"
    english = await officer.get("/console/queue")
    assert '<html lang="en">' in english.text and "Open <strong>1</strong>" in english.text

    # another unit's officer sees none of it, and cannot ask for that unit
    stranger = await browser_for(app, [("officer", "evn-hanoi")])
    page = await stranger.get("/console/queue")
    assert ward["report"]["code"] not in page.text
    denied = await stranger.get(f"/console/queue?unit={ward['unit']}")
    assert denied.status_code == 403 and 'role="alert"' in denied.text


async def test_the_detail_page_shows_what_staff_need_and_contact_only_to_managers(
    app, client, ward
):
    officer = await browser_for(app, [("officer", ward["unit"])])
    manager = await browser_for(app, [("manager", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    as_officer = (await officer.get(path)).text
    as_manager = (await manager.get(path)).text
    phone = ward["resident"].get("phone")
    for page in (as_officer, as_manager):
        assert ward["report"]["code"] in page
        assert "&lt;script&gt;" in page and "<script>alert" not in page
        assert 'id="pin-map"' in page  # the location pin
        assert "Diễn biến xử lý" in page  # the timeline
    assert "Chỉ lãnh đạo đơn vị" in as_officer  # contact withheld, and said so
    if phone:
        assert phone not in as_officer and phone in as_manager
    # officers may ask for an extension; managers grant it
    assert f"/console/reports/{ward['id']}/extension_request" in as_officer
    assert f'/console/reports/{ward["id"]}/extension"' not in as_officer
    assert f'/console/reports/{ward["id"]}/extension"' in as_manager
    stranger = await browser_for(app, [("officer", "evn-hanoi")])
    denied = await stranger.get(path)
    assert denied.status_code == 403 and ward["report"]["code"] not in denied.text


async def test_a_days_work_through_the_forms(app, client, ward, clock):
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    resident = ward["resident"]["headers"]

    r = await officer.post_form(path, f"{path}/accept", {})
    assert r.status_code == 303 and r.headers["location"] == f"{path}?done=accepted"
    assert (await report_row(app, ward["id"])).status == "in_progress"

    r = await officer.post_form(path, f"{path}/reply", {"body": "Đã cử đội sửa chữa."})
    assert r.status_code == 303
    r = await officer.post_form(path, f"{path}/note", {"body": "Chờ vật tư từ kho."})
    assert r.status_code == 303
    mine = (await client.get(f"/api/v1/reports/{ward['id']}", headers=resident)).json()
    bodies = [e.get("body") for e in mine["timeline"]]
    assert "Đã cử đội sửa chữa." in bodies and "Chờ vật tư từ kho." not in bodies

    # an empty reply is a clear 422 page, nothing written
    before = await _event_count(app, ward["id"])
    r = await officer.post_form(path, f"{path}/reply", {"body": ""})
    assert r.status_code == 422 and "body" in r.text
    assert await _event_count(app, ward["id"]) == before

    # resolve with a photo of the repaired light (multipart, like the browser)
    r = await officer.post_form(
        path,
        f"{path}/resolve",
        {"answer": "Đã thay bóng đèn mới, đường đã sáng."},
        files={"photos": ("done.jpg", jpeg_phone_photo((1200, 900)), "image/jpeg")},
    )
    assert r.status_code == 303, r.text
    row = await report_row(app, ward["id"])
    assert row.status == "resolved" and row.resolved_on_time is True
    mine = (await client.get(f"/api/v1/reports/{ward['id']}", headers=resident)).json()
    assert mine["status"] == "resolved"
    assert "Đã thay bóng đèn mới, đường đã sáng." in [e.get("body") for e in mine["timeline"]]
    async with app.state.sessionmaker() as s:
        photos = list(
            await s.scalars(select(ReportPhoto).where(ReportPhoto.report_id == ward["id"]))
        )
    assert len(photos) == 1 and photos[0].event_id is not None
    assert "Ảnh kết quả xử lý" in (await officer.get(path)).text
    assert str(photos[0].id) in str(mine["photos"])

    # every action is in the audit log with the officer and the client address
    async with app.state.sessionmaker() as s:
        actions = list(
            await s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_id == ward["report"]["code"])
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["report.accepted", "report.replied", "report.noted", "report.resolved"]


async def test_forms_without_the_sessions_token_or_from_another_unit_write_nothing(
    app, client, ward
):
    officer = await browser_for(app, [("officer", ward["unit"])])
    stranger = await browser_for(app, [("officer", "evn-hanoi")])
    path = f"/console/reports/{ward['id']}"
    before = await _event_count(app, ward["id"])

    # no token; a token of another session (the stranger's)
    r = await officer.http.post(f"{path}/accept", data={})
    assert r.status_code == 403
    queue = await stranger.get("/console/queue")
    r = await officer.http.post(f"{path}/accept", data={"csrf": csrf_of(queue.text)})
    assert r.status_code == 403
    # the stranger with a valid token of their own: not their unit
    r = await stranger.http.post(
        f"{path}/reply", data={"csrf": csrf_of(queue.text), "body": "Không phải việc của tôi"}
    )
    assert r.status_code == 403 and 'role="alert"' in r.text
    assert await _event_count(app, ward["id"]) == before
    assert (await report_row(app, ward["id"])).status == "assigned"
    # an unknown action
    page = await officer.get(path)
    r = await officer.http.post(f"{path}/explode", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 404


async def test_extension_request_then_the_managers_approval(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    manager = await browser_for(app, [("manager", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    due = (await report_row(app, ward["id"])).due_at
    # roads: 5 working days from Wed 25 Nov → Wed 2 Dec; ask for Fri 4 Dec
    r = await officer.post_form(
        path, f"{path}/extension_request", {"due_date": "2026-12-04", "reason": "Chờ vật tư"}
    )
    assert r.status_code == 303
    assert (await report_row(app, ward["id"])).due_at == due  # nothing moves yet
    page = (await manager.get(path)).text
    assert "Đề nghị gia hạn đang chờ" in page and "04/12/2026" in page
    # the officer cannot approve
    r = await officer.post_form(path, f"{path}/extension_decision", {"decision": "approve"})
    assert r.status_code == 403
    r = await manager.post_form(path, f"{path}/extension_decision", {"decision": "approve"})
    assert r.status_code == 303
    row = await report_row(app, ward["id"])
    assert row.original_due_at == due and row.due_at.date().isoformat() == "2026-12-04"
    assert row.extension_requested_at is None


async def test_merge_as_duplicate_and_moderation_from_the_page(app, client, caplog, ward, clock):
    officer = await browser_for(app, [("officer", ward["unit"])])
    other = await resident_now(client, caplog, clock)
    second = await file_petition(client, other["headers"])
    await run_worker(clock)
    path = f"/console/reports/{second['id']}"
    r = await officer.post_form(path, f"{path}/merge", {"original_code": ward["report"]["code"]})
    assert r.status_code == 303
    assert (await report_row(app, uuid.UUID(second["id"]))).status == "duplicate"
    async with app.state.sessionmaker() as s:
        followers = set(
            await s.scalars(
                select(ReportSupporter.user_id).where(ReportSupporter.report_id == ward["id"])
            )
        )
    assert uuid.UUID(other["user_id"]) in followers

    target = f"/console/reports/{ward['id']}"
    r = await officer.post_form(target, f"{target}/hide_text", {"reason": "Ngôn từ không phù hợp"})
    assert r.status_code == 303
    public = await client.get(f"/api/v1/public/reports/{ward['report']['code']}")
    assert "Đèn đường hỏng" not in public.text


async def test_dispatch_page_is_for_dispatchers_and_assigns(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    assert (await officer.get("/console/dispatch")).status_code == 403
    dispatcher = await browser_for(app, [("dispatcher", None)])
    page = await dispatcher.get("/console/dispatch")
    assert page.status_code == 200 and "Điều phối" in page.text
    # the dispatcher assigns the ward's report to the lighting company from this page
    path = f"/console/reports/{ward['id']}"
    r = await dispatcher.post_form(
        "/console/dispatch",
        f"{path}/transfer",
        {"unit_code": "evn-hanoi", "reason": "Đèn đường do điện lực", "back": "/console/dispatch"},
    )
    # the confirmation's ids (issue 23 item 3): the report and the unit it went to
    assert r.status_code == 303 and r.headers["location"] == (
        f"/console/dispatch?done_report={ward['id']}&done_unit=evn-hanoi&done=transferred"
    )
    row = await report_row(app, ward["id"])
    assert row.transfer_count == 0  # a dispatcher's assignment is not a unit's transfer


async def test_a_dispatcher_routes_the_unrouted_reports_from_the_dispatch_page(
    app, client, caplog, clock
):
    resident = await resident_now(client, caplog, clock)
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, resident["headers"])  # no worker runs
    officer = await browser_for(app, [("officer", "evn-hanoi")])
    dispatcher = await browser_for(app, [("dispatcher", None)])
    page = await dispatcher.get("/console/dispatch")
    assert filed["code"] in page.text and "Định tuyến ngay" in page.text

    # an officer's session (and CSRF token) cannot run it: 403, nothing routed
    refused = await officer.post_form("/console/queue", "/console/dispatch/route", {})
    assert refused.status_code == 403
    assert (await report_row(app, uuid.UUID(filed["id"]))).status == "submitted"

    r = await dispatcher.post_form("/console/dispatch", "/console/dispatch/route", {})

    assert r.status_code == 303 and r.headers["location"] == "/console/dispatch?routed=1"
    after = await dispatcher.get(r.headers["location"])
    assert "Đã định tuyến 1 phản ánh." in after.text
    assert "Định tuyến ngay" not in after.text  # nothing left waiting
    row = await report_row(app, uuid.UUID(filed["id"]))
    assert row.status == "assigned" and row.unit_id is not None


async def test_unit_pages_index_staff_and_audit(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    manager = await browser_for(app, [("manager", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    await officer.post_form(path, f"{path}/accept", {})

    index = await officer.get(f"/console/units/{ward['unit']}/index")
    assert index.status_code == 200 and "Chỉ số phục vụ" in index.text
    assert (await officer.get(f"/console/units/{ward['unit']}/staff")).status_code == 403
    assert (await officer.get(f"/console/units/{ward['unit']}/audit")).status_code == 403
    staff = await manager.get(f"/console/units/{ward['unit']}/staff")
    assert staff.status_code == 200 and officer.email in staff.text
    audit = await manager.get(f"/console/units/{ward['unit']}/audit")
    assert audit.status_code == 200 and "Tiếp nhận phản ánh" in audit.text
    assert "report.accepted" not in audit.text  # names, not codes (issue 17 item 16)
    stranger = await browser_for(app, [("manager", "evn-hanoi")])
    assert (await stranger.get(f"/console/units/{ward['unit']}/audit")).status_code == 403


async def test_the_map_data_is_the_visible_queue(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    bbox = "105.80,20.98,105.90,21.08"
    close = (await officer.get(f"/console/map.geojson?bbox={bbox}&zoom=16")).json()
    assert [f["properties"]["code"] for f in close["features"]] == [ward["report"]["code"]]
    far = (await officer.get(f"/console/map.geojson?bbox={bbox}&zoom=11")).json()
    assert sum(f["properties"]["count"] for f in far["features"]) == 1
    stranger = await browser_for(app, [("officer", "evn-hanoi")])
    none = (await stranger.get(f"/console/map.geojson?bbox={bbox}&zoom=16")).json()
    assert none["features"] == []
    bad = await officer.get("/console/map.geojson?bbox=1,2,3&zoom=16")
    assert bad.status_code == 422
    outlines = (await officer.get("/console/map/areas.geojson")).json()
    assert len(outlines["features"]) == 126


async def _event_count(app, report_id) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(
            select(func.count()).select_from(ReportEvent).where(ReportEvent.report_id == report_id)
        )


async def test_the_inbox_shows_my_notifications_and_opens_the_report(app, client, caplog, clock):
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    officer = await browser_for(app, [("officer", f"ubnd-{area}")])
    other = await browser_for(app, [("officer", f"ubnd-{area}")])
    resident = await resident_now(client, caplog, clock)
    filed = await file_petition(client, resident["headers"])
    await run_worker(clock)  # routing tells the unit's staff: "new report"

    page = await officer.get("/console/inbox")
    assert page.status_code == 200
    assert f"Phản ánh mới {filed['code']}" in page.text
    assert "Thông báo (1 chưa đọc)" in page.text  # the header's count
    opened = await officer.post_form(
        "/console/inbox", f"/console/inbox/{_first_id(page.text)}/open", {}
    )
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/console/reports/{filed['id']}"
    assert "Thông báo (1 chưa đọc)" not in (await officer.get("/console/inbox")).text
    # someone else's notification is "not found", and stays unread
    theirs = await other.get("/console/inbox")
    theirs_id = _first_id(theirs.text)
    mine = await officer.get("/console/inbox")
    r = await officer.http.post(
        f"/console/inbox/{theirs_id}/open", data={"csrf": csrf_of(mine.text)}
    )
    assert r.status_code == 404
    assert "Thông báo (1 chưa đọc)" in (await other.get("/console/inbox")).text


def _first_id(page: str) -> str:
    match = re.search(r'action="/console/inbox/(\d+)/open"', page)
    assert match, "no notification in the page"
    return match.group(1)
