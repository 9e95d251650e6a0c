"""Deleting an account erases what the notifications context holds about the person
(Decree 13/2023): inbox, areas followed, push preferences."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.accounts.factories import sign_in_resident


async def test_deleting_my_account_erases_my_inbox_follows_and_preferences(
    app, client, caplog, session
):
    me = await sign_in_resident(client, caplog)
    user_id = uuid.UUID((await client.get("/api/v1/me", headers=me["headers"])).json()["id"])
    await session.execute(
        text(
            "INSERT INTO notifications (user_id, kind, title, body, dedupe_key, created_at)"
            " VALUES (:u, 'report_routed', 't', 'b', 'k', now())"
        ),
        {"u": user_id},
    )
    await session.commit()
    area = (await client.get("/api/v1/areas")).json()[0]["code"]
    assert (
        await client.put(f"/api/v1/me/followed-areas/{area}", headers=me["headers"])
    ).status_code == 200
    prefs = await client.put(
        "/api/v1/me/notification-preferences",
        json={"muted_kinds": ["report_routed"], "quiet_hours": None},
        headers=me["headers"],
    )
    assert prefs.status_code == 200, prefs.text

    assert (await client.delete("/api/v1/me", headers=me["headers"])).status_code == 204
    for table in ("notifications", "area_follows", "notification_preferences"):
        left = await session.scalar(
            text(f"SELECT count(*) FROM {table} WHERE user_id = :u"), {"u": user_id}
        )
        assert left == 0, table
