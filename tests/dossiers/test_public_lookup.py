"""The public lookup by code (issue 19 item 6, the portal's "tra cứu hồ sơ"): status,
agency, procedure and dates for anyone, no personal data; the same answer for a code that
does not exist and one that cannot; limited per client address against enumeration;
cacheable briefly."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from tests.accounts.factories import sign_in_resident
from tests.dossiers.factories import (
    T0,
    dossier_limits,  # noqa: F401 (fixture)
    make_agency,
    make_dossier,
    new_citizen_id,
    new_code,
)

PUBLIC = "/api/v1/public/dossiers"


async def test_the_public_sees_status_and_dates_and_nothing_personal(
    app, client, caplog, dossier_limits
):
    agency = await make_agency(app)
    citizen = new_citizen_id()
    dossier = await make_dossier(
        app,
        agency,
        citizen_id=citizen,
        status="returned",
        applicant_name="Phạm Thị Hồng Nhung",
        phone="+84987654321",
        email="nhung.pham@example.vn",
        finished_on_time=True,
        events=[
            {"at": T0, "kind": "upsert", "to_status": "received", "handler": "Lê Thị Bình"},
            {
                "at": T0 + timedelta(hours=3),
                "from_status": "received",
                "to_status": "processing",
                "handler": "Trần Văn Cường",
                "content": "Đã gọi điện cho bà Nhung số 0987654321",
            },
            {"at": T0 + timedelta(hours=5), "handler": "Trần Văn Cường", "content": "Ghi chú"},
            {
                "at": T0 + timedelta(days=3),
                "from_status": "processing",
                "to_status": "completed",
                "handler": "Trần Văn Cường",
            },
            {
                "at": T0 + timedelta(days=4),
                "from_status": "completed",
                "to_status": "returned",
                "handler": "Lê Thị Bình",
            },
        ],
    )
    r = await client.get(f"{PUBLIC}/{dossier.code}")  # no sign-in
    assert r.status_code == 200, r.text
    body = r.text
    for personal in (
        "Phạm Thị Hồng Nhung",
        "Hồng",
        "Nhung",
        "987654321",
        "nhung.pham",
        "example.vn",
        citizen,
        citizen[-4:],
        "Lê Thị Bình",
        "Trần Văn Cường",
        "Đã gọi điện",
        "Ghi chú",
    ):
        assert personal not in body, personal
    d = r.json()
    assert d["applicant_masked"] == "P*** T** H*** N"
    assert d["code"] == dossier.code and d["status"] == "returned"
    assert d["status_name"] == "Đã trả kết quả"
    assert d["agency"] == {"code": agency[1], "name": "Sở Tư pháp Hà Nội"}
    assert d["procedure_name"] == "Cấp phiếu lý lịch tư pháp"
    assert d["received_at"].startswith("2026-11-02T02:00:00")
    assert d["returned_at"].startswith("2026-11-06T02:00:00")
    assert d["overdue"] is False
    # the statuses the timeline moved through, with their times; a note without a status
    # is not a step
    assert [(s["status"], s["at"][:16]) for s in d["timeline"]] == [
        ("received", "2026-11-02T02:00"),
        ("processing", "2026-11-02T05:00"),
        ("completed", "2026-11-05T02:00"),
        ("returned", "2026-11-06T02:00"),
    ]
    assert set(d) == {
        "code",
        "status",
        "status_name",
        "agency",
        "procedure_code",
        "procedure_name",
        "applicant_masked",
        "online",
        "received_at",
        "due_at",
        "completed_at",
        "returned_at",
        "overdue",
        "timeline",
    }
    assert all(set(step) == {"at", "status", "status_name"} for step in d["timeline"])
    # cacheable briefly by anyone (nothing personal), per language
    assert r.headers["cache-control"] == "public, max-age=60"
    # and by content coding (gzip/br representations have their own ETags, issue 24)
    assert r.headers["vary"] == "Accept-Language, Accept-Encoding"
    en = await client.get(f"{PUBLIC}/{dossier.code}", headers={"Accept-Language": "en"})
    assert en.json()["status_name"] == "Result returned"
    assert en.json()["agency"]["name"] == "Hanoi Department of Justice"
    assert en.headers["content-language"] == "en"
    # the same answer for a signed-in caller
    me = await sign_in_resident(client, caplog)
    signed = await client.get(f"{PUBLIC}/{dossier.code}", headers=me["headers"])
    assert signed.status_code == 200 and signed.json() == d


async def test_unknown_and_malformed_codes_answer_alike(app, client, dossier_limits):
    agency = await make_agency(app)
    await make_dossier(app, agency, citizen_id=new_citizen_id())
    answers = [
        await client.get(f"{PUBLIC}/{code}")
        for code in (
            new_code(),
            "no-such-code",
            "a" * 65,
            "%3Cscript%3E",
            "x'%20OR%201=1",
            "H29%00-1",  # a NUL PostgreSQL would refuse: never reaches it
            "%C4%90%C3%A0",  # "Đà"
            ".-",
        )
    ]
    first = answers[0].json()
    for r in answers:
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
        got = r.json()
        assert {k: got[k] for k in ("type", "title", "status", "code", "detail")} == {
            k: first[k] for k in ("type", "title", "status", "code", "detail")
        }
        assert set(got) == set(first)
    assert first["code"] == "dossier_not_found"
    assert "public" not in answers[0].headers.get("cache-control", "")


async def test_lookups_are_limited_per_client_address(app, client, dossier_limits):
    dossier_limits(dossier_lookup_rate_per_ip="4/minute")
    agency = await make_agency(app)
    dossier = await make_dossier(app, agency, citizen_id=new_citizen_id())
    codes = [dossier.code, new_code(), new_code(), dossier.code]
    assert [(await client.get(f"{PUBLIC}/{c}")).status_code for c in codes] == [
        200,
        404,
        404,
        200,
    ]
    # unknown codes count too: an enumerator is slowed, whatever it finds
    r = await client.get(f"{PUBLIC}/{dossier.code}")
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    problem = json.loads(r.text)
    assert problem["code"] == "rate_limited" and problem["retry_after"] >= 1
    # another address is not held back (a proxy is not trusted: the peer is the client)
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 1)),
        base_url="http://testserver.local",
    )
    async with other:
        r = await other.get(f"{PUBLIC}/{dossier.code}")
        assert r.status_code == 200
    await app.state.limiter.clear("4/minute", "dossier-lookup", "198.51.100.9")
