"""A resident's dossiers (issue 19 item 5): a level-2 account sees the dossiers filed
under its citizen ID without doing anything (ingested before the account existed too);
anyone signed in links one by code + the applicant's citizen ID, and unlinks it; nobody
else sees anything, and "not found" is all they learn. Rating rules. On the real API,
PostgreSQL and Redis."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.dossiers.factories import (
    T0,
    dossier_limits,  # noqa: F401 (fixture)
    fetch,
    make_agency,
    make_dossier,
    make_level2,
    new_citizen_id,
    new_code,
    set_status,
)

MINE = "/api/v1/me/dossiers"
LINKS = "/api/v1/me/dossiers/links"


def same_answer(a, b) -> None:
    """Two problem answers a caller cannot tell apart (but for the path they asked)."""
    assert a.status_code == b.status_code == 404
    ja, jb = a.json(), b.json()
    for key in ("type", "title", "status", "code", "detail"):
        assert ja[key] == jb[key], key
    assert set(ja) == set(jb)
    assert a.headers["content-type"] == b.headers["content-type"] == "application/problem+json"


async def test_a_level2_account_sees_dossiers_filed_before_it_existed(
    app, client, caplog, dossier_limits
):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    older = await make_dossier(
        app,
        agency,
        citizen_id=citizen,
        received_at=T0,
        events=[
            {"at": T0, "kind": "upsert", "to_status": "received", "handler": "Lê Thị Bình"},
            {
                "at": T0 + timedelta(hours=2),
                "from_status": "received",
                "to_status": "processing",
                "handler": "Trần Văn Cường",
                "content": "Chuyển phòng chuyên môn",
            },
            {
                "at": T0 + timedelta(days=1),
                "from_status": "processing",
                "to_status": "supplement_requested",
                "handler": "Trần Văn Cường",
                "content": "Thiếu bản sao CCCD",
            },
        ],
        supplements=[
            {
                "requested_at": T0 + timedelta(days=1),
                "needed": "Bản sao CCCD có chứng thực",
                "supply_by": T0 + timedelta(days=3),
                "old_due_at": T0 + timedelta(days=10),
                "new_due_at": T0 + timedelta(days=12),
            }
        ],
    )
    newer = await make_dossier(app, agency, citizen_id=citizen, received_at=T0 + timedelta(days=2))
    someone_else = await make_dossier(app, agency, citizen_id=new_citizen_id())

    me = await sign_in_resident(client, caplog)
    # level 1: nothing yet
    r = await client.get(MINE, headers=me["headers"])
    assert r.status_code == 200 and r.json()["items"] == []
    await make_level2(app, me["user_id"], citizen)  # VNeID verified the account

    r = await client.get(MINE, headers=me["headers"])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    items = r.json()["items"]
    assert [i["code"] for i in items] == [newer.code, older.code]  # newest received first
    assert someone_else.code not in r.text
    first = items[1]
    assert first["relation"] == "applicant" and first["linked"] is False
    assert first["status"] == "processing" and first["status_name"] == "Đang xử lý"
    assert first["agency"] == {"code": agency[1], "name": "Sở Tư pháp Hà Nội"}
    assert first["procedure_name"] == "Cấp phiếu lý lịch tư pháp"

    r = await client.get(f"{MINE}/{older.code}", headers={**me["headers"], "Accept-Language": "en"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    d = r.json()
    assert d["status_name"] == "Processing"
    assert d["agency"]["name"] == "Hanoi Department of Justice"
    # the applicant sees their own name and contact
    assert d["applicant"] == {
        "kind": "person",
        "name": "Nguyễn Văn An",
        "name_masked": False,
        "citizen_id_last4": citizen[-4:],
        "phone": "+84912345678",
        "email": "an.nguyen@example.vn",
    }
    assert [(e["to_status"], e["handler"]) for e in d["timeline"]] == [
        ("received", "Lê Thị Bình"),
        ("processing", "Trần Văn Cường"),
        ("supplement_requested", "Trần Văn Cường"),
    ]
    assert d["timeline"][2]["content"] == "Thiếu bản sao CCCD"
    assert d["timeline"][2]["to_status_name"] == "More documents requested"
    [supplement] = d["supplements"]
    assert supplement["needed"] == "Bản sao CCCD có chứng thực"
    assert supplement["supply_by"].startswith("2026-11-05T02:00:00")
    assert supplement["new_due_at"].startswith("2026-11-14")
    assert d["fees"] == [{"name": "Lệ phí", "amount": 200000.0, "paid": True}]
    assert d["results"] == [{"name": "Phiếu lý lịch tư pháp số 1", "number": "LL-123"}]
    assert d["result_pickup"] == "Bộ phận một cửa, 1 Tràng Thi"
    assert d["relation"] == "applicant" and d["allowed_actions"] == []
    # the due date (T0 + 10 days) is long past at the real clock
    assert d["overdue"] is True


async def test_a_level1_account_sees_nothing_it_did_not_link(app, client, caplog, dossier_limits):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(app, agency, citizen_id=citizen)
    me = await sign_in_resident(client, caplog)
    # the same hash on an account that is not verified at level 2 gives nothing
    await make_level2(app, me["user_id"], citizen, level=1)
    r = await client.get(MINE, headers=me["headers"])
    assert r.status_code == 200 and r.json()["items"] == []
    unknown = await client.get(f"{MINE}/{new_code()}", headers=me["headers"])
    r = await client.get(f"{MINE}/{dossier.code}", headers=me["headers"])
    same_answer(r, unknown)
    assert r.json()["code"] == "dossier_not_found"
    r = await client.post(
        f"{MINE}/{dossier.code}/rating", json={"rating": "satisfied"}, headers=me["headers"]
    )
    assert r.status_code == 404


async def test_linking_by_code_and_citizen_id(app, client, caplog, dossier_limits):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(app, agency, citizen_id=citizen)
    without_id = await make_dossier(app, agency, citizen_id=None)
    me = await sign_in_resident(client, caplog)

    wrong_id = await client.post(
        LINKS, json={"code": dossier.code, "citizen_id": new_citizen_id()}, headers=me["headers"]
    )
    unknown = await client.post(
        LINKS, json={"code": new_code(), "citizen_id": citizen}, headers=me["headers"]
    )
    malformed = await client.post(
        LINKS, json={"code": "../../etc<passwd>", "citizen_id": citizen}, headers=me["headers"]
    )
    no_id_filed = await client.post(
        LINKS, json={"code": without_id.code, "citizen_id": citizen}, headers=me["headers"]
    )
    same_answer(wrong_id, unknown)
    same_answer(wrong_id, malformed)
    same_answer(wrong_id, no_id_filed)
    assert wrong_id.json()["code"] == "dossier_not_found"
    assert (await client.get(MINE, headers=me["headers"])).json()["items"] == []

    # a citizen ID that is not 12 digits is a field error (it says nothing about dossiers)
    bad = await client.post(
        LINKS, json={"code": dossier.code, "citizen_id": "12345"}, headers=me["headers"]
    )
    assert bad.status_code == 400 and "citizen_id" in bad.text
    extra = await client.post(
        LINKS,
        json={"code": dossier.code, "citizen_id": citizen, "admin": True},
        headers=me["headers"],
    )
    assert extra.status_code == 400

    r = await client.post(
        LINKS, json={"code": dossier.code, "citizen_id": citizen}, headers=me["headers"]
    )
    assert r.status_code == 201, r.text
    assert r.json()["code"] == dossier.code
    assert r.json()["relation"] == "linked" and r.json()["linked"] is True
    again = await client.post(
        LINKS, json={"code": dossier.code, "citizen_id": citizen}, headers=me["headers"]
    )
    assert again.status_code == 200 and again.json() == r.json()
    assert [i["code"] for i in (await client.get(MINE, headers=me["headers"])).json()["items"]] == [
        dossier.code
    ]

    # a linked resident is not the verified applicant: name masked, no contact, no ID digits
    d = (await client.get(f"{MINE}/{dossier.code}", headers=me["headers"])).json()
    assert d["applicant"] == {
        "kind": "person",
        "name": "N***** V** A",
        "name_masked": True,
        "citizen_id_last4": None,
        "phone": None,
        "email": None,
    }
    assert "Nguyễn" not in str(d) and "0912345678" not in str(d) and "example.vn" not in str(d)
    assert d["relation"] == "linked" and d["allowed_actions"] == ["unlink"]
    [entry] = await fetch(
        app,
        "SELECT action, object_id, host(ip) FROM audit_log"
        " WHERE actor_id = :u AND action LIKE 'dossier.%'",
        u=me["user_id"],
    )
    assert entry == ("dossier.linked", str(dossier.id), "203.0.113.7")


async def test_unlinking(app, client, caplog, dossier_limits, session):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(app, agency, citizen_id=citizen)
    me = await sign_in_resident(client, caplog)
    r = await client.post(
        LINKS, json={"code": dossier.code, "citizen_id": citizen}, headers=me["headers"]
    )
    assert r.status_code == 201

    r = await client.delete(f"{LINKS}/{dossier.code}", headers=me["headers"])
    assert r.status_code == 204, r.text
    assert (await client.get(MINE, headers=me["headers"])).json()["items"] == []
    gone = await client.get(f"{MINE}/{dossier.code}", headers=me["headers"])
    assert gone.status_code == 404 and gone.json()["code"] == "dossier_not_found"
    again = await client.delete(f"{LINKS}/{dossier.code}", headers=me["headers"])
    assert again.status_code == 404 and again.json()["code"] == "dossier_link_not_found"
    unknown = await client.delete(f"{LINKS}/{new_code()}", headers=me["headers"])
    assert unknown.status_code == 404 and unknown.json() | {"instance": ""} == again.json() | {
        "instance": "",
        "request_id": unknown.json()["request_id"],
    }
    actions = list(
        await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.actor_id == me["user_id"], AuditEntry.action.like("dossier.%"))
            .order_by(AuditEntry.id)
        )
    )
    assert actions == ["dossier.linked", "dossier.unlinked"]

    # the verified applicant cannot "unlink" what is theirs by their citizen ID
    await make_level2(app, me["user_id"], citizen)
    assert (await client.get(f"{MINE}/{dossier.code}", headers=me["headers"])).status_code == 200
    r = await client.delete(f"{LINKS}/{dossier.code}", headers=me["headers"])
    assert r.status_code == 404 and r.json()["code"] == "dossier_link_not_found"


async def test_another_resident_sees_nothing(app, client, caplog, dossier_limits):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(app, agency, citizen_id=citizen, status="completed")
    owner = await sign_in_resident(client, caplog)
    await make_level2(app, owner["user_id"], citizen)
    linker = await sign_in_resident(client, caplog)
    r = await client.post(
        LINKS, json={"code": dossier.code, "citizen_id": citizen}, headers=linker["headers"]
    )
    assert r.status_code == 201
    other = await sign_in_resident(client, caplog)
    await make_level2(app, other["user_id"], new_citizen_id())  # verified, someone else

    assert (await client.get(MINE, headers=other["headers"])).json()["items"] == []
    unknown = await client.get(f"{MINE}/{new_code()}", headers=other["headers"])
    r = await client.get(f"{MINE}/{dossier.code}", headers=other["headers"])
    same_answer(r, unknown)  # 404, not 403: its existence is not revealed
    r = await client.post(
        f"{MINE}/{dossier.code}/rating", json={"rating": "satisfied"}, headers=other["headers"]
    )
    assert r.status_code == 404 and r.json()["code"] == "dossier_not_found"
    r = await client.delete(f"{LINKS}/{dossier.code}", headers=other["headers"])
    assert r.status_code == 404
    # the owner and the linker still see it; staff do not use the residents' views
    assert (await client.get(f"{MINE}/{dossier.code}", headers=owner["headers"])).status_code == 200
    assert (
        await client.get(f"{MINE}/{dossier.code}", headers=linker["headers"])
    ).status_code == 200
    staff = await sign_in_staff(client, app, [("admin", None)])
    r = await client.get(MINE, headers=staff["headers"])
    assert r.status_code == 403 and r.json()["code"] == "residents_only"
    assert (await client.get(MINE)).status_code == 401


async def test_pages_newest_first_with_a_status_filter(app, client, caplog, dossier_limits):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    me = await sign_in_resident(client, caplog)
    await make_level2(app, me["user_id"], citizen)
    own = [
        await make_dossier(
            app,
            agency,
            citizen_id=citizen,
            received_at=T0 + timedelta(days=i),
            status="completed" if i % 2 else "processing",
        )
        for i in range(5)
    ]
    # two linked ones filed by someone else, one received at the same instant as own[2]
    other_citizen = new_citizen_id()
    linked = [
        await make_dossier(
            app, agency, citizen_id=other_citizen, received_at=T0 + timedelta(days=d)
        )
        for d in (2, 7)
    ]
    for dossier in linked:
        r = await client.post(
            LINKS, json={"code": dossier.code, "citizen_id": other_citizen}, headers=me["headers"]
        )
        assert r.status_code == 201
    # and one of my own that I also linked: listed once
    r = await client.post(
        LINKS, json={"code": own[0].code, "citizen_id": citizen}, headers=me["headers"]
    )
    assert r.status_code == 201

    codes, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(MINE, params=params, headers=me["headers"])).json()
        codes += [i["code"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    everything = [m.code for m in own + linked]
    assert sorted(codes) == sorted(everything) and len(codes) == 7  # each once
    # newest received first; the two received at the same instant in a stable order
    rows = await fetch(
        app,
        "SELECT code FROM dossiers WHERE code = ANY(:codes) ORDER BY received_at DESC, id DESC",
        codes=everything,
    )
    assert codes == [r[0] for r in rows]
    assert codes[0] == linked[1].code and codes[-1] == own[0].code

    done = (await client.get(MINE, params={"status": "completed"}, headers=me["headers"])).json()[
        "items"
    ]
    assert [i["code"] for i in done] == [own[3].code, own[1].code]
    assert all(i["status_name"] == "Đã có kết quả" for i in done)
    assert {
        i["code"]: i["relation"]
        for i in (await client.get(MINE, headers=me["headers"])).json()["items"]
    }[linked[0].code] == "linked"
    for cursor in (
        "not-a-cursor",
        "AA",
        base64.urlsafe_b64encode(b"2026-11-02T02:00:00|nope").decode(),
        base64.urlsafe_b64encode(b"2026-11-02T02:00:00|" + str(uuid.uuid4()).encode()).decode(),
        base64.urlsafe_b64encode(b"\x00\xff|").decode(),
    ):
        bad = await client.get(MINE, params={"cursor": cursor}, headers=me["headers"])
        assert bad.status_code == 400 and bad.json()["code"] == "dossier_cursor_invalid", cursor
    bad = await client.get(MINE, params={"status": "lost"}, headers=me["headers"])
    assert bad.status_code == 400 and "status" in bad.text
    bad = await client.get(MINE, params={"limit": 0}, headers=me["headers"])
    assert bad.status_code == 400


async def test_rating_rules(app, client, caplog, dossier_limits):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(app, agency, citizen_id=citizen, status="processing")
    me = await sign_in_resident(client, caplog)
    await make_level2(app, me["user_id"], citizen)
    rate = f"{MINE}/{dossier.code}/rating"

    r = await client.post(rate, json={"rating": "satisfied"}, headers=me["headers"])
    assert r.status_code == 409 and r.json()["code"] == "dossier_not_rateable"
    assert r.json()["allowed"] == ["completed", "returned"]
    assert (await client.get(f"{MINE}/{dossier.code}", headers=me["headers"])).json()[
        "allowed_actions"
    ] == []

    await set_status(app, dossier.id, "completed")
    d = (await client.get(f"{MINE}/{dossier.code}", headers=me["headers"])).json()
    assert d["allowed_actions"] == ["rate"] and d["rating"] is None
    bad = await client.post(rate, json={"rating": "great"}, headers=me["headers"])
    assert bad.status_code == 400 and "rating" in bad.text
    r = await client.post(rate, json={"rating": "not_satisfied"}, headers=me["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["rating"] == "not_satisfied"
    again = await client.post(rate, json={"rating": "satisfied"}, headers=me["headers"])
    assert again.status_code == 409 and again.json()["code"] == "dossier_already_rated"
    [(rating,)] = await fetch(app, "SELECT rating FROM dossiers WHERE id = :i", i=dossier.id)
    assert rating == "not_satisfied"  # once: the second answer changed nothing
    d = (await client.get(f"{MINE}/{dossier.code}", headers=me["headers"])).json()
    assert d["rating"] == "not_satisfied" and d["allowed_actions"] == []

    # someone who linked a returned dossier rates it too
    returned = await make_dossier(app, agency, citizen_id=citizen, status="returned")
    linker = await sign_in_resident(client, caplog)
    r = await client.post(
        LINKS, json={"code": returned.code, "citizen_id": citizen}, headers=linker["headers"]
    )
    assert r.status_code == 201
    r = await client.post(
        f"{MINE}/{returned.code}/rating", json={"rating": "accept"}, headers=linker["headers"]
    )
    assert r.status_code == 200 and r.json()["rating"] == "accept"
    # refused or withdrawn: nothing to rate
    refused = await make_dossier(app, agency, citizen_id=citizen, status="refused")
    r = await client.post(
        f"{MINE}/{refused.code}/rating", json={"rating": "accept"}, headers=me["headers"]
    )
    assert r.status_code == 409 and r.json()["code"] == "dossier_not_rateable"


async def test_link_attempts_are_limited_per_resident_and_per_address(
    app, client, caplog, dossier_limits
):
    dossier_limits(dossier_link_rate_per_user="3/minute", dossier_link_rate_per_ip="5/minute")
    agency = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(app, agency, citizen_id=citizen)
    guesser = await sign_in_resident(client, caplog)
    for _ in range(3):
        r = await client.post(
            LINKS,
            json={"code": dossier.code, "citizen_id": new_citizen_id()},
            headers=guesser["headers"],
        )
        assert r.status_code == 404
    # the fourth try is refused before anything is compared, right ID or not
    r = await client.post(
        LINKS, json={"code": dossier.code, "citizen_id": citizen}, headers=guesser["headers"]
    )
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1 and r.json()["code"] == "rate_limited"
    # another account from the same address: two more tries, then the address is spent
    second = await sign_in_resident(client, caplog)
    for expected in (404, 201, 429):
        cid = citizen if expected == 201 else new_citizen_id()
        r = await client.post(
            LINKS, json={"code": dossier.code, "citizen_id": cid}, headers=second["headers"]
        )
        assert r.status_code == expected, r.text
