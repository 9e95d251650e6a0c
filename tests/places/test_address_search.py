"""Reporting without a map (issue 22 item 7): the address search and filing by address."""

from __future__ import annotations

import uuid

import msgspec
from sqlalchemy import func, select

from app.complaints.models import Report
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import report_body

SEARCH = "/api/v1/places/address-search"


def petition(**overrides) -> dict:
    """A petition needs no photo: the body without coordinates, filed by address."""
    body = report_body(kind="petition", **overrides)
    del body["location"]
    return body


async def test_current_ward_found_with_or_without_accents(client):
    for q in ("Phường Hoàn Kiếm, Hà Nội", "phuong hoan kiem ha noi", "HOAN KIEM"):
        r = await client.get(SEARCH, params={"q": q})
        assert r.status_code == 200, r.text
        first = r.json()["candidates"][0]
        assert first["area_code"] == "00070", q
        assert first["area_name"] == "Phường Hoàn Kiếm"
        assert first["old_name"] is None and first["approximate"] is True
        assert r.headers["cache-control"] == "no-store"  # the text may be a home address
    # the point is inside the ward it names
    r = await client.get("/api/v1/areas/lookup", params={"lat": first["lat"], "lon": first["lon"]})
    assert r.json()["code"] == "00070"


async def test_old_style_address_gives_the_current_ward_and_the_old_name(client):
    r = await client.get(SEARCH, params={"q": "12 phố Hàng Bạc, P. Hàng Bạc, Q. Hoàn Kiếm"})
    first = r.json()["candidates"][0]
    assert first["area_code"] == "00070"
    assert first["old_name"] == "Phường Hàng Bạc, Quận Hoàn Kiếm"
    assert "Phường Hàng Bạc" in first["label"] and "Phường Hoàn Kiếm" in first["label"]
    # Phúc Xá (Ba Đình) went to Hồng Hà in 2025, not to today's Ba Đình ward
    r = await client.get(SEARCH, params={"q": "phuc xa, ba dinh"})
    first = r.json()["candidates"][0]
    assert (first["area_code"], first["area_name"]) == ("00097", "Phường Hồng Hà")
    assert first["old_name"] == "Phường Phúc Xá, Quận Ba Đình"


async def test_an_address_matching_nothing_has_no_candidates(client):
    r = await client.get(SEARCH, params={"q": "Nowhere Street, Atlantis"})
    assert r.status_code == 200 and r.json()["candidates"] == []


async def test_bad_queries_are_problems_naming_q(client):
    for params in ({}, {"q": "x"}, {"q": "a" * 201}, {"q": "Hoan\x00Kiem"}):
        r = await client.get(SEARCH, params=params)
        assert r.status_code == 400, params
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "q" in r.text


async def test_the_search_is_limited_per_address(client, app, monkeypatch):
    low = msgspec.structs.replace(app.state.settings, address_search_rate_per_ip="3/minute")
    monkeypatch.setattr(app.state, "settings", low)
    codes = [(await client.get(SEARCH, params={"q": "Cầu Giấy"})).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


async def test_filing_by_candidate_uses_the_ward_centre_and_says_approximate(
    client, app, caplog, session
):
    me = await sign_in_resident(client, caplog)
    found = (await client.get(SEARCH, params={"q": "Hàng Bạc, Hoàn Kiếm"})).json()
    place = found["candidates"][0]
    r = await client.post(
        "/api/v1/reports", json=petition(address_id=place["id"]), headers=me["headers"]
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["area_code"] == "00070"
    report = await session.get(Report, uuid.UUID(created["id"]))
    assert report.location_approximate is True
    lat, lon = (
        await session.execute(
            select(func.ST_Y(Report.location), func.ST_X(Report.location)).where(
                Report.id == report.id
            )
        )
    ).one()
    assert (round(lat, 6), round(lon, 6)) == (place["lat"], place["lon"])
    # staff see it is approximate (JSON; the console page shows the same field)
    admin = await sign_in_staff(client, app, [("admin", None)])
    staff_view = await client.get(
        f"/api/v1/console/reports/{created['id']}", headers=admin["headers"]
    )
    assert staff_view.status_code == 200, staff_view.text
    assert staff_view.json()["location_approximate"] is True
    # and a report filed with coordinates is not
    exact = await client.post(
        "/api/v1/reports",
        json=report_body(kind="petition", description="Đèn đường hỏng cả tuần nay rồi."),
        headers=me["headers"],
    )
    assert exact.status_code == 201, exact.text
    assert (await session.get(Report, uuid.UUID(exact.json()["id"]))).location_approximate is False


async def test_filing_by_text_alone(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    r = await client.post(
        "/api/v1/reports",
        json=petition(address_text="so 5 pho Hang Bac, phuong Hang Bac, quan Hoan Kiem"),
        headers=me["headers"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["area_code"] == "00070"
    report = await session.get(Report, uuid.UUID(r.json()["id"]))
    assert report.location_approximate is True
    assert report.address_text == "so 5 pho Hang Bac, phuong Hang Bac, quan Hoan Kiem"


async def test_addresses_matching_no_ward_or_several_are_refused_with_nothing_written(
    client, caplog, session
):
    me = await sign_in_resident(client, caplog)
    before = await session.scalar(select(func.count()).select_from(Report))
    # Dịch Vọng Hậu (Cầu Giấy) was split between two wards in 2025
    r = await client.post(
        "/api/v1/reports",
        json=petition(address_text="Phường Dịch Vọng Hậu, Quận Cầu Giấy"),
        headers=me["headers"],
    )
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "address_ambiguous"
    assert problem["errors"][0]["field"] == "address_text"
    wards = {c["area_code"] for c in problem["candidates"]}
    assert len(wards) == 2 and "00166" in wards
    assert all(
        c["old_name"] == "Phường Dịch Vọng Hậu, Quận Cầu Giấy" for c in problem["candidates"]
    )
    # nothing matches
    r = await client.post(
        "/api/v1/reports",
        json=petition(address_text="Nowhere Street, Atlantis"),
        headers=me["headers"],
    )
    assert r.status_code == 422 and r.json()["code"] == "address_not_found"
    assert r.json()["errors"][0]["field"] == "address_text"
    # an id that is no place
    r = await client.post(
        "/api/v1/reports", json=petition(address_id=999_999), headers=me["headers"]
    )
    assert r.status_code == 422 and r.json()["code"] == "address_not_found"
    assert r.json()["errors"][0]["field"] == "address_id"
    # neither a location nor an address
    r = await client.post(
        "/api/v1/reports", json=petition(address_text=None), headers=me["headers"]
    )
    assert r.status_code == 422 and r.json()["code"] == "location_or_address_required"
    assert await session.scalar(select(func.count()).select_from(Report)) == before


async def test_my_reports_and_nearby_say_everything_in_words(client, caplog):
    me = await sign_in_resident(client, caplog)
    body = report_body(kind="petition", description="Cây đổ chắn ngang vỉa hè phố Hàng Bạc.")
    filed = await client.post("/api/v1/reports", json=body, headers=me["headers"])
    assert filed.status_code == 201, filed.text
    en = {**me["headers"], "Accept-Language": "en"}
    mine = (await client.get("/api/v1/reports/mine", headers=en)).json()["items"]
    item = next(i for i in mine if i["code"] == filed.json()["code"])
    assert item["status_text"] == "Submitted"
    assert item["kind_text"] and item["kind_text"] != "petition"
    assert item["category_name"] and item["category_name"] != "roads"
    assert item["area_name"] == "Phường Hoàn Kiếm"
    assert item["address_text"] == "Phố Đinh Tiên Hoàng"
    assert item["created_at"] and item["location_approximate"] is False
    near = await client.get(
        "/api/v1/reports/nearby",
        params={**body["location"], "category": "roads"},
        headers={**me["headers"], "Accept-Language": "vi"},
    )
    assert near.status_code == 200, near.text
    item = next(i for i in near.json() if i["code"] == filed.json()["code"])
    assert item["area_code"] == "00070" and item["area_name"] == "Phường Hoàn Kiếm"
    assert item["status_text"] == "Mới gửi"
    assert item["category_name"] not in ("", "roads")
    assert item["address_text"] == "Phố Đinh Tiên Hoàng"
