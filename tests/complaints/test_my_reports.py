"""The reporter's own reports: list, detail, comment, more photos, withdraw."""

from __future__ import annotations

from sqlalchemy import select

from app.complaints.models import ReportEvent
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import file_with_photo, report_body, upload


async def file_petition(client, headers, text: str = "Đề nghị lắp thêm đèn đường ngõ 12."):
    r = await client.post(
        "/api/v1/reports",
        json=report_body([], kind="petition", description=text),
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_list_is_newest_first_with_keyset_pages_and_filters(client, caplog):
    me = await sign_in_resident(client, caplog)
    made = [
        await file_petition(client, me["headers"], f"Kiến nghị số {i} về vỉa hè.") for i in range(5)
    ]
    await file_with_photo(client, me["headers"])
    page1 = (
        await client.get(
            "/api/v1/reports/mine", params={"limit": 2, "kind": "petition"}, headers=me["headers"]
        )
    ).json()
    assert [i["code"] for i in page1["items"]] == [made[4]["code"], made[3]["code"]]
    page2 = (
        await client.get(
            "/api/v1/reports/mine",
            params={"limit": 2, "kind": "petition", "cursor": page1["next_cursor"]},
            headers=me["headers"],
        )
    ).json()
    page3 = (
        await client.get(
            "/api/v1/reports/mine",
            params={"limit": 2, "kind": "petition", "cursor": page2["next_cursor"]},
            headers=me["headers"],
        )
    ).json()
    codes = [i["code"] for i in page1["items"] + page2["items"] + page3["items"]]
    assert codes == [m["code"] for m in reversed(made)]
    assert page3["next_cursor"] is None
    complaints = (
        await client.get(
            "/api/v1/reports/mine", params={"kind": "complaint"}, headers=me["headers"]
        )
    ).json()
    assert len(complaints["items"]) == 1 and complaints["items"][0]["thumbnail_url"]
    bad = await client.get("/api/v1/reports/mine", params={"cursor": "!!!"}, headers=me["headers"])
    assert bad.status_code == 400 and bad.json()["code"] == "cursor_invalid"
    bad = await client.get("/api/v1/reports/mine", params={"status": "lost"}, headers=me["headers"])
    assert bad.status_code == 400


async def test_detail_shows_photos_and_public_timeline(client, caplog):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    r = await client.get(f"/api/v1/reports/{created['id']}", headers=me["headers"])
    assert r.status_code == 200
    detail = r.json()
    assert detail["code"] == created["code"]
    assert len(detail["photos"]) == 1 and detail["photos"][0]["thumbnail_url"]
    assert [e["to_status"] for e in detail["timeline"]] == ["submitted"]
    assert detail["location"] == {"lat": 21.0288, "lon": 105.8525}
    assert set(detail["allowed_actions"]) == {"withdrawn", "comment", "add_photos"}


async def test_resident_b_cannot_see_or_touch_resident_a_reports(client, caplog, session):
    alice = await sign_in_resident(client, caplog)
    bob = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, alice["headers"])
    rid = created["id"]
    assert (await client.get(f"/api/v1/reports/{rid}", headers=bob["headers"])).status_code == 404
    r = await client.post(
        f"/api/v1/reports/{rid}/comments", json={"body": "spam"}, headers=bob["headers"]
    )
    assert r.status_code == 404
    r = await client.post(f"/api/v1/reports/{rid}/withdraw", headers=bob["headers"])
    assert r.status_code == 404
    assert (await client.get("/api/v1/reports/mine", headers=bob["headers"])).json()["items"] == []
    events = list(await session.scalars(select(ReportEvent.kind)))
    assert events == ["transition"]


async def test_comment_and_more_photos_while_open(client, caplog, app):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    rid = created["id"]
    r = await client.post(
        f"/api/v1/reports/{rid}/comments",
        json={"body": "Hôm nay ổ gà to hơn."},
        headers=me["headers"],
    )
    assert r.status_code == 204
    extra = (await upload(client, me["headers"])).json()
    r = await client.post(
        f"/api/v1/reports/{rid}/photos", json={"photo_ids": [extra["id"]]}, headers=me["headers"]
    )
    assert r.status_code == 204
    detail = (await client.get(f"/api/v1/reports/{rid}", headers=me["headers"])).json()
    assert len(detail["photos"]) == 2
    assert [e["kind"] for e in detail["timeline"]] == ["transition", "comment", "photos_added"]
    assert detail["timeline"][1]["body"] == "Hôm nay ổ gà to hơn."
    # the limit counts photos already attached
    many = [
        (await upload(client, me["headers"])).json()["id"]
        for _ in range(app.state.settings.photos_per_report - 1)
    ]
    r = await client.post(
        f"/api/v1/reports/{rid}/photos", json={"photo_ids": many}, headers=me["headers"]
    )
    assert r.status_code == 422 and r.json()["code"] == "too_many_photos"


async def test_withdraw_once_then_invalid_transitions_are_409_naming_allowed(client, caplog):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    rid = created["id"]
    assert (
        await client.post(f"/api/v1/reports/{rid}/withdraw", headers=me["headers"])
    ).status_code == 204
    again = await client.post(f"/api/v1/reports/{rid}/withdraw", headers=me["headers"])
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition" and again.json()["allowed"] == []
    comment = await client.post(
        f"/api/v1/reports/{rid}/comments", json={"body": "còn không?"}, headers=me["headers"]
    )
    assert comment.status_code == 409
    detail = (await client.get(f"/api/v1/reports/{rid}", headers=me["headers"])).json()
    assert detail["status"] == "withdrawn" and detail["allowed_actions"] == []


async def test_export_includes_my_reports_and_deletion_keeps_them_anonymous(client, caplog):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    export = (await client.get("/api/v1/me/export", headers=me["headers"])).json()
    assert [r["code"] for r in export["reports"]["filed"]] == [created["code"]]
    assert (await client.delete("/api/v1/me", headers=me["headers"])).status_code == 204
    public = await client.get(f"/api/v1/public/reports/{created['code']}")
    assert public.status_code == 200
    assert me["phone"] not in public.text
