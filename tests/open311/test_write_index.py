"""Reports third-party apps file through Open311 are counted apart in the service index
('third-party app' / 'ứng dụng bên thứ ba'), as staff-filed ones are: the public index,
the console's JSON and the console's index page."""

from __future__ import annotations

from sqlalchemy import text

from app.stats import service as stats
from app.web.session import LANG_COOKIE
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import file_with_photo
from tests.open311.test_write_support import filing_form, issue_key, run_worker
from tests.web.test_pages import browser_for

ROOT = "/open311/v2"


async def test_the_index_counts_third_party_filings_apart(app, client, session, caplog):
    issued = await issue_key(app)
    for _ in range(2):
        r = await client.post(f"{ROOT}/requests.json", data=filing_form(issued.key))
        assert r.status_code == 200, r.text
    resident = await sign_in_resident(client, caplog)
    await file_with_photo(client, resident["headers"])
    await run_worker()  # routes all three to Hoàn Kiếm's committee
    unit = await session.scalar(
        text(
            "SELECT DISTINCT u.code FROM reports r JOIN units u ON u.id = r.unit_id"
            " WHERE r.code = :c"
        ),
        {"c": r.json()[0]["service_request_id"]},
    )
    counts = (
        await session.execute(
            text(
                "SELECT count(*) FILTER (WHERE r.open311_key_id IS NOT NULL) AS apps,"
                " count(*) FILTER (WHERE r.open311_key_id IS NULL"
                "   AND r.filed_by_staff_id IS NULL) AS residents"
                " FROM reports r JOIN units u ON u.id = r.unit_id WHERE u.code = :u"
            ),
            {"u": unit},
        )
    ).one()
    assert (counts.apps, counts.residents) == (2, 1)
    async with app.state.sessionmaker() as s:
        assert await stats.refresh_unit_stats(s, app.state.clock.now()) is not None
        await s.commit()

    public = await client.get("/api/v1/public/service-index", params={"period": "all"})
    entry = next(u for u in public.json() if u["unit_code"] == unit)
    assert entry["third_party"]["received"] == 2
    assert entry["resident"]["received"] == 1
    assert entry["staff_filed"]["received"] == 0

    dispatcher = await sign_in_staff(client, app, [("dispatcher", None)])
    console = await client.get(
        f"/api/v1/console/units/{unit}/service-index", headers=dispatcher["headers"]
    )
    assert console.status_code == 200, console.text
    assert console.json()["all"]["third_party"]["received"] == 2

    browser = await browser_for(app, [("dispatcher", None)])
    page = await browser.get(f"/console/units/{unit}/index")
    assert page.status_code == 200
    assert "Gửi qua ứng dụng bên thứ ba (tính riêng): 2" in page.text
    browser.http.cookies.set(LANG_COOKIE, "en", domain="testserver.local")
    page = await browser.get(f"/console/units/{unit}/index")
    assert "Filed through a third-party app (counted apart): 2" in page.text
