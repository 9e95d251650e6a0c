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
    unknown = await client.get(QUEUE, params={"unit": "no-such-unit"}, headers=officer)
    assert unknown.status_code == 404
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
    assert "extension" not in as_officer["allowed_actions"]  # managers only
    # the resident's view never shows the internal note
    mine = (
        await client.get(f"/api/v1/reports/{filed['id']}", headers=p["resident"]["headers"])
    ).json()
    assert all(e["kind"] != "note" for e in mine["timeline"])

    as_manager = (await client.get(url, headers=p["manager"]["headers"])).json()
    assert "extension" in as_manager["allowed_actions"]
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


async def test_a_reply_reaches_the_resident_and_a_rejection_ends_the_report(
    app, client, caplog, clock
):
    ward, p = await ward_setup(app, client, caplog, clock)
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, p["resident"]["headers"])
    await run_worker(clock)
    url = f"{QUEUE}/{filed['id']}"
    officer = p["officer"]["headers"]
    reply = await client.post(
        f"{url}/replies", json={"body": "Phường đã cử cán bộ xuống kiểm tra."}, headers=officer
    )
    assert reply.status_code == 200, reply.text
    empty = await client.post(f"{url}/replies", json={"body": ""}, headers=officer)
    assert empty.status_code == 400

    rejected = await client.post(
        f"{url}/reject", json={"reason": "Không thuộc thẩm quyền của phường."}, headers=officer
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    mine = (
        await client.get(f"/api/v1/reports/{filed['id']}", headers=p["resident"]["headers"])
    ).json()
    bodies = [e["body"] for e in mine["timeline"]]
    assert "Phường đã cử cán bộ xuống kiểm tra." in bodies
    assert mine["status"] == "rejected" and bodies[-1] == "Không thuộc thẩm quyền của phường."
    # a final status: nothing more can be done, and the reason why is named
    late = await client.post(
        f"{url}/resolve", json={"answer": "Đã xử lý xong vụ việc."}, headers=officer
    )
    assert late.status_code == 409 and late.json()["code"] == "invalid_transition"
    async with app.state.sessionmaker() as s:
        actions = set(
            await s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == filed["code"]))
        )
    assert {"report.replied", "report.rejected"} <= actions


async def test_intake_with_a_malformed_phone_is_refused_and_writes_nothing(
    app, client, caplog, clock
):
    ward, p = await ward_setup(app, client, caplog, clock)
    body = {
        "report": {
            "kind": "petition",
            "category_code": "roads",
            "description": "Người dân gọi đường dây nóng báo ổ gà lớn.",
            "location": HOAN_KIEM,
        },
        "resident_phone": "12345abc",
    }
    r = await client.post(QUEUE, json=body, headers=p["officer"]["headers"])
    assert r.status_code == 422, r.text
    page = (await client.get(QUEUE, headers=p["officer"]["headers"])).json()
    assert page["counts"]["open"] == 0
