"""Admins manage routing rules through the API; every change is audited."""

from __future__ import annotations

from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.accounts.factories import sign_in_staff

RULES = "/api/v1/admin/routing-rules"


async def test_admin_adds_lists_changes_and_deletes_a_rule(app, client):
    admin = await sign_in_staff(client, app, [("admin", None)])
    h = admin["headers"]
    created = await client.post(
        RULES,
        json={"category_code": "trees-parks", "unit_code": "so-xay-dung", "note": "Cây xanh"},
        headers=h,
    )
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["area_code"], rule["unit_code"], rule["priority"], rule["active"]) == (
        None,
        "so-xay-dung",
        0,
        True,
    )
    listed = await client.get(RULES, params={"category": "trees-parks"}, headers=h)
    assert [r["id"] for r in listed.json()] == [rule["id"]]
    # the reference data's utility rules are there too
    everything = (await client.get(RULES, headers=h)).json()
    assert {"power-supply", "water-supply"} <= {r["category_code"] for r in everything}

    changed = await client.put(
        f"{RULES}/{rule['id']}",
        json={"category_code": "trees-parks", "unit_code": "urenco", "priority": 5},
        headers=h,
    )
    assert changed.status_code == 200 and changed.json()["unit_code"] == "urenco"
    assert (await client.delete(f"{RULES}/{rule['id']}", headers=h)).status_code == 204
    assert (await client.delete(f"{RULES}/{rule['id']}", headers=h)).status_code == 404

    async with app.state.sessionmaker() as s:
        actions = list(
            await s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_id == rule["id"])
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["routing_rule.created", "routing_rule.updated", "routing_rule.deleted"]


async def test_bad_rules_are_refused_with_the_field_named(app, client):
    admin = await sign_in_staff(client, app, [("admin", None)])
    h = admin["headers"]
    bad = await client.post(
        RULES,
        json={"category_code": "nope", "unit_code": "nobody", "area_code": "99999"},
        headers=h,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "rule_refs_unknown"
    assert {e["field"] for e in bad.json()["errors"]} == {"category_code", "unit_code", "area_code"}
    unknown_field = await client.post(
        RULES, json={"category_code": "noise", "unit_code": "urenco", "x": 1}, headers=h
    )
    assert unknown_field.status_code == 400
    body = {"category_code": "noise", "unit_code": "urenco"}
    assert (await client.post(RULES, json=body, headers=h)).status_code == 201
    twice = await client.post(RULES, json=body, headers=h)
    assert twice.status_code == 409 and twice.json()["code"] == "rule_exists"
    assert len((await client.get(RULES, params={"category": "noise"}, headers=h)).json()) == 1


async def test_only_admins_manage_rules(app, client):
    for roles in ([("dispatcher", None)], [("manager", "so-xay-dung")]):
        staff = await sign_in_staff(client, app, roles)
        r = await client.post(
            RULES, json={"category_code": "noise", "unit_code": "urenco"}, headers=staff["headers"]
        )
        assert r.status_code == 403
    assert (await client.get(RULES)).status_code == 401
