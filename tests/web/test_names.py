"""Issue 17 item 16: people read names, not codes: the console's queue names the
category, the ward and the unit in the reader's language, and a refused status change
names the statuses."""

from __future__ import annotations

import re

from markupsafe import escape

from app.core import i18n
from tests.routing.conftest import clock, report_row  # noqa: F401 (fixture)
from tests.web.test_pages import browser_for, ward  # noqa: F401 (fixture)


def cells(page: str) -> list[str]:
    """The table cells' text, without the column names shown on narrow screens' cards."""
    label = re.compile(r'<span class="cell-label" aria-hidden="true">.*?</span>', re.S)
    return [label.sub("", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)]


async def test_the_queue_names_category_ward_and_unit(app, client, ward):
    snapshot = await app.state.reference.current()
    report = await report_row(app, ward["id"])
    unit = snapshot.units_by_code[ward["unit"]]
    category = snapshot.categories[report.category_code]
    area = snapshot.areas[report.area_code]
    officer = await browser_for(app, [("officer", ward["unit"])])
    for lang in ("vi", "en"):
        await officer.get(f"/console/lang?to={lang}&next=/console/queue")
        row = cells((await officer.get("/console/queue")).text)
        names = [str(escape(n)) for n in (category.name(lang), area.name, unit.name(lang))]
        assert all(name in row for name in names), (names, row)
        for code in (report.category_code, report.area_code, ward["unit"]):
            assert code not in row
        page = (await officer.get(f"/console/reports/{ward['id']}")).text
        for name in names:
            assert f"<dd>{name}</dd>" in page
        assert f"<dd>{ward['unit']}</dd>" not in page


def test_a_refused_status_change_names_the_statuses() -> None:
    import app.web.texts  # noqa: F401 (registers the names, as the app does)

    params = {"current": "assigned", "target": "reopened"}
    vi = i18n.translate("invalid_transition", "vi", params)
    en = i18n.translate("invalid_transition", "en", params)
    assert "'Đã giao'" in vi and "'Mở lại'" in vi
    assert "'Assigned'" in en and "'Reopened'" in en
    for text in (vi, en):
        assert "assigned" not in text and "reopened" not in text
