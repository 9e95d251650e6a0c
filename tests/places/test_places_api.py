"""Public lookups of areas, categories and units."""

from __future__ import annotations


async def test_lookup_finds_the_ward_containing_a_point(client):
    r = await client.get("/api/v1/areas/lookup", params={"lat": 21.0288, "lon": 105.8525})
    assert r.status_code == 200
    assert r.json()["code"] == "00070" and r.json()["synthetic_boundary"] is True


async def test_lookup_outside_the_city_is_404_with_a_reason(client):
    r = await client.get("/api/v1/areas/lookup", params={"lat": 10.7769, "lon": 106.7009})
    assert r.status_code == 404 and r.json()["code"] == "point_outside_city"


async def test_lookup_with_bad_coordinates_names_the_parameter(client):
    r = await client.get("/api/v1/areas/lookup", params={"lat": 200, "lon": 105.8})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "lat"
    r = await client.get("/api/v1/areas/lookup", params={"lat": "abc", "lon": 105.8})
    assert r.status_code == 400
    r = await client.get("/api/v1/areas/lookup", params={"lon": 105.8})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "lat"


async def test_areas_list_search_and_detail(client):
    all_areas = (await client.get("/api/v1/areas")).json()
    assert len(all_areas) == 126
    found = (await client.get("/api/v1/areas", params={"q": "Hoàn Kiếm"})).json()
    assert [a["code"] for a in found] == ["00070"]
    assert (await client.get("/api/v1/areas/00070")).json()["name"] == "Phường Hoàn Kiếm"
    missing = await client.get("/api/v1/areas/99999")
    assert missing.status_code == 404 and missing.json()["code"] == "area_not_found"


async def test_categories_and_units_follow_the_language(client):
    vi = (await client.get("/api/v1/categories")).json()
    en = (await client.get("/api/v1/categories", headers={"Accept-Language": "en"})).json()
    assert len(vi) == len(en) == 12
    by_code_vi = {c["code"]: c["name"] for c in vi}
    by_code_en = {c["code"]: c["name"] for c in en}
    assert by_code_vi.keys() == by_code_en.keys()
    assert by_code_vi != by_code_en
    assert all(1 <= c["deadline_working_days"] <= 30 for c in vi)
    units = (await client.get("/api/v1/units", headers={"Accept-Language": "en"})).json()
    committee = next(u for u in units if u["code"] == "ubnd-00070")
    assert committee["area_code"] == "00070" and committee["kind"] == "ward_committee"
