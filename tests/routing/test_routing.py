"""Routing: a real arq worker picks each filed report's unit and deadline, writes the
timeline event and notifies the reporter and the unit."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import HOAN_KIEM, report_body
from tests.routing.conftest import (
    WEDNESDAY,
    events_of,
    hanoi,
    notifications_for,
    report_row,
    run_worker,
    unit_by_code,
)


async def file_petition(client, headers, **overrides) -> dict:
    body = report_body(kind="petition", **overrides)
    r = await client.post("/api/v1/reports", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def me(client, headers) -> uuid.UUID:
    return uuid.UUID((await client.get("/api/v1/me", headers=headers)).json()["id"])


async def test_a_filed_report_goes_to_its_ward_committee_with_a_working_day_deadline(
    app, client, caplog, clock
):
    resident = await sign_in_resident(client, caplog)
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    officer = await sign_in_staff(client, app, [("officer", f"ubnd-{area}")])
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, resident["headers"])  # roads: 5 working days
    assert (await report_row(app, uuid.UUID(filed["id"]))).unit_id is None  # not yet

    await run_worker(clock)

    report = await report_row(app, uuid.UUID(filed["id"]))
    ward = await unit_by_code(app, f"ubnd-{area}")
    assert report.status == "assigned" and report.unit_id == ward.id
    # filed Wed 25 Nov 10:00 → office close on the 5th working day after: Wed 2 Dec
    assert report.due_at == hanoi("2026-12-02 17:00")
    assert report.remind_at == hanoi("2026-12-01 08:00") + timedelta(hours=6.75)  # 3.75 days
    assert report.routed_at == clock.now()
    [event] = [e for e in await events_of(app, report.id) if e.to_status == "assigned"]
    assert (event.from_status, event.to_status, event.actor_kind, event.public) == (
        "submitted",
        "assigned",
        "system",
        True,
    )
    assert event.unit_id == ward.id

    # the resident sees it in the public timeline with the unit, and the deadline
    detail = (
        await client.get(f"/api/v1/reports/{filed['id']}", headers=resident["headers"])
    ).json()
    assert detail["status"] == "assigned"
    assert detail["timeline"][-1]["to_status"] == "assigned"
    assert detail["timeline"][-1]["unit"]["code"] == f"ubnd-{area}"
    assert detail["due_at"].startswith("2026-12-02T10:00:00")  # 17:00 Hanoi in UTC

    # notified: the reporter in Vietnamese, the ward's officer
    [told] = await notifications_for(app, await me(client, resident["headers"]))
    assert told.kind == "report_routed" and filed["code"] in told.title
    assert ward.name_vi in told.body and "17:00 02/12/2026" in told.body
    staff_id = await me(client, officer["headers"])
    [assigned] = await notifications_for(app, staff_id)
    assert (
        assigned.kind == "report_assigned"
        and assigned.data["link"] == f"/console/reports/{filed['id']}"
    )


async def test_city_wide_utility_rule_and_area_rule_precedence(app, client, caplog, clock):
    resident = await sign_in_resident(client, caplog)
    admin = await sign_in_staff(client, app, [("admin", None)])
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    clock.set(hanoi(WEDNESDAY))
    # reference data: power goes to EVN Hanoi everywhere
    power = await file_petition(client, resident["headers"], category_code="power-supply")
    # an admin sends noise to the police city-wide, and in this ward to the ward (priority
    # does not beat a rule for the report's own area)
    for body in (
        {"category_code": "noise", "unit_code": "cong-an-tp", "priority": 50},
        {"category_code": "noise", "unit_code": "so-xay-dung", "area_code": area},
    ):
        r = await client.post("/api/v1/admin/routing-rules", json=body, headers=admin["headers"])
        assert r.status_code == 201, r.text
    noise_here = await file_petition(client, resident["headers"], category_code="noise")
    noise_elsewhere = await file_petition(
        client,
        resident["headers"],
        category_code="noise",
        location={"lat": 21.0380, "lon": 105.7800},  # Cầu Giấy, another ward
    )

    await run_worker(clock)

    assert (await report_row(app, uuid.UUID(power["id"]))).unit_id == (
        await unit_by_code(app, "evn-hanoi")
    ).id
    assert (await report_row(app, uuid.UUID(noise_here["id"]))).unit_id == (
        await unit_by_code(app, "so-xay-dung")
    ).id
    assert (await report_row(app, uuid.UUID(noise_elsewhere["id"]))).unit_id == (
        await unit_by_code(app, "cong-an-tp")
    ).id
    # power-supply has 3 working days: Mon 30 Nov
    assert (await report_row(app, uuid.UUID(power["id"]))).due_at == hanoi("2026-11-30 17:00")


async def test_without_rule_or_ward_committee_the_dispatcher_gets_it(
    app, client, caplog, clock, session
):
    resident = await sign_in_resident(client, caplog)
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    await session.execute(
        text("UPDATE units SET kind = 'department' WHERE code = :c"), {"c": f"ubnd-{area}"}
    )
    await session.commit()
    try:
        filed = await file_petition(client, resident["headers"])
        await run_worker(clock)
    finally:
        await session.execute(
            text("UPDATE units SET kind = 'ward_committee' WHERE code = :c"), {"c": f"ubnd-{area}"}
        )
        await session.commit()
    report = await report_row(app, uuid.UUID(filed["id"]))
    assert report.status == "assigned"
    assert report.unit_id == (await unit_by_code(app, "dispatcher")).id


async def test_after_hours_and_across_tet_the_deadline_skips_non_working_days(
    app, client, caplog, clock
):
    resident = await sign_in_resident(client, caplog)
    clock.set(hanoi("2027-02-03 18:00"))  # Wednesday evening before Tết 2027 (4–10 Feb)
    filed = await file_petition(client, resident["headers"], category_code="waste")  # 3 days
    await run_worker(clock)
    report = await report_row(app, uuid.UUID(filed["id"]))
    # received Thu 11 Feb (first working day after Tết) → 12, 15, 16 → Tue 16 Feb 17:00
    assert report.due_at == hanoi("2027-02-16 17:00")


async def test_a_resident_who_reads_english_is_told_in_english(app, client, caplog, clock):
    resident = await sign_in_resident(client, caplog)
    r = await client.patch("/api/v1/me", json={"locale": "en"}, headers=resident["headers"])
    assert r.status_code == 200, r.text
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, resident["headers"], category_code="water-supply")
    await run_worker(clock)
    [told] = await notifications_for(app, await me(client, resident["headers"]))
    assert told.title == f"Your report {filed['code']} was sent to Hanoi Water Company"
    assert "Due: 30 Nov 2026 17:00" in told.body


async def test_supporters_follow_the_report_and_are_told_too(app, client, caplog, clock):
    reporter = await sign_in_resident(client, caplog)
    supporter = await sign_in_resident(client, caplog)
    filed = await file_petition(client, reporter["headers"])
    r = await client.post(
        "/api/v1/reports/supports", json={"code": filed["code"]}, headers=supporter["headers"]
    )
    assert r.status_code == 200, r.text
    await run_worker(clock)
    for who in (reporter, supporter):
        [told] = await notifications_for(app, await me(client, who["headers"]), "report_routed")
        assert filed["code"] in told.title
