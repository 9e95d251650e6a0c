"""Issue 19 item 7: the supervisors' ranking of agencies by lateness and each agency's
overdue dossiers, over JSON (/api/v1/console/dossier-supervision/...) and as console
pages (/console/dossiers/supervision/...): the order, the pagination 50 at a time, the
working days overdue on the city's calendar, no applicant data, and the denials."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.core.calendar import working_calendar
from app.dossiers import index
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.conftest import client_for
from tests.dossiers.test_index import add_dossier, execute, new_agency, new_unit, refresh
from tests.web.test_pages import browser_for

CAL = working_calendar()
RANKING = "/api/v1/console/dossier-supervision/agencies"


def overdue_url(code: str) -> str:
    return f"{RANKING}/{code}/overdue"


@pytest.fixture
async def city(app):
    """P → U1, U2. Agencies: A (U1) 3 overdue; B (U1) 1 overdue, 50 % on time; C (U2) 1
    overdue, 75 % on time; D (U2) no dossier yet; E (U1) 120 overdue for the pages."""
    now = datetime.now(UTC)
    parent, parent_code = await new_unit(app)
    u1, u1_code = await new_unit(app, parent)
    u2, u2_code = await new_unit(app, parent)
    agencies = {
        "A": await new_agency(app, u1),
        "B": await new_agency(app, u1),
        "C": await new_agency(app, u2),
        "D": await new_agency(app, u2),
        "E": await new_agency(app, u1),
    }
    received = now - timedelta(days=20)
    due = now - timedelta(days=5)

    async def overdue(letter: str, n: int) -> None:
        for _ in range(n):
            await add_dossier(
                app, agencies[letter][0], received, "processing", due=due, overdue_at=due
            )

    async def finished(letter: str, on_time: bool) -> None:
        await add_dossier(
            app,
            agencies[letter][0],
            received,
            "completed",
            due=due,
            completed=due - timedelta(days=1 if on_time else -1),
            on_time=on_time,
        )

    await overdue("A", 3)
    await finished("A", True)
    await overdue("B", 1)
    await finished("B", True)
    await finished("B", False)
    await overdue("C", 1)
    for on_time in (True, True, True, False):
        await finished("C", on_time)
    # E: 120 open and overdue with due dates a day apart, 5 open not yet due, 3 finished
    # that were overdue once (history, not listed)
    e_id = agencies["E"][0]
    await execute(
        app,
        """
        INSERT INTO dossiers (id, code, agency_id, procedure_code, procedure_name,
            applicant_name, applicant_kind, applicant_phone, online, status, received_at,
            due_at, overdue_at, status_at, created_at, updated_at)
        WITH p AS (SELECT CAST(:now AS timestamptz) AS now)
        SELECT gen_random_uuid(), 'SUP-' || :tag || '-' || lpad(g::text, 4, '0'), :agency,
               '1.001193', 'Đăng ký kết hôn', 'Lê Văn Cường', 'person', '0987654321', false,
               CASE WHEN g % 3 = 0 THEN 'supplement_requested' ELSE 'processing' END,
               p.now - interval '200 days', p.now - g * interval '1 day',
               p.now - g * interval '1 day' + interval '1 minute',
               p.now - interval '200 days', p.now - interval '200 days', p.now
          FROM generate_series(1, 120) AS g, p
        """,
        tag=uuid.uuid4().hex[:6],
        agency=e_id,
        now=now,
    )
    for _ in range(5):
        await add_dossier(app, e_id, received, "processing", due=now + timedelta(days=3))
    for _ in range(3):
        await add_dossier(
            app, e_id, received, "returned", due=due, completed=now, on_time=False, overdue_at=due
        )
    await refresh(app, now)
    return {
        "codes": {k: v[1] for k, v in agencies.items()},
        "units": {"parent": parent_code, "u1": u1_code, "u2": u2_code},
        "now": now,
    }


async def test_agencies_are_ranked_by_lateness(app, client, city):
    codes = city["codes"]
    manager = await sign_in_staff(client, app, [("manager", city["units"]["parent"])])
    r = await client.get(RANKING, headers=manager["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == "all"
    ranked = [a["agency_code"] for a in body["agencies"]]
    # E (120) before A (3); B and C (1 each) by the on-time share (50 % before 75 %); D last
    assert ranked == [codes[k] for k in ("E", "A", "B", "C", "D")]
    assert [a["rank"] for a in body["agencies"]] == [1, 2, 3, 4, 5]
    by_code = {a["agency_code"]: a["figures"] for a in body["agencies"]}
    assert by_code[codes["B"]]["on_time_pct"] == 50.0
    assert by_code[codes["C"]]["on_time_pct"] == 75.0
    assert by_code[codes["D"]]["received"] == 0 and by_code[codes["D"]]["on_time_pct"] is None
    assert by_code[codes["E"]]["open_overdue"] == 120

    # an officer of U2 sees U2's agencies only; the dispatcher all, in the same order
    officer = await sign_in_staff(client, app, [("officer", city["units"]["u2"])])
    mine = (await client.get(RANKING, headers=officer["headers"])).json()["agencies"]
    assert [a["agency_code"] for a in mine] == [codes["C"], codes["D"]]
    dispatcher = await sign_in_staff(client, app, [("dispatcher", None)])
    everyone = (await client.get(RANKING, headers=dispatcher["headers"])).json()["agencies"]
    positions = {a["agency_code"]: a["rank"] for a in everyone}
    assert [positions[codes[k]] for k in "EABCD"] == sorted(positions[codes[k]] for k in "EABCD")
    # a month with nothing received: every agency in scope, all zeros
    empty = await client.get(RANKING, params={"period": "2001-01"}, headers=manager["headers"])
    assert {a["figures"]["received"] for a in empty.json()["agencies"]} == {0}
    bad = await client.get(RANKING, params={"period": "last-week"}, headers=manager["headers"])
    assert bad.status_code == 400 and bad.json()["code"] == "period_invalid"


async def test_an_agencys_overdue_dossiers_fifty_at_a_time(app, client, city):
    officer = await sign_in_staff(client, app, [("officer", city["units"]["u1"])])
    url = overdue_url(city["codes"]["E"])
    seen: list[dict] = []
    cursor = None
    sizes = []
    while True:
        params = {"cursor": cursor} if cursor else {}
        r = await client.get(url, params=params, headers=officer["headers"])
        assert r.status_code == 200, r.text
        page = r.json()
        sizes.append(len(page["items"]))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [50, 50, 20]
    assert len({d["code"] for d in seen}) == 120  # no repeats, nothing skipped
    dues = [datetime.fromisoformat(d["due_at"]) for d in seen]
    assert dues == sorted(dues)  # the longest overdue first
    assert {d["status"] for d in seen} == {"processing", "supplement_requested"}
    today = CAL.local(datetime.now(UTC)).date()
    for d in seen[::17]:
        due_day = CAL.local(datetime.fromisoformat(d["due_at"])).date()
        assert d["working_days_overdue"] == CAL.working_days_count(due_day, today), d
    assert seen[0]["working_days_overdue"] > 70  # due 120 days ago
    assert set(seen[0]) == set(index.OverdueDossier.__struct_fields__)
    assert "Lê Văn Cường" not in r.text and "0987654321" not in r.text

    bad = await client.get(url, params={"cursor": "not-a-cursor"}, headers=officer["headers"])
    assert bad.status_code == 400 and bad.json()["code"] == "cursor_invalid"


async def test_the_supervisors_json_denials(app, client, caplog, city):
    url = overdue_url(city["codes"]["E"])
    other = await sign_in_staff(client, app, [("officer", city["units"]["u2"])])
    r = await client.get(url, headers=other["headers"])
    assert r.status_code == 403 and r.json()["code"] == "not_your_unit"
    resident = await sign_in_resident(client, caplog)
    for path in (url, RANKING):
        r = await client.get(path, headers=resident["headers"])
        assert r.status_code == 403, path
        assert (await client.get(path)).status_code == 401
    manager = await sign_in_staff(client, app, [("manager", city["units"]["parent"])])
    assert (await client.get(url, headers=manager["headers"])).status_code == 200
    missing = await client.get(overdue_url("NO-SUCH"), headers=manager["headers"])
    assert missing.status_code == 404


async def test_the_supervisors_pages(app, client, city):
    codes = city["codes"]
    dispatcher = await browser_for(app, [("dispatcher", None)])
    page = await dispatcher.get("/console/dossiers/supervision/")
    assert page.status_code == 200, page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    order = [page.text.index(f"({codes[k]})") for k in "EABCD"]
    assert order == sorted(order)

    agency = await dispatcher.get(f"/console/dossiers/supervision/{codes['E']}")
    assert agency.status_code == 200, agency.text
    rows = re.findall(r'<th scope="row">(SUP-[^<]+)</th>', agency.text)
    assert len(rows) == 50
    assert "Lê Văn Cường" not in agency.text and "0987654321" not in agency.text
    following = re.search(r'href="([^"]+)" rel="next"', agency.text)
    assert following is not None
    second = await dispatcher.get(following.group(1).replace("&amp;", "&"))
    more = re.findall(r'<th scope="row">(SUP-[^<]+)</th>', second.text)
    assert len(more) == 50 and not set(rows) & set(more)

    # an officer of U2 gets a 403 page for E; their own agencies' page works
    officer = await browser_for(app, [("officer", city["units"]["u2"])])
    denied = await officer.get(f"/console/dossiers/supervision/{codes['E']}")
    assert denied.status_code == 403 and "text/html" in denied.headers["content-type"]
    own = await officer.get("/console/dossiers/supervision/")
    assert codes["C"] in own.text and codes["E"] not in own.text
    bad = await officer.get("/console/dossiers/supervision/?period=soon")
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]
    # no session: to sign-in
    anonymous = await client_for(app).get("/console/dossiers/supervision/")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/console/login")


def test_every_text_the_pages_use_is_in_the_catalogue():
    """``dt('key')`` in the pages' templates is the catalogue's ``dossier_index.key``, in
    vi and en (tests/core/test_texts.py reads only the top folder's templates)."""
    from pathlib import Path

    from app.core import i18n

    folder = Path(__file__).resolve().parents[2] / "app/web/templates/dossier_supervision"
    keys: set[str] = set()
    for path in folder.glob("*.html"):
        keys |= set(re.findall(r"\bdt\(\s*'([^']+)'", path.read_text(encoding="utf-8")))
    assert len(keys) > 25  # the scan found them
    catalogue = i18n.load()
    missing = sorted(k for k in keys if f"dossier_index.{k}" not in catalogue)
    assert not missing
    for key in keys:
        assert set(catalogue[f"dossier_index.{key}"]) == set(i18n.LOCALES)
