"""Reports flagged abusive (issue 22 item 6): staff of the report's unit flag it with a
reason code from a fixed list and it leaves every public view — the report by code, the
map's points, live clusters and the snapshot, the nearby list, Open311's requests —
while staff keep handling it; unflagging restores it. Audited; denied to other units
and residents; an unknown code is a 400 naming the list."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.complaints.abuse import REASON_CODES
from app.core.audit import AuditEntry
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import HOAN_KIEM, file_with_photo
from tests.routing.conftest import clock, run_worker  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
async def map_snapshot_dropped(app):
    """The worker these tests run builds the public map's snapshot; drop it afterwards,
    so later tests of the run read clusters live, as on a database no worker has seen
    (tests/complaints/test_public.py counts its own reports in them)."""
    yield
    async with app.state.sessionmaker() as s:
        await s.execute(text("DELETE FROM report_map_state"))
        await s.commit()


CITY = "105.28,20.56,106.03,21.39"
STREET = "105.851,21.027,105.854,21.030"


async def _public_codes(client, resident) -> dict[str, set[str]]:
    """The codes each public view shows."""
    points = await client.get("/api/v1/public/reports", params={"bbox": STREET, "zoom": 17})
    snapshot = await client.get("/api/v1/public/reports", params={"bbox": STREET, "zoom": 11})
    live = await client.get(
        "/api/v1/public/reports",
        params={"bbox": CITY, "zoom": 11, "since": "2020-01-01T00:00:00Z"},
    )
    near = await client.get(
        "/api/v1/reports/nearby", params={**HOAN_KIEM, "category": "roads"}, headers=resident
    )
    open311 = await client.get("/open311/v2/requests.json", params={"status": "open"})

    def counted(fc) -> set[str]:
        # a cluster of one carries its code; the street bbox holds only Hoan Kiem's reports
        return {f["properties"].get("code") for f in fc.json()["features"]} | {
            f"count:{sum(f['properties']['count'] for f in fc.json()['features'])}"
        }

    return {
        "points": {f["properties"]["code"] for f in points.json()["features"]},
        "snapshot": counted(snapshot),
        "live": counted(live),
        "nearby": {n["code"] for n in near.json()},
        "open311": {r["service_request_id"] for r in open311.json()},
    }


async def test_a_flagged_report_leaves_every_public_view_and_unflagging_restores_it(
    app, client, caplog, clock
):
    resident = await sign_in_resident(client, caplog)
    flagged = await file_with_photo(client, resident["headers"])
    await run_worker(clock)  # routed to the ward's committee; the map snapshot built
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    officer = await sign_in_staff(client, app, [("officer", f"ubnd-{area}")])
    code = flagged["code"]

    before = await _public_codes(client, resident["headers"])
    assert code in before["points"] and code in before["nearby"] and code in before["open311"]
    assert (await client.get(f"/api/v1/public/reports/{code}")).status_code == 200

    r = await client.post(
        f"/api/v1/moderation/reports/{flagged['id']}/flag",
        json={"reason_code": "offensive"},
        headers=officer["headers"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["reason_code"] == "offensive"
    state = await client.get(
        f"/api/v1/moderation/reports/{flagged['id']}/flag", headers=officer["headers"]
    )
    assert state.status_code == 200 and state.json()["reason_code"] == "offensive"
    await run_worker(clock)  # the snapshot rebuilt at once (a job the flag enqueued)

    after = await _public_codes(client, resident["headers"])
    for view in ("points", "nearby", "open311"):
        assert code not in after[view], view
    for view in ("snapshot", "live"):  # one report fewer in the clusters
        count = lambda codes: next(int(c[6:]) for c in codes if c and c.startswith("count:"))  # noqa: E731
        assert count(after[view]) == count(before[view]) - 1, view
    assert (await client.get(f"/api/v1/public/reports/{code}")).status_code == 404
    assert (await client.get(f"/open311/v2/requests/{code}.json")).status_code == 404

    # staff keep seeing and handling it
    staff_view = await client.get(
        f"/api/v1/console/reports/{flagged['id']}", headers=officer["headers"]
    )
    assert staff_view.status_code == 200
    accepted = await client.post(
        f"/api/v1/console/reports/{flagged['id']}/accept", headers=officer["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    # its reporter still sees it among their own
    own = await client.get(f"/api/v1/reports/{flagged['id']}", headers=resident["headers"])
    assert own.status_code == 200

    twice = await client.post(
        f"/api/v1/moderation/reports/{flagged['id']}/flag",
        json={"reason_code": "spam"},
        headers=officer["headers"],
    )
    assert twice.status_code == 409 and twice.json()["code"] == "report_already_flagged"

    r = await client.post(
        f"/api/v1/moderation/reports/{flagged['id']}/unflag", headers=officer["headers"]
    )
    assert r.status_code == 204
    await run_worker(clock)
    restored = await _public_codes(client, resident["headers"])
    assert code in restored["points"] and code in restored["open311"]
    assert restored["snapshot"] == before["snapshot"] or code in restored["snapshot"]
    assert (await client.get(f"/api/v1/public/reports/{code}")).status_code == 200
    again = await client.post(
        f"/api/v1/moderation/reports/{flagged['id']}/unflag", headers=officer["headers"]
    )
    assert again.status_code == 409 and again.json()["code"] == "report_not_flagged"
    state = await client.get(
        f"/api/v1/moderation/reports/{flagged['id']}/flag", headers=officer["headers"]
    )
    assert state.status_code == 404 and state.json()["code"] == "report_not_flagged"

    async with app.state.sessionmaker() as s:
        actions = list(
            await s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_id == code, AuditEntry.action.like("report.%abusive"))
                .order_by(AuditEntry.id)
            )
        )
        details = list(
            await s.scalars(
                select(AuditEntry.details).where(
                    AuditEntry.object_id == code, AuditEntry.action == "report.flagged_abusive"
                )
            )
        )
    assert actions == ["report.flagged_abusive", "report.unflagged_abusive"]
    assert details == [{"reason_code": "offensive"}]


async def test_flagging_is_for_the_reports_staff_with_a_known_reason_code(
    app, client, caplog, clock
):
    resident = await sign_in_resident(client, caplog)
    report = await file_with_photo(client, resident["headers"])
    await run_worker(clock)
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    officer = await sign_in_staff(client, app, [("officer", f"ubnd-{area}")])
    elsewhere = await sign_in_staff(
        client, app, [("officer", "ubnd-00070" if area != "00070" else "ubnd-00004")]
    )
    path = f"/api/v1/moderation/reports/{report['id']}/flag"

    other_unit = await client.post(path, json={"reason_code": "spam"}, headers=elsewhere["headers"])
    assert other_unit.status_code == 403 and other_unit.json()["code"] == "not_your_report"
    as_resident = await client.post(path, json={"reason_code": "spam"}, headers=resident["headers"])
    assert as_resident.status_code == 403
    unknown = await client.post(path, json={"reason_code": "ugly"}, headers=officer["headers"])
    assert unknown.status_code == 400
    problem = unknown.json()
    assert problem["code"] == "abuse_reason_unknown" and problem["allowed"] == list(REASON_CODES)
    assert "spam" in problem["detail"] and problem["errors"][0]["field"] == "reason_code"
    missing = await client.post(
        "/api/v1/moderation/reports/00000000-0000-4000-8000-000000000000/flag",
        json={"reason_code": "spam"},
        headers=officer["headers"],
    )
    assert missing.status_code == 404
    # nothing flagged: still public
    assert (await client.get(f"/api/v1/public/reports/{report['code']}")).status_code == 200
    unflag = await client.post(
        f"/api/v1/moderation/reports/{report['id']}/unflag", headers=elsewhere["headers"]
    )
    assert unflag.status_code == 403
    state = await client.get(
        f"/api/v1/moderation/reports/{report['id']}/flag", headers=elsewhere["headers"]
    )
    assert state.status_code == 403
