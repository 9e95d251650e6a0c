"""Notices to whoever follows a dossier (issue 19 item 5): inbox rows with the texts in
the reader's language, pushes queued after the commit, one per change however often the
change is sent, muted kinds honoured; and the whole path from a signed agency batch to the
resident's inbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.core import db, i18n
from app.core.jobs import qualified_job_id
from app.dossiers.notices import DossierChange, dossier_changed
from app.notifications import preferences
from app.notifications.push import push_batch_job_id
from tests.accounts.factories import sign_in_resident
from tests.dossiers.conftest import (  # noqa: F401 (fixtures)
    agency,
    ingest_clock,
    new_dossier_code,
)
from tests.dossiers.factories import (
    dossier_limits,  # noqa: F401 (fixture)
    fetch,
    make_agency,
    make_dossier,
    make_level2,
    new_citizen_id,
)

NOW = datetime(2026, 11, 4, 3, 0, tzinfo=UTC)
LINKS = "/api/v1/me/dossiers/links"
INBOX = "/api/v1/me/notifications"


async def changed(app, changes: list[DossierChange], now: datetime = NOW) -> None:
    """dossier_changed in a transaction of its own, as the ingest calls it."""
    async with db.transaction(app.state.sessionmaker, app.state.redis) as session:
        await dossier_changed(session, changes, now)


async def rows_for(app, user_id, dossier_id=None) -> list:
    sql = (
        "SELECT id, kind, title, body, data->>'dossier_code' AS dossier_code,"
        " data->>'link' AS link, data->'report_code' AS report_code, dedupe_key"
        " FROM notifications"
        " WHERE user_id = :u ORDER BY id"
    )
    rows = await fetch(app, sql, u=uuid.UUID(str(user_id)))
    if dossier_id is None:
        return rows
    # linking announces the dossier once ("we received your dossier", its own tests in
    # test_notices_received.py): these tests count the notices of its changes
    return [
        r
        for r in rows
        if r.dedupe_key.startswith(f"dossier:{dossier_id}:")
        and r.dedupe_key != f"dossier:{dossier_id}:received"
    ]


async def followed_dossier(app, client, caplog):
    """A dossier followed by its verified applicant (who also linked it), by a relative
    who linked it and reads English; and two residents who do not follow it."""
    agency_ = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(app, agency_, citizen_id=citizen, status="processing")
    owner = await sign_in_resident(client, caplog)
    await make_level2(app, owner["user_id"], citizen)
    relative = await sign_in_resident(client, caplog)
    for who in (owner, relative):
        r = await client.post(
            LINKS, json={"code": dossier.code, "citizen_id": citizen}, headers=who["headers"]
        )
        assert r.status_code == 201, r.text
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET locale = 'en' WHERE id = :u"), {"u": relative["user_id"]}
        )
    stranger = await sign_in_resident(client, caplog)
    await make_level2(app, stranger["user_id"], new_citizen_id())
    # the applicant's hash on an account not verified at level 2: not a follower
    unverified = await sign_in_resident(client, caplog)
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET citizen_id_hash = :h, identity_level = 1 WHERE id = :u"),
            {"h": b"\x00" * 32, "u": unverified["user_id"]},
        )
    return dossier, owner, relative, stranger, unverified


async def test_a_status_move_reaches_each_follower_once_in_their_language(
    app, client, caplog, dossier_limits
):
    dossier, owner, relative, stranger, unverified = await followed_dossier(app, client, caplog)
    move = DossierChange(
        dossier_id=dossier.id,
        code=dossier.code,
        kind="status",
        at=NOW,
        from_status="processing",
        to_status="refused",
    )
    await changed(app, [move])

    [mine] = await rows_for(app, owner["user_id"], dossier.id)  # linked and the applicant: once
    assert mine.kind == "dossier_status"
    assert mine.title == f"Hồ sơ {dossier.code}: Từ chối"
    assert mine.body == "Thủ tục: Cấp phiếu lý lịch tư pháp. Trạng thái mới: Từ chối."
    assert mine.dossier_code == dossier.code
    assert mine.link == f"cityapp://dossiers/{dossier.code}"
    assert mine.report_code is None  # a dossier's notice names no report
    [theirs] = await rows_for(app, relative["user_id"], dossier.id)
    assert theirs.title == f"Dossier {dossier.code}: Refused"
    assert theirs.body == "Procedure: Cấp phiếu lý lịch tư pháp. New status: Refused."
    assert await rows_for(app, stranger["user_id"], dossier.id) == []
    assert await rows_for(app, unverified["user_id"], dossier.id) == []

    # the inbox shows it as a dossier's notice (not a report's) with its deep link
    r = await client.get(INBOX, headers=owner["headers"])
    [item] = [i for i in r.json()["items"] if i["id"] == mine.id]
    assert item["kind"] == "dossier_status"
    assert item["report_code"] is None and item["link"] == mine.link
    # and its push is queued (after the commit), one job for the new rows
    job = qualified_job_id(app.state.redis, push_batch_job_id([mine.id, theirs.id]))
    assert await app.state.redis.exists(f"arq:job:{job}")

    # sent again (a replayed batch, a rerun): nobody hears it twice
    await changed(app, [move])
    assert len(await rows_for(app, owner["user_id"], dossier.id)) == 1
    assert len(await rows_for(app, relative["user_id"], dossier.id)) == 1


async def test_more_documents_requested_says_what_and_by_when(app, client, caplog, dossier_limits):
    dossier, owner, relative, *_ = await followed_dossier(app, client, caplog)
    supply_by = datetime(2026, 11, 6, 10, 0, tzinfo=UTC)  # 17:00 in Hanoi
    new_due = datetime(2026, 11, 13, 10, 0, tzinfo=UTC)
    request = DossierChange(
        dossier_id=dossier.id,
        code=dossier.code,
        kind="supplement",
        at=NOW,
        from_status="processing",
        to_status="supplement_requested",
        needed="Bản sao CCCD có chứng thực",
        supply_by=supply_by,
        due_at=new_due,
    )
    second = DossierChange(
        dossier_id=dossier.id,
        code=dossier.code,
        kind="supplement",
        at=NOW,
        needed="Giấy ủy quyền",
        supply_by=supply_by,
        due_at=new_due,
    )
    # the status move that came with the request says less: the request is the notice
    move = DossierChange(
        dossier_id=dossier.id,
        code=dossier.code,
        kind="status",
        at=NOW,
        from_status="processing",
        to_status="supplement_requested",
    )
    await changed(app, [move, request, second])
    mine = await rows_for(app, owner["user_id"], dossier.id)
    assert [r.kind for r in mine] == ["dossier_supplement", "dossier_supplement"]
    bodies = sorted(r.body for r in mine)
    by_vi, due_vi = i18n.format_datetime(supply_by, "vi"), i18n.format_datetime(new_due, "vi")
    assert "17:00" in by_vi
    assert bodies == [
        f"Cần bổ sung: Bản sao CCCD có chứng thực. Nộp trước: {by_vi}. Ngày hẹn trả mới:"
        f" {due_vi}. Thủ tục: Cấp phiếu lý lịch tư pháp.",
        f"Cần bổ sung: Giấy ủy quyền. Nộp trước: {by_vi}. Ngày hẹn trả mới: {due_vi}."
        " Thủ tục: Cấp phiếu lý lịch tư pháp.",
    ]
    assert mine[0].title == f"Hồ sơ {dossier.code} cần bổ sung giấy tờ"
    [english, _] = sorted(
        await rows_for(app, relative["user_id"], dossier.id), key=lambda r: r.body
    )
    by_en = i18n.format_datetime(supply_by, "en")
    assert english.body == (
        f"Needed: Bản sao CCCD có chứng thực. Submit by: {by_en}. New due date:"
        f" {i18n.format_datetime(new_due, 'en')}. Procedure: Cấp phiếu lý lịch tư pháp."
    )
    await changed(app, [request, second])  # again: nothing new
    assert len(await rows_for(app, owner["user_id"], dossier.id)) == 2


async def test_due_date_moved_and_result_ready(app, client, caplog, dossier_limits):
    dossier, owner, *_ = await followed_dossier(app, client, caplog)
    due = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    await changed(
        app,
        [
            DossierChange(
                dossier_id=dossier.id, code=dossier.code, kind="due_changed", at=NOW, due_at=due
            ),
            DossierChange(
                dossier_id=dossier.id,
                code=dossier.code,
                kind="status",
                at=NOW + timedelta(hours=1),
                from_status="processing",
                to_status="completed",
            ),
        ],
    )
    rows = {r.kind: r for r in await rows_for(app, owner["user_id"], dossier.id)}
    assert set(rows) == {"dossier_due_changed", "dossier_result_ready"}
    assert rows["dossier_due_changed"].title == f"Hồ sơ {dossier.code} đổi ngày hẹn trả"
    assert rows["dossier_due_changed"].body == (
        f"Ngày hẹn trả kết quả mới: {i18n.format_datetime(due, 'vi')}."
        " Thủ tục: Cấp phiếu lý lịch tư pháp."
    )
    assert rows["dossier_result_ready"].title == f"Hồ sơ {dossier.code} đã có kết quả"
    assert rows["dossier_result_ready"].body == (
        "Thủ tục: Cấp phiếu lý lịch tư pháp. Nơi nhận kết quả: Bộ phận một cửa, 1 Tràng Thi."
    )


async def test_no_notice_for_quiet_moves_or_dossiers_no_one_follows(
    app, client, caplog, dossier_limits
):
    dossier, owner, *_ = await followed_dossier(app, client, caplog)
    unfollowed = await make_dossier(app, await make_agency(app), citizen_id=new_citizen_id())
    await changed(
        app,
        [
            # received → processing is not news to the applicant (the lifecycle says so)
            DossierChange(
                dossier_id=dossier.id,
                code=dossier.code,
                kind="status",
                at=NOW,
                from_status="received",
                to_status="processing",
            ),
            DossierChange(
                dossier_id=unfollowed.id,
                code=unfollowed.code,
                kind="status",
                at=NOW,
                from_status="processing",
                to_status="refused",
            ),
        ],
    )
    assert await rows_for(app, owner["user_id"], dossier.id) == []
    [(count,)] = await fetch(
        app,
        "SELECT count(*) FROM notifications WHERE dedupe_key LIKE :k",
        k=f"dossier:{unfollowed.id}:%",
    )
    assert count == 0


async def test_a_muted_kind_stays_in_the_inbox_without_a_push(app, client, caplog, dossier_limits):
    dossier, owner, *_ = await followed_dossier(app, client, caplog)
    r = await client.put(
        "/api/v1/me/notification-preferences",
        json={"muted_kinds": ["dossier_supplement"], "quiet_hours": None},
        headers=owner["headers"],
    )
    assert r.status_code == 200, r.text
    assert {"dossier_status", "dossier_supplement", "dossier_due_changed"} <= set(r.json()["kinds"])
    await changed(
        app,
        [
            DossierChange(
                dossier_id=dossier.id,
                code=dossier.code,
                kind="supplement",
                at=NOW,
                needed="Bản sao sổ hộ khẩu",
            ),
            DossierChange(
                dossier_id=dossier.id,
                code=dossier.code,
                kind="due_changed",
                at=NOW,
                due_at=NOW + timedelta(days=9),
            ),
        ],
    )
    rows = {r.kind: r.id for r in await rows_for(app, owner["user_id"], dossier.id)}
    assert set(rows) == {"dossier_supplement", "dossier_due_changed"}
    # the push job's gate (the real one) settles the muted kind without asking a device
    async with db.transaction(app.state.sessionmaker, None) as session:
        gate = await preferences.gate(session, list(rows.values()), NOW)
    assert gate.muted == [rows["dossier_supplement"]]
    [(status,)] = await fetch(
        app, "SELECT push_status FROM notifications WHERE id = :i", i=rows["dossier_due_changed"]
    )
    assert status == "pending"


async def test_from_a_signed_batch_to_the_residents_inbox(
    app,
    client,
    caplog,
    agency,
    dossier_limits,  # noqa: F811 (fixture)
):
    """The real ingest: a dossier filed before its applicant had an account; the account
    verified at level 2 sees it, and hears of the agency's next moves."""
    code = new_dossier_code()
    citizen = new_citizen_id()  # its own: other tests file under the conftest's default
    now = agency.now()
    r = await agency.post_events(
        [agency.upsert(code, at=now - timedelta(hours=3), citizen_id=citizen)]
    )
    assert r.status_code == 200 and r.json()["results"][0]["result"] == "applied", r.text

    me = await sign_in_resident(client, caplog)
    await make_level2(app, me["user_id"], citizen)
    r = await client.get("/api/v1/me/dossiers", headers=me["headers"])
    assert [i["code"] for i in r.json()["items"]] == [code]

    supply_by = now + timedelta(days=2)
    r = await agency.post_events(
        [
            agency.progress(code, at=now - timedelta(hours=2), status="processing"),
            agency.progress(
                code,
                at=now - timedelta(hours=1),
                status="supplement_requested",
                supplement={
                    "id": "bs-1",
                    "needed": "Bản sao giấy khai sinh",
                    "supply_by": supply_by.isoformat(),
                    "new_due_at": (now + timedelta(days=10)).isoformat(),
                },
            ),
        ]
    )
    assert r.status_code == 200, r.text
    assert [x["result"] for x in r.json()["results"]] == ["applied", "applied"]

    r = await client.get(INBOX, headers=me["headers"])
    notices = [i for i in r.json()["items"] if i["data"].get("dossier_code") == code]
    # received → processing is not news; the request is, with what and by when
    assert [n["kind"] for n in notices] == ["dossier_supplement"]
    assert "Bản sao giấy khai sinh" in notices[0]["body"]
    assert i18n.format_datetime(supply_by, "vi") in notices[0]["body"]

    d = (await client.get(f"/api/v1/me/dossiers/{code}", headers=me["headers"])).json()
    assert d["status"] == "supplement_requested" and d["relation"] == "applicant"
    assert [s["needed"] for s in d["supplements"]] == ["Bản sao giấy khai sinh"]
    assert [e["to_status"] for e in d["timeline"]][-2:] == ["processing", "supplement_requested"]

    # the move reported again under another event id (an agency's retry after a timeout)
    # changes nothing, so nobody hears it twice
    r = await agency.post_events(
        [
            agency.progress(
                code,
                at=now - timedelta(hours=1),
                status="supplement_requested",
                event_id="evt-again",
            )
        ]
    )
    assert r.status_code == 200
    r = await client.get(INBOX, headers=me["headers"])
    assert len([i for i in r.json()["items"] if i["data"].get("dossier_code") == code]) == 1
