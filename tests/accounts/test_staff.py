"""Staff sign in with email and password; roles are enforced by guards and per object."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.core.audit import AuditEntry
from tests.accounts.factories import STAFF_PASSWORD, create_staff, sign_in_resident, sign_in_staff

WARD_A = "ubnd-00004"
WARD_B = "ubnd-00008"


async def test_staff_sign_in_and_roles_in_profile(client, app):
    staff = await sign_in_staff(client, app, [("officer", WARD_A)])
    me = (await client.get("/api/v1/me", headers=staff["headers"])).json()
    assert me["kind"] == "staff"
    assert me["roles"] == [
        {"role": "officer", "unit_id": me["roles"][0]["unit_id"], "unit_code": WARD_A}
    ]


async def test_wrong_password_and_unknown_email_look_the_same(client, app):
    email = await create_staff(app, [("officer", WARD_A)])
    wrong = await client.post("/api/v1/auth/staff/login", json={"email": email, "password": "nope"})
    unknown = await client.post(
        "/api/v1/auth/staff/login", json={"email": "ghost@city.test", "password": STAFF_PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "login_failed"


async def test_password_is_stored_as_argon2id(client, app, session):
    from app.accounts.models import User

    email = await create_staff(app, [("dispatcher", None)])
    stored = await session.scalar(select(User.password_hash).where(User.email == email))
    assert stored.startswith("$argon2id$")


async def test_staff_login_is_slowed_down_after_failures(client, app):
    """Three free failures from one address, then that address waits (issue 17, item 5;
    the full rule is tested in test_sign_in_limits.py)."""
    email = await create_staff(app, [("officer", WARD_A)])
    responses = [
        await client.post(
            "/api/v1/auth/staff/login", json={"email": email, "password": f"guess-{i}"}
        )
        for i in range(4)
    ]
    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    assert responses[3].json()["code"] == "login_slowed_down"
    assert int(responses[3].headers["retry-after"]) >= 1


async def test_residents_cannot_use_staff_endpoints(client, caplog):
    resident = await sign_in_resident(client, caplog)
    r = await client.get(f"/api/v1/admin/units/{WARD_A}/staff", headers=resident["headers"])
    assert r.status_code == 403 and r.json()["code"] == "staff_only"


async def test_manager_sees_own_unit_staff_but_not_another_unit(client, app):
    manager = await sign_in_staff(client, app, [("manager", WARD_A)])
    await create_staff(app, [("officer", WARD_A)])
    await create_staff(app, [("officer", WARD_B)])
    own = await client.get(f"/api/v1/admin/units/{WARD_A}/staff", headers=manager["headers"])
    assert own.status_code == 200
    assert sorted(m["role"] for m in own.json()) == ["manager", "officer"]
    other = await client.get(f"/api/v1/admin/units/{WARD_B}/staff", headers=manager["headers"])
    assert other.status_code == 403 and other.json()["code"] == "not_your_unit"


async def test_officer_cannot_list_staff_even_of_own_unit(client, app):
    officer = await sign_in_staff(client, app, [("officer", WARD_A)])
    r = await client.get(f"/api/v1/admin/units/{WARD_A}/staff", headers=officer["headers"])
    assert r.status_code == 403


@pytest.fixture
async def scratch_unit_code(app):
    """A unit code for a test to create; the unit is removed afterwards (reference data
    is shared by the whole run)."""
    code = "so-giao-thong-test"
    yield code
    async with app.state.engine.begin() as conn:
        await conn.execute(text("DELETE FROM units WHERE code = :c"), {"c": code})


async def test_only_admins_create_units_and_read_the_audit_log(
    client, app, session, scratch_unit_code
):
    dispatcher = await sign_in_staff(client, app, [("dispatcher", None)])
    admin = await sign_in_staff(client, app, [("admin", None)])
    body = {
        "code": scratch_unit_code,
        "name_vi": "Sở Giao thông (thử)",
        "name_en": "Transport Department (test)",
        "kind": "department",
    }
    denied = await client.post("/api/v1/admin/units", json=body, headers=dispatcher["headers"])
    assert denied.status_code == 403 and denied.json()["code"] == "role_required"
    created = await client.post("/api/v1/admin/units", json=body, headers=admin["headers"])
    assert created.status_code == 201
    again = await client.post("/api/v1/admin/units", json=body, headers=admin["headers"])
    assert again.status_code == 409
    trail = await client.get("/api/v1/admin/audit", headers=admin["headers"])
    assert trail.status_code == 200
    assert any(
        e["action"] == "unit.created" and e["object_id"] == body["code"] for e in trail.json()
    )
    assert (
        await client.get("/api/v1/admin/audit", headers=dispatcher["headers"])
    ).status_code == 403
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "unit.created"))
    assert str(entry.ip) == "203.0.113.7"


async def test_unit_with_unknown_parent_writes_nothing(client, app, session):
    from app.places.models import Unit

    admin = await sign_in_staff(client, app, [("admin", None)])
    body = {
        "code": "orphan-unit",
        "name_vi": "Mồ côi",
        "name_en": "Orphan",
        "kind": "department",
        "parent_code": "no-such-unit",
    }
    r = await client.post("/api/v1/admin/units", json=body, headers=admin["headers"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parent_code"
    assert await session.scalar(select(Unit.id).where(Unit.code == "orphan-unit")) is None
