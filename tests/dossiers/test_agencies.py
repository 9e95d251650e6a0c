"""The agencies' administration (issue 19 items 1, 3): an admin registers an agency under
a unit, issues/rotates/revokes its secrets and edits its status-code mapping; every
change is in the audit log (no secret in it); everyone else is refused (403, 401 without
signing in), and bad input is a 4xx naming the field."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.dossiers.models import Agency
from tests.accounts.factories import sign_in_resident, sign_in_staff

BASE = "/api/v1/admin/agencies"


async def audit_of(app, code: str) -> list[AuditEntry]:
    async with app.state.sessionmaker() as s:
        return list(
            await s.scalars(
                select(AuditEntry)
                .where(AuditEntry.object_type == "agency", AuditEntry.object_id == code)
                .order_by(AuditEntry.id)
            )
        )


async def a_unit_code(app) -> str:
    from app.places.models import Unit

    async with app.state.sessionmaker() as s:
        return await s.scalar(select(Unit.code).order_by(Unit.code).limit(1))


async def test_an_admin_registers_an_agency_issues_secrets_and_maps_codes(app, client):
    admin = await sign_in_staff(client, app, [("admin", None)])
    h = admin["headers"]
    unit = await a_unit_code(app)
    code = f"SOTP-{secrets.token_hex(3)}"
    r = await client.post(
        BASE + "/",
        json={"code": code, "name_vi": "Sở Tư pháp", "name_en": "Justice", "unit_code": unit},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["unit_code"] == unit and r.json()["active"] is True
    assert r.json()["secrets"] == [] and r.json()["status_codes"] == []
    assert r.headers["cache-control"] == "no-store"
    # the first secret: no previous one to expire
    r = await client.post(f"{BASE}/{code}/secrets", headers=h)
    assert r.status_code == 201
    first = r.json()
    assert first["previous_valid_until"] is None
    # the mapping, whole, then one code changed and one removed
    r = await client.put(
        f"{BASE}/{code}/status-codes",
        json={
            "codes": [{"code": "1", "status": "received"}, {"code": "2", "status": "processing"}]
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"code": "1", "status": "received"},
        {"code": "2", "status": "processing"},
    ]
    r = await client.put(f"{BASE}/{code}/status-codes/9", json={"status": "completed"}, headers=h)
    assert r.status_code == 200 and r.json() == {"code": "9", "status": "completed"}
    r = await client.delete(f"{BASE}/{code}/status-codes/1", headers=h)
    assert r.status_code == 204
    r = await client.get(f"{BASE}/{code}/status-codes", headers=h)
    assert [c["code"] for c in r.json()] == ["2", "9"]
    listed = await client.get(BASE + "/", headers=h)
    [mine] = [a for a in listed.json() if a["code"] == code]
    assert mine["valid_secrets"] == 1
    entries = await audit_of(app, code)
    assert [e.action for e in entries] == [
        "agency.created",
        "agency.secret_issued",
        "agency.status_codes_replaced",
        "agency.status_code_set",
        "agency.status_code_removed",
    ]
    assert all(e.actor_id is not None and e.actor_kind == "staff" for e in entries)
    assert entries[2].details == {"mapping": {"1": "received", "2": "processing"}}
    assert all(first["secret"] not in str(e.details) for e in entries)


async def test_bad_input_names_the_field(app, client):
    admin = await sign_in_staff(client, app, [("admin", None)])
    h = admin["headers"]
    unit = await a_unit_code(app)
    code = f"AG-{secrets.token_hex(3)}"
    body = {"code": code, "name_vi": "A", "name_en": "A", "unit_code": "NO-SUCH-UNIT"}
    r = await client.post(BASE + "/", json=body, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "agency_unit_unknown"
    assert r.json()["errors"][0]["field"] == "unit_code"
    r = await client.post(BASE + "/", json={**body, "code": "has space"}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    r = await client.post(BASE + "/", json={**body, "unit_code": unit}, headers=h)
    assert r.status_code == 201
    r = await client.post(BASE + "/", json={**body, "unit_code": unit}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "agency_code_taken"
    r = await client.put(
        f"{BASE}/{code}/status-codes/7", json={"status": "lost_in_the_mail"}, headers=h
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "status"
    r = await client.put(
        f"{BASE}/{code}/status-codes",
        json={"codes": [{"code": "1", "status": "received"}, {"code": "1", "status": "refused"}]},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "codes[1].code"
    r = await client.delete(f"{BASE}/{code}/status-codes/1", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "agency_status_code_not_found"
    r = await client.get(f"{BASE}/NOPE-{secrets.token_hex(2)}", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "agency_not_found"
    r = await client.delete(
        f"{BASE}/{code}/secrets/00000000-0000-0000-0000-000000000000", headers=h
    )
    assert r.status_code == 404 and r.json()["code"] == "agency_secret_not_found"
    # nothing of the refused attempts reached the table
    async with app.state.sessionmaker() as s:
        assert (await s.scalar(select(Agency.code).where(Agency.code == "has space"))) is None


@pytest.mark.parametrize("role", ["officer", "manager", "dispatcher", "resident", "anonymous"])
async def test_only_admins_manage_agencies(app, client, caplog, agency, role):
    unit = agency.unit_code
    if role == "anonymous":
        headers: dict[str, str] = {}
        expected = 401
    elif role == "resident":
        headers = (await sign_in_resident(client, caplog))["headers"]
        expected = 403
    else:
        # a manager of the agency's own unit is still not an admin
        where = unit if role != "dispatcher" else None  # dispatchers are city-wide
        headers = (await sign_in_staff(client, app, [(role, where)]))["headers"]
        expected = 403
    before = [e.id for e in await audit_of(app, agency.code)]
    calls = [
        client.get(BASE + "/", headers=headers),
        client.post(
            BASE + "/",
            json={"code": "X-1", "name_vi": "x", "name_en": "x", "unit_code": unit},
            headers=headers,
        ),
        client.get(f"{BASE}/{agency.code}", headers=headers),
        client.patch(f"{BASE}/{agency.code}", json={"active": False}, headers=headers),
        client.post(f"{BASE}/{agency.code}/secrets", headers=headers),
        client.delete(f"{BASE}/{agency.code}/secrets/{agency.secret_id}", headers=headers),
        client.get(f"{BASE}/{agency.code}/status-codes", headers=headers),
        client.put(
            f"{BASE}/{agency.code}/status-codes",
            json={"codes": [{"code": "1", "status": "received"}]},
            headers=headers,
        ),
        client.put(
            f"{BASE}/{agency.code}/status-codes/1", json={"status": "received"}, headers=headers
        ),
        client.delete(f"{BASE}/{agency.code}/status-codes/1", headers=headers),
    ]
    for call in calls:
        r = await call
        assert r.status_code == expected, (role, r.request.method, r.request.url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if expected == 403 and role != "resident":
            assert r.json()["code"] == "agency_admin_only"
    # nothing changed: the secret still signs, no audit entry was added
    assert [e.id for e in await audit_of(app, agency.code)] == before
    r = await agency.post_events([agency.upsert("000.00.12.H29-ADMIN-1")])
    assert r.status_code == 200
