"""Deadlines and what units do: reminders at 75 %, overdue, escalation, the frozen
on-time verdict, transfers, the one extension, and satisfaction after resolution."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.complaints.factories import HOAN_KIEM
from tests.routing.conftest import (
    WEDNESDAY,
    events_of,
    hanoi,
    notifications_for,
    report_row,
    resident_now,
    run_worker,
    staff_now,
    unit_by_code,
)
from tests.routing.test_routing import file_petition, me


async def routed_report(app, client, caplog, clock, at=WEDNESDAY, category="roads") -> dict:
    """A resident's petition, routed by the worker to the Hoàn Kiếm ward committee, with
    an officer and a manager of that ward signed in."""
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    ward = f"ubnd-{area}"
    resident = await resident_now(client, caplog, clock)
    officer = await staff_now(client, app, clock, [("officer", ward)])
    manager = await staff_now(client, app, clock, [("manager", ward)])
    clock.set(hanoi(at))
    filed = await file_petition(client, resident["headers"], category_code=category)
    await run_worker(clock)
    return {
        "id": filed["id"],
        "code": filed["code"],
        "ward": ward,
        "resident": resident,
        "officer": officer,
        "manager": manager,
    }


def act(client, who, report, action, **body):
    return client.post(
        f"/api/v1/console/reports/{report['id']}/{action}", json=body or None, headers=who
    )


async def test_reminder_overdue_and_escalation_follow_the_calendar_across_tet(
    app, client, caplog, clock
):
    dispatcher = await staff_now(client, app, clock, [("dispatcher", None)])
    r = await routed_report(app, client, caplog, clock, at="2027-02-03 09:00", category="waste")
    report_id = uuid.UUID(r["id"])
    officer_id = await me(client, r["officer"]["headers"])
    row = await report_row(app, report_id)
    assert row.due_at == hanoi("2027-02-15 17:00")  # 3 working days, Tết skipped

    # 75 % of 3 working days = 2.25: 10:15 on Monday 15 Feb
    clock.set(hanoi("2027-02-15 10:14"))
    await run_worker(clock)
    assert (await report_row(app, report_id)).reminded_at is None
    clock.set(hanoi("2027-02-15 10:16"))
    await run_worker(clock)
    await run_worker(clock)  # a second sweep changes nothing
    assert (await report_row(app, report_id)).reminded_at == hanoi("2027-02-15 10:16")
    assert len(await notifications_for(app, officer_id, "report_reminder")) == 1

    clock.set(hanoi("2027-02-15 16:59"))
    await run_worker(clock)
    assert (await report_row(app, report_id)).overdue_at is None
    clock.set(hanoi("2027-02-15 17:01"))
    await run_worker(clock)
    await run_worker(clock)
    row = await report_row(app, report_id)
    assert row.overdue_at == hanoi("2027-02-15 17:01")
    [overdue] = await events_of(app, report_id, "overdue")
    assert overdue.public  # lateness is not hidden from the resident
    assert len(await notifications_for(app, officer_id, "report_overdue")) == 1

    # escalated when overdue by more than 2 working days: after 17:00 Wed 17 Feb
    clock.set(hanoi("2027-02-17 16:59"))
    await run_worker(clock)
    assert (await report_row(app, report_id)).escalated_at is None
    clock.set(hanoi("2027-02-17 17:01"))
    await run_worker(clock)
    await run_worker(clock)
    row = await report_row(app, report_id)
    dispatch = await unit_by_code(app, "dispatcher")
    assert row.escalated_at is not None and row.unit_id == dispatch.id  # wards have no parent
    [escalated] = await events_of(app, report_id, "escalated")
    assert not escalated.public and escalated.unit_id == dispatch.id
    told = await notifications_for(app, await me(client, dispatcher["headers"]), "report_escalated")
    assert len(told) == 1 and r["code"] in told[0].title
    assert row.due_at == hanoi("2027-02-15 17:00")  # escalation does not reset the clock


async def test_the_on_time_verdict_is_fixed_at_the_first_resolution(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)  # due Wed 2 Dec 17:00
    assert (await act(client, r["officer"]["headers"], r, "accept")).status_code == 200
    clock.set(hanoi("2026-12-03 09:00"))
    await run_worker(clock)  # marked overdue
    resolved = await act(
        client, r["officer"]["headers"], r, "resolve", answer="Đã vá ổ gà, thông xe bình thường."
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolved_on_time"] is False
    row = await report_row(app, uuid.UUID(r["id"]))
    # Wed 10:00 → Thu 3 Dec 09:00: 7 h + 4 days + 1 h = 5.89 working days
    assert float(row.handling_working_days) == 5.89

    # not satisfied → reopened → the worker sends it back to the same unit, new deadline
    resident = r["resident"]["headers"]
    rate = await client.post(
        f"/api/v1/reports/{r['id']}/rating", json={"rating": "not_satisfied"}, headers=resident
    )
    assert rate.status_code == 204, rate.text
    assert (
        await client.post(f"/api/v1/reports/{r['id']}/reopen", headers=resident)
    ).status_code == 204
    await run_worker(clock)
    row = await report_row(app, uuid.UUID(r["id"]))
    assert row.status == "assigned" and row.unit_id == (await unit_by_code(app, r["ward"])).id
    assert row.due_at == hanoi("2026-12-10 17:00")  # 5 working days from Thu 3 Dec
    assert row.overdue_at is None

    # resolved on time in the second round: the verdict stays what it was
    await act(client, r["officer"]["headers"], r, "accept")
    again = await act(
        client, r["officer"]["headers"], r, "resolve", answer="Đã làm lại mặt đường cẩn thận."
    )
    assert again.status_code == 200 and again.json()["resolved_on_time"] is False


async def test_a_reopened_report_gets_a_fresh_deadline_from_the_reopen(app, client, caplog, clock):
    """Issue 17, item 13: resolved on time, reopened after its old deadline. It is not
    overdue the moment it returns (not even before routing), its new deadline is the
    category's 5 working days from the reopen, the first verdict stands, and the service
    index counts the reopen."""
    from app.routing.service import sweep_deadlines

    r = await routed_report(app, client, caplog, clock)  # roads, due Wed 2 Dec 17:00
    report_id = uuid.UUID(r["id"])
    await act(client, r["officer"]["headers"], r, "accept")
    clock.set(hanoi("2026-12-01 09:00"))
    done = await act(client, r["officer"]["headers"], r, "resolve", answer="Đã vá ổ gà.")
    assert done.json()["resolved_on_time"] is True
    first = await report_row(app, report_id)
    resident = r["resident"]["headers"]
    rate = await client.post(
        f"/api/v1/reports/{r['id']}/rating", json={"rating": "not_satisfied"}, headers=resident
    )
    assert rate.status_code == 204

    clock.set(hanoi("2026-12-04 09:00"))  # Friday, two days past the old deadline
    reopened = await client.post(f"/api/v1/reports/{r['id']}/reopen", headers=resident)
    assert reopened.status_code == 204, reopened.text
    row = await report_row(app, report_id)
    fresh = hanoi("2026-12-11 17:00")  # 5 working days from Fri 4 Dec
    assert row.status == "reopened" and row.due_at == fresh
    assert row.overdue_at is None and row.reminded_at is None and row.escalated_at is None
    due, remind, escalate = app.state.deadlines.for_received(clock.now(), 5)
    assert (row.due_at, row.remind_at, row.escalate_at) == (due, remind, escalate)
    # a sweep before the routing job finds nothing overdue
    async with app.state.sessionmaker() as s:
        swept = await sweep_deadlines(s, clock.now())
        await s.commit()
    assert swept.overdue == 0
    assert await events_of(app, report_id, "overdue") == []

    await run_worker(clock)  # routes it back to the ward and rebuilds the index
    row = await report_row(app, report_id)
    assert row.status == "assigned" and row.due_at == fresh and row.overdue_at is None
    assert row.resolved_on_time is True
    assert row.handling_working_days == first.handling_working_days
    assert await events_of(app, report_id, "overdue") == []

    index = await client.get("/api/v1/public/service-index", params={"period": "all"})
    [ward] = [u for u in index.json() if u["unit_code"] == r["ward"]]
    assert ward["resident"]["reopened"] == 1
    assert ward["resident"]["resolved_on_time"] == 1
    assert ward["staff_filed"]["reopened"] == 0


async def test_resolved_in_time_counts_as_on_time_and_asks_the_resident_to_rate(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)
    await act(client, r["officer"]["headers"], r, "accept")
    clock.set(hanoi("2026-12-02 16:59"))
    done = await act(client, r["officer"]["headers"], r, "resolve", answer="Đã vá ổ gà trên phố.")
    assert done.json()["resolved_on_time"] is True
    resident_id = await me(client, r["resident"]["headers"])
    [ask] = await notifications_for(app, resident_id, "report_resolved")
    assert ask.data["rate"] is True and r["code"] in ask.title
    detail = (
        await client.get(f"/api/v1/reports/{r['id']}", headers=r["resident"]["headers"])
    ).json()
    assert detail["timeline"][-1]["body"] == "Đã vá ổ gà trên phố."


async def test_no_rating_in_seven_days_closes_as_not_rated_and_a_rating_closes_as_rated(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)
    await act(client, r["officer"]["headers"], r, "accept")
    await act(client, r["officer"]["headers"], r, "resolve", answer="Đã xử lý xong vụ việc.")
    resolved_at = clock.now()

    clock.set(resolved_at + timedelta(days=6, hours=23))
    await app.state.redis.enqueue_job("close_unrated")
    await run_worker(clock)
    assert (await report_row(app, uuid.UUID(r["id"]))).status == "resolved"

    clock.set(resolved_at + timedelta(days=7, minutes=1))
    await app.state.redis.enqueue_job("close_unrated")
    await run_worker(clock)
    row = await report_row(app, uuid.UUID(r["id"]))
    assert (row.status, row.closed_reason) == ("closed", "not_rated")
    closing = [e for e in await events_of(app, row.id) if e.to_status == "closed"]
    assert [(e.actor_kind, e.body) for e in closing] == [("system", "not_rated")]
    rate = await client.post(
        f"/api/v1/reports/{r['id']}/rating",
        json={"rating": "satisfied"},
        headers=r["resident"]["headers"],
    )
    assert rate.status_code == 409  # too late: closed

    other = await routed_report(app, client, caplog, clock, at="2026-11-26 09:00")
    await act(client, other["officer"]["headers"], other, "accept")
    await act(client, other["officer"]["headers"], other, "resolve", answer="Đã xử lý xong.")
    rate = await client.post(
        f"/api/v1/reports/{other['id']}/rating",
        json={"rating": "accept"},
        headers=other["resident"]["headers"],
    )
    assert rate.status_code == 204
    row = await report_row(app, uuid.UUID(other["id"]))
    assert (row.status, row.closed_reason) == ("closed", "rated")


async def test_transfer_moves_the_report_and_keeps_the_deadline(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    before = await report_row(app, uuid.UUID(r["id"]))
    construction = await staff_now(client, app, clock, [("officer", "so-xay-dung")])
    moved = await act(
        client,
        r["officer"]["headers"],
        r,
        "transfer",
        unit_code="so-xay-dung",
        reason="Tuyến phố do Sở Xây dựng quản lý.",
    )
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"unit_code": "so-xay-dung", "redirected_to_dispatcher": False}
    after = await report_row(app, uuid.UUID(r["id"]))
    assert after.unit_id == (await unit_by_code(app, "so-xay-dung")).id
    assert after.due_at == before.due_at and after.transfer_count == 1
    [event] = await events_of(app, after.id, "transferred")
    assert event.public and event.body == "Tuyến phố do Sở Xây dựng quản lý."
    told = await notifications_for(
        app, await me(client, construction["headers"]), "report_assigned"
    )
    assert len(told) == 1
    resident_told = await notifications_for(
        app, await me(client, r["resident"]["headers"]), "report_transferred"
    )
    assert "Sở Xây dựng" in resident_told[0].body

    # the ward's officer has no say over it any more
    denied = await act(client, r["officer"]["headers"], r, "accept")
    assert denied.status_code == 403 and denied.json()["code"] == "not_your_report"
    async with app.state.sessionmaker() as s:
        audit = await s.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "report.transferred", AuditEntry.object_id == r["code"]
            )
        )
    assert audit.details["to_unit"] == "so-xay-dung"


async def test_a_report_bouncing_between_units_ends_with_the_dispatcher(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    construction = await staff_now(client, app, clock, [("officer", "so-xay-dung")])
    hops = [
        (r["officer"], "so-xay-dung"),
        (construction, r["ward"]),
        (r["officer"], "so-xay-dung"),
        (construction, r["ward"]),  # the 4th: more than 3 → dispatcher
    ]
    answers = []
    for who, unit in hops:
        res = await act(
            client, who["headers"], r, "transfer", unit_code=unit, reason="Không thuộc thẩm quyền."
        )
        assert res.status_code == 200, res.text
        answers.append(res.json())
    assert answers[-1] == {"unit_code": "dispatcher", "redirected_to_dispatcher": True}
    assert (await report_row(app, uuid.UUID(r["id"]))).unit_id == (
        await unit_by_code(app, "dispatcher")
    ).id


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"unit_code": "no-such-unit", "reason": "Chuyển đơn vị."}, 422, "unit_unknown"),
        ({"unit_code": "so-xay-dung", "reason": "ngắn"}, 400, "validation_failed"),
        ({"unit_code": "so-xay-dung"}, 400, "validation_failed"),
    ],
)
async def test_bad_transfers_are_refused_and_change_nothing(
    app, client, caplog, clock, body, status, code
):
    r = await routed_report(app, client, caplog, clock)
    res = await act(client, r["officer"]["headers"], r, "transfer", **body)
    assert res.status_code == status and res.json()["code"] == code
    row = await report_row(app, uuid.UUID(r["id"]))
    assert row.transfer_count == 0 and row.unit_id == (await unit_by_code(app, r["ward"])).id
    assert await events_of(app, row.id, "transferred") == []


async def test_staff_of_another_unit_cannot_act_on_the_report(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    stranger = await staff_now(client, app, clock, [("manager", "evn-hanoi")])
    for action, body in (
        ("accept", {}),
        ("transfer", {"unit_code": "so-xay-dung", "reason": "Chuyển đơn vị khác."}),
        ("extension", {"due_date": "2026-12-10", "reason": "Cần thêm thời gian."}),
        ("resolve", {"answer": "Đã xử lý xong vụ việc."}),
        ("replies", {"body": "Xin chào"}),
    ):
        res = await act(client, stranger["headers"], r, action, **body)
        assert res.status_code == 403, (action, res.text)
    resident = await act(client, r["resident"]["headers"], r, "accept")
    assert resident.status_code == 403
    assert (await report_row(app, uuid.UUID(r["id"]))).status == "assigned"


async def test_one_extension_by_a_manager_before_the_deadline(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)  # due Wed 2 Dec
    body = {"due_date": "2026-12-09", "reason": "Chờ vật tư thay thế."}
    officer = await act(client, r["officer"]["headers"], r, "extension", **body)
    assert officer.status_code == 403 and officer.json()["code"] == "managers_only"
    saturday = await act(
        client, r["manager"]["headers"], r, "extension", due_date="2026-12-05", reason="Chờ vật tư."
    )
    assert saturday.status_code == 422 and saturday.json()["code"] == "not_a_working_day"
    earlier = await act(
        client, r["manager"]["headers"], r, "extension", due_date="2026-12-01", reason="Chờ vật tư."
    )
    assert earlier.status_code == 422 and earlier.json()["code"] == "extension_not_later"

    granted = await act(client, r["manager"]["headers"], r, "extension", **body)
    assert granted.status_code == 200, granted.text
    row = await report_row(app, uuid.UUID(r["id"]))
    assert row.due_at == hanoi("2026-12-09 17:00")
    assert row.original_due_at == hanoi("2026-12-02 17:00")
    # the reminder keeps its 75 % of the longer time: 10 working days → 7.5 → 12:30 Mon 7 Dec
    assert row.remind_at == hanoi("2026-12-07 12:30")
    [event] = await events_of(app, row.id, "extended")
    assert event.public and event.body == "Chờ vật tư thay thế."
    again = await act(client, r["manager"]["headers"], r, "extension", **body)
    assert again.status_code == 409 and again.json()["code"] == "already_extended"


async def test_no_extension_once_the_deadline_has_passed(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    clock.set(hanoi("2026-12-02 17:30"))
    late = await act(
        client,
        r["manager"]["headers"],
        r,
        "extension",
        due_date="2026-12-09",
        reason="Chờ vật tư thay thế.",
    )
    assert late.status_code == 409 and late.json()["code"] == "deadline_passed"
    assert (await report_row(app, uuid.UUID(r["id"]))).original_due_at is None


async def test_the_worker_publishes_the_service_index_from_what_happened(
    app, client, caplog, clock
):
    on_time = await routed_report(app, client, caplog, clock)
    late = await routed_report(app, client, caplog, clock)
    for r, when in ((on_time, "2026-12-01 09:00"), (late, "2026-12-03 09:00")):
        await act(client, r["officer"]["headers"], r, "accept")
        clock.set(hanoi(when))
        await act(client, r["officer"]["headers"], r, "resolve", answer="Đã xử lý xong vụ việc.")
    rated = await client.post(
        f"/api/v1/reports/{on_time['id']}/rating",
        json={"rating": "satisfied"},
        headers=on_time["resident"]["headers"],
    )
    assert rated.status_code == 204
    await run_worker(clock)  # the index is rebuilt at start and every 3 minutes

    index = await client.get("/api/v1/public/service-index", params={"period": "all"})
    assert index.status_code == 200
    [ward] = [u for u in index.json() if u["unit_code"] == on_time["ward"]]
    figures = ward["resident"]
    assert (figures["received"], figures["resolved"], figures["resolved_on_time"]) == (2, 2, 1)
    assert figures["on_time_pct"] == 50.0
    assert figures["satisfaction_pct"] == 100.0 and figures["rating_coverage_pct"] == 50.0
    assert ward["staff_filed"]["received"] == 0
    assert "phone" not in index.text and on_time["resident"]["phone"] not in index.text


async def test_escalation_goes_to_the_parent_unit_when_there_is_one(app, client, caplog, clock):
    admin = await staff_now(client, app, clock, [("admin", None)])
    code = f"doi-cay-xanh-{uuid.uuid4().hex[:6]}"
    unit = await client.post(
        "/api/v1/admin/units",
        json={
            "code": code,
            "name_vi": "Đội cây xanh thử",
            "name_en": "Test tree team",
            "kind": "department",
            "parent_code": "so-xay-dung",
        },
        headers=admin["headers"],
    )
    assert unit.status_code == 201, unit.text
    rule = await client.post(
        "/api/v1/admin/routing-rules",
        json={"category_code": "trees-parks", "unit_code": code},
        headers=admin["headers"],
    )
    assert rule.status_code == 201, rule.text
    r = await routed_report(app, client, caplog, clock, category="trees-parks")  # 5 days
    row = await report_row(app, uuid.UUID(r["id"]))
    assert row.unit_id == (await unit_by_code(app, code)).id
    assert row.escalate_at == hanoi("2026-12-04 17:00")  # due Wed 2 Dec + 2 working days
    clock.set(hanoi("2026-12-04 17:01"))
    await run_worker(clock)
    row = await report_row(app, uuid.UUID(r["id"]))
    assert row.unit_id == (await unit_by_code(app, "so-xay-dung")).id
    assert row.overdue_at is not None and row.escalated_at == clock.now()


async def test_the_dispatcher_assigns_without_counting_a_transfer(app, client, caplog, clock):
    dispatcher = await staff_now(client, app, clock, [("dispatcher", None)])
    r = await routed_report(app, client, caplog, clock)
    for unit in ("dispatcher", "so-xay-dung"):
        res = await act(
            client,
            dispatcher["headers"],
            r,
            "transfer",
            unit_code=unit,
            reason="Điều phối lại đơn vị xử lý.",
        )
        assert res.status_code == 200, res.text
    row = await report_row(app, uuid.UUID(r["id"]))
    assert row.transfer_count == 0
    assert row.unit_id == (await unit_by_code(app, "so-xay-dung")).id
    same = await act(
        client,
        dispatcher["headers"],
        r,
        "transfer",
        unit_code="so-xay-dung",
        reason="Điều phối lại đơn vị xử lý.",
    )
    assert same.status_code == 409 and same.json()["code"] == "same_unit"


async def test_staff_intake_for_a_resident_is_theirs_and_counted_apart(app, client, caplog, clock):
    resident = await resident_now(client, caplog, clock)
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    operator = await staff_now(client, app, clock, [("officer", f"ubnd-{area}")])
    clock.set(hanoi(WEDNESDAY))
    body = {
        "kind": "complaint",  # by phone: no photo
        "category_code": "roads",
        "description": "Người dân gọi đường dây nóng báo ổ gà lớn.",
        "location": HOAN_KIEM,
    }
    for_resident = await client.post(
        "/api/v1/console/reports",
        json={"report": body, "resident_phone": resident["phone"]},
        headers=operator["headers"],
    )
    assert for_resident.status_code == 201, for_resident.text
    walk_in = await client.post(
        "/api/v1/console/reports", json={"report": body}, headers=operator["headers"]
    )
    assert walk_in.status_code == 201
    mine = (await client.get("/api/v1/reports/mine", headers=resident["headers"])).json()
    assert [i["code"] for i in mine["items"]] == [for_resident.json()["code"]]
    staff_id = await me(client, operator["headers"])
    for filed in (for_resident, walk_in):
        row = await report_row(app, uuid.UUID(filed.json()["id"]))
        assert row.filed_by_staff_id == staff_id
    assert (await report_row(app, uuid.UUID(walk_in.json()["id"]))).reporter_id == staff_id

    await run_worker(clock)  # routed
    await run_worker(clock)  # the index is rebuilt at start-up (after the routing)
    index = (await client.get("/api/v1/public/service-index", params={"period": "all"})).json()
    [ward] = [u for u in index if u["unit_code"] == f"ubnd-{area}"]
    assert ward["staff_filed"]["received"] == 2 and ward["resident"]["received"] == 0

    denied = await client.post(
        "/api/v1/console/reports", json={"report": body}, headers=resident["headers"]
    )
    assert denied.status_code == 403
