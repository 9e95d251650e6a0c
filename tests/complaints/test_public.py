"""Public views: a report by code and the GeoJSON feed, never showing who reported."""

from __future__ import annotations

import uuid

from sqlalchemy import text, update

from app.complaints.models import Report
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import file_with_photo, report_body

CITY = "105.28,20.56,106.03,21.39"  # all of Hanoi
AROUND_HOAN_KIEM = "105.845,21.020,105.860,21.035"


async def test_public_report_by_code_hides_the_reporter(client, caplog):
    me = await sign_in_resident(client, caplog)
    await client.patch("/api/v1/me", json={"full_name": "Phạm Văn Dũng"}, headers=me["headers"])
    created = await file_with_photo(client, me["headers"])
    await client.post(
        f"/api/v1/reports/{created['id']}/comments",
        json={"body": "Số nhà tôi là 12, gọi 0912000111"},
        headers=me["headers"],
    )
    r = await client.get(f"/api/v1/public/reports/{created['code'].lower().replace('-', '')}")
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == created["code"] and len(body["photos"]) == 1
    text = r.text
    for secret in (me["phone"], me["user_id"], "Phạm Văn Dũng", "0912000111"):
        assert secret not in text
    assert "reporter" not in text
    comment = [e for e in body["timeline"] if e["kind"] == "comment"]
    assert comment and comment[0]["body"] is None


async def test_unknown_and_withdrawn_codes_are_404(client, caplog):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    await client.post(f"/api/v1/reports/{created['id']}/withdraw", headers=me["headers"])
    assert (await client.get(f"/api/v1/public/reports/{created['code']}")).status_code == 404
    assert (await client.get("/api/v1/public/reports/ZZZZ-ZZZZ")).status_code == 404


async def test_feed_is_geojson_and_clusters_at_low_zoom(client, caplog, session):
    # clusters read live, as on a database no worker has seen: an earlier test that ran
    # the worker (its map snapshot cron) leaves a snapshot without this test's reports
    await session.execute(text("DELETE FROM report_map_state"))
    await session.commit()
    me = await sign_in_resident(client, caplog)
    for _ in range(3):
        await file_with_photo(client, me["headers"])
    await client.post(
        "/api/v1/reports",
        headers=me["headers"],
        json=report_body([], kind="petition", location={"lat": 21.0500, "lon": 105.8000}),
    )
    city = await client.get("/api/v1/public/reports", params={"bbox": CITY, "zoom": 11})
    assert city.status_code == 200
    assert city.headers["content-type"].startswith("application/geo+json")
    fc = city.json()
    assert fc["type"] == "FeatureCollection" and fc["clustered"] is True
    counts = sorted(f["properties"]["count"] for f in fc["features"])
    assert counts == [1, 3]
    cluster = next(f for f in fc["features"] if f["properties"]["count"] == 3)
    assert cluster["properties"]["cluster"] is True
    lon, lat = cluster["geometry"]["coordinates"]
    assert abs(lon - 105.8525) < 1e-6 and abs(lat - 21.0288) < 1e-6
    street = (
        await client.get("/api/v1/public/reports", params={"bbox": AROUND_HOAN_KIEM, "zoom": 17})
    ).json()
    assert street["clustered"] is False and len(street["features"]) == 3
    assert {f["properties"]["kind"] for f in street["features"]} == {"complaint"}
    assert me["user_id"] not in city.text and me["phone"] not in city.text


async def test_feed_filters(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    a = await file_with_photo(client, me["headers"])
    await file_with_photo(client, me["headers"], category_code="waste")
    await session.execute(
        update(Report).where(Report.id == uuid.UUID(a["id"])).values(status="in_progress")
    )
    await session.commit()

    async def count(**params) -> int:
        r = await client.get(
            "/api/v1/public/reports", params={"bbox": AROUND_HOAN_KIEM, "zoom": 18, **params}
        )
        assert r.status_code == 200, r.text
        return len(r.json()["features"])

    assert await count() == 2
    assert await count(category="waste") == 1
    assert await count(status="in_progress") == 1
    assert await count(kind="petition") == 0
    assert await count(since="2999-01-01T00:00:00Z") == 0


async def test_malformed_bbox_is_a_clear_400(client):
    for bbox in ["1,2,3", "a,b,c,d", "106,21,105,22", "105,21,106,95", "nan,1,2,3", ""]:
        r = await client.get("/api/v1/public/reports", params={"bbox": bbox})
        assert r.status_code == 400, bbox
        assert r.json()["errors"][0]["field"] == "bbox"
    r = await client.get("/api/v1/public/reports", params={"bbox": CITY, "zoom": 40})
    assert r.status_code == 400


async def test_street_view_follows_changes_at_once(client, caplog, session):
    """The street view answers from the covering GiST index (index-only scans); a change
    to a report still shows in the next response and a withdrawn one leaves it."""
    me = await sign_in_resident(client, caplog)
    a = await file_with_photo(client, me["headers"])
    b = await file_with_photo(client, me["headers"])

    async def street() -> dict[str, str]:
        r = await client.get(
            "/api/v1/public/reports", params={"bbox": AROUND_HOAN_KIEM, "zoom": 17}
        )
        assert r.status_code == 200, r.text
        return {f["properties"]["code"]: f["properties"]["status"] for f in r.json()["features"]}

    assert await street() == {a["code"]: "submitted", b["code"]: "submitted"}
    await session.execute(
        update(Report).where(Report.id == uuid.UUID(a["id"])).values(status="in_progress")
    )
    await session.commit()
    await client.post(f"/api/v1/reports/{b['id']}/withdraw", headers=me["headers"])
    assert await street() == {a["code"]: "in_progress"}
