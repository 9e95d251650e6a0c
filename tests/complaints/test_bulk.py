"""Bulk work on a unit's queue (issue 22 item 2) through the JSON API: each report goes
through the single-report action (its own timeline event, notification, audit row); a
report the action cannot be done to is listed with its reason and the others stay done;
a request naming another unit's report, an unknown code, too many codes or an unknown
action is refused whole, nothing done."""

from __future__ import annotations

import uuid

from tests.complaints.factories import HOAN_KIEM
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    WEDNESDAY,
    clock,
    events_of,
    hanoi,
    notifications_for,
    reference_rules_only,
    report_row,
    resident_now,
    run_worker,
    staff_now,
)
from tests.routing.test_console_actions import audit_of, problem
from tests.routing.test_routing import file_petition, me

BULK = "/api/v1/console/reports/bulk"
TEMPLATES = "/api/v1/console/templates"


async def queue_setup(app, client, caplog, clock, n: int = 4):
    """``n`` petitions routed to the Hoàn Kiếm ward committee (two residents), its officer
    and manager, and a report of another unit (EVN Hà Nội, by transfer)."""
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    ward = f"ubnd-{area}"
    people = {
        "residents": [await resident_now(client, caplog, clock) for _ in range(2)],
        "officer": await staff_now(client, app, clock, [("officer", ward)]),
        "manager": await staff_now(client, app, clock, [("manager", ward)]),
        "evn": await staff_now(client, app, clock, [("officer", "evn-hanoi")]),
    }
    clock.set(hanoi(WEDNESDAY))
    filed = [
        await file_petition(client, people["residents"][i % 2]["headers"]) for i in range(n + 1)
    ]
    await run_worker(clock)
    *ours, theirs = filed
    moved = await client.post(
        f"/api/v1/console/reports/{theirs['id']}/transfer",
        json={"unit_code": "evn-hanoi", "reason": "Cột điện đổ, thuộc điện lực."},
        headers=people["officer"]["headers"],
    )
    assert moved.status_code == 200, moved.text
    return ward, people, ours, theirs


async def statuses(app, reports) -> list[str]:
    return [(await report_row(app, uuid.UUID(r["id"]))).status for r in reports]


async def test_bulk_accept_does_each_report_alone_and_says_which_failed(app, client, caplog, clock):
    ward, p, ours, _theirs = await queue_setup(app, client, caplog, clock)
    officer = p["officer"]
    # one is already being handled: accepting it again is refused, for it alone
    first = await client.post(
        f"/api/v1/console/reports/{ours[0]['id']}/accept", headers=officer["headers"]
    )
    assert first.status_code == 200, first.text
    codes = [r["code"] for r in ours]
    answer = await client.post(
        BULK,
        json={"action": "accept", "codes": [c.lower() for c in codes] + [codes[1]]},
        headers={**officer["headers"], "Accept-Language": "en"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["done"], body["failed"]) == (3, 1)
    results = {r["code"]: r for r in body["results"]}
    assert [r["code"] for r in body["results"]] == codes  # in order, each once
    assert results[codes[0]]["ok"] is False
    assert results[codes[0]]["error"] == "invalid_transition"
    assert results[codes[0]]["detail"]  # the reason, in the caller's language
    for code in codes[1:]:
        assert results[code] == {"code": code, "ok": True, "status": "in_progress"}
    assert await statuses(app, ours) == ["in_progress"] * 4
    officer_id = await me(client, officer["headers"])
    for r in ours:
        accepted = [
            e for e in await events_of(app, uuid.UUID(r["id"])) if e.to_status == "in_progress"
        ]
        assert len(accepted) == 1 and accepted[0].actor_id == officer_id  # one event each
        assert len(await audit_of(app, "report.accepted", r["code"])) == 1


async def test_a_bulk_request_naming_another_units_report_does_nothing(app, client, caplog, clock):
    ward, p, ours, theirs = await queue_setup(app, client, caplog, clock, n=2)
    officer = p["officer"]["headers"]
    codes = [r["code"] for r in ours]

    other = await client.post(
        BULK, json={"action": "accept", "codes": [*codes, theirs["code"]]}, headers=officer
    )
    body = problem(other, 403, "bulk_reports_not_yours")
    assert theirs["code"] in body["detail"]
    assert body["errors"] == [{"field": "codes", "message": theirs["code"], "source": "body"}]
    unknown = await client.post(
        BULK, json={"action": "accept", "codes": [*codes, "ZZZZ-9999"]}, headers=officer
    )
    assert "ZZZZ-9999" in problem(unknown, 404, "bulk_reports_not_found")["detail"]
    too_many = await client.post(
        BULK, json={"action": "accept", "codes": [codes[0]] * 201}, headers=officer
    )
    assert too_many.status_code == 400, too_many.text
    assert "codes" in too_many.text
    action = await client.post(BULK, json={"action": "close", "codes": codes}, headers=officer)
    assert action.status_code == 400 and "action" in action.text, action.text
    no_unit = await client.post(
        BULK, json={"action": "transfer", "codes": codes, "reason": "Sai đơn vị."}, headers=officer
    )
    assert problem(no_unit, 422, "form_invalid")["errors"][0]["field"] == "unit_code"
    no_template = await client.post(
        BULK, json={"action": "answer", "codes": codes}, headers=officer
    )
    assert problem(no_template, 422, "form_invalid")["errors"][0]["field"] == "template_id"
    resident = p["residents"][0]["headers"]
    assert (
        await client.post(BULK, json={"action": "accept", "codes": codes}, headers=resident)
    ).status_code == 403
    # nothing was done by any of them
    assert await statuses(app, ours) == ["assigned", "assigned"]
    for r in ours:
        assert await audit_of(app, "report.accepted", r["code"]) == []


async def test_bulk_answer_with_a_template_fills_it_in_per_report(app, client, caplog, clock):
    ward, p, ours, _theirs = await queue_setup(app, client, caplog, clock, n=3)
    officer = p["officer"]["headers"]
    made = await client.post(
        TEMPLATES,
        json={
            "title": "Đã sửa",
            "unit_code": ward,
            "target_status": "resolved",
            "for_status": "in_progress",
            "body_vi": "Phản ánh {code}: đơn vị {unit} đã sửa xong.",
            "body_en": "Report {code}: {unit} has repaired it.",
        },
        headers=p["manager"]["headers"],
    )
    assert made.status_code == 201, made.text
    codes = [r["code"] for r in ours]
    accepted = await client.post(
        BULK, json={"action": "accept", "codes": codes[:2]}, headers=officer
    )
    assert accepted.json()["done"] == 2, accepted.text
    # the third is still 'assigned': the template is for reports in progress
    answer = await client.post(
        BULK,
        json={"action": "answer", "codes": codes, "template_id": made.json()["id"]},
        headers=officer,
    )
    assert answer.status_code == 200, answer.text
    results = {r["code"]: r for r in answer.json()["results"]}
    assert results[codes[2]]["error"] == "template_not_for_report"
    assert [results[c]["status"] for c in codes[:2]] == ["resolved", "resolved"]
    assert await statuses(app, ours) == ["resolved", "resolved", "assigned"]
    for i, r in enumerate(ours[:2]):
        [resolution] = [
            e for e in await events_of(app, uuid.UUID(r["id"])) if e.to_status == "resolved"
        ]
        assert resolution.body.startswith(f"Phản ánh {r['code']}: đơn vị ")
        assert len(await audit_of(app, "report.resolved", r["code"])) == 1
        reporter = await me(client, p["residents"][i % 2]["headers"])
        told = await notifications_for(app, reporter, "report_resolved")
        assert len([n for n in told if n.data["report_code"] == r["code"]]) == 1
    assert await audit_of(app, "report.resolved", codes[2]) == []


async def test_bulk_transfer_moves_each_report_with_its_own_event(app, client, caplog, clock):
    ward, p, ours, _theirs = await queue_setup(app, client, caplog, clock, n=2)
    moved = await client.post(
        BULK,
        json={
            "action": "transfer",
            "codes": [r["code"] for r in ours],
            "unit_code": "evn-hanoi",
            "reason": "Sự cố lưới điện, thuộc điện lực.",
        },
        headers=p["officer"]["headers"],
    )
    assert moved.status_code == 200 and moved.json()["done"] == 2, moved.text
    for r in ours:
        row = await report_row(app, uuid.UUID(r["id"]))
        assert row.transfer_count == 1
        assert len(await audit_of(app, "report.transferred", r["code"])) == 1
    # now EVN's: the ward's officer may no longer act on them, the whole request refused
    again = await client.post(
        BULK,
        json={"action": "accept", "codes": [r["code"] for r in ours]},
        headers=p["officer"]["headers"],
    )
    problem(again, 403, "bulk_reports_not_yours")
    unknown_unit = await client.post(
        BULK,
        json={
            "action": "transfer",
            "codes": [ours[0]["code"]],
            "unit_code": "nope",
            "reason": "Sai đơn vị nhé.",
        },
        headers=p["evn"]["headers"],
    )
    assert problem(unknown_unit, 422, "unit_not_found")["errors"][0]["field"] == "unit_code"
