"""The service index over HTTP: the public index (no sign-in, no personal data, period
checked) and a unit's trend in the console (staff only, own units only).

Runs an app of its own: the real ``create_app``, plus the stats controllers under
``/api/v1`` when ``app.main`` does not register them (yet)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar import Router
from litestar.di import Provide

from app.main import create_app, provide_session
from app.stats import service
from app.stats.api import ConsoleServiceIndexController, PublicServiceIndexController
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.conftest import running
from tests.stats.factories import add_report, new_unit, new_user

PUBLIC = "/api/v1/public/service-index"
CHANNEL_FIELDS = {
    "received",
    "resolved",
    "resolved_on_time",
    "on_time_pct",
    "open_overdue",
    "median_handling_working_days",
    "rated",
    "satisfied",
    "accepted",
    "not_satisfied",
    "not_rated",
    "reopened",
    "satisfaction_pct",
    "rating_coverage_pct",
}


def console(code: str) -> str:
    return f"/api/v1/console/units/{code}/service-index"


@pytest.fixture(scope="module")
async def stats_app(settings):
    application = create_app(settings)
    if not any(route.path == PUBLIC for route in application.routes):
        application.register(
            Router(
                path="/api/v1",
                route_handlers=[PublicServiceIndexController, ConsoleServiceIndexController],
                dependencies={"session": Provide(provide_session)},
            )
        )
    async with running(application) as client:
        application.state.test_client = client
        yield application


@pytest.fixture
async def client(stats_app):
    return stats_app.state.test_client


@pytest.fixture
async def session(stats_app):
    async with stats_app.state.sessionmaker() as s:
        yield s


@pytest.fixture
async def unit_with_figures(stats_app, session):
    """A unit with one report resolved on time and rated satisfied, one staff-filed
    report still open, and a refreshed index."""
    unit = await new_unit(session)
    resident = await new_user(session)
    officer = await new_user(session, "staff")
    now = datetime.now(UTC)
    await add_report(
        session,
        unit,
        resident,
        now - timedelta(days=3),
        "closed",
        resolved_at=now - timedelta(days=1),
        on_time=True,
        working_days=1.25,
        closed_reason="rated",
        ratings=((0, "satisfied"),),
    )
    await add_report(
        session, unit, resident, now - timedelta(days=2), "in_progress", filed_by_staff_id=officer
    )
    async with stats_app.state.sessionmaker() as s:
        assert await service.refresh_unit_stats(s, now) is not None
        await s.commit()
    return unit


async def test_public_index_needs_no_sign_in_and_shows_no_one(client, unit_with_figures):
    r = await client.get(PUBLIC)  # default period: last-30-days
    assert r.status_code == 200, r.text
    entry = next(u for u in r.json() if u["unit_code"] == unit_with_figures.code)
    assert set(entry) == {
        "unit_code",
        "unit_name_vi",
        "unit_name_en",
        "period",
        "refreshed_at",
        "resident",
        "staff_filed",
        "third_party",
    }
    assert set(entry["resident"]) == set(entry["staff_filed"]) == CHANNEL_FIELDS
    assert set(entry["third_party"]) == CHANNEL_FIELDS
    assert entry["period"] == "last-30-days"
    assert entry["resident"]["received"] == 1
    assert entry["resident"]["on_time_pct"] == 100.0
    assert entry["resident"]["satisfaction_pct"] == 100.0
    assert entry["resident"]["median_handling_working_days"] == 1.25
    assert entry["staff_filed"]["received"] == 1
    assert entry["staff_filed"]["on_time_pct"] is None  # nothing resolved: no rate

    everything = await client.get(PUBLIC, params={"period": "all"})
    assert everything.status_code == 200
    assert unit_with_figures.code in {u["unit_code"] for u in everything.json()}


@pytest.mark.parametrize("period", ["2026-13", "last-week", "2026-1", "x" * 16])
async def test_public_index_refuses_other_periods(client, period):
    r = await client.get(PUBLIC, params={"period": period})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "period_invalid"
    assert problem["errors"][0]["field"] == "period"


async def test_public_index_of_a_month_without_figures_is_empty(client):
    r = await client.get(PUBLIC, params={"period": "1999-01"})
    assert r.status_code == 200 and r.json() == []


async def test_console_officer_sees_own_unit(client, stats_app, unit_with_figures):
    officer = await sign_in_staff(client, stats_app, [("officer", unit_with_figures.code)])
    r = await client.get(console(unit_with_figures.code), headers=officer["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit_code"] == unit_with_figures.code
    assert body["all"]["period"] == "all"
    assert body["last_30_days"]["resident"]["received"] == 1
    assert body["last_30_days"]["staff_filed"]["received"] == 1
    assert [m["period"] for m in body["months"]] == sorted(m["period"] for m in body["months"])
    assert sum(m["resident"]["received"] for m in body["months"]) == 1


async def test_console_denies_another_unit(client, stats_app, session, unit_with_figures):
    elsewhere = await new_unit(session)
    for role in ("officer", "manager"):
        member = await sign_in_staff(client, stats_app, [(role, elsewhere.code)])
        r = await client.get(console(unit_with_figures.code), headers=member["headers"])
        assert r.status_code == 403 and r.json()["code"] == "not_your_unit"


async def test_console_city_roles_see_every_unit(client, stats_app, unit_with_figures):
    for role in ("dispatcher", "admin"):
        member = await sign_in_staff(client, stats_app, [(role, None)])
        r = await client.get(console(unit_with_figures.code), headers=member["headers"])
        assert r.status_code == 200, r.text


async def test_console_unknown_unit_is_404(client, stats_app):
    admin = await sign_in_staff(client, stats_app, [("admin", None)])
    r = await client.get(console("no-such-unit"), headers=admin["headers"])
    assert r.status_code == 404 and r.json()["code"] == "unit_not_found"


async def test_console_is_for_staff_only(client, caplog, unit_with_figures):
    anonymous = await client.get(console(unit_with_figures.code))
    assert anonymous.status_code == 401
    resident = await sign_in_resident(client, caplog)
    r = await client.get(console(unit_with_figures.code), headers=resident["headers"])
    assert r.status_code == 403 and r.json()["code"] == "staff_only"
