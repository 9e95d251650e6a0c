"""Agencies on a unit's service-index page in the console (issue 19, second pass, item
7): below the unit's own figures, one table per headline period (all time, the last 30
days) of the agencies under the unit (itself and the units below it) that the reader may
see, with received, finished, on time %, open, overdue, fully online % and satisfaction,
from the agency index; accessible table markup (caption, th scope); vi and en from the
catalogue. The page's axe run is tests/web's (test_the_main_pages_pass_axe...) and this
file's own, over a page that has the tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from app.core import db
from app.core.calendar import working_calendar
from app.dossiers import index
from app.web.session import LANG_COOKIE
from tests.dossiers.test_index import add_dossier, execute, new_agency, new_unit
from tests.web.test_pages import browser_for

CAL = working_calendar()


async def rename(app, agency_id, vi: str, en: str) -> None:
    await execute(
        app,
        "UPDATE agencies SET name_vi = :vi, name_en = :en WHERE id = :id",
        vi=vi,
        en=en,
        id=agency_id,
    )


async def refresh(app, now: datetime) -> None:
    async with db.transaction(app.state.sessionmaker, None) as session:
        assert await index.refresh_agency_stats(session, CAL, now, full=True) is not None


def rows_of(html: str, caption: str) -> list[list[str]]:
    """The body rows (header cell, then data cells) of the table with this caption."""
    match = re.search(
        r"<table>\s*<caption>" + re.escape(caption) + r"</caption>(.*?)</table>", html, re.S
    )
    assert match, f"no table {caption!r}"
    body = match.group(1).split("<tbody>", 1)[1]
    return [
        re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


async def scene(app):
    now = datetime.now(UTC).replace(microsecond=0)
    parent_id, parent = await new_unit(app)
    child_id, child = await new_unit(app, parent_id)
    other_id, _ = await new_unit(app)
    upper, lower, elsewhere = (
        (await new_agency(app, parent_id))[0],
        (await new_agency(app, child_id))[0],
        (await new_agency(app, other_id))[0],
    )
    await rename(app, upper, "Sở Xây dựng (thử)", "Construction (test)")
    await rename(app, lower, "UBND phường (thử)", "Ward committee (test)")
    await rename(app, elsewhere, "Sở khác (thử)", "Elsewhere (test)")
    recent, old = now - timedelta(days=3), now - timedelta(days=90)
    # the upper agency: two this month (one finished on time, online and rated satisfied;
    # one open and overdue), one three months ago finished late
    await add_dossier(
        app,
        upper,
        recent,
        "completed",
        due=recent + timedelta(days=5),
        completed=recent + timedelta(days=1),
        on_time=True,
        online=True,
        rating="satisfied",
    )
    await add_dossier(
        app,
        upper,
        recent,
        "processing",
        due=recent + timedelta(days=1),
        overdue_at=recent + timedelta(days=1),
    )
    await add_dossier(
        app,
        upper,
        old,
        "completed",
        due=old + timedelta(days=1),
        completed=old + timedelta(days=4),
        on_time=False,
    )
    await add_dossier(app, lower, recent, "received", due=recent + timedelta(days=9))
    await add_dossier(app, elsewhere, recent, "received")
    await refresh(app, now)
    app.state.reference.invalidate()  # the new units, at once
    return parent, child


async def test_a_units_page_lists_the_agencies_under_it(app, client):
    parent, child = await scene(app)
    manager = await browser_for(app, [("manager", parent)])
    page = await manager.get(f"/console/units/{parent}/index")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Cơ quan giải quyết hồ sơ thuộc đơn vị" in html
    header = re.search(
        r"<caption>Hồ sơ thủ tục hành chính theo cơ quan \(Toàn bộ\)</caption>\s*"
        r"<thead><tr>(.*?)</tr></thead>",
        html,
        re.S,
    )
    assert header and header.group(1).count('<th scope="col">') == 8
    assert re.findall(r'<th scope="col">(.*?)</th>', header.group(1)) == [
        "Cơ quan",
        "Đã tiếp nhận",
        "Đã giải quyết",
        "Đúng hạn (%)",
        "Đang giải quyết",
        "Đang quá hạn",
        "Toàn trình (%)",
        "Hài lòng (%)",
    ]
    # all time: received, finished, on time %, open, overdue, online %, satisfaction %
    assert sorted(rows_of(html, "Hồ sơ thủ tục hành chính theo cơ quan (Toàn bộ)")) == [
        ["Sở Xây dựng (thử)", "3", "2", "50.0", "1", "1", "33.3", "100.0"],
        ["UBND phường (thử)", "1", "0", "—", "1", "0", "0.0", "—"],
    ]
    assert sorted(rows_of(html, "Hồ sơ thủ tục hành chính theo cơ quan (30 ngày qua)")) == [
        ["Sở Xây dựng (thử)", "2", "1", "100.0", "1", "1", "50.0", "100.0"],
        ["UBND phường (thử)", "1", "0", "—", "1", "0", "0.0", "—"],
    ]
    assert "Sở khác (thử)" not in html  # another unit's agency

    # the child unit's page: its own agency only; in English
    officer = await browser_for(app, [("officer", child)])
    officer.http.cookies.set(LANG_COOKIE, "en", domain="testserver.local")
    html = (await officer.get(f"/console/units/{child}/index")).text
    assert rows_of(html, "Administrative dossiers by agency (All time)") == [
        ["Ward committee (test)", "1", "0", "—", "1", "0", "0.0", "—"]
    ]
    assert "Construction (test)" not in html


async def test_a_unit_without_agencies_says_so(app, client):
    unit_id, unit = await new_unit(app)
    app.state.reference.invalidate()
    manager = await browser_for(app, [("manager", unit)])
    page = await manager.get(f"/console/units/{unit}/index")
    assert page.status_code == 200
    assert "Chưa có số liệu hồ sơ của cơ quan nào thuộc đơn vị này." in page.text
    assert "<caption>Hồ sơ thủ tục hành chính theo cơ quan" not in page.text
