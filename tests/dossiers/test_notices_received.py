""" "We received your dossier X at agency Y; due date Z" (issue 19, second pass): to the
verified applicant when the ingest creates a dossier under their citizen ID, or to a
resident when they link it; once per dossier and resident; not for dossiers received
before the account was verified (a bulk import of the backlog: listed, not announced).
The whole path from a signed agency batch to the resident's inbox, on the real
PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from app.accounts import service as accounts
from app.core import db, i18n
from app.core.jobs import qualified_job_id
from app.notifications.push import push_batch_job_id
from tests.accounts.factories import sign_in_resident
from tests.dossiers.conftest import new_dossier_code
from tests.dossiers.factories import (
    dossier_limits,  # noqa: F401 (fixture)
    fetch,
    make_level2,
    new_citizen_id,
)

LINKS = "/api/v1/me/dossiers/links"


async def received_rows(app, user_id) -> list:
    return await fetch(
        app,
        "SELECT id, kind, title, body, data->>'dossier_code' AS code, data->>'link' AS link,"
        " dedupe_key FROM notifications WHERE user_id = :u AND dedupe_key LIKE :pattern"
        " ORDER BY id",
        u=uuid.UUID(str(user_id)),
        pattern="%:received",
    )


async def verified_resident(app, client, caplog, citizen: str) -> dict:
    resident = await sign_in_resident(client, caplog)
    await make_level2(app, resident["user_id"], citizen)
    return resident


async def test_a_new_dossier_for_a_verified_applicant_is_announced_once(
    app, client, caplog, agency, ingest_clock
):
    citizen = new_citizen_id()
    owner = await verified_resident(app, client, caplog, citizen)
    stranger = await verified_resident(app, client, caplog, new_citizen_id())
    ingest_clock.advance(timedelta(minutes=1))  # received after the account was verified
    code = new_dossier_code()
    due = agency.now() + timedelta(days=5)
    r = await agency.post_events([agency.upsert(code, citizen_id=citizen, due_at=due.isoformat())])
    assert r.json()["results"][0]["result"] == "applied"

    [row] = await received_rows(app, owner["user_id"])
    assert row.kind == "dossier_status"  # muted with the status notices
    assert row.title == f"Đã tiếp nhận hồ sơ {code}"
    assert row.body == (
        f"Sở Tư pháp Hà Nội đã tiếp nhận hồ sơ {code} của bạn (Cấp phiếu lý lịch tư pháp)."
        f" Ngày hẹn trả kết quả: {i18n.format_datetime(due, 'vi')}."
    )
    assert (row.code, row.link) == (code, f"cityapp://dossiers/{code}")
    assert await received_rows(app, stranger["user_id"]) == []
    # its push is queued after the commit
    job = qualified_job_id(app.state.redis, push_batch_job_id([row.id]))
    assert await app.state.redis.exists(f"arq:job:{job}")

    # the agency sends the dossier again, moves it, and the resident links it: still once
    await agency.post_events([agency.upsert(code, citizen_id=citizen, summary="sửa trích yếu")])
    r = await client.post(
        LINKS, json={"code": code, "citizen_id": citizen}, headers=owner["headers"]
    )
    assert r.status_code == 201, r.text
    assert len(await received_rows(app, owner["user_id"])) == 1


async def test_the_backlog_received_before_the_verification_is_listed_not_announced(
    app, client, caplog, agency, ingest_clock
):
    citizen = new_citizen_id()
    owner = await sign_in_resident(client, caplog)
    # the account has existed for ten days; VNeID verified it just now (the audit entry
    # accounts.service.bind_citizen_identity writes with the level)
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET created_at = now() - interval '10 days' WHERE id = :u"),
            {"u": uuid.UUID(owner["user_id"])},
        )
    async with db.transaction(app.state.sessionmaker, None) as session:
        await accounts.bind_citizen_identity(
            session, app.state.settings, uuid.UUID(owner["user_id"]), citizen, "sub-1", None, None
        )
    ingest_clock.advance(timedelta(minutes=1))
    old, new = new_dossier_code(), new_dossier_code()
    five_days_ago = agency.now() - timedelta(days=5)  # after the account, before the level
    r = await agency.post_events(
        [
            agency.upsert(old, at=five_days_ago, citizen_id=citizen, status="processing"),
            agency.upsert(new, citizen_id=citizen),
        ]
    )
    assert [x["result"] for x in r.json()["results"]] == ["applied", "applied"]
    assert [row.code for row in await received_rows(app, owner["user_id"])] == [new]
    # the resident sees both in their list
    r = await client.get("/api/v1/me/dossiers", headers=owner["headers"])
    assert {d["code"] for d in r.json()["items"]} >= {old, new}


async def test_a_resident_who_links_a_dossier_hears_it_once_and_only_they_do(
    app,
    client,
    caplog,
    agency,
    ingest_clock,
    dossier_limits,  # noqa: F811
):
    citizen = new_citizen_id()
    code = new_dossier_code()
    # filed a week ago, before any account: nobody is told at the ingest
    await agency.post_events(
        [agency.upsert(code, at=agency.now() - timedelta(days=7), citizen_id=citizen)]
    )
    owner = await verified_resident(app, client, caplog, citizen)
    relative = await sign_in_resident(client, caplog)
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET locale = 'en' WHERE id = :u"), {"u": relative["user_id"]}
        )
    r = await client.post(
        LINKS, json={"code": code, "citizen_id": citizen}, headers=relative["headers"]
    )
    assert r.status_code == 201, r.text
    [row] = await received_rows(app, relative["user_id"])
    assert row.title == f"Dossier {code} received"
    assert row.body.startswith(f"Hanoi Justice received your dossier {code} (")
    # the verified applicant (whose backlog it is) is not told because someone linked it
    assert await received_rows(app, owner["user_id"]) == []
    # unlinked and linked again: no second notice
    r = await client.delete(f"{LINKS}/{code}", headers=relative["headers"])
    assert r.status_code == 204, r.text
    r = await client.post(
        LINKS, json={"code": code, "citizen_id": citizen}, headers=relative["headers"]
    )
    assert r.status_code == 201, r.text
    assert len(await received_rows(app, relative["user_id"])) == 1


async def test_a_citizen_id_given_later_announces_the_dossier_then(
    app, client, caplog, agency, ingest_clock
):
    citizen = new_citizen_id()
    owner = await verified_resident(app, client, caplog, citizen)
    ingest_clock.advance(timedelta(minutes=1))
    code = new_dossier_code()
    await agency.post_events([agency.upsert(code, citizen_id=None)])
    assert await received_rows(app, owner["user_id"]) == []
    ingest_clock.advance(timedelta(minutes=1))
    await agency.post_events([agency.upsert(code, citizen_id=citizen)])
    assert [row.code for row in await received_rows(app, owner["user_id"])] == [code]


async def test_a_late_request_that_moves_the_due_date_is_heard(
    app, client, caplog, agency, ingest_clock
):
    citizen = new_citizen_id()
    owner = await verified_resident(app, client, caplog, citizen)
    ingest_clock.advance(timedelta(minutes=1))
    code = new_dossier_code()
    t = agency.now() - timedelta(minutes=30)
    new_due = t + timedelta(days=9)
    await agency.post_events([agency.upsert(code, at=t, citizen_id=citizen)])
    await agency.post_events(
        [agency.progress(code, at=t + timedelta(minutes=20), status="processing")]
    )
    late = agency.progress(
        code,
        at=t + timedelta(minutes=10),
        status="supplement_requested",
        supplement={"id": "bs-1", "needed": "Ảnh 4x6", "new_due_at": new_due.isoformat()},
    )
    r = await agency.post_events([late])
    assert r.json()["results"][0]["result"] == "recorded"
    rows = await fetch(
        app,
        "SELECT kind, body FROM notifications WHERE user_id = :u AND kind = 'dossier_due_changed'",
        u=uuid.UUID(owner["user_id"]),
    )
    assert [r.kind for r in rows] == ["dossier_due_changed"]
    assert i18n.format_datetime(new_due, "vi") in rows[0].body
