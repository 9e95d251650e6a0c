"""Third-party apps' Open311 API keys: admins issue (the key shown once, only its SHA-256
kept), list and revoke them, audit-logged; every other role is refused; the CLI does the
same as the system; each key is rate-limited on its own."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid

import pytest
from sqlalchemy import text

from app.cli import main
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.open311.test_write_support import filing_form, issue_key
from tests.test_cli import fetch

KEYS = "/api/v1/admin/open311/keys"
ROOT = "/open311/v2"


async def test_an_admin_issues_lists_and_revokes_a_key(app, client, session):
    admin = await sign_in_staff(client, app, [("admin", None)])
    r = await client.post(
        KEYS,
        json={"name": "FixMyStreet VN", "contact": "ops@fms.example"},
        headers=admin["headers"],
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    issued = r.json()
    key, record = issued["key"], issued["record"]
    assert key.startswith("o311_") and len(key) > 40
    assert record["prefix"] == key[:13] and record["revoked_at"] is None
    assert record["created_by"] is not None and record["last_used_at"] is None

    stored = (
        await session.execute(
            text("SELECT key_hash, prefix, reporter_id FROM open311_keys WHERE id = :id"),
            {"id": uuid.UUID(record["id"])},
        )
    ).one()
    assert stored.key_hash == hashlib.sha256(key.encode()).digest()
    # the key itself is nowhere in the database's row, nor in the list
    row_text = await session.scalar(
        text("SELECT row_to_json(k)::text FROM open311_keys k WHERE id = :id"),
        {"id": uuid.UUID(record["id"])},
    )
    assert key not in row_text and key[13:] not in row_text
    stand_in = (
        await session.execute(
            text("SELECT kind, status, phone FROM users WHERE id = :id"),
            {"id": stored.reporter_id},
        )
    ).one()
    assert tuple(stand_in) == ("resident", "disabled", None)

    listed = await client.get(KEYS, headers=admin["headers"])
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()] == [record["id"]]
    assert key not in listed.text

    filed = await client.post(f"{ROOT}/requests.json", data=filing_form(key))
    assert filed.status_code == 200, filed.text

    revoked = await client.post(f"{KEYS}/{record['id']}/revoke", headers=admin["headers"])
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = await client.post(f"{KEYS}/{record['id']}/revoke", headers=admin["headers"])
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    refused = await client.post(f"{ROOT}/requests.json", data=filing_form(key))
    assert refused.status_code == 403

    audit = (
        await session.execute(
            text(
                "SELECT action, actor_kind, details::text AS details FROM audit_log"
                " WHERE object_type = 'open311_key' AND object_id = :id ORDER BY id"
            ),
            {"id": record["id"]},
        )
    ).all()
    assert [(a.action, a.actor_kind) for a in audit] == [
        ("open311.key_issued", "staff"),
        ("open311.key_revoked", "staff"),
    ]
    assert all(key not in a.details and key[13:] not in a.details for a in audit)

    missing = await client.post(f"{KEYS}/{uuid.uuid4()}/revoke", headers=admin["headers"])
    assert missing.status_code == 404
    assert missing.json()["code"] == "open311_key_not_found"


@pytest.mark.parametrize(
    "roles",
    [[("officer", "ubnd-00070")], [("manager", "ubnd-00070")], [("dispatcher", None)]],
    ids=["officer", "manager", "dispatcher"],
)
async def test_other_staff_are_refused_and_nothing_is_written(app, client, session, roles):
    issued = await issue_key(app)
    staff = await sign_in_staff(client, app, roles)
    before = await session.scalar(text("SELECT count(*) FROM open311_keys"))
    calls = [
        client.post(KEYS, json={"name": "x", "contact": "y"}, headers=staff["headers"]),
        client.get(KEYS, headers=staff["headers"]),
        client.post(f"{KEYS}/{issued.record.id}/revoke", headers=staff["headers"]),
    ]
    for response in await asyncio.gather(*calls):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "open311_keys_admin_only"
    assert await session.scalar(text("SELECT count(*) FROM open311_keys")) == before
    still = await session.scalar(
        text("SELECT revoked_at FROM open311_keys WHERE id = :id"), {"id": issued.record.id}
    )
    assert still is None


async def test_residents_and_strangers_are_refused(client, caplog):
    resident = await sign_in_resident(client, caplog)
    assert (await client.get(KEYS, headers=resident["headers"])).status_code == 403
    assert (await client.get(KEYS)).status_code == 401
    r = await client.post(KEYS, json={"name": "x", "contact": "y"})
    assert r.status_code == 401


async def test_a_key_is_rate_limited_on_its_own(app, client):
    settings = app.state.settings
    assert settings.open311_key_rate.startswith("30/minute")
    first, second = await issue_key(app, "App A"), await issue_key(app, "App B")
    r = await client.post(f"{ROOT}/requests.json", data=filing_form(first.key))
    assert r.status_code == 200, r.text
    for _ in range(29):  # the rest of the minute's allowance, counted as filings count
        await app.state.limiter.hit(settings.open311_key_rate, "open311-key", str(first.record.id))
    for fmt in ("json", "xml"):
        r = await client.post(f"{ROOT}/requests.{fmt}", data=filing_form(first.key))
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert r.headers["content-type"].startswith(
            "application/json" if fmt == "json" else "text/xml"
        )
    assert "429" in r.text and "rate limited" in r.text
    other = await client.post(f"{ROOT}/requests.json", data=filing_form(second.key))
    assert other.status_code == 200, other.text


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_the_cli_issues_lists_and_revokes_keys(database, capsys):
    name = f"CLI app {uuid.uuid4().hex[:6]}"
    status, out, _ = run_cli(
        capsys, "open311-key-create", "--name", name, "--contact", "cli@example.test"
    )
    assert status == 0
    key = re.search(r"\(shown once\): (o311_\S+)", out)[1]
    key_id = re.search(r"issued key (\S+) to", out)[1]
    [row] = fetch("SELECT key_hash, prefix, created_by FROM open311_keys WHERE id = $1", key_id)
    assert row["key_hash"] == hashlib.sha256(key.encode()).digest()
    assert row["created_by"] is None  # the system

    status, out, _ = run_cli(capsys, "open311-key-list")
    assert status == 0
    [line] = [line for line in out.splitlines() if key_id in line]
    assert row["prefix"] in line and "active" in line and name in line
    assert key not in out

    status, out, _ = run_cli(capsys, "open311-key-revoke", row["prefix"])
    assert status == 0 and f"revoked key {key_id}" in out
    [row] = fetch("SELECT revoked_at FROM open311_keys WHERE id = $1", key_id)
    assert row["revoked_at"] is not None
    status, _, err = run_cli(capsys, "open311-key-revoke", "o311_no-such-prefix")
    assert status == 1 and "0 keys match" in err
    actions = fetch(
        "SELECT action, actor_kind FROM audit_log WHERE object_id = $1 ORDER BY id", key_id
    )
    assert [(a["action"], a["actor_kind"]) for a in actions] == [
        ("open311.key_issued", "system"),
        ("open311.key_revoked", "system"),
    ]
