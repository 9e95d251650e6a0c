"""Suspended resident accounts (issue 22 item 6) over the JSON API on the real database:
an admin suspends with a reason and an end (or none); the account cannot file, comment
or support (403 saying until when and why, no staff names) while its open report keeps
being handled; the resident is told in the inbox and appeals with a reply the admins'
list shows; lifting early and expiry by time restore it; every step is audited; only
admins may do any of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import HOAN_KIEM, file_with_photo, report_body
from tests.complaints.test_abuse_flags import map_snapshot_dropped  # noqa: F401 (fixture)
from tests.routing.conftest import (  # noqa: F401 (fixture)
    clock,
    resident_now,
    run_worker,
    staff_now,
)

ADMIN = [("admin", None)]


async def _audit(app, action: str, object_id: str) -> list[AuditEntry]:
    async with app.state.sessionmaker() as s:
        return list(
            await s.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == action, AuditEntry.object_id == object_id
                )
            )
        )


async def _inbox(client, headers) -> list[dict]:
    r = await client.get("/api/v1/me/notifications", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_a_suspended_resident_cannot_file_comment_or_support_until_lifted(
    app, client, caplog, clock
):
    admin = await sign_in_staff(client, app, ADMIN)
    resident = await sign_in_resident(client, caplog)
    other = await sign_in_resident(client, caplog)
    mine = await file_with_photo(client, resident["headers"])  # open before the suspension
    await run_worker(clock)  # routed to the ward's committee
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    officer = await sign_in_staff(client, app, [("officer", f"ubnd-{area}")])
    theirs = await file_with_photo(client, other["headers"])
    me = (await client.get("/api/v1/me", headers=resident["headers"])).json()

    until = datetime.now(UTC) + timedelta(days=7)
    r = await client.post(
        f"/api/v1/admin/residents/{me['id']}/suspensions",
        json={"reason": "Gửi nhiều phản ánh sai sự thật", "until": until.isoformat()},
        headers=admin["headers"],
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    suspension_id = r.json()["id"]

    # filing, commenting and supporting: 403 saying why and until when, in vi and en
    filed = await client.post("/api/v1/reports", json=report_body([]), headers=resident["headers"])
    assert filed.status_code == 403
    assert filed.headers["content-type"].startswith("application/problem+json")
    problem = filed.json()
    assert problem["code"] == "account_suspended"
    assert "Gửi nhiều phản ánh sai sự thật" in problem["detail"]
    assert until.astimezone(UTC).strftime("%Y") in problem["detail"]
    assert admin["email"] not in filed.text and "Cán bộ thử" not in filed.text
    english = await client.post(
        "/api/v1/reports",
        json=report_body([]),
        headers={**resident["headers"], "Accept-Language": "en"},
    )
    assert english.json()["detail"].startswith("Your account is suspended until ")
    comment = await client.post(
        f"/api/v1/reports/{mine['id']}/comments",
        json={"body": "Tôi bổ sung thông tin"},
        headers=resident["headers"],
    )
    assert comment.status_code == 403 and comment.json()["code"] == "account_suspended"
    support = await client.post(
        "/api/v1/reports/supports", json={"code": theirs["code"]}, headers=resident["headers"]
    )
    assert support.status_code == 403 and support.json()["code"] == "account_suspended"

    # the open report keeps being handled: its unit accepts it
    accepted = await client.post(
        f"/api/v1/console/reports/{mine['id']}/accept", headers=officer["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    detail = await client.get(f"/api/v1/reports/{mine['id']}", headers=resident["headers"])
    assert detail.status_code == 200

    # told in the inbox, why and until when
    notices = [
        n for n in await _inbox(client, resident["headers"]) if n["kind"] == "account_suspended"
    ]
    assert len(notices) == 1 and "Gửi nhiều phản ánh sai sự thật" in notices[0]["body"]
    assert admin["email"] not in str(notices)

    # the resident's view and the appeal (a reply), once
    own = await client.get("/api/v1/me/suspension", headers=resident["headers"])
    assert own.status_code == 200 and own.json()["id"] == suspension_id
    assert own.headers["cache-control"] == "no-store"
    appeal = await client.post(
        "/api/v1/me/suspension/appeal",
        json={"text": "Tôi chỉ gửi phản ánh thật, xin xem lại."},
        headers=resident["headers"],
    )
    assert appeal.status_code == 200 and appeal.json()["appealed_at"]
    again = await client.post(
        "/api/v1/me/suspension/appeal", json={"text": "Lần nữa"}, headers=resident["headers"]
    )
    assert again.status_code == 409 and again.json()["code"] == "already_appealed"

    # the admins' list of appeals
    listed = await client.get(
        "/api/v1/admin/suspensions", params={"appealed": "true"}, headers=admin["headers"]
    )
    assert listed.status_code == 200
    row = next(s for s in listed.json() if s["id"] == suspension_id)
    assert row["appeal_text"] == "Tôi chỉ gửi phản ánh thật, xin xem lại."
    assert row["phone"] == resident["phone"]

    # lifted early: everything works again, the resident is told
    lifted = await client.post(
        f"/api/v1/admin/suspensions/{suspension_id}/lift", headers=admin["headers"]
    )
    assert lifted.status_code == 204
    assert (
        await client.post(
            f"/api/v1/admin/suspensions/{suspension_id}/lift", headers=admin["headers"]
        )
    ).json()["code"] == "suspension_not_in_force"
    assert (
        await client.get("/api/v1/me/suspension", headers=resident["headers"])
    ).status_code == 404
    filed = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=resident["headers"]
    )
    assert filed.status_code == 201, filed.text
    kinds = [n["kind"] for n in await _inbox(client, resident["headers"])]
    assert "account_suspension_lifted" in kinds

    # audited: who suspended and lifted (staff), the appeal (the resident)
    assert [e.actor_id for e in await _audit(app, "account.suspended", me["id"])] == [
        e.actor_id for e in await _audit(app, "account.suspension_lifted", me["id"])
    ]
    appealed = await _audit(app, "account.suspension_appealed", me["id"])
    assert len(appealed) == 1 and appealed[0].actor_kind == "resident"


async def test_an_open_ended_suspension_says_so_and_a_dated_one_ends_by_itself(
    app, client, caplog, clock
):
    admin = await staff_now(client, app, clock, ADMIN)
    resident = await resident_now(client, caplog, clock)
    me = (await client.get("/api/v1/me", headers=resident["headers"])).json()
    now = clock.now()

    r = await client.post(
        f"/api/v1/admin/residents/{me['id']}/suspensions",
        json={"reason": "Quấy rối cán bộ"},
        headers=admin["headers"],
    )
    assert r.status_code == 201 and r.json()["ends_at"] is None
    refused = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=resident["headers"]
    )
    assert refused.json()["code"] == "account_suspended_indefinitely"
    assert "Quấy rối cán bộ" in refused.json()["detail"]
    # one at a time
    twice = await client.post(
        f"/api/v1/admin/residents/{me['id']}/suspensions",
        json={"reason": "Lần hai"},
        headers=admin["headers"],
    )
    assert twice.status_code == 409 and twice.json()["code"] == "already_suspended"
    await client.post(f"/api/v1/admin/suspensions/{r.json()['id']}/lift", headers=admin["headers"])

    # a dated one: in force before its end, over after it, with no job
    dated = await client.post(
        f"/api/v1/admin/residents/{me['id']}/suspensions",
        json={"reason": "Tin rác", "until": (now + timedelta(hours=2)).isoformat()},
        headers=admin["headers"],
    )
    assert dated.status_code == 201
    clock.set(now + timedelta(hours=1, minutes=59))
    still = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=resident["headers"]
    )
    assert still.status_code == 403
    clock.set(now + timedelta(hours=2, seconds=1))
    after = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=resident["headers"]
    )
    assert after.status_code == 201, after.text
    # an ended one cannot be lifted, and is not in the admins' list
    assert (
        await client.post(
            f"/api/v1/admin/suspensions/{dated.json()['id']}/lift", headers=admin["headers"]
        )
    ).status_code == 409
    listed = await client.get("/api/v1/admin/suspensions", headers=admin["headers"])
    assert dated.json()["id"] not in {s["id"] for s in listed.json()}


async def test_only_admins_suspend_and_bad_input_says_what_is_wrong(app, client, caplog):
    admin = await sign_in_staff(client, app, ADMIN)
    resident = await sign_in_resident(client, caplog)
    me = (await client.get("/api/v1/me", headers=resident["headers"])).json()
    path = f"/api/v1/admin/residents/{me['id']}/suspensions"
    body = {"reason": "Tin rác"}

    for roles in ([("officer", "ubnd-00004")], [("manager", "ubnd-00004")], [("dispatcher", None)]):
        staff = await sign_in_staff(client, app, roles)
        denied = await client.post(path, json=body, headers=staff["headers"])
        assert denied.status_code == 403 and denied.json()["code"] == "suspension_not_allowed"
        listed = await client.get("/api/v1/admin/suspensions", headers=staff["headers"])
        assert listed.status_code == 403
    assert (await client.post(path, json=body, headers=resident["headers"])).status_code == 403

    # a staff account, an unknown id: not a resident
    staff_me = (await client.get("/api/v1/me", headers=admin["headers"])).json()
    for target in (staff_me["id"], "00000000-0000-4000-8000-000000000000"):
        r = await client.post(
            f"/api/v1/admin/residents/{target}/suspensions", json=body, headers=admin["headers"]
        )
        assert r.status_code in (403, 404), r.text
        assert r.json()["code"] in ("resident_not_found", "suspension_not_allowed")
    # an end in the past, without a time zone; a reason too short; an unknown field
    for bad, field in (
        ({"reason": "Tin rác", "until": "2020-01-01T00:00:00+07:00"}, "until"),
        ({"reason": "Tin rác", "until": "2030-01-01T00:00:00"}, "until"),
        ({"reason": "x"}, "reason"),
        ({"reason": "Tin rác", "by": "me"}, "by"),
    ):
        r = await client.post(path, json=bad, headers=admin["headers"])
        assert r.status_code in (400, 422), r.text
        assert field in r.text
    # nothing was written
    assert (
        await client.get("/api/v1/me/suspension", headers=resident["headers"])
    ).status_code == 404
    appeal = await client.post(
        "/api/v1/me/suspension/appeal", json={"text": "Xin xem lại"}, headers=resident["headers"]
    )
    assert appeal.status_code == 404 and appeal.json()["code"] == "not_suspended"
    assert await _audit(app, "account.suspended", me["id"]) == []
