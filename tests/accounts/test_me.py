"""Profile, devices, data export and account deletion (Decree 13/2023 rights)."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from app.accounts.models import Device, RefreshToken, User
from app.core.audit import AuditEntry
from tests.accounts.factories import sign_in_resident, sign_in_staff


def fcm_token() -> str:
    return secrets.token_urlsafe(16) + ":APA91b" + secrets.token_urlsafe(100)


async def test_update_profile_name_locale_and_home_ward(client, caplog):
    me = await sign_in_resident(client, caplog)
    r = await client.patch(
        "/api/v1/me",
        json={"full_name": "Nguyễn Văn An", "locale": "en", "home_area_code": "00004"},
        headers=me["headers"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["full_name"], body["locale"], body["home_area_code"]) == (
        "Nguyễn Văn An",
        "en",
        "00004",
    )
    # a partial update leaves the rest alone
    r = await client.patch("/api/v1/me", json={"locale": "vi"}, headers=me["headers"])
    assert r.json()["full_name"] == "Nguyễn Văn An" and r.json()["locale"] == "vi"


async def test_bad_profile_updates_write_nothing(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    r = await client.patch(
        "/api/v1/me",
        json={"full_name": "Trần Thị B", "home_area_code": "99999"},
        headers=me["headers"],
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "home_area_code"
    r = await client.patch("/api/v1/me", json={"locale": "fr"}, headers=me["headers"])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "locale"
    r = await client.patch("/api/v1/me", json={"full_name": "x" * 121}, headers=me["headers"])
    assert r.status_code == 400
    name = await session.scalar(select(User.full_name).where(User.phone == me["phone"]))
    assert name is None


async def test_register_list_and_remove_devices(client, caplog):
    me = await sign_in_resident(client, caplog)
    token = fcm_token()
    created = await client.post(
        "/api/v1/me/devices", json={"token": token, "platform": "android"}, headers=me["headers"]
    )
    assert created.status_code == 201
    again = await client.post(
        "/api/v1/me/devices", json={"token": token, "platform": "android"}, headers=me["headers"]
    )
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    listed = (await client.get("/api/v1/me/devices", headers=me["headers"])).json()
    assert [d["token_suffix"] for d in listed] == [token[-6:]]
    assert "token" not in listed[0]
    gone = await client.delete(f"/api/v1/me/devices/{created.json()['id']}", headers=me["headers"])
    assert gone.status_code == 204
    assert (await client.get("/api/v1/me/devices", headers=me["headers"])).json() == []


async def test_malformed_device_token_is_refused(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    for token in ["short", "has spaces " * 10, "<script>" + "a" * 100]:
        r = await client.post(
            "/api/v1/me/devices",
            json={"token": token, "platform": "android"},
            headers=me["headers"],
        )
        assert r.status_code == 400, token
        assert r.json()["errors"][0]["field"] == "token"
    r = await client.post(
        "/api/v1/me/devices",
        json={"token": fcm_token(), "platform": "nokia"},
        headers=me["headers"],
    )
    assert r.status_code == 400
    assert await session.scalar(select(func.count()).select_from(Device)) == 0


async def test_resident_a_cannot_touch_resident_b_devices(client, caplog, session):
    alice = await sign_in_resident(client, caplog)
    bob = await sign_in_resident(client, caplog)
    token = fcm_token()
    device = (
        await client.post(
            "/api/v1/me/devices", json={"token": token, "platform": "ios"}, headers=alice["headers"]
        )
    ).json()
    # Bob can neither take Alice's token, see her device, nor delete it
    taken = await client.post(
        "/api/v1/me/devices", json={"token": token, "platform": "ios"}, headers=bob["headers"]
    )
    assert taken.status_code == 409 and taken.json()["code"] == "device_token_in_use"
    assert (await client.get("/api/v1/me/devices", headers=bob["headers"])).json() == []
    removed = await client.delete(f"/api/v1/me/devices/{device['id']}", headers=bob["headers"])
    assert removed.status_code == 404
    assert await session.scalar(select(func.count()).select_from(Device)) == 1


async def test_export_holds_my_data_and_only_mine(client, caplog):
    alice = await sign_in_resident(client, caplog)
    bob = await sign_in_resident(client, caplog)
    await client.patch("/api/v1/me", json={"full_name": "Alice"}, headers=alice["headers"])
    await client.post(
        "/api/v1/me/devices",
        json={"token": fcm_token(), "platform": "android"},
        headers=bob["headers"],
    )
    export = await client.get("/api/v1/me/export", headers=alice["headers"])
    assert export.status_code == 200
    data = export.json()
    assert data["profile"]["phone"] == alice["phone"]
    assert data["profile"]["full_name"] == "Alice"
    assert data["devices"] == []
    assert len(data["sessions"]) == 1
    assert any(a["action"] == "auth.sign_in_otp" for a in data["activity"])
    assert bob["phone"] not in export.text


async def test_delete_account_erases_personal_data_and_ends_sessions(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    await client.patch(
        "/api/v1/me",
        json={"full_name": "Lê Văn C", "home_area_code": "00004"},
        headers=me["headers"],
    )
    await client.post(
        "/api/v1/me/devices",
        json={"token": fcm_token(), "platform": "android"},
        headers=me["headers"],
    )
    r = await client.delete("/api/v1/me", headers=me["headers"])
    assert r.status_code == 204
    user = await session.get(User, me["user_id"])
    assert user.status == "deleted"
    assert (user.phone, user.full_name, user.home_area_code, user.citizen_id_hash) == (
        None,
        None,
        None,
        None,
    )
    assert await session.scalar(select(func.count()).select_from(Device)) == 0
    assert await session.scalar(select(func.count()).select_from(RefreshToken)) == 0
    assert (await client.get("/api/v1/me", headers=me["headers"])).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": me["refresh_token"]}
    )
    assert refreshed.status_code == 401
    actions = list(
        await session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.id))
    )
    assert "account.delete" in actions
    # the same phone can start afresh, as a new account
    again = await sign_in_resident(client, caplog, phone=me["phone"])
    assert again["user_id"] != me["user_id"]


async def test_staff_cannot_delete_themselves(client, app):
    staff = await sign_in_staff(client, app, [("officer", "ubnd-00004")])
    r = await client.delete("/api/v1/me", headers=staff["headers"])
    assert r.status_code == 403
