"""Issue 19 item 7: the overdue sweep and the agency index (app/dossiers/index.py), on
the real PostgreSQL: the sweep's marks, the working days computed in SQL against the
city's calendar, every figure of a rebuild over a hand-made set, honest percentages,
and the public and console endpoints (no personal data; the denials)."""

from __future__ import annotations

import random
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from app.core import db
from app.core.calendar import TIMEZONE, working_calendar
from app.dossiers import index
from tests.accounts.factories import sign_in_resident, sign_in_staff

CAL = working_calendar()
NOW = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)  # Saturday 12:00 in Hanoi
PUBLIC = "/api/v1/public/service-index/agencies"


def local(y: int, mo: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TIMEZONE).astimezone(UTC)


async def execute(app, sql: str, **params: Any) -> list[Any]:
    async with db.transaction(app.state.sessionmaker, None) as session:
        result = await session.execute(text(sql), params)
        return list(result.all()) if result.returns_rows else []


async def new_unit(app, parent: uuid.UUID | None = None) -> tuple[uuid.UUID, str]:
    unit_id, code = uuid.uuid4(), f"t-idx-{uuid.uuid4().hex[:10]}"
    await execute(
        app,
        "INSERT INTO units (id, code, name_vi, name_en, kind, parent_id)"
        " VALUES (:id, :code, 'Đơn vị thử', 'Test unit', 'department', :parent)",
        id=unit_id,
        code=code,
        parent=parent,
    )
    return unit_id, code


async def new_agency(app, unit_id: uuid.UUID) -> tuple[uuid.UUID, str]:
    agency_id, code = uuid.uuid4(), f"AG-IDX-{uuid.uuid4().hex[:8].upper()}"
    await execute(
        app,
        "INSERT INTO agencies (id, code, name_vi, name_en, unit_id)"
        " VALUES (:id, :code, 'Sở thử', 'Test department', :unit)",
        id=agency_id,
        code=code,
        unit=unit_id,
    )
    return agency_id, code


async def add_dossier(
    app,
    agency_id: uuid.UUID,
    received: datetime,
    status: str,
    *,
    due: datetime | None = None,
    completed: datetime | None = None,
    closed: datetime | None = None,
    on_time: bool | None = None,
    overdue_at: datetime | None = None,
    online: bool = False,
    rating: str | None = None,
    applicant: str = "Trần Thị Bích",
    procedure: str = "Cấp giấy phép xây dựng",
) -> tuple[uuid.UUID, str]:
    dossier_id, code = uuid.uuid4(), f"IDX-{uuid.uuid4().hex[:12].upper()}"
    await execute(
        app,
        """
        INSERT INTO dossiers (id, code, agency_id, procedure_code, procedure_name,
            applicant_name, applicant_kind, applicant_id_hash, applicant_id_last4,
            applicant_phone, applicant_email, online, status, received_at, due_at,
            completed_at, closed_at, finished_on_time, overdue_at, status_at, rating,
            created_at, updated_at)
        VALUES (:id, :code, :agency, '1.004415', :procedure, :applicant, 'person',
            :hash, '4321', '0912345678', 'bich@example.vn', :online, :status, :received,
            :due, :completed, :closed, :on_time, :overdue, :received, :rating,
            :received, :received)
        """,
        id=dossier_id,
        code=code,
        agency=agency_id,
        procedure=procedure,
        applicant=applicant,
        hash=uuid.uuid4().bytes * 2,
        online=online,
        status=status,
        received=received,
        due=due,
        completed=completed,
        closed=closed,
        on_time=on_time,
        overdue=overdue_at,
        rating=rating,
    )
    return dossier_id, code


async def overdue_of(app, dossier_id: uuid.UUID) -> datetime | None:
    rows = await execute(app, "SELECT overdue_at FROM dossiers WHERE id = :id", id=dossier_id)
    return rows[0][0]


async def sweep(app, now: datetime) -> index.SweepResult:
    async with db.transaction(app.state.sessionmaker, None) as session:
        return await index.sweep_overdue(session, now, CAL)


async def refresh(app, now: datetime = NOW, *, full: bool = True) -> index.RefreshResult:
    async with db.transaction(app.state.sessionmaker, None) as session:
        result = await index.refresh_agency_stats(session, CAL, now, full=full)
    assert result is not None
    assert result.mode == ("full" if full else "changes")
    return result


async def stats_of(app, agency_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    rows = await execute(
        app,
        "SELECT period, received, finished, finished_on_time, finished_late, open,"
        " open_overdue, online, rated, satisfied, accepted, not_satisfied,"
        " median_handling_working_days FROM agency_stats WHERE agency_id = :a",
        a=agency_id,
    )
    names = (
        "received finished finished_on_time finished_late open open_overdue online rated "
        "satisfied accepted not_satisfied median"
    ).split()
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


# ---------------------------------------------------------------- the sweep


async def test_the_sweep_marks_open_dossiers_past_due_and_nothing_else(app):
    unit_id, _ = await new_unit(app)
    agency_id, _ = await new_agency(app, unit_id)
    now = NOW
    past, future = now - timedelta(hours=3), now + timedelta(days=2)
    received = now - timedelta(days=10)
    late = {
        status: (await add_dossier(app, agency_id, received, status, due=past))[0]
        for status in ("received", "processing", "supplement_requested")
    }
    not_due = (await add_dossier(app, agency_id, received, "processing", due=future))[0]
    no_due = (await add_dossier(app, agency_id, received, "processing"))[0]
    finished = {
        status: (await add_dossier(app, agency_id, received, status, due=past))[0]
        for status in ("completed", "returned", "refused", "withdrawn")
    }
    at_due = (await add_dossier(app, agency_id, received, "processing", due=now))[0]

    first = await sweep(app, now)
    assert first.marked >= 4
    for dossier_id in [*late.values(), at_due]:
        assert await overdue_of(app, dossier_id) == now
    for dossier_id in (not_due, no_due, *finished.values()):
        assert await overdue_of(app, dossier_id) is None

    # idempotent: the same instant again changes nothing, anywhere
    again = await sweep(app, now)
    assert (again.marked, again.cleared, again.measured) == (0, 0, 0)
    assert await overdue_of(app, late["processing"]) == now  # the first mark stands

    # a later sweep keeps the first mark's time
    await sweep(app, now + timedelta(minutes=1))
    assert await overdue_of(app, late["processing"]) == now

    # a supplement moved the due date past now: no longer overdue; a finished one keeps
    # its history
    await execute(
        app, "UPDATE dossiers SET due_at = :due WHERE id = :id", due=future, id=late["received"]
    )
    await execute(
        app,
        "UPDATE dossiers SET status = 'completed', completed_at = :t WHERE id = :id",
        t=now,
        id=late["processing"],
    )
    cleared = await sweep(app, now + timedelta(minutes=2))
    assert cleared.cleared >= 1
    assert await overdue_of(app, late["received"]) is None
    assert await overdue_of(app, late["processing"]) == now
    assert await overdue_of(app, late["supplement_requested"]) == now


async def test_the_sweep_freezes_the_working_days_of_finished_dossiers(app):
    unit_id, _ = await new_unit(app)
    agency_id, _ = await new_agency(app, unit_id)
    received, finished = local(2026, 2, 12, 16), local(2026, 2, 24, 10)  # across Tết
    done, _ = await add_dossier(
        app, agency_id, received, "completed", completed=finished, on_time=True
    )
    refused, _ = await add_dossier(app, agency_id, received, "refused", closed=finished)
    still_open, _ = await add_dossier(app, agency_id, received, "processing")
    swept = await sweep(app, NOW)
    assert swept.measured >= 2
    rows = await execute(
        app,
        "SELECT id, handling_working_days, updated_at FROM dossiers WHERE id = ANY(:ids)",
        ids=[done, refused, still_open],
    )
    days = {row[0]: row[1] for row in rows}
    want = CAL.working_days_between(received, finished)
    assert float(days[done]) == pytest.approx(want, abs=0.011) and 1 < want < 5
    assert float(days[refused]) == pytest.approx(want, abs=0.011)
    assert days[still_open] is None
    assert {row[2] for row in rows if row[0] != still_open} == {NOW}  # a change: refreshed
    # frozen: a later return does not measure it again
    await execute(
        app,
        "UPDATE dossiers SET status = 'returned', closed_at = :t WHERE id = :id",
        t=NOW,
        id=done,
    )
    assert (await sweep(app, NOW + timedelta(minutes=1))).measured == 0
    rows = await execute(app, "SELECT handling_working_days FROM dossiers WHERE id = :id", id=done)
    assert float(rows[0][0]) == pytest.approx(want, abs=0.011)


async def test_the_sweep_uses_the_partial_indexes(app):
    """Both statements are planned on their partial index (no scan of every dossier)."""
    async with db.transaction(app.state.sessionmaker, None) as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        for statement in (index._MARK_OVERDUE, index._CLEAR_OVERDUE):
            plan = "\n".join(
                row[0]
                for row in await session.execute(text(f"EXPLAIN {statement.text}"), {"now": NOW})
            )
            name = "ix_dossiers_open_due" if statement is index._MARK_OVERDUE else None
            assert (name or "ix_dossiers_open_overdue") in plan, plan
        params = index.calendar_params(CAL, NOW)
        params.update(tz="Asia/Ho_Chi_Minh", now=NOW, window=NOW - timedelta(days=7000), batch=10)
        plan = "\n".join(
            row[0] for row in await session.execute(text(f"EXPLAIN {index._MEASURE_SQL}"), params)
        )
        assert "ix_dossiers_unmeasured" in plan, plan
        await session.rollback()


# ---------------------------------------------------------------- working days in SQL


async def test_working_days_in_sql_are_the_calendars(app):
    """The rebuild's SQL gives what WorkingCalendar.working_days_between gives, over
    weekends, Tết 2026 and the National Day, same-day and across months."""
    rng = random.Random(19)
    pairs = [
        (local(2026, 10, 5, 9), local(2026, 10, 7, 11)),  # Mon 09:00 → Wed 11:00
        (local(2026, 2, 12, 16), local(2026, 2, 24, 10)),  # across Tết
        (local(2026, 8, 31, 7), local(2026, 9, 3, 18)),  # across 2 September
        (local(2026, 3, 6, 10), local(2026, 3, 6, 15, 30)),  # the same day
        (local(2026, 3, 7, 10), local(2026, 3, 8, 15)),  # a weekend only
        (local(2026, 3, 6, 18), local(2026, 3, 9, 7)),  # after close → before open
        (local(2026, 3, 9, 10), local(2026, 3, 9, 9)),  # backwards: 0
    ]
    for _ in range(200):
        start = local(2025, 1, 1, 0) + timedelta(minutes=rng.randrange(700 * 24 * 60))
        pairs.append((start, start + timedelta(minutes=rng.randrange(60 * 24 * 60))))
    params = index.calendar_params(CAL, NOW)
    async with db.transaction(app.state.sessionmaker, None) as session:
        rows = await session.execute(
            text(
                f"""
                SELECT n, {index.working_days_sql("s", "e")}
                  FROM (SELECT n, s AT TIME ZONE 'Asia/Ho_Chi_Minh' AS s,
                               e AT TIME ZONE 'Asia/Ho_Chi_Minh' AS e
                          FROM unnest(CAST(:s AS timestamptz[]), CAST(:e AS timestamptz[]))
                               WITH ORDINALITY AS p(s, e, n)) AS pairs
                 ORDER BY n
                """
            ),
            {"s": [p[0] for p in pairs], "e": [p[1] for p in pairs], **params},
        )
        got = {n: float(v) for n, v in rows}
    assert got[1] == 2.22  # 8 h + 9 h + 3 h of a 9-hour office day
    assert got[7] == 0
    for n, (s, e) in enumerate(pairs, start=1):
        assert got[n] == pytest.approx(CAL.working_days_between(s, e), abs=0.011), (n, s, e)


# ---------------------------------------------------------------- the rebuild


@pytest.fixture
async def hand_made(app):
    """One agency, eight dossiers with known figures; NOW is 2026-12-05 12:00 local."""
    unit_id, unit_code = await new_unit(app)
    agency_id, agency_code = await new_agency(app, unit_id)
    d: dict[str, tuple[uuid.UUID, str]] = {}
    # October: finished on time (rated satisfied, online), refused late, open overdue
    d["oct_on_time"] = await add_dossier(
        app,
        agency_id,
        local(2026, 10, 5, 9),
        "returned",
        due=local(2026, 10, 9, 17),
        completed=local(2026, 10, 7, 11),
        closed=local(2026, 10, 8, 10),
        on_time=True,
        online=True,
        rating="satisfied",
    )
    d["oct_refused_late"] = await add_dossier(
        app,
        agency_id,
        local(2026, 10, 6, 14),
        "refused",
        due=local(2026, 10, 8, 17),
        closed=local(2026, 10, 13, 10),
        on_time=False,
    )
    d["oct_open_overdue"] = await add_dossier(
        app,
        agency_id,
        local(2026, 10, 20, 10),
        "processing",
        due=local(2026, 10, 30, 17),
        overdue_at=local(2026, 10, 30, 17, 1),
        online=True,
    )
    # November: open not due, withdrawn, returned without a due date (no verdict),
    # completed on time (last 30 days), supplement requested and overdue
    d["nov_open"] = await add_dossier(
        app, agency_id, local(2026, 11, 2, 9), "received", due=local(2026, 12, 20, 17)
    )
    d["nov_withdrawn"] = await add_dossier(
        app, agency_id, local(2026, 11, 3, 9), "withdrawn", closed=local(2026, 11, 4, 9)
    )
    d["nov_no_verdict"] = await add_dossier(
        app,
        agency_id,
        local(2026, 11, 4, 8),
        "returned",
        completed=local(2026, 11, 4, 16),
        closed=local(2026, 11, 5, 9),
        rating="not_satisfied",
        online=True,
    )
    d["nov_recent"] = await add_dossier(
        app,
        agency_id,
        local(2026, 11, 20, 10),
        "completed",
        due=local(2026, 11, 27, 17),
        completed=local(2026, 11, 25, 10),
        on_time=True,
        rating="accept",
    )
    d["dec_supplement_overdue"] = await add_dossier(
        app,
        agency_id,
        local(2026, 12, 1, 10),
        "supplement_requested",
        due=local(2026, 12, 4, 17),
        overdue_at=local(2026, 12, 4, 17, 1),
    )
    return {
        "agency_id": agency_id,
        "agency_code": agency_code,
        "unit_id": unit_id,
        "unit_code": unit_code,
        "dossiers": d,
    }


def _days(*spans: tuple[datetime, datetime]) -> float | None:
    """The median of the calendar's working days over the spans (Python's calendar)."""
    values = [CAL.working_days_between(s, e) for s, e in spans]
    return round(statistics.median(values), 2) if values else None


async def test_the_rebuild_counts_every_figure_of_a_hand_made_set(app, hand_made):
    await sweep(app, NOW)  # the working days of the finished ones frozen
    result = await refresh(app)
    assert result.cells >= 4
    stats = await stats_of(app, hand_made["agency_id"])
    assert set(stats) == {"all", "last-30-days", "2026-10", "2026-11", "2026-12"}

    oct_spans = [
        (local(2026, 10, 5, 9), local(2026, 10, 7, 11)),  # 2.22
        (local(2026, 10, 6, 14), local(2026, 10, 13, 10)),  # refused: 4.56
    ]
    nov_spans = [
        (local(2026, 11, 4, 8), local(2026, 11, 4, 16)),  # 0.89
        (local(2026, 11, 20, 10), local(2026, 11, 25, 10)),
    ]
    expected = {
        "2026-10": dict(
            received=3,
            finished=2,
            finished_on_time=1,
            finished_late=1,
            open=1,
            open_overdue=1,
            online=2,
            rated=1,
            satisfied=1,
            accepted=0,
            not_satisfied=0,
            median=_days(*oct_spans),
        ),
        "2026-11": dict(
            received=4,
            finished=2,
            finished_on_time=1,
            finished_late=0,  # the one without a due date has no verdict
            open=1,
            open_overdue=0,
            online=1,
            rated=2,
            satisfied=0,
            accepted=1,
            not_satisfied=1,
            median=_days(*nov_spans),
        ),
        "2026-12": dict(
            received=1,
            finished=0,
            finished_on_time=0,
            finished_late=0,
            open=1,
            open_overdue=1,
            online=0,
            rated=0,
            satisfied=0,
            accepted=0,
            not_satisfied=0,
            median=None,
        ),
        # received after 2026-11-05 12:00 local: the recent completion and December's
        "last-30-days": dict(
            received=2,
            finished=1,
            finished_on_time=1,
            finished_late=0,
            open=1,
            open_overdue=1,
            online=0,
            rated=1,
            satisfied=0,
            accepted=1,
            not_satisfied=0,
            median=_days(nov_spans[1]),
        ),
        "all": dict(
            received=8,
            finished=4,
            finished_on_time=2,
            finished_late=1,
            open=3,
            open_overdue=2,
            online=3,
            rated=3,
            satisfied=1,
            accepted=1,
            not_satisfied=1,
            median=_days(*oct_spans, *nov_spans),
        ),
    }
    for period, want in expected.items():
        got = dict(stats[period])
        median = got.pop("median")
        want = dict(want)
        want_median = want.pop("median")
        assert got == want, period
        if want_median is None:
            assert median is None, period
        else:
            assert float(median) == pytest.approx(want_median, abs=0.011), period
    # by hand: Mon 09-17 + Tue + Wed 08-11 = 20 h; Tue 14-17 + 4 days + Tue 08-10 = 41 h
    assert float(stats["2026-10"]["median"]) == pytest.approx((20 / 9 + 41 / 9) / 2, abs=0.011)

    # the published figures and rates
    trend = await _trend(app, hand_made)
    assert trend.all.on_time_pct == 66.7  # 2 of the 3 with a verdict
    assert trend.all.overdue_pct == 66.7  # 2 of 3 open
    assert trend.all.online_pct == 37.5  # 3 of 8
    assert trend.all.satisfaction_pct == 66.7  # satisfied + accept of 3 rated
    assert [m.period for m in trend.months] == ["2026-10", "2026-11", "2026-12"]
    assert trend.months[2].figures.on_time_pct is None  # nothing finished: no rate

    # the rebuild replaces, it does not add: a second one gives the same rows
    await refresh(app)
    assert await stats_of(app, hand_made["agency_id"]) == stats


async def _trend(app, made) -> index.AgencyTrend:
    from app import policy

    async with db.transaction(app.state.sessionmaker, None) as session:
        return await index.agency_trend(session, policy.system_actor(NOW), made["agency_code"])


def test_percentages_are_honest():
    assert index.pct(0, 0) is None
    assert index.pct(5, 0) is None
    assert index.pct(2, 2) == 100.0
    assert index.pct(1999, 2000) == 99.9  # 99.95 would round to 100.0
    assert index.pct(99_999, 100_000) == 99.9
    assert index.pct(1, 3000) == 0.1  # 0.033 would round to 0.0
    assert index.pct(0, 3000) == 0.0
    assert index.pct(1, 3) == 33.3
    assert index.pct(2, 3) == 66.7


async def all_stats(app) -> dict[tuple[uuid.UUID, str], tuple]:
    rows = await execute(
        app,
        "SELECT agency_id, period, received, finished, finished_on_time, finished_late, open,"
        " open_overdue, online, rated, satisfied, accepted, not_satisfied,"
        " median_handling_working_days, refreshed_at FROM agency_stats",
    )
    return {(row[0], row[1]): tuple(row[2:]) for row in rows}


async def test_the_refresh_from_the_counters_equals_a_recount(app, hand_made):
    """Dossiers finished, marked overdue, rated, ingested late into an old month, received
    yesterday and deleted, by separate statements: the refresh that folds the trigger's
    deltas gives, row for row and medians included, what a recount of every day from the
    dossiers gives, and the recount finds no day that differed."""
    d = hand_made["dossiers"]
    t1 = datetime.now(UTC).replace(microsecond=0)
    await sweep(app, t1)
    await refresh(app, t1, full=True)
    before = await all_stats(app)
    t2 = t1 + timedelta(minutes=3)
    await execute(
        app,
        "UPDATE dossiers SET status = 'completed', completed_at = :t, finished_on_time = false,"
        " updated_at = :t WHERE id = :id",
        t=t2,
        id=d["oct_open_overdue"][0],
    )
    await execute(
        app,
        "UPDATE dossiers SET status = 'processing', overdue_at = :t, updated_at = :t"
        " WHERE id = :id",
        t=t2,
        id=d["nov_open"][0],
    )
    await execute(
        app,
        "UPDATE dossiers SET rating = 'satisfied', rated_at = :t WHERE id = :id",
        t=t2,
        id=d["nov_recent"][0],
    )
    await execute(
        app, "UPDATE dossiers SET updated_at = :t WHERE id = :id", t=t2, id=d["nov_open"][0]
    )
    await add_dossier(
        app,
        hand_made["agency_id"],
        local(2026, 10, 14, 9),
        "returned",
        due=local(2026, 10, 20, 17),
        completed=local(2026, 10, 16, 15),
        closed=local(2026, 10, 17, 9),
        on_time=True,
        online=True,
    )
    await add_dossier(
        app, hand_made["agency_id"], t1 - timedelta(days=1), "received", due=t1 + timedelta(5)
    )
    gone, _ = await add_dossier(app, hand_made["agency_id"], local(2026, 11, 9, 9), "received")
    await execute(app, "DELETE FROM dossier_events WHERE dossier_id = :id", id=gone)
    await execute(app, "DELETE FROM dossiers WHERE id = :id", id=gone)

    await sweep(app, t2)  # measures the two finished since: their months' medians move
    changes = await refresh(app, t2, full=False)
    assert changes.months >= 1  # October's measured set changed
    incremental = await all_stats(app)
    rebuilt_result = await refresh(app, t2, full=True)
    assert rebuilt_result.drift == 0
    rebuilt = await all_stats(app)

    assert incremental == rebuilt
    mine = incremental[(hand_made["agency_id"], "all")]
    assert mine[:2] == (10, 6)  # received, finished: the two new, one more finished
    assert rebuilt[(hand_made["agency_id"], "2026-10")][0] == 4
    assert mine[11] != before[(hand_made["agency_id"], "all")][11]  # the median moved


async def test_the_recount_reports_a_write_that_escaped_the_counters(app, hand_made):
    """A day whose kept counts are wrong (a write with the trigger disabled, a restore)
    is found by the recount, reported as drift, and corrected."""
    await refresh(app, NOW, full=True)
    await execute(
        app,
        "UPDATE agency_day_counts SET received = received + 5 WHERE agency_id = :a"
        " AND day = (SELECT min(day) FROM agency_day_counts WHERE agency_id = :a)",
        a=hand_made["agency_id"],
    )
    await refresh(app, NOW, full=False)
    assert (await stats_of(app, hand_made["agency_id"]))["all"]["received"] == 13
    result = await refresh(app, NOW, full=True)
    assert result.drift == 1
    assert (await stats_of(app, hand_made["agency_id"]))["all"]["received"] == 8
    assert (await refresh(app, NOW, full=True)).drift == 0


def test_the_trigger_counts_with_the_lifecycle_and_the_calendar():
    """Migration 0022 writes its status lists and time zone out (a migration does not
    import the app): they must be the lifecycle's and the calendar's."""
    import importlib.util
    from pathlib import Path

    from app.dossiers.lifecycle import FINISHED_STATUSES, OPEN_STATUSES, sql_in

    path = Path(__file__).parents[2] / "migrations/versions/0022_agency_day_counts.py"
    spec = importlib.util.spec_from_file_location("m0022", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OPEN == sql_in(OPEN_STATUSES)
    assert module.FINISHED == sql_in(FINISHED_STATUSES)
    assert module.TZ == TIMEZONE.key
    assert module.COUNTERS == index.COUNTERS


async def test_a_second_rebuild_waits_for_none(app):
    """Two workers: the one that does not get the lock returns None and writes nothing."""
    async with db.transaction(app.state.sessionmaker, None) as first:
        assert await index.refresh_agency_stats(first, CAL, NOW) is not None
        async with db.transaction(app.state.sessionmaker, None) as second:
            assert await index.refresh_agency_stats(second, CAL, NOW) is None


# ---------------------------------------------------------------- over HTTP


async def test_the_public_index_carries_no_personal_data(app, client, hand_made):
    await refresh(app, datetime.now(UTC))
    r = await client.get(PUBLIC, params={"period": "all"})
    assert r.status_code == 200, r.text
    mine = [a for a in r.json() if a["agency_code"] == hand_made["agency_code"]]
    assert len(mine) == 1
    item = mine[0]
    assert set(item) == {
        "agency_code",
        "agency_name_vi",
        "agency_name_en",
        "unit_code",
        "period",
        "refreshed_at",
        "figures",
    }
    assert set(item["figures"]) == set(index.AgencyFigures.__struct_fields__)
    assert item["figures"]["received"] == 8 and item["figures"]["open_overdue"] == 2
    body = r.text
    codes = [code for _, code in hand_made["dossiers"].values()]
    for secret in ("Trần Thị Bích", "0912345678", "bich@example.vn", *codes):
        assert secret not in body
    # the ID's last digits as a value anywhere (a timestamp may hold any four digits)
    assert "4321" not in set(_values(r.json()))
    # the default period, a month, and a bad one
    assert (await client.get(PUBLIC)).json()[0]["period"] == "last-30-days"
    month = await client.get(PUBLIC, params={"period": "2026-10"})
    assert any(a["agency_code"] == hand_made["agency_code"] for a in month.json())
    bad = await client.get(PUBLIC, params={"period": "2026-13"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["code"] == "period_invalid"


def _values(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _values(value)]
    if isinstance(node, list):
        return [v for value in node for v in _values(value)]
    return [node]


async def test_the_console_index_is_scoped_and_denied_outside(app, client, caplog, hand_made):
    await refresh(app, datetime.now(UTC))
    code = hand_made["agency_code"]
    own = await sign_in_staff(client, app, [("officer", hand_made["unit_code"])])
    _, other_unit = await new_unit(app)
    other = await sign_in_staff(client, app, [("officer", other_unit)])
    dispatcher = await sign_in_staff(client, app, [("dispatcher", None)])
    resident = await sign_in_resident(client, caplog)

    trend = await client.get(
        f"/api/v1/console/agencies/{code}/service-index", headers=own["headers"]
    )
    assert trend.status_code == 200, trend.text
    assert trend.json()["all"]["received"] == 8
    listed = await client.get(
        "/api/v1/console/service-index/agencies", params={"period": "all"}, headers=own["headers"]
    )
    assert [a["agency_code"] for a in listed.json()] == [code]

    for who in (other, resident):
        r = await client.get(
            f"/api/v1/console/agencies/{code}/service-index", headers=who["headers"]
        )
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get(
        "/api/v1/console/service-index/agencies", params={"period": "all"}, headers=other["headers"]
    )
    assert r.status_code == 200 and code not in r.text
    r = await client.get("/api/v1/console/service-index/agencies", headers=resident["headers"])
    assert r.status_code == 403
    assert (await client.get("/api/v1/console/service-index/agencies")).status_code == 401
    # the city's dispatcher sees it; an unknown agency is a 404
    r = await client.get(
        f"/api/v1/console/agencies/{code}/service-index", headers=dispatcher["headers"]
    )
    assert r.status_code == 200
    r = await client.get(
        "/api/v1/console/agencies/NO-SUCH-AGENCY/service-index", headers=dispatcher["headers"]
    )
    assert r.status_code == 404 and r.json()["code"] == "dossier_index.agency_not_found"


async def test_the_worker_tasks(app, hand_made):
    """The crons as the worker runs them (app/dossiers/tasks.py), each in its own boundary."""
    from app.dossiers import tasks

    ctx = {
        "sessionmaker": app.state.sessionmaker,
        "redis": app.state.redis,
        "clock": app.state.clock,
        "deadlines": app.state.deadlines,
    }
    counts = await tasks.sweep_dossier_overdue(ctx)
    assert set(counts) == {"marked", "cleared", "measured"}
    assert (await tasks.sweep_dossier_overdue(ctx)) == {"marked": 0, "cleared": 0, "measured": 0}
    cells = await tasks.rebuild_agency_index(ctx)
    total = (await execute(app, "SELECT count(*) FROM agency_stats"))[0][0]
    assert cells == total and total >= 5
    assert await tasks.refresh_agency_index(ctx) == total
    assert (await stats_of(app, hand_made["agency_id"]))["all"]["received"] == 8
