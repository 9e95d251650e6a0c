"""Issue 17 item 12: staff see the resident's rating and comment: on the report page, as
a marker in the queue, and among the comments on the unit's service-index page (never
with the resident's name or phone). Item 16: a second reopen is refused in words."""

from __future__ import annotations

from tests.routing.conftest import clock, run_worker  # noqa: F401 (fixture)
from tests.web.test_pages import browser_for, ward  # noqa: F401 (fixture)

COMMENT = "Rác vẫn còn ở góc phố."


async def test_staff_see_the_residents_rating_and_comment(app, client, ward, clock):
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    assert (await officer.post_form(path, f"{path}/accept", {})).status_code == 303
    r = await officer.post_form(path, f"{path}/resolve", {"answer": "Đã thu gom rác xong."})
    assert r.status_code == 303, r.text
    resident = ward["resident"]["headers"]
    rated = await client.post(
        f"/api/v1/reports/{ward['id']}/rating",
        json={"rating": "not_satisfied", "comment": COMMENT},
        headers=resident,
    )
    assert rated.status_code == 204, rated.text

    page = (await officer.get(path)).text
    assert "Đánh giá của người dân" in page and "Không hài lòng" in page and COMMENT in page
    assert "not_satisfied" not in page.replace("rating-not_satisfied", "")
    index = (await officer.get(f"/console/units/{ward['unit']}/index")).text
    assert COMMENT in index and ward["report"]["code"] in index
    phone = ward["resident"]["phone"]
    assert phone not in index and phone.removeprefix("+84") not in index

    # reopened: back in the queue, with the marker
    assert (
        await client.post(f"/api/v1/reports/{ward['id']}/reopen", headers=resident)
    ).status_code == 204
    await run_worker(clock)
    queue = (await officer.get("/console/queue")).text
    assert "Người dân đánh giá: Không hài lòng" in queue
    await officer.get("/console/lang?to=en&next=/console/queue")
    english = (await officer.get(f"/console/units/{ward['unit']}/index")).text
    assert "Not satisfied" in english and COMMENT in english

    # a second reopen: refused, and the message names the statuses in words
    again = await client.post(f"/api/v1/reports/{ward['id']}/reopen", headers=resident)
    assert again.status_code == 409
    detail = again.json()["detail"]
    assert "'Đã giao'" in detail and "'Mở lại'" in detail, detail
    assert "assigned" not in detail and "reopened" not in detail
