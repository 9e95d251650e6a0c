"""The console's actions on a report: a reply, a request for information and an internal
note; closing a duplicate into its original; the officer's extension request and the
manager's decision; photos with a resolution; a unit's audit trail; the actions offered.
Every refusal is checked to have written nothing."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from app.complaints.models import ReportPhoto, ReportSupporter
from app.core.audit import AuditEntry
from app.core.calendar import TIMEZONE
from tests.complaints.factories import HOAN_KIEM, phone_photo, upload
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
from tests.routing.test_console_queue import ward_setup
from tests.routing.test_deadlines import act, routed_report
from tests.routing.test_routing import file_petition, me

CONSOLE = "/api/v1/console/reports"
PROBLEM_JSON = "application/problem+json"


# ---------------------------------------------------------------- helpers


def when(text: str) -> datetime:
    """An instant as the API writes it (ISO 8601, UTC)."""
    return datetime.fromisoformat(text)


def vi_due(at: datetime) -> str:
    """A deadline as Vietnamese notices write it: 17:00 09/12/2026 (Hanoi time)."""
    return at.astimezone(TIMEZONE).strftime("%H:%M %d/%m/%Y")


async def audit_of(app, action: str, object_id: str | None = None) -> list[AuditEntry]:
    async with app.state.sessionmaker() as s:
        stmt = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        if object_id is not None:
            stmt = stmt.where(AuditEntry.object_id == object_id)
        return list(await s.scalars(stmt))


async def supporters_of(app, report_id) -> set[uuid.UUID]:
    async with app.state.sessionmaker() as s:
        return set(
            await s.scalars(
                select(ReportSupporter.user_id).where(
                    ReportSupporter.report_id == uuid.UUID(str(report_id))
                )
            )
        )


async def photo_row(app, photo_id) -> ReportPhoto:
    async with app.state.sessionmaker() as s:
        return await s.get(ReportPhoto, uuid.UUID(str(photo_id)))


async def photos_owned_by(app, user_id: uuid.UUID) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(
            select(func.count()).select_from(ReportPhoto).where(ReportPhoto.owner_id == user_id)
        )


async def staff_view(client, who: dict, report_id) -> dict:
    r = await client.get(f"{CONSOLE}/{report_id}", headers=who["headers"])
    assert r.status_code == 200, r.text
    return r.json()


async def resident_view(client, who: dict, report_id) -> dict:
    r = await client.get(f"/api/v1/reports/{report_id}", headers=who["headers"])
    assert r.status_code == 200, r.text
    return r.json()


async def support(client, who: dict, code: str) -> None:
    r = await client.post("/api/v1/reports/supports", json={"code": code}, headers=who["headers"])
    assert r.status_code == 200, r.text


async def speaks_english(client, who: dict) -> None:
    r = await client.patch("/api/v1/me", json={"locale": "en"}, headers=who["headers"])
    assert r.status_code == 200 and r.json()["locale"] == "en", r.text


async def upload_as_staff(client, who: dict):
    return await client.post(
        "/api/v1/console/photos",
        content=phone_photo(),
        headers={**who["headers"], "Content-Type": "image/jpeg"},
    )


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["code"] == code and body["status"] == status
    return body


# ---------------------------------------------------------------- replies, notes, info


async def test_a_reply_tells_the_followers_in_their_language_and_a_note_tells_no_one(
    app, client, caplog, clock
):
    ward, p = await ward_setup(app, client, caplog, clock)
    supporter = await resident_now(client, caplog, clock)
    await speaks_english(client, supporter)
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, p["resident"]["headers"])
    await support(client, supporter, filed["code"])
    await run_worker(clock)
    unit = await unit_by_code(app, ward)
    reporter_id = await me(client, p["resident"]["headers"])
    supporter_id = await me(client, supporter["headers"])
    officer_id = await me(client, p["officer"]["headers"])
    before = {u: len(await notifications_for(app, u)) for u in (reporter_id, supporter_id)}
    url = f"{CONSOLE}/{filed['id']}"

    note = await client.post(
        f"{url}/notes",
        json={"body": "Cần phối hợp với công an phường."},
        headers=p["officer"]["headers"],
    )
    assert note.status_code == 200, note.text
    # an internal note: no follower hears of it
    after_note = {u: len(await notifications_for(app, u)) for u in (reporter_id, supporter_id)}
    assert after_note == before

    reply = await client.post(
        f"{url}/replies",
        json={"body": "  Phường đã cử cán bộ xuống kiểm tra.  "},
        headers=p["officer"]["headers"],
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "assigned" and reply.json()["code"] == filed["code"]

    [to_reporter] = await notifications_for(app, reporter_id, "report_answered")
    assert to_reporter.title == f"Phản ánh {filed['code']} có trả lời mới"
    assert to_reporter.body == f"{unit.name_vi} đã trả lời phản ánh của bạn."
    assert to_reporter.data["link"] == f"cityapp://reports/{filed['id']}"
    assert to_reporter.data["report_code"] == filed["code"]
    [to_supporter] = await notifications_for(app, supporter_id, "report_answered")
    assert to_supporter.title == f"New answer on report {filed['code']}"
    assert to_supporter.body == f"{unit.name_en} answered your report."
    # only followers: the unit's staff are not told of their own answer
    assert await notifications_for(app, officer_id, "report_answered") == []
    assert {u: len(await notifications_for(app, u)) for u in (reporter_id, supporter_id)} == {
        reporter_id: before[reporter_id] + 1,
        supporter_id: before[supporter_id] + 1,
    }

    # the resident's timeline has the reply (trimmed), never the note
    mine = await resident_view(client, p["resident"], filed["id"])
    assert [(e["kind"], e["body"], e["by"]) for e in mine["timeline"] if e["by"] == "staff"] == [
        ("reply", "Phường đã cử cán bộ xuống kiểm tra.", "staff")
    ]
    assert all(e["kind"] != "note" for e in mine["timeline"])
    assert "Cần phối hợp với công an phường." not in str(mine)
    # staff see both, the note marked internal
    staff = await staff_view(client, p["officer"], filed["id"])
    messages = [
        (e["kind"], e["public"]) for e in staff["timeline"] if e["kind"] in ("note", "reply")
    ]
    assert messages == [("note", False), ("reply", True)]

    [noted] = await audit_of(app, "report.noted", filed["code"])
    [replied] = await audit_of(app, "report.replied", filed["code"])
    assert noted.actor_id == officer_id and replied.actor_id == officer_id


async def test_an_information_request_is_public_told_and_keeps_the_deadline(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)
    report_id = uuid.UUID(r["id"])
    before = await report_row(app, report_id)
    unit = await unit_by_code(app, r["ward"])
    stranger = await staff_now(client, app, clock, [("officer", "evn-hanoi")])
    clock.set(hanoi("2026-11-26 09:00"))
    ask = "Đề nghị ông/bà gửi thêm ảnh chụp ổ gà."

    # another unit's officer: refused, nothing written
    denied = await act(client, stranger["headers"], r, "info-requests", body=ask)
    problem(denied, 403, "not_your_report")
    assert await events_of(app, report_id, "info_request") == []
    assert await audit_of(app, "report.info_requested", r["code"]) == []

    asked = await act(client, r["officer"]["headers"], r, "info-requests", body=ask)
    assert asked.status_code == 200, asked.text
    assert when(asked.json()["due_at"]) == before.due_at

    after = await report_row(app, report_id)
    # the clock keeps running: deadline, reminder and escalation are untouched
    assert (after.due_at, after.remind_at, after.escalate_at, after.status) == (
        before.due_at,
        before.remind_at,
        before.escalate_at,
        "assigned",
    )
    assert after.updated_at == hanoi("2026-11-26 09:00")
    [event] = await events_of(app, report_id, "info_request")
    assert event.public and event.body == ask and event.unit_id == unit.id

    mine = await resident_view(client, r["resident"], r["id"])
    assert mine["timeline"][-1] == {
        "at": mine["timeline"][-1]["at"],
        "kind": "info_request",
        "from_status": None,
        "to_status": None,
        "body": ask,
        "by": "staff",
        "unit": {"code": r["ward"], "name_vi": unit.name_vi, "name_en": unit.name_en},
    }
    assert when(mine["timeline"][-1]["at"]) == hanoi("2026-11-26 09:00")
    assert when(mine["due_at"]) == before.due_at

    [told] = await notifications_for(
        app, await me(client, r["resident"]["headers"]), "report_info_requested"
    )
    assert told.title == f"Phản ánh {r['code']} cần thêm thông tin"
    assert told.body == (
        f"{unit.name_vi} đề nghị bạn bổ sung thông tin. Hạn xử lý: {vi_due(before.due_at)}."
    )
    [audited] = await audit_of(app, "report.info_requested", r["code"])
    assert audited.actor_id == await me(client, r["officer"]["headers"])


# ---------------------------------------------------------------- duplicates


async def test_merging_a_duplicate_moves_its_followers_to_the_original(app, client, caplog, clock):
    ward, p = await ward_setup(app, client, caplog, clock)
    alice = p["resident"]  # reports the original
    bob = await resident_now(client, caplog, clock)  # reports the duplicate
    carol = await resident_now(client, caplog, clock)  # supports the duplicate
    dan = await resident_now(client, caplog, clock)  # supports both
    await speaks_english(client, carol)
    ids = {
        name: await me(client, who["headers"])
        for name, who in (("alice", alice), ("bob", bob), ("carol", carol), ("dan", dan))
    }
    clock.set(hanoi(WEDNESDAY))
    original = await file_petition(client, alice["headers"])
    duplicate = await file_petition(
        client, bob["headers"], description="Mặt đường phố Đinh Tiên Hoàng bị sụt lún."
    )
    await support(client, dan, original["code"])
    for who in (carol, dan, alice):  # the original's own reporter supports it too
        await support(client, who, duplicate["code"])
    await run_worker(clock)
    assert (await report_row(app, uuid.UUID(original["id"]))).supporters_count == 1

    merged = await act(
        client, p["officer"]["headers"], duplicate, "merge", original_code=original["code"]
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "duplicate" and merged.json()["code"] == duplicate["code"]

    dup_row = await report_row(app, uuid.UUID(duplicate["id"]))
    assert dup_row.status == "duplicate"
    assert dup_row.duplicate_of_id == uuid.UUID(original["id"])
    assert dup_row.closed_at == hanoi(WEDNESDAY)
    # new followers of the original: the duplicate's reporter and its one new supporter;
    # dan already supported it and alice reported it
    orig_row = await report_row(app, uuid.UUID(original["id"]))
    assert orig_row.supporters_count == 1 + 2
    assert await supporters_of(app, original["id"]) == {ids["dan"], ids["bob"], ids["carol"]}
    assert await supporters_of(app, duplicate["id"]) == {ids["carol"], ids["dan"], ids["alice"]}

    # every follower of the duplicate is told, in their language, which report to follow
    for name in ("alice", "bob", "dan"):
        [told] = await notifications_for(app, ids[name], "report_merged")
        assert told.title == f"Phản ánh {duplicate['code']} được gộp vào {original['code']}"
        assert told.body == (
            f"Nội dung trùng với phản ánh {original['code']}; "
            "bạn sẽ nhận thông báo của phản ánh đó."
        )
        assert told.data["original"] == original["code"]
        assert told.data["link"] == f"cityapp://reports/{original['id']}"
    [told_en] = await notifications_for(app, ids["carol"], "report_merged")
    assert told_en.title == f"Report {duplicate['code']} was merged into {original['code']}"
    assert told_en.body == f"It duplicates report {original['code']}; you now follow that one."

    # the duplicate's reporter sees why it was closed
    theirs = await resident_view(client, bob, duplicate["id"])
    assert theirs["status"] == "duplicate"
    last = theirs["timeline"][-1]
    assert (last["to_status"], last["body"], last["by"]) == ("duplicate", original["code"], "staff")
    [audited] = await audit_of(app, "report.merged", duplicate["code"])
    assert audited.details == {"into": original["code"]}
    assert audited.actor_id == await me(client, p["officer"]["headers"])

    # and they now hear what happens to the original
    answer = await act(
        client, p["officer"]["headers"], original, "replies", body="Đã tiếp nhận, sẽ xử lý sớm."
    )
    assert answer.status_code == 200
    for name in ("alice", "bob", "carol", "dan"):
        [heard] = await notifications_for(app, ids[name], "report_answered")
        assert original["code"] in heard.title


async def test_bad_merges_are_refused_and_change_nothing(app, client, caplog, clock):
    ward, p = await ward_setup(app, client, caplog, clock)
    officer = p["officer"]["headers"]
    bob = await resident_now(client, caplog, clock)
    carol = await resident_now(client, caplog, clock)
    erin = await resident_now(client, caplog, clock)
    clock.set(hanoi(WEDNESDAY))
    original = await file_petition(client, p["resident"]["headers"])
    duplicate = await file_petition(client, bob["headers"])
    await support(client, carol, duplicate["code"])
    rejected = await file_petition(client, erin["headers"])
    closed = await file_petition(client, erin["headers"], category_code="waste")
    await run_worker(clock)
    no = await act(client, officer, rejected, "reject", reason="Không thuộc thẩm quyền.")
    assert no.status_code == 200
    assert (await act(client, officer, closed, "accept")).status_code == 200
    done = await act(client, officer, closed, "resolve", answer="Đã thu gom rác thải xong.")
    assert done.status_code == 200
    rated = await client.post(
        f"/api/v1/reports/{closed['id']}/rating",
        json={"rating": "satisfied"},
        headers=erin["headers"],
    )
    assert rated.status_code == 204
    assert (await report_row(app, uuid.UUID(closed["id"]))).status == "closed"
    supporters = {r["id"]: await supporters_of(app, r["id"]) for r in (original, rejected, closed)}

    async def nothing_written() -> None:
        row = await report_row(app, uuid.UUID(duplicate["id"]))
        assert (row.status, row.duplicate_of_id, row.closed_at) == ("assigned", None, None)
        for target in (original, rejected, closed):
            assert await supporters_of(app, target["id"]) == supporters[target["id"]]
        assert (await report_row(app, uuid.UUID(original["id"]))).supporters_count == 0
        assert await notifications_for(app, kind="report_merged") == []
        assert await audit_of(app, "report.merged") == []
        assert [e for e in await events_of(app, row.id) if e.to_status == "duplicate"] == []

    # into itself, however the code is typed
    typed = duplicate["code"].lower().replace("-", "")
    itself = await act(client, officer, duplicate, "merge", original_code=typed)
    body = problem(itself, 422, "duplicate_target_invalid")
    assert body["errors"] == [{"field": "original_code", "message": typed, "source": "body"}]
    await nothing_written()

    unknown = await act(client, officer, duplicate, "merge", original_code="ZZZZ-ZZZZ")
    body = problem(unknown, 422, "duplicate_target_invalid")
    assert body["errors"] == [{"field": "original_code", "message": "ZZZZ-ZZZZ", "source": "body"}]
    await nothing_written()

    for target in (rejected, closed):
        refused = await act(client, officer, duplicate, "merge", original_code=target["code"])
        body = problem(refused, 409, "duplicate_target_closed")
        assert target["code"] in body["detail"]
        await nothing_written()

    # another unit's officer; a resident (the duplicate's own reporter)
    for who, code in ((p["stranger"], "not_your_report"), (bob, "staff_only")):
        denied = await act(
            client, who["headers"], duplicate, "merge", original_code=original["code"]
        )
        problem(denied, 403, code)
        await nothing_written()


# ---------------------------------------------------------------- extension requests


async def test_an_officer_asks_for_the_extension_and_a_manager_approves_it(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)  # due Wed 2 Dec 17:00
    supporter = await resident_now(client, caplog, clock)
    await support(client, supporter, r["code"])
    report_id = uuid.UUID(r["id"])
    calendar = app.state.deadlines.calendar
    routed = await report_row(app, report_id)
    first_due = routed.due_at
    assert first_due == calendar.close_of(date(2026, 12, 2))
    ids = {k: await me(client, r[k]["headers"]) for k in ("resident", "officer", "manager")}
    ids["supporter"] = await me(client, supporter["headers"])
    clock.set(hanoi("2026-11-27 09:00"))
    asked_at = clock.now()

    asked = await act(
        client,
        r["officer"]["headers"],
        r,
        "extension-request",
        due_date="2026-12-09",
        reason=" Chờ vật tư thay thế. ",
    )
    assert asked.status_code == 200, asked.text
    assert when(asked.json()["due_at"]) == first_due  # nothing moves until a manager says so
    detail = await staff_view(client, r["officer"], r["id"])
    assert detail["extension_request"] == {
        "due_date": "2026-12-09",
        "reason": "Chờ vật tư thay thế.",
        "requested_at": detail["extension_request"]["requested_at"],
    }
    assert when(detail["extension_request"]["requested_at"]) == asked_at
    assert when(detail["due_at"]) == first_due and detail["original_due_at"] is None
    [asked_event] = await events_of(app, report_id, "extension_asked")
    assert not asked_event.public and asked_event.body == "2026-12-09: Chờ vật tư thay thế."
    assert all(
        e["kind"] != "extension_asked"
        for e in (await resident_view(client, r["resident"], r["id"]))["timeline"]
    )
    # the unit's managers are told; the resident is not
    wanted = calendar.close_of(date(2026, 12, 9))
    [to_manager] = await notifications_for(app, ids["manager"], "report_extension_requested")
    assert to_manager.title == f"Đề nghị gia hạn: {r['code']}"
    assert to_manager.body == f"Cán bộ đề nghị gia hạn phản ánh {r['code']} đến {vi_due(wanted)}."
    assert await notifications_for(app, ids["resident"], "report_extension_requested") == []
    [requested] = await audit_of(app, "report.extension_requested", r["code"])
    assert requested.actor_id == ids["officer"]
    assert requested.details == {"until": "2026-12-09", "reason": "Chờ vật tư thay thế."}

    # one request at a time: the first stands
    again = await act(
        client,
        r["officer"]["headers"],
        r,
        "extension-request",
        due_date="2026-12-10",
        reason="Cần thêm thời gian khảo sát.",
    )
    problem(again, 409, "extension_already_requested")
    detail = await staff_view(client, r["officer"], r["id"])
    assert detail["extension_request"]["due_date"] == "2026-12-09"
    assert detail["extension_request"]["reason"] == "Chờ vật tư thay thế."
    assert len(await audit_of(app, "report.extension_requested", r["code"])) == 1
    assert len(await events_of(app, report_id, "extension_asked")) == 1

    # an officer cannot decide
    officer_decides = await act(
        client, r["officer"]["headers"], r, "extension-request/decision", approve=True
    )
    problem(officer_decides, 403, "managers_only")
    row = await report_row(app, report_id)
    assert (row.due_at, row.original_due_at, row.extension_requested_until) == (
        first_due,
        None,
        date(2026, 12, 9),
    )
    assert await audit_of(app, "report.extended") == []
    assert await audit_of(app, "report.extension_declined") == []
    assert await notifications_for(app, kind="report_extended") == []

    clock.set(hanoi("2026-11-30 10:00"))
    approved = await act(
        client, r["manager"]["headers"], r, "extension-request/decision", approve=True
    )
    assert approved.status_code == 200, approved.text
    assert when(approved.json()["due_at"]) == wanted
    row = await report_row(app, report_id)
    assert row.due_at == wanted and row.original_due_at == first_due
    assert row.extension_reason == "Chờ vật tư thay thế."
    assert (
        row.extension_requested_until,
        row.extension_request_reason,
        row.extension_requested_by,
        row.extension_requested_at,
    ) == (None, None, None, None)
    assert row.escalate_at == app.state.deadlines.escalate_at(wanted)
    detail = await staff_view(client, r["manager"], r["id"])
    assert detail["extension_request"] is None
    assert when(detail["original_due_at"]) == first_due and when(detail["due_at"]) == wanted
    assert "extension" not in detail["allowed_actions"]
    assert "extension_decision" not in detail["allowed_actions"]
    [extended] = await events_of(app, report_id, "extended")
    assert extended.public and extended.body == "Chờ vật tư thay thế."
    assert extended.actor_id == ids["manager"]

    # the followers are told the new deadline
    for follower in ("resident", "supporter"):
        [told] = await notifications_for(app, ids[follower], "report_extended")
        assert told.title == f"Phản ánh {r['code']} được gia hạn"
        assert told.body == f"Hạn xử lý mới: {vi_due(wanted)}."
    [granted] = await audit_of(app, "report.extended", r["code"])
    assert granted.actor_id == ids["manager"]
    assert granted.details["from"] == first_due.isoformat()
    assert granted.details["to"] == wanted.isoformat()
    assert granted.details["reason"] == "Chờ vật tư thay thế."
    assert await audit_of(app, "report.extension_declined") == []

    # nothing is pending any more, and there is only one extension
    problem(
        await act(client, r["manager"]["headers"], r, "extension-request/decision", approve=True),
        409,
        "no_extension_request",
    )
    problem(
        await act(
            client,
            r["officer"]["headers"],
            r,
            "extension-request",
            due_date="2026-12-10",
            reason="Cần thêm thời gian.",
        ),
        409,
        "already_extended",
    )
    assert (await report_row(app, report_id)).due_at == wanted
    assert len(await audit_of(app, "report.extended")) == 1


async def test_a_declined_request_leaves_the_deadline_and_another_may_follow(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)
    report_id = uuid.UUID(r["id"])
    first_due = (await report_row(app, report_id)).due_at
    manager_id = await me(client, r["manager"]["headers"])
    clock.set(hanoi("2026-11-27 09:00"))
    asked = await act(
        client,
        r["officer"]["headers"],
        r,
        "extension-request",
        due_date="2026-12-09",
        reason="Chờ vật tư thay thế.",
    )
    assert asked.status_code == 200, asked.text

    declined = await act(
        client,
        r["manager"]["headers"],
        r,
        "extension-request/decision",
        approve=False,
        note="Chưa đủ căn cứ để gia hạn.",
    )
    assert declined.status_code == 200, declined.text
    assert when(declined.json()["due_at"]) == first_due
    row = await report_row(app, report_id)
    assert (row.due_at, row.original_due_at, row.extension_reason) == (first_due, None, None)
    assert (
        row.extension_requested_until,
        row.extension_request_reason,
        row.extension_requested_by,
        row.extension_requested_at,
    ) == (None, None, None, None)
    [event] = await events_of(app, report_id, "extension_declined")
    assert not event.public and event.body == "Chưa đủ căn cứ để gia hạn."
    assert event.actor_id == manager_id
    assert await events_of(app, report_id, "extended") == []
    mine = await resident_view(client, r["resident"], r["id"])
    assert {e["kind"] for e in mine["timeline"]}.isdisjoint({"extension_declined", "extended"})
    assert await notifications_for(app, kind="report_extended") == []
    [audited] = await audit_of(app, "report.extension_declined", r["code"])
    assert audited.actor_id == manager_id
    assert audited.details == {"until": "2026-12-09", "note": "Chưa đủ căn cứ để gia hạn."}
    assert await audit_of(app, "report.extended") == []
    detail = await staff_view(client, r["officer"], r["id"])
    assert detail["extension_request"] is None
    assert "extension_request" in detail["allowed_actions"]

    # a new request may follow
    again = await act(
        client,
        r["officer"]["headers"],
        r,
        "extension-request",
        due_date="2026-12-08",
        reason="Đã có báo giá vật tư mới.",
    )
    assert again.status_code == 200, again.text
    detail = await staff_view(client, r["manager"], r["id"])
    assert detail["extension_request"]["due_date"] == "2026-12-08"
    assert detail["extension_request"]["reason"] == "Đã có báo giá vật tư mới."
    assert "extension_decision" in detail["allowed_actions"]
    assert len(await audit_of(app, "report.extension_requested", r["code"])) == 2


async def test_managers_are_told_of_a_new_request_after_a_decline(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    manager_id = await me(client, r["manager"]["headers"])
    clock.set(hanoi("2026-11-27 09:00"))
    for due_date, reason in (  # within the 5 working days one extension may add
        ("2026-12-09", "Chờ vật tư thay thế."),
        ("2026-12-08", "Có báo giá mới."),
    ):
        asked = await act(
            client,
            r["officer"]["headers"],
            r,
            "extension-request",
            due_date=due_date,
            reason=reason,
        )
        assert asked.status_code == 200, asked.text
        if due_date == "2026-12-09":
            no = await act(
                client, r["manager"]["headers"], r, "extension-request/decision", approve=False
            )
            assert no.status_code == 200, no.text
    calendar = app.state.deadlines.calendar
    told = await notifications_for(app, manager_id, "report_extension_requested")
    # each request waits for a manager's decision, so each must reach the managers
    assert [n.body for n in told] == [
        f"Cán bộ đề nghị gia hạn phản ánh {r['code']} đến {vi_due(calendar.close_of(d))}."
        for d in (date(2026, 12, 9), date(2026, 12, 8))
    ]


async def test_extension_requests_that_cannot_be_are_refused_and_write_nothing(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)
    report_id = uuid.UUID(r["id"])
    stranger = await staff_now(client, app, clock, [("manager", "evn-hanoi")])
    manager_id = await me(client, r["manager"]["headers"])
    calendar = app.state.deadlines.calendar
    due = (await report_row(app, report_id)).due_at
    due_day = due.astimezone(TIMEZONE).date()
    day_off = next(
        due_day + timedelta(days=n)
        for n in range(1, 15)
        if not calendar.is_working_day(due_day + timedelta(days=n))
    )
    working = calendar.nth_working_day(due_day, 5)

    async def nothing_written() -> None:
        row = await report_row(app, report_id)
        assert (row.due_at, row.original_due_at) == (due, None)
        assert (row.extension_requested_until, row.extension_requested_at) == (None, None)
        for kind in ("extension_asked", "extension_declined", "extended"):
            assert await events_of(app, report_id, kind) == []
        for action in ("extension_requested", "extended", "extension_declined"):
            assert await audit_of(app, f"report.{action}") == []
        assert await notifications_for(app, manager_id, "report_extension_requested") == []

    # nothing to decide
    for approve in (True, False):
        problem(
            await act(
                client, r["manager"]["headers"], r, "extension-request/decision", approve=approve
            ),
            409,
            "no_extension_request",
        )
        await nothing_written()

    # a day the office is shut
    body = problem(
        await act(
            client,
            r["officer"]["headers"],
            r,
            "extension-request",
            due_date=day_off.isoformat(),
            reason="Chờ vật tư thay thế.",
        ),
        422,
        "not_a_working_day",
    )
    assert body["errors"] == [
        {"field": "due_date", "message": day_off.isoformat(), "source": "body"}
    ]
    await nothing_written()

    # not the unit's staff
    problem(
        await act(
            client,
            stranger["headers"],
            r,
            "extension-request",
            due_date=working.isoformat(),
            reason="Chờ vật tư thay thế.",
        ),
        403,
        "not_your_report",
    )
    await nothing_written()

    # too late: the deadline has passed
    clock.set(due + timedelta(minutes=1))
    problem(
        await act(
            client,
            r["officer"]["headers"],
            r,
            "extension-request",
            due_date=working.isoformat(),
            reason="Chờ vật tư thay thế.",
        ),
        409,
        "deadline_passed",
    )
    await nothing_written()


async def test_the_actions_offered_follow_the_role_and_the_pending_request(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)
    handling = ["duplicate", "in_progress", "info_request", "note", "rejected", "reply", "transfer"]

    async def offered(who: str) -> list[str]:
        return (await staff_view(client, r[who], r["id"]))["allowed_actions"]

    assert await offered("officer") == sorted([*handling, "extension_request"])
    assert await offered("manager") == sorted([*handling, "extension"])

    clock.set(hanoi("2026-11-26 09:00"))
    asked = await act(
        client,
        r["officer"]["headers"],
        r,
        "extension-request",
        due_date="2026-12-09",
        reason="Chờ vật tư thay thế.",
    )
    assert asked.status_code == 200, asked.text
    assert await offered("officer") == sorted(handling)
    assert await offered("manager") == sorted([*handling, "extension", "extension_decision"])


# ---------------------------------------------------------------- resolution photos


async def test_a_resolution_photo_reaches_the_resident(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    officer = r["officer"]
    assert (await act(client, officer["headers"], r, "accept")).status_code == 200
    uploaded = await upload_as_staff(client, officer)
    assert uploaded.status_code == 201, uploaded.text
    photo_id = uploaded.json()["id"]
    assert uploaded.json()["expires_at"] is not None  # unattached for now

    resolved = await act(
        client,
        officer["headers"],
        r,
        "resolve",
        answer="Đã vá ổ gà, ảnh chụp sau khi sửa.",
        photo_ids=[photo_id],
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"

    mine = await resident_view(client, r["resident"], r["id"])
    assert [ph["id"] for ph in mine["photos"]] == [photo_id]
    assert mine["photos"][0]["expires_at"] is None
    image = await client.get(mine["photos"][0]["url"])
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    row = await photo_row(app, photo_id)
    [resolution] = [
        e for e in await events_of(app, uuid.UUID(r["id"])) if e.to_status == "resolved"
    ]
    assert (row.report_id, row.event_id, row.expires_at, row.position) == (
        uuid.UUID(r["id"]),
        resolution.id,
        None,
        0,
    )
    assert (await report_row(app, uuid.UUID(r["id"]))).rating_requested_at == clock.now()
    [audited] = await audit_of(app, "report.resolved", r["code"])
    assert audited.details == {"on_time": True, "photos": 1}


async def test_photos_of_someone_else_are_refused_and_nothing_is_resolved(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)
    officer, manager, resident = r["officer"], r["manager"], r["resident"]
    assert (await act(client, officer["headers"], r, "accept")).status_code == 200
    residents_photo = await upload(client, resident["headers"])
    assert residents_photo.status_code == 201, residents_photo.text
    managers_photo = await upload_as_staff(client, manager)
    assert managers_photo.status_code == 201, managers_photo.text
    own_photo = await upload_as_staff(client, officer)
    assert own_photo.status_code == 201, own_photo.text
    resident_id = await me(client, resident["headers"])
    report_id = uuid.UUID(r["id"])

    async def nothing_written() -> None:
        row = await report_row(app, report_id)
        assert (row.status, row.resolved_at, row.rating_requested_at, row.resolved_on_time) == (
            "in_progress",
            None,
            None,
            None,
        )
        assert await notifications_for(app, resident_id, "report_resolved") == []
        assert await audit_of(app, "report.resolved") == []
        assert [e for e in await events_of(app, report_id) if e.to_status == "resolved"] == []
        for photo in (residents_photo, managers_photo, own_photo):
            stored = await photo_row(app, photo.json()["id"])
            assert (stored.report_id, stored.event_id) == (None, None)
            assert stored.expires_at is not None
        assert (await resident_view(client, resident, r["id"]))["photos"] == []

    for photos in (
        [residents_photo.json()["id"]],
        [managers_photo.json()["id"]],
        [own_photo.json()["id"], residents_photo.json()["id"]],  # all or nothing
    ):
        refused = await act(
            client,
            officer["headers"],
            r,
            "resolve",
            answer="Đã vá ổ gà trên phố.",
            photo_ids=photos,
        )
        body = problem(refused, 422, "photo_ids_invalid")
        assert body["errors"] == [{"field": "photo_ids", "message": photos[-1], "source": "body"}]
        await nothing_written()

    # residents upload their own photos, not the console's
    before = await photos_owned_by(app, resident_id)
    denied = await upload_as_staff(client, resident)
    problem(denied, 403, "staff_only")
    assert await photos_owned_by(app, resident_id) == before == 1


# ---------------------------------------------------------------- a unit's audit trail


async def test_a_units_audit_trail_is_for_its_managers_and_the_read_is_audited(
    app, client, caplog, clock
):
    ward, p = await ward_setup(app, client, caplog, clock)
    admin = await staff_now(client, app, clock, [("admin", None)])
    ids = {k: await me(client, p[k]["headers"]) for k in ("officer", "manager", "stranger")}
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, p["resident"]["headers"])
    await run_worker(clock)
    reply = await act(
        client, p["officer"]["headers"], filed, "replies", body="Phường đã tiếp nhận."
    )
    assert reply.status_code == 200
    # another unit's staff at work: taking a call for a resident
    intake = await client.post(
        CONSOLE,
        json={
            "report": {
                "kind": "complaint",
                "category_code": "roads",
                "description": "Người dân gọi đường dây nóng báo cột điện nghiêng.",
                "location": HOAN_KIEM,
            }
        },
        headers=p["stranger"]["headers"],
    )
    assert intake.status_code == 201, intake.text
    [elsewhere] = await audit_of(app, "report.filed_on_behalf")
    assert elsewhere.actor_id == ids["stranger"]
    url = f"/api/v1/admin/units/{ward}/audit"

    # an officer may not read it, and the attempt leaves no read behind
    problem(await client.get(url, headers=p["officer"]["headers"]), 403, "not_your_unit")
    problem(await client.get(url, headers=p["stranger"]["headers"]), 403, "not_your_unit")
    assert await audit_of(app, "unit.audit_viewed") == []

    as_manager = await client.get(url, headers=p["manager"]["headers"])
    assert as_manager.status_code == 200, as_manager.text
    entries = as_manager.json()
    [replied] = [e for e in entries if e["action"] == "report.replied"]
    assert (replied["actor_id"], replied["actor_kind"], replied["object_id"]) == (
        str(ids["officer"]),
        "staff",
        filed["code"],
    )
    assert {e["actor_id"] for e in entries} <= {str(ids["officer"]), str(ids["manager"])}
    assert "report.filed_on_behalf" not in {e["action"] for e in entries}
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    [viewed] = await audit_of(app, "unit.audit_viewed")
    assert (viewed.actor_id, viewed.object_type, viewed.object_id) == (
        ids["manager"],
        "unit",
        ward,
    )

    as_admin = await client.get(url, headers=admin["headers"])
    assert as_admin.status_code == 200, as_admin.text
    seen = as_admin.json()
    # the admin sees the same, plus the manager's read
    assert [e["id"] for e in seen if e["action"] != "unit.audit_viewed"] == [
        e["id"] for e in entries
    ]
    assert [(e["action"], e["actor_id"]) for e in seen if e["action"] == "unit.audit_viewed"] == [
        ("unit.audit_viewed", str(ids["manager"]))
    ]
    assert [e.actor_id for e in await audit_of(app, "unit.audit_viewed", ward)] == [
        ids["manager"],
        await me(client, admin["headers"]),
    ]
    missing = await client.get("/api/v1/admin/units/no-such-unit/audit", headers=admin["headers"])
    problem(missing, 404, "unit_not_found")
