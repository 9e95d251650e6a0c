"""Issue 17, item 3: an extension, granted or requested, adds at most a bounded number of
working days (MAX_EXTENSION_WORKING_DAYS, by default the category's own allowance); a
far date such as 9999-12-31 is a 422 that states the limit, never a 500 in the calendar,
and a far request already stored cannot make the manager's approval a 500."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

import pytest
from sqlalchemy import update

from app.complaints.models import Report
from app.core.calendar import DateOutOfRange, working_calendar
from tests.routing.conftest import hanoi, report_row
from tests.routing.test_deadlines import act, routed_report
from tests.routing.test_routing import me

FAR = "9999-12-31"


def too_far(response, days: int, latest: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "extension_too_far"
    assert problem["detail"] == (
        f"Gia hạn thêm tối đa {days} ngày làm việc: hạn mới muộn nhất là {latest}."
    )
    assert problem["errors"][0]["field"] == "due_date"


async def test_a_far_date_is_refused_with_the_limit_whoever_asks(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)  # roads: 5 working days, due Wed 2 Dec
    report_id = uuid.UUID(r["id"])
    before = await report_row(app, report_id)
    reason = "Chờ vật tư thay thế."
    # the manager's grant and the officer's request alike: 5 working days after 2 Dec
    grant = await act(client, r["manager"]["headers"], r, "extension", due_date=FAR, reason=reason)
    too_far(grant, 5, "2026-12-09")
    asked = await act(
        client, r["officer"]["headers"], r, "extension-request", due_date=FAR, reason=reason
    )
    too_far(asked, 5, "2026-12-09")
    just_past = await act(
        client,
        r["officer"]["headers"],
        r,
        "extension-request",
        due_date="2026-12-10",
        reason=reason,
    )
    too_far(just_past, 5, "2026-12-09")
    english = await client.post(
        f"/api/v1/console/reports/{r['id']}/extension",
        json={"due_date": FAR, "reason": reason},
        headers={**r["manager"]["headers"], "Accept-Language": "en"},
    )
    assert english.status_code == 422
    assert english.json()["detail"] == (
        "An extension may add at most 5 working days: the latest new deadline is 2026-12-09."
    )
    row = await report_row(app, report_id)
    assert (row.due_at, row.original_due_at, row.extension_requested_until) == (
        before.due_at,
        None,
        None,
    )

    # the last day within the limit still works
    granted = await act(
        client, r["manager"]["headers"], r, "extension", due_date="2026-12-09", reason=reason
    )
    assert granted.status_code == 200, granted.text
    assert (await report_row(app, report_id)).due_at == hanoi("2026-12-09 17:00")


async def test_approving_a_far_request_already_stored_is_a_422_not_a_500(
    app, client, caplog, clock
):
    """A request stored before the limit existed (or written by other means) reaches the
    calendar only through the manager's approval: refused there, left pending, and the
    manager can still decline it."""
    r = await routed_report(app, client, caplog, clock)
    report_id = uuid.UUID(r["id"])
    officer_id = await me(client, r["officer"]["headers"])
    async with app.state.sessionmaker() as s:
        await s.execute(
            update(Report)
            .where(Report.id == report_id)
            .values(
                extension_requested_until=date.max,
                extension_request_reason="Chờ rất lâu.",
                extension_requested_by=officer_id,
                extension_requested_at=clock.now(),
            )
        )
        await s.commit()
    before = await report_row(app, report_id)

    approved = await act(
        client, r["manager"]["headers"], r, "extension-request/decision", approve=True
    )
    too_far(approved, 5, "2026-12-09")
    row = await report_row(app, report_id)
    assert row.due_at == before.due_at and row.original_due_at is None
    assert row.extension_requested_until == date.max  # still pending: nothing was written

    declined = await act(
        client,
        r["manager"]["headers"],
        r,
        "extension-request/decision",
        approve=False,
        note="Quá xa.",
    )
    assert declined.status_code == 200, declined.text
    assert (await report_row(app, report_id)).extension_requested_until is None


async def test_max_extension_working_days_overrides_the_category(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)  # due Wed 2 Dec
    saved = app.state.deadlines
    app.state.deadlines = dataclasses.replace(saved, max_extension_working_days=2)
    try:
        reason = "Chờ vật tư thay thế."
        late = await act(
            client, r["manager"]["headers"], r, "extension", due_date="2026-12-07", reason=reason
        )
        too_far(late, 2, "2026-12-04")
        ok = await act(
            client, r["manager"]["headers"], r, "extension", due_date="2026-12-04", reason=reason
        )
        assert ok.status_code == 200, ok.text
    finally:
        app.state.deadlines = saved
    assert (await report_row(app, uuid.UUID(r["id"]))).due_at == hanoi("2026-12-04 17:00")


def test_the_calendar_never_overflows_near_the_last_date():
    calendar = working_calendar()
    with pytest.raises(DateOutOfRange):
        calendar.nth_working_day(date(9999, 12, 30), 3)
    # counting up to the last representable day does not step past it
    assert calendar.working_days_count(date(9999, 12, 24), date.max) == 5
    assert calendar.close_of(date.max).year == 9999
