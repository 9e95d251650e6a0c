"""The service index on the real database: figures per unit, period and channel, the
rebuild (idempotent, one at a time), and who may read a unit's trend.

Each test routes its reports to units of its own, so the figures it checks are only its
own whatever else the run's database holds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from app import policy
from app.complaints.models import Report
from app.core.auth import Principal, RoleGrant
from app.core.errors import BadRequest, Forbidden, NotFound
from app.stats import service
from app.stats.models import UnitStats
from tests.stats.factories import add_report, new_unit, new_user

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)  # 2026-11 in both UTC and local time


async def refresh(app, now: datetime = NOW) -> service.RefreshResult:
    async with app.state.sessionmaker() as session:
        result = await service.refresh_unit_stats(session, now)
        await session.commit()
    assert result is not None
    return result


async def trend(app, unit) -> service.UnitServiceTrend:
    async with app.state.sessionmaker() as session:
        return await service.unit_index(session, unit.id)


async def published(app, unit, period: str) -> service.UnitServiceIndex | None:
    async with app.state.sessionmaker() as session:
        index = await service.public_index(session, period)
    return next((u for u in index if u.unit_code == unit.code), None)


def staff(*grants: tuple[str, uuid.UUID | None]) -> policy.Actor:
    """A staff actor (app/policy.py) with these grants; no unit below another here."""
    principal = Principal(
        user_id=uuid.uuid4(),
        kind="staff",
        identity_level=0,
        sid=uuid.uuid4(),
        roles=tuple(RoleGrant(role, unit_id) for role, unit_id in grants),
    )
    managed = frozenset(principal.unit_ids("manager"))
    return policy.build_actor(principal, managed, datetime.now(UTC))


async def test_figures_per_channel(app, session):
    unit = await new_unit(session)
    resident = await new_user(session)
    officer = await new_user(session, "staff")
    at, done = RECEIVED, RECEIVED + timedelta(days=2)

    async def resolved(status="closed", **figures):
        return await add_report(session, unit, resident, at, status, resolved_at=done, **figures)

    await resolved(on_time=True, working_days=1, closed_reason="rated", ratings=((0, "satisfied"),))
    await resolved(on_time=True, working_days=2, closed_reason="rated", ratings=((0, "accept"),))
    await resolved("resolved", on_time=True, working_days=3, ratings=((0, "not_satisfied"),))
    # late, marked overdue before it was resolved, and never rated
    await resolved(on_time=False, working_days=10, overdue_at=at, closed_reason="not_rated")
    await add_report(session, unit, resident, at, "in_progress", overdue_at=at + timedelta(days=5))
    await add_report(session, unit, resident, at, "assigned")
    await add_report(session, unit, resident, at, "rejected")
    # not counted at all
    await add_report(session, unit, resident, at, "withdrawn")
    await add_report(session, unit, resident, at, "duplicate")
    # filed by staff on a resident's behalf: a channel of its own
    await add_report(
        session,
        unit,
        resident,
        at,
        "closed",
        filed_by_staff_id=officer,
        resolved_at=done,
        on_time=True,
        working_days=4,
        closed_reason="rated",
        ratings=((0, "satisfied"),),
    )
    await add_report(session, unit, resident, at, "in_progress", filed_by_staff_id=officer)

    await refresh(app)

    unit_trend = await trend(app, unit)
    assert [m.period for m in unit_trend.months] == ["2026-11"]
    for figures in (unit_trend.all, unit_trend.last_30_days, unit_trend.months[0]):
        r = figures.resident
        assert (r.received, r.resolved, r.resolved_on_time, r.open_overdue) == (7, 4, 3, 1)
        assert r.on_time_pct == 75.0
        assert r.median_handling_working_days == 2.5  # of 1, 2, 3, 10
        assert (r.rated, r.satisfied, r.accepted, r.not_satisfied, r.not_rated) == (3, 1, 1, 1, 1)
        # (satisfied + accepted) / rated: the unrated one is not a satisfied one
        assert r.satisfaction_pct == 66.7
        assert r.rating_coverage_pct == 75.0

        s = figures.staff_filed
        assert (s.received, s.resolved, s.resolved_on_time, s.open_overdue) == (2, 1, 1, 0)
        assert (s.on_time_pct, s.median_handling_working_days) == (100.0, 4.0)
        assert (s.rated, s.satisfied, s.not_rated, s.satisfaction_pct) == (1, 1, 0, 100.0)

    public = await published(app, unit, "all")
    assert public is not None
    assert public.resident == unit_trend.all.resident
    assert public.staff_filed == unit_trend.all.staff_filed
    assert (public.unit_name_vi, public.unit_name_en) == (unit.name_vi, unit.name_en)
    assert public.refreshed_at == NOW


async def test_rating_of_the_latest_round_counts(app, session):
    unit = await new_unit(session)
    resident = await new_user(session)
    done = RECEIVED + timedelta(days=1)
    # not satisfied, reopened, resolved again and then satisfied: one satisfied
    await add_report(
        session,
        unit,
        resident,
        RECEIVED,
        "closed",
        resolved_at=done,
        on_time=True,
        closed_reason="rated",
        reopen_count=1,
        ratings=((0, "not_satisfied"), (1, "satisfied")),
    )
    # reopened and being handled again: its second resolution is not rated yet
    await add_report(
        session,
        unit,
        resident,
        RECEIVED,
        "reopened",
        resolved_at=done,
        on_time=True,
        reopen_count=1,
        ratings=((0, "not_satisfied"),),
    )
    # the second resolution went unrated: "not rated", not also "not satisfied"
    await add_report(
        session,
        unit,
        resident,
        RECEIVED,
        "closed",
        resolved_at=done,
        on_time=True,
        closed_reason="not_rated",
        reopen_count=1,
        ratings=((0, "not_satisfied"),),
    )
    await refresh(app)

    r = (await trend(app, unit)).all.resident
    assert (r.received, r.resolved, r.rated) == (3, 3, 1)
    assert (r.satisfied, r.accepted, r.not_satisfied, r.not_rated) == (1, 0, 0, 1)
    assert (r.satisfaction_pct, r.rating_coverage_pct) == (100.0, 33.3)


async def test_months_are_local_months(app, session):
    unit = await new_unit(session)
    resident = await new_user(session)
    for received in (
        datetime(2026, 9, 30, 16, 59, 59, tzinfo=UTC),  # 23:59:59 on 30 Sep local: 2026-09
        datetime(2026, 10, 31, 16, 30, tzinfo=UTC),  # 23:30 on 31 Oct local: 2026-10
        datetime(2026, 10, 31, 18, 0, tzinfo=UTC),  # 01:00 on 1 Nov local: 2026-11
        datetime(2026, 11, 30, 17, 0, tzinfo=UTC),  # midnight, 1 Dec local: 2026-12
    ):
        await add_report(session, unit, resident, received, "assigned")
    await refresh(app, datetime(2026, 12, 5, tzinfo=UTC))

    unit_trend = await trend(app, unit)
    months = [(m.period, m.resident.received) for m in unit_trend.months]
    assert months == [("2026-09", 1), ("2026-10", 1), ("2026-11", 1), ("2026-12", 1)]
    assert unit_trend.all.resident.received == 4
    october = await published(app, unit, "2026-10")
    assert october is not None and october.resident.received == 1
    assert await published(app, unit, "2026-08") is None


async def test_last_30_days_is_the_30_days_before_the_refresh(app, session):
    unit = await new_unit(session)
    resident = await new_user(session)
    for age in (timedelta(minutes=1), timedelta(days=29), timedelta(days=30), timedelta(days=31)):
        await add_report(session, unit, resident, NOW - age, "assigned")
    await refresh(app)

    unit_trend = await trend(app, unit)
    assert unit_trend.last_30_days.resident.received == 2
    assert unit_trend.all.resident.received == 4
    recent = await published(app, unit, "last-30-days")
    assert recent is not None and recent.resident.received == 2


async def test_no_division_by_zero(app, session):
    open_only = await new_unit(session)
    unrated = await new_unit(session)
    resident = await new_user(session)
    await add_report(session, open_only, resident, RECEIVED, "in_progress")
    await add_report(
        session,
        unrated,
        resident,
        RECEIVED,
        "resolved",
        resolved_at=RECEIVED + timedelta(days=1),
        on_time=False,
        working_days=1.5,
    )
    await refresh(app)

    figures = (await trend(app, open_only)).all
    r = figures.resident
    assert (r.received, r.resolved, r.rated) == (1, 0, 0)
    assert r.on_time_pct is None and r.median_handling_working_days is None
    assert r.satisfaction_pct is None and r.rating_coverage_pct is None
    # no staff-filed reports: zeros, and no rate at all
    s = figures.staff_filed
    assert (s.received, s.on_time_pct, s.satisfaction_pct, s.rating_coverage_pct) == (
        0,
        None,
        None,
        None,
    )

    r = (await trend(app, unrated)).all.resident
    assert (r.on_time_pct, r.median_handling_working_days) == (0.0, 1.5)
    assert (r.satisfaction_pct, r.rating_coverage_pct) == (None, 0.0)


async def test_units_without_reports_are_not_published(app, session):
    quiet = await new_unit(session)
    await refresh(app)
    assert await published(app, quiet, "all") is None
    unit_trend = await trend(app, quiet)
    assert unit_trend.months == [] and unit_trend.refreshed_at is None
    assert unit_trend.all.resident.received == 0 and unit_trend.all.resident.on_time_pct is None


async def test_unrouted_reports_are_left_out(app, session):
    # counted for no unit: were they grouped, the NULL unit would break the primary key
    resident = await new_user(session)
    await add_report(session, None, resident, RECEIVED, "submitted")
    assert (await refresh(app)).cells > 0


async def test_refresh_is_idempotent_and_replaces_everything(app, session):
    unit = await new_unit(session)
    resident = await new_user(session)
    await add_report(session, unit, resident, RECEIVED, "assigned")
    september = await add_report(
        session, unit, resident, datetime(2026, 9, 10, tzinfo=UTC), "assigned"
    )

    async def rows() -> list[tuple]:
        async with app.state.sessionmaker() as s:
            result = await s.scalars(
                select(UnitStats).where(UnitStats.unit_id == unit.id).order_by(UnitStats.period)
            )
            return [
                (u.period, u.channel, u.received, u.resolved, u.open_overdue, u.rated)
                for u in result
            ]

    first = await refresh(app)
    before = await rows()
    second = await refresh(app, NOW + timedelta(minutes=10))
    assert await rows() == before
    assert second.cells == first.cells
    assert (await trend(app, unit)).refreshed_at == NOW + timedelta(minutes=10)
    assert [p for p, *_ in before] == ["2026-09", "2026-11", "all", "last-30-days"]

    await session.execute(delete(Report).where(Report.id == september.id))
    await session.commit()
    await refresh(app)
    assert [(p, n) for p, _, n, *_ in await rows()] == [
        ("2026-11", 1),
        ("all", 1),
        ("last-30-days", 1),
    ]


async def test_one_refresh_at_a_time(app, session):
    unit = await new_unit(session)
    resident = await new_user(session)
    await add_report(session, unit, resident, RECEIVED, "assigned")
    await refresh(app)
    await add_report(session, unit, resident, RECEIVED, "assigned")

    async with app.state.sessionmaker() as first, app.state.sessionmaker() as second:
        assert await service.refresh_unit_stats(first, NOW) is not None
        # the loser does nothing and does not wait
        loser = await asyncio.wait_for(service.refresh_unit_stats(second, NOW), timeout=5)
        assert loser is None
        await second.rollback()
        # readers see the previous figures until the rebuild commits
        before = await published(app, unit, "all")
        assert before is not None and before.resident.received == 1
        await first.commit()
    after = await published(app, unit, "all")
    assert after is not None and after.resident.received == 2
    await refresh(app)  # the lock went with the transaction


@pytest.mark.parametrize("period", ["all", "last-30-days", "2026-01", "2026-12"])
def test_periods_accepted(period):
    assert service.parse_period(period) == period


@pytest.mark.parametrize(
    "period", ["", "ALL", "last-7-days", "2026-13", "2026-00", "2026-1", "26-11", "2026-11-01"]
)
def test_other_periods_are_a_bad_request(period):
    with pytest.raises(BadRequest) as raised:
        service.parse_period(period)
    assert raised.value.code == "period_invalid"
    assert raised.value.errors and raised.value.errors[0].field == "period"


def test_who_may_view_a_unit():
    own, other = uuid.uuid4(), uuid.uuid4()
    assert policy.may_view_unit_index(staff(("officer", own)), own)
    assert policy.may_view_unit_index(staff(("manager", own)), own)
    assert not policy.may_view_unit_index(staff(("officer", own)), other)
    assert not policy.may_view_unit_index(staff(("manager", own)), other)
    assert policy.may_view_unit_index(staff(("dispatcher", None)), other)
    assert policy.may_view_unit_index(staff(("admin", None)), other)
    assert not policy.may_view_unit_index(staff(), own)


async def test_unit_index_for_staff_denies(app, session):
    unit = await new_unit(session)
    other = await new_unit(session)
    async with app.state.sessionmaker() as s:
        with pytest.raises(NotFound):
            await service.unit_index_for_staff(s, staff(("admin", None)), "no-such-unit")
        with pytest.raises(Forbidden) as raised:
            await service.unit_index_for_staff(s, staff(("officer", unit.id)), other.code)
        assert raised.value.code == "not_your_unit"
        own = await service.unit_index_for_staff(s, staff(("officer", unit.id)), unit.code)
        assert own.unit_code == unit.code
        with pytest.raises(NotFound):
            await service.unit_index(s, uuid.uuid4())
