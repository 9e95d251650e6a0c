"""One sync call on app open (issue 24 item 2), through the public API on the real
PostgreSQL: the first call lists the current state, each later call returns each changed
entity once in its current state or as a tombstone, nothing changed is an empty page,
paging, a writer's transaction left open while another commits (nothing lost), other
residents' changes and cursors, expired and malformed cursors, staff refused."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from app import policy
from app.core.clock import FixedClock
from app.sync.tasks import purge_sync_changes
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.dossiers.conftest import agency, ingest_clock  # noqa: F401 (fixtures)
from tests.health.conftest import (  # noqa: F401 (fixtures)
    data_dir,
    extra_lines,
    health,
    import_paths,
    transaction_bundle,
    verified_resident,
    write_ndjson,
)
from tests.notifications.conftest import insert_notifications
from tests.routing.test_routing import file_petition

SYNC = "/api/v1/me/sync"


async def settled(app) -> None:
    """Wait until every transaction begun so far has ended (the horizon passed it): what
    the next sync of an app sees then includes it. Other databases' transactions on the
    shared server can hold the horizon back for a moment."""
    async with app.state.engine.connect() as conn:
        mark = await conn.scalar(text("SELECT pg_current_xact_id()::text::bigint"))
        await conn.commit()
    for _ in range(400):
        async with app.state.engine.connect() as conn:
            horizon = await conn.scalar(
                text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            )
        if horizon > mark:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a transaction stayed open for 20 s")


async def sync(client, headers, cursor: str | None = None, **params: Any) -> dict:
    if cursor is not None:
        params["cursor"] = cursor
    r = await client.get(SYNC, params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers["cache-control"]
    return r.json()


async def drain(client, headers, cursor: str | None = None, **params: Any) -> tuple[list, str, int]:
    """Every page until has_more is false: (items, the last cursor, calls made)."""
    items: list = []
    calls = 0
    while True:
        page = await sync(client, headers, cursor, **params)
        calls += 1
        items.extend(page["items"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return items, cursor, calls
        assert calls < 100


async def inbox_rows(app, user: uuid.UUID, count: int) -> list[int]:
    async with app.state.sessionmaker() as session:
        return await insert_notifications(session, user, count)


def keys(items: list) -> list[tuple[str, str]]:
    return [(i["type"], i["id"]) for i in items]


async def user_id(client, headers) -> str:
    return (await client.get("/api/v1/me", headers=headers)).json()["id"]


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code
    return body


# ---------------------------------------------------------------- reports and the inbox


async def test_first_call_is_the_current_state_then_each_change_comes_once(app, client, caplog):
    resident = await sign_in_resident(client, caplog)
    headers = resident["headers"]
    first = await file_petition(client, headers)
    second = await file_petition(client, headers)
    await settled(app)

    items, cursor, calls = await drain(client, headers)
    assert calls == 1
    assert sorted(keys(items)) == sorted([("report", first["id"]), ("report", second["id"])])
    report = next(i for i in items if i["id"] == first["id"])
    assert report["deleted"] is False
    # the list item of /reports/mine, as it shows it
    mine = (await client.get("/api/v1/reports/mine", headers=headers)).json()["items"]
    listed = next(i for i in mine if i["id"] == first["id"])
    assert report["report"] == listed
    assert report["answers"] == 0 and report["rating_asked"] is False

    # nothing changed: an empty page, in one call, with a cursor to keep
    page = await sync(client, headers, cursor)
    assert page["items"] == [] and page["has_more"] is False and page["cursor"]
    cursor = page["cursor"]

    # a staff action: the dispatcher routes the waiting reports (status, a notification)
    admin = await sign_in_staff(client, app, [("admin", None)])
    routed = await client.post("/api/v1/console/routing/run", headers=admin["headers"])
    assert routed.status_code == 200, routed.text
    await settled(app)
    items, cursor, _ = await drain(client, headers, cursor)
    got = keys(items)
    assert len(got) == len(set(got)), "each entity once"
    reports = {i["id"]: i for i in items if i["type"] == "report"}
    assert set(reports) == {first["id"], second["id"]}
    assert {r["report"]["status"] for r in reports.values()} == {"assigned"}
    notices = [i for i in items if i["type"] == "notification"]
    assert notices and all(n["notification"]["read_at"] is None for n in notices)

    # a public reply: the report comes again with its answer counted
    reply = await client.post(
        f"/api/v1/console/reports/{first['id']}/replies",
        json={"body": "Đã tiếp nhận, sẽ xử lý trong tuần."},
        headers=admin["headers"],
    )
    assert reply.status_code == 200, reply.text
    await settled(app)
    items, cursor, _ = await drain(client, headers, cursor)
    answered = [i for i in items if i["type"] == "report"]
    assert [(i["id"], i["answers"]) for i in answered] == [(first["id"], 1)]

    # read state
    notice_id = notices[0]["id"]
    read = await client.post(f"/api/v1/me/notifications/{notice_id}/read", headers=headers)
    assert read.status_code == 200, read.text
    await settled(app)
    items, cursor, _ = await drain(client, headers, cursor)
    assert keys(items) == [("notification", notice_id)]
    assert items[0]["notification"]["read_at"] is not None

    # a new notification
    [new_id] = await inbox_rows(app, uuid.UUID(await user_id(client, headers)), 1)
    await settled(app)
    items, cursor, _ = await drain(client, headers, cursor)
    assert keys(items) == [("notification", str(new_id))]
    assert items[0]["notification"]["title"] == "Thông báo 0"

    # nothing since: empty
    items, cursor, _ = await drain(client, headers, cursor)
    assert items == []


async def test_a_withdrawn_report_comes_back_withdrawn_as_in_my_list(app, client, caplog):
    """Withdrawing is a status, not a deletion: /reports/mine keeps listing the report as
    withdrawn, so the synced copy must too (a tombstone would make it vanish from the app)."""
    resident = await sign_in_resident(client, caplog)
    headers = resident["headers"]
    filed = await file_petition(client, headers)
    await settled(app)
    _, cursor, _ = await drain(client, headers)
    r = await client.post(f"/api/v1/reports/{filed['id']}/withdraw", headers=headers)
    assert r.status_code == 204, r.text
    await settled(app)
    items, cursor, _ = await drain(client, headers, cursor)
    assert keys(items) == [("report", filed["id"])]
    assert items[0]["deleted"] is False
    assert items[0]["report"]["status"] == "withdrawn"
    # a first call lists it as the resident's list does
    listed = (await client.get("/api/v1/reports/mine", headers=headers)).json()["items"]
    assert [i["status"] for i in listed if i["id"] == filed["id"]] == ["withdrawn"]
    items, _, _ = await drain(client, headers)
    assert [i["report"]["status"] for i in items if i["id"] == filed["id"]] == ["withdrawn"]


async def test_pages_are_bounded_and_has_more_says_when_to_call_again(app, client, caplog):
    resident = await sign_in_resident(client, caplog)
    headers = resident["headers"]
    me = uuid.UUID(await user_id(client, headers))
    listed = await inbox_rows(app, me, 12)
    await settled(app)

    # the first call, paged: 5 + 5 + 2, newest first, each once
    pages = []
    cursor = None
    while True:
        page = await sync(client, headers, cursor, limit=5)
        pages.append(page)
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert [len(p["items"]) for p in pages] == [5, 5, 2]
    assert [i["id"] for p in pages for i in p["items"]] == [str(n) for n in reversed(listed)]

    # 23 changes after it: pages of 10 with has_more, then the rest
    more = await inbox_rows(app, me, 23)
    await settled(app)
    sizes, seen = [], []
    while True:
        page = await sync(client, headers, cursor, limit=10)
        sizes.append((len(page["items"]), page["has_more"]))
        seen += [i["id"] for i in page["items"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert sizes == [(10, True), (10, True), (3, False)]
    assert sorted(seen) == sorted(str(n) for n in more)

    # the limit is bounded
    r = await client.get(SYNC, params={"limit": 100_000}, headers=headers)
    assert r.status_code == 400, r.text


async def test_a_transaction_that_commits_after_a_later_one_is_not_lost(app, client, caplog):
    """Writer A takes its log row first and stays open; writer B commits; the app syncs.
    A plain ``seq > cursor`` would hand B out and step past A's smaller seq for good; the
    horizon holds the cursor below A, so once A commits the next call returns it."""
    resident = await sign_in_resident(client, caplog)
    headers = resident["headers"]
    me = uuid.UUID(await user_id(client, headers))
    await settled(app)
    _, cursor, _ = await drain(client, headers)

    insert = text(
        "INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, created_at,"
        " push_status) VALUES (:u, 'report_routed', :t, 'x', '{}', :k, now(), 'sent')"
        " RETURNING id"
    )
    async with app.state.engine.connect() as writer_a:
        a_id = await writer_a.scalar(insert, {"u": me, "t": "A", "k": uuid.uuid4().hex})
        async with app.state.engine.connect() as writer_b:
            b_id = await writer_b.scalar(insert, {"u": me, "t": "B", "k": uuid.uuid4().hex})
            await writer_b.commit()
        seqs = dict(
            (
                await writer_a.execute(
                    text("SELECT entity_id, seq FROM sync_changes WHERE entity_id IN (:a, :b)"),
                    {"a": str(a_id), "b": str(b_id)},
                )
            ).all()
        )
        assert seqs[str(a_id)] < seqs[str(b_id)]  # A's row sorts first by seq

        # the app syncs while A is open: B is held back with A, nothing is skipped
        page = await sync(client, headers, cursor)
        assert ("notification", str(a_id)) not in keys(page["items"])
        cursor = page["cursor"]
        await writer_a.commit()

    await settled(app)
    items, cursor, _ = await drain(client, headers, cursor)
    got = keys(items) + keys(page["items"])
    assert ("notification", str(a_id)) in got
    assert ("notification", str(b_id)) in got
    assert len(keys(items)) == len(set(keys(items)))


# ---------------------------------------------------------------- dossiers


async def test_dossier_changes_from_the_ingest_and_an_unlink(app, client, caplog, agency):  # noqa: F811
    from tests.dossiers.factories import make_level2, new_citizen_id

    citizen = new_citizen_id()
    applicant = await sign_in_resident(client, caplog)
    await make_level2(app, await user_id(client, applicant["headers"]), citizen)
    code = f"000.00.12.H29-{uuid.uuid4().hex[:8].upper()}"
    r = await agency.post_events([agency.upsert(code, status="received", citizen_id=citizen)])
    assert r.status_code == 200, r.text
    await settled(app)

    items, cursor, _ = await drain(client, applicant["headers"])
    dossier = next(i for i in items if i["type"] == "dossier")
    assert dossier["id"] == code and dossier["dossier"]["status"] == "received"
    listed = (await client.get("/api/v1/me/dossiers", headers=applicant["headers"])).json()
    assert dossier["dossier"] == listed["items"][0]

    # a relative links it with the applicant's citizen ID, and sees it
    relative = await sign_in_resident(client, caplog)
    await settled(app)
    _, rel_cursor, _ = await drain(client, relative["headers"])
    linked = await client.post(
        "/api/v1/me/dossiers/links",
        json={"code": code, "citizen_id": citizen},
        headers=relative["headers"],
    )
    assert linked.status_code in (200, 201), linked.text
    await settled(app)
    items, rel_cursor, _ = await drain(client, relative["headers"], rel_cursor)
    assert [(i["id"], i["dossier"]["relation"]) for i in items if i["type"] == "dossier"] == [
        (code, "linked")
    ]

    # an event from the agency: both see the new status, once
    r = await agency.post_events(
        [agency.progress(code, status="processing", at=agency.now() + timedelta(minutes=5), seq=1)]
    )
    assert r.status_code == 200, r.text
    await settled(app)
    items, cursor, _ = await drain(client, applicant["headers"], cursor)
    dossiers = [i for i in items if i["type"] == "dossier"]
    assert [(d["id"], d["dossier"]["status"]) for d in dossiers] == [(code, "processing")]
    items, rel_cursor, _ = await drain(client, relative["headers"], rel_cursor)
    assert [(i["id"], i["dossier"]["status"]) for i in items if i["type"] == "dossier"] == [
        (code, "processing")
    ]

    # the relative unlinks it: a tombstone for them, nothing for the applicant
    r = await client.delete(f"/api/v1/me/dossiers/links/{code}", headers=relative["headers"])
    assert r.status_code == 204, r.text
    await settled(app)
    items, rel_cursor, _ = await drain(client, relative["headers"], rel_cursor)
    assert [i for i in items if i["type"] == "dossier"] == [
        {"type": "dossier", "id": code, "deleted": True}
    ]
    items, cursor, _ = await drain(client, applicant["headers"], cursor)
    assert [i for i in items if i["type"] == "dossier"] == []


# ---------------------------------------------------------------- the health book


async def test_a_health_import_brings_the_summary_with_the_sections_that_changed(
    health,  # noqa: F811
    client,
    caplog,
    data_dir,  # noqa: F811
    settings,
):
    app = health
    number = "001299000123"
    bundle = transaction_bundle(settings, 7, number)
    path = data_dir / "bundle.json"
    path.write_text(json.dumps(bundle))
    await import_paths(app, [path])
    me = await verified_resident(client, app, caplog, number)
    await settled(app)

    items, cursor, _ = await drain(client, me["headers"])
    [book] = [i for i in items if i["type"] == "health"]
    assert book["id"] == "summary" and book["health"]["person"]["citizen_id_last4"] == "0123"
    own = await client.get("/api/v1/me/health", headers=me["headers"])
    assert book["health"] == own.json()

    async with app.state.engine.connect() as conn:
        patient = await conn.scalar(
            text("SELECT source_id FROM health_patients WHERE citizen_id_last4 = '0123'")
        )
    write_ndjson(data_dir / "extra.ndjson", extra_lines(patient))
    await import_paths(app, [data_dir / "extra.ndjson"])
    await settled(app)
    items, cursor, _ = await drain(client, me["headers"], cursor)
    assert keys(items) == [("health", "summary")]
    assert set(items[0]["sections"]) >= {"immunizations", "procedures", "medications"}
    assert [i["display"] for i in items[0]["health"]["immunizations"]] == ["Hepatitis B vaccine"]
    # the sync's read of the book is in its access log, as any read
    async with app.state.engine.connect() as conn:
        reads = await conn.scalar(
            text("SELECT count(*) FROM health_access_log WHERE user_id = :u"),
            {"u": me["user_id"]},
        )
    assert reads == 3  # two syncs that carried the book, one /me/health


# ---------------------------------------------------------------- who and which cursor


async def test_another_residents_changes_never_appear_and_their_cursor_is_refused(
    app, client, caplog
):
    one = await sign_in_resident(client, caplog)
    other = await sign_in_resident(client, caplog)
    mine = await file_petition(client, one["headers"])
    theirs = await file_petition(client, other["headers"])
    await settled(app)
    items, cursor, _ = await drain(client, one["headers"])
    assert ("report", theirs["id"]) not in keys(items)
    assert ("report", mine["id"]) in keys(items)
    _, their_cursor, _ = await drain(client, other["headers"])

    await client.post(f"/api/v1/reports/{theirs['id']}/withdraw", headers=other["headers"])
    await settled(app)
    items, _, _ = await drain(client, one["headers"], cursor)
    assert items == []

    r = await client.get(SYNC, params={"cursor": their_cursor}, headers=one["headers"])
    problem(r, 400, "sync_cursor_invalid")


async def test_malformed_and_altered_cursors_are_400(app, client, caplog):
    resident = await sign_in_resident(client, caplog)
    headers = resident["headers"]
    _, cursor, _ = await drain(client, headers)
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[2] ^= 1
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in ("x", "!!!", "AAAA", altered, cursor[:-3], "a" * 200):
        r = await client.get(SYNC, params={"cursor": bad}, headers=headers)
        body = problem(r, 400, "sync_cursor_invalid")
        assert body["errors"][0]["field"] == "cursor"


async def test_a_cursor_older_than_the_retention_is_410_and_the_app_starts_over(
    app, client, caplog
):
    resident = await sign_in_resident(client, caplog)
    headers = resident["headers"]
    _, cursor, _ = await drain(client, headers)
    filed = await file_petition(client, headers)
    await settled(app)

    days = app.state.settings.sync_retention_days
    later = FixedClock(app.state.clock.now() + timedelta(days=days, hours=1))
    ctx = {
        "sessionmaker": app.state.sessionmaker,
        "redis": None,
        "settings": app.state.settings,
        "clock": later,
    }
    assert await purge_sync_changes(ctx) >= 1
    r = await client.get(SYNC, params={"cursor": cursor}, headers=headers)
    body = problem(r, 410, "sync_cursor_expired")
    assert str(days) in body["detail"]

    # starting over: the current state again, and a cursor that works
    items, cursor, _ = await drain(client, headers)
    assert ("report", filed["id"]) in keys(items)
    assert (await sync(client, headers, cursor))["items"] == []


async def test_staff_are_refused(app, client, caplog):
    staff = await sign_in_staff(client, app, [("admin", None)])
    problem(await client.get(SYNC, headers=staff["headers"]), 403, "residents_only")
    assert (await client.get(SYNC)).status_code == 401


def test_the_migrations_owner_level_is_the_policys():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "migrations" / "versions" / "0100_sync_changes.py"
    spec = importlib.util.spec_from_file_location("m0100", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OWNER_LEVEL == policy.DOSSIER_OWNER_LEVEL
