"""The console's moderation pages over HTTP (issue 22 item 6): an admin suspends a
resident by phone number until a day, reads the appeal and lifts it; staff flag a report
abusive from its page and unflag it. Other roles get the 403 page and nothing is written."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.suspension import AccountSuspension
from app.complaints.abuse import ReportAbuseFlag
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import report_body
from tests.complaints.test_abuse_flags import map_snapshot_dropped  # noqa: F401 (fixture)
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    WEDNESDAY,
    clock,
    hanoi,
    reference_rules_only,
    resident_now,
    run_worker,
)
from tests.web.test_pages import browser_for, ward  # noqa: F401 (fixture)

PAGE = "/console/moderation/suspensions"


async def _count(app, model) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def test_an_admin_suspends_reads_the_appeal_and_lifts_in_the_console(app, client, caplog):
    resident = await sign_in_resident(client, caplog)
    admin = await browser_for(app, [("admin", None)])

    page = await admin.get(PAGE)
    assert page.status_code == 200 and 'for="suspend-phone"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert 'href="/console/moderation/suspensions" aria-current="page"' in page.text

    r = await admin.post_form(
        PAGE,
        PAGE,
        {"phone": resident["phone"], "reason": "Đăng tin quảng cáo", "until": "2099-12-31"},
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=suspended")
    filed = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=resident["headers"]
    )
    assert filed.status_code == 403 and "31/12/2099" in filed.json()["detail"]

    await client.post(
        "/api/v1/me/suspension/appeal",
        json={"text": "Tôi không đăng quảng cáo."},
        headers=resident["headers"],
    )
    listed = await admin.get(f"{PAGE}?appealed=true")
    assert "Tôi không đăng quảng cáo." in listed.text and resident["phone"] in listed.text

    suspension_id = (await client.get("/api/v1/me/suspension", headers=resident["headers"])).json()[
        "id"
    ]
    r = await admin.post_form(PAGE, f"{PAGE}/{suspension_id}/lift", {})
    assert r.status_code == 303 and r.headers["location"].endswith("done=lifted")
    assert "Tôi không đăng quảng cáo." not in (await admin.get(PAGE)).text
    filed = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=resident["headers"]
    )
    assert filed.status_code == 201

    # bad input: an unknown phone, a day that is not one; nothing written
    before = await _count(app, AccountSuspension)
    for data, status in (
        ({"phone": "0919999999", "reason": "Tin rác"}, 404),
        ({"phone": resident["phone"], "reason": "Tin rác", "until": "2099-02-30"}, 400),
        ({"phone": resident["phone"], "reason": "x"}, 422),
    ):
        r = await admin.post_form(PAGE, PAGE, data)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("text/html")
    assert await _count(app, AccountSuspension) == before


async def test_only_admins_open_the_suspensions_page(app, client, caplog):
    resident = await sign_in_resident(client, caplog)
    admin = await browser_for(app, [("admin", None)])
    for roles in ([("officer", "ubnd-00004")], [("dispatcher", None)]):
        staff = await browser_for(app, roles)
        assert (await staff.get(PAGE)).status_code == 403
        queue = await staff.get("/console/queue")
        assert "/console/moderation/suspensions" not in queue.text
        # a form posted with the staff member's own token: still refused
        r = await staff.post_form(
            "/console/queue", PAGE, {"phone": resident["phone"], "reason": "Tin rác"}
        )
        assert r.status_code == 403
    assert await _count(app, AccountSuspension) == 0 or (
        (await client.get("/api/v1/me/suspension", headers=resident["headers"])).status_code == 404
    )
    assert (await admin.get(PAGE)).status_code == 200


async def test_staff_flag_a_report_abusive_from_its_page_and_unflag_it(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    code = ward["report"]["code"]
    page = await officer.get(path)
    assert 'action="/console/moderation/reports/' in page.text and 'name="reason_code"' in page.text

    r = await officer.post_form(
        path, f"/console/moderation/reports/{ward['id']}/flag", {"reason_code": "harassment"}
    )
    assert r.status_code == 303 and r.headers["location"] == f"{path}?done=flagged"
    page = await officer.get(path)
    assert "Bị gắn cờ lạm dụng: Quấy rối, nhắm vào một người" in page.text
    assert (await client.get(f"/api/v1/public/reports/{code}")).status_code == 404

    # another unit's officer: the 403 page, the flag stays
    other_unit = "ubnd-00004" if ward["unit"] != "ubnd-00004" else "ubnd-00070"
    elsewhere = await browser_for(app, [("officer", other_unit)])
    r = await elsewhere.post_form(
        "/console/queue", f"/console/moderation/reports/{ward['id']}/unflag", {}
    )
    assert r.status_code == 403, r.headers.get("location")
    assert await _count(app, ReportAbuseFlag) == 1

    r = await officer.post_form(path, f"/console/moderation/reports/{ward['id']}/unflag", {})
    assert r.status_code == 303
    assert (await client.get(f"/api/v1/public/reports/{code}")).status_code == 200
    # an unknown reason code: the 400 page naming the codes
    r = await officer.post_form(
        path, f"/console/moderation/reports/{ward['id']}/flag", {"reason_code": "ugly"}
    )
    assert r.status_code == 400 and "personal_data" in r.text
    assert await _count(app, ReportAbuseFlag) == 0
