"""Routing by hand: when the workers are down or behind, a dispatcher (or an admin) runs
the router from the console. Same rules, deadlines and notices as the worker's job;
audited; nobody else may; a worker that comes back finds nothing left to do."""

from __future__ import annotations

import uuid

from tests.complaints.factories import HOAN_KIEM
from tests.routing.conftest import (
    WEDNESDAY,
    hanoi,
    notifications_for,
    report_row,
    resident_now,
    run_worker,
    staff_now,
    unit_by_code,
)
from tests.routing.test_console_actions import audit_of
from tests.routing.test_routing import file_petition, me

RUN = "/api/v1/console/routing/run"


async def test_a_dispatcher_routes_the_waiting_reports_when_no_worker_runs(
    app, client, caplog, clock
):
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    resident = await resident_now(client, caplog, clock)
    officer = await staff_now(client, app, clock, [("officer", f"ubnd-{area}")])
    dispatcher = await staff_now(client, app, clock, [("dispatcher", None)])
    clock.set(hanoi(WEDNESDAY))
    filed = [
        await file_petition(client, resident["headers"], description=f"Ổ gà số {n} trên phố")
        for n in (1, 2)
    ]

    # nobody signed in, and an officer, may not; nothing is routed by their tries
    assert (await client.post(RUN)).status_code == 401
    refused = await client.post(RUN, headers=officer["headers"])
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    for report in filed:
        assert (await report_row(app, uuid.UUID(report["id"]))).status == "submitted"

    r = await client.post(RUN, headers=dispatcher["headers"])

    assert r.status_code == 200, r.text
    body = r.json()
    ward = await unit_by_code(app, f"ubnd-{area}")
    assert body["routed"] == 2
    assert sorted(x["code"] for x in body["reports"]) == sorted(f["code"] for f in filed)
    assert {(x["unit_id"], x["reason"]) for x in body["reports"]} == {(str(ward.id), "ward")}
    for report in filed:
        row = await report_row(app, uuid.UUID(report["id"]))
        # as the worker would have: the ward, 5 working days for roads, from the filing
        assert (row.status, row.unit_id) == ("assigned", ward.id)
        assert row.due_at == hanoi("2026-12-02 17:00") and row.routed_at == clock.now()
    resident_id = await me(client, resident["headers"])
    told = await notifications_for(app, resident_id, kind="report_routed")
    assert sorted(n.data["report_code"] for n in told) == sorted(f["code"] for f in filed)
    [entry] = await audit_of(app, "routing.run_by_hand")
    assert entry.actor_id == await me(client, dispatcher["headers"])
    assert entry.details["routed"] == 2
    assert sorted(entry.details["codes"]) == sorted(f["code"] for f in filed)

    # again, and a worker coming back: nothing left, nobody told twice
    again = await client.post(RUN, headers=dispatcher["headers"])
    assert again.json() == {"routed": 0, "reports": []}
    await run_worker(clock)
    assert len(await notifications_for(app, resident_id, kind="report_routed")) == 2
