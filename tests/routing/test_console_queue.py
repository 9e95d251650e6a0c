"""The console's JSON reads: a unit's queue by deadline with counts, and one report as
staff see it; per-unit denials; the reporter's contact only for managers (audited)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.complaints.factories import HOAN_KIEM
from tests.routing.conftest import (
    WEDNESDAY,
    hanoi,
    resident_now,
    run_worker,
    staff_now,
)
from tests.routing.test_routing import file_petition

QUEUE = "/api/v1/console/reports"


async def ward_setup(app, client, caplog, clock):
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    ward = f"ubnd-{area}"
    people = {
        "resident": await resident_now(client, caplog, clock),
        "officer": await staff_now(client, app, clock, [("officer", ward)]),
        "manager": await staff_now(client, app, clock, [("manager", ward)]),
        "stranger": await staff_now(client, app, clock, [("officer", "evn-hanoi")]),
    }
    return ward, people


async def test_the_queue_is_sorted_by_deadline_with_counts_and_filters(app, client, caplog, clock):
    ward, p = await ward_setup(app, client, caplog, clock)
    clock.set(hanoi(WEDNESDAY))
    # waste: 3 working days (due Mon 30 Nov); roads: 5 (Wed 2 Dec); other: 10 (9 Dec)
    codes = {}
    for category in ("other", "roads", "waste"):
        codes[category] = (
            await file_petition(client, p["resident"]["headers"], category_code=category)
        )["code"]
    await run_worker(clock)
    officer = p["officer"]["headers"]

    page = (await client.get(QUEUE, headers=officer)).json()
    assert [i["code"] for i in page["items"]] == [codes["waste"], codes["roads"], codes["other"]]
    assert page["counts"] == {
        "open": 3,
        "overdue": 0,
        "due_soon": 0,
        "assigned": 3,
        "in_progress": 0,
    }
    # keyset pages of one
    first = (await client.get(QUEUE, params={"limit": 1}, headers=officer)).json()
    second = (
        await client.get(
            QUEUE, params={"limit": 1, "cursor": first["next_cursor"]}, headers=officer
        )
    ).json()
    assert [first["items"][0]["code"], second["items"][0]["code"]] == [
        codes["waste"],
        codes["roads"],
    ]

    # Friday 27 Nov: waste is due by Monday's close → "due soon"; Tuesday: overdue
    clock.set(hanoi("2026-11-27 09:00"))
    soon = (await client.get(QUEUE, params={"due_soon": "true"}, headers=officer)).json()
    assert [i["code"] for i in soon["items"]] == [codes["waste"]]
    clock.set(hanoi("2026-12-01 09:00"))
    await run_worker(clock)
    late = (await client.get(QUEUE, params={"overdue": "true"}, headers=officer)).json()
    assert [i["code"] for i in late["items"]] == [codes["waste"]]
    assert late["counts"]["overdue"] == 1

    # another unit's officer sees none of it, and may not ask for this unit
    other = (await client.get(QUEUE, headers=p["stranger"]["headers"])).json()
    assert other["items"] == [] and other["counts"]["open"] == 0
    denied = await client.get(QUEUE, params={"unit": ward}, headers=p["stranger"]["headers"])
    assert denied.status_code == 403
    bad = await client.get(QUEUE, params={"cursor": "???"}, headers=officer)
    assert bad.status_code == 400
    assert (await client.get(QUEUE, headers=p["resident"]["headers"])).status_code == 403


async def test_staff_detail_has_the_internal_timeline_and_contact_only_for_managers(
    app, client, caplog, clock
):
    ward, p = await ward_setup(app, client, caplog, clock)
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, p["resident"]["headers"])
    await run_worker(clock)
    url = f"{QUEUE}/{filed['id']}"
    note = await client.post(
        f"{url}/notes",
        json={"body": "Cần phối hợp với công an phường."},
        headers=p["officer"]["headers"],
    )
    assert note.status_code == 200

    as_officer = (await client.get(url, headers=p["officer"]["headers"])).json()
    assert as_officer["reporter"] is None
    assert as_officer["unit_code"] == ward
    notes = [e for e in as_officer["timeline"] if e["kind"] == "note"]
    assert len(notes) == 1 and notes[0]["public"] is False
    assert {"transfer", "reply", "in_progress"} <= set(as_officer["allowed_actions"])
    # the resident's view never shows the internal note
    mine = (
        await client.get(f"/api/v1/reports/{filed['id']}", headers=p["resident"]["headers"])
    ).json()
    assert all(e["kind"] != "note" for e in mine["timeline"])

    as_manager = (await client.get(url, headers=p["manager"]["headers"])).json()
    assert as_manager["reporter"]["phone"] == p["resident"]["phone"]
    async with app.state.sessionmaker() as s:
        viewed = list(
            await s.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "report.reporter_contact_viewed",
                    AuditEntry.object_id == filed["code"],
                )
            )
        )
    assert len(viewed) == 1

    assert (await client.get(url, headers=p["stranger"]["headers"])).status_code == 403
    assert (
        await client.get(f"{QUEUE}/{uuid.uuid4()}", headers=p["officer"]["headers"])
    ).status_code == 404


async def test_a_manager_sees_the_queues_of_units_under_theirs(app, client, caplog, clock):
    admin = await staff_now(client, app, clock, [("admin", None)])
    resident = await resident_now(client, caplog, clock)
    code = f"doi-{uuid.uuid4().hex[:6]}"
    created = await client.post(
        "/api/v1/admin/units",
        json={
            "code": code,
            "name_vi": "Đội duy tu thử",
            "name_en": "Test maintenance team",
            "kind": "department",
            "parent_code": "so-xay-dung",
        },
        headers=admin["headers"],
    )
    assert created.status_code == 201
    await client.post(
        "/api/v1/admin/routing-rules",
        json={"category_code": "trees-parks", "unit_code": code},
        headers=admin["headers"],
    )
    parent_manager = await staff_now(client, app, clock, [("manager", "so-xay-dung")])
    parent_officer = await staff_now(client, app, clock, [("officer", "so-xay-dung")])
    filed = await file_petition(client, resident["headers"], category_code="trees-parks")
    await run_worker(clock)
    managed = (await client.get(QUEUE, headers=parent_manager["headers"])).json()
    assert filed["code"] in [i["code"] for i in managed["items"]]
    officer_view = (await client.get(QUEUE, headers=parent_officer["headers"])).json()
    assert filed["code"] not in [i["code"] for i in officer_view["items"]]
