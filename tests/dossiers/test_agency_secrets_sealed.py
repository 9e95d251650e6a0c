"""Agencies' signing secrets sealed at rest (issue 19, second pass): the database holds
no secret in clear (a check refuses one), a rotation still gives two valid secrets, the
admin API and the CLI show a new secret once; migration 0060 seals the secrets stored in
clear before it (and its downgrade opens them), on a scratch database of its own."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.core import sealed
from app.dossiers import signing
from tests.accounts.factories import sign_in_staff
from tests.conftest import DATABASE_URL, PG_ADMIN_DSN, alembic_config
from tests.dossiers.conftest import new_dossier_code
from tests.dossiers.test_agencies_cli import run_cli
from tests.test_cli import fetch as fetch_sync


async def stored_secrets(app, agency_code: str) -> list[str]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT s.secret FROM agency_secrets s JOIN agencies a ON a.id = s.agency_id"
                " WHERE a.code = :c ORDER BY s.created_at"
            ),
            {"c": agency_code},
        )
        return [r[0] for r in rows]


async def test_the_database_holds_no_secret_in_clear_and_rotation_gives_two(
    app, client, agency, settings
):
    admin = await sign_in_staff(client, app, [("admin", None)])
    r = await client.post(f"/api/v1/admin/agencies/{agency.code}/secrets", headers=admin["headers"])
    assert r.status_code == 201, r.text
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != agency.secret

    stored = await stored_secrets(app, agency.code)
    assert len(stored) == 2
    for value in stored:
        assert value.startswith("v1.")
        assert "whsec_" not in value
    dump = " ".join(stored)
    for plain in (agency.secret, new):
        assert plain not in dump
        # nor the secret's key bytes, in any of the encodings a dump could show
        assert plain.removeprefix("whsec_") not in dump
    # sealed under DATA_ENCRYPTION_KEY for this purpose: they open to what was shown
    opened = {sealed.unseal(settings.data_encryption_key, "agency-secret", v) for v in stored}
    assert opened == {agency.secret, new}
    # another purpose's key does not open them
    with pytest.raises(sealed.SealBroken):
        sealed.unseal(settings.data_encryption_key, "totp-seed", stored[0])

    # both secrets sign batches the ingest accepts during the overlap
    for secret in (agency.secret, new):
        r = await agency.post_events([agency.upsert(new_dossier_code())], secret=secret)
        assert r.status_code == 200, r.text
    # the record lists ids and dates, never the secret again
    detail = await client.get(f"/api/v1/admin/agencies/{agency.code}", headers=admin["headers"])
    assert new not in detail.text and agency.secret not in detail.text


async def test_a_secret_in_clear_is_refused_by_the_database(app, agency):
    with pytest.raises(IntegrityError):
        async with app.state.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO agency_secrets (id, agency_id, secret, created_at)"
                    " VALUES (:i, :a, :s, now())"
                ),
                {"i": uuid.uuid4(), "a": agency.id, "s": signing.new_secret()},
            )


async def test_a_secret_sealed_under_another_key_signs_nothing_and_is_logged(app, agency, caplog):
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE agency_secrets SET secret = :s WHERE id = :i"),
            {
                "s": sealed.seal("another-key-" + "x" * 32, "agency-secret", agency.secret),
                "i": agency.secret_id,
            },
        )
    r = await agency.post_events([agency.upsert(new_dossier_code())])
    assert r.status_code == 401
    assert r.json()["code"] == "ingest_signature_invalid"
    logged = [rec for rec in caplog.records if rec.getMessage() == "agency_secret_unreadable"]
    assert logged and logged[0].secret_id == str(agency.secret_id)
    assert agency.secret not in caplog.text


def test_the_cli_prints_a_new_secret_once_and_stores_it_sealed(database, capsys, settings):
    code = f"SEAL-{uuid.uuid4().hex[:6]}"
    [unit] = fetch_sync("SELECT code FROM units ORDER BY code LIMIT 1")
    status, out, _ = run_cli(
        capsys, "agency-create", "--code", code, "--name-vi", "Sở Y tế", "--unit", unit["code"]
    )
    assert status == 0
    printed = re.search(r"(whsec_\S+)", out)[1]
    [row] = fetch_sync(
        "SELECT s.secret FROM agency_secrets s JOIN agencies a ON a.id = s.agency_id"
        " WHERE a.code = $1",
        code,
    )
    assert printed not in row["secret"]
    assert sealed.unseal(settings.data_encryption_key, "agency-secret", row["secret"]) == printed


# ---------------------------------------------------------------- migration 0060


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _run(dsn: str, sql: str, *args) -> list:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def test_migration_0060_seals_the_secrets_stored_in_clear_and_its_downgrade_opens_them(settings):
    name = f"city_mig_{uuid.uuid4().hex[:8]}"
    url = f"{DATABASE_URL.rsplit('/', 1)[0]}/{name}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        cfg = alembic_config()
        cfg.attributes["database_url"] = url
        command.upgrade(cfg, "0050")
        unit_id, agency_id = uuid.uuid4(), uuid.uuid4()
        plain = [signing.new_secret(), signing.new_secret()]
        asyncio.run(
            _run(
                dsn,
                "WITH u AS (INSERT INTO units (id, code, name_vi, name_en, kind)"
                " VALUES ($1, 'U-MIG', 'Đơn vị', 'Unit', 'ward') RETURNING id),"
                " a AS (INSERT INTO agencies (id, code, name_vi, name_en, unit_id)"
                " SELECT $2, 'AG-MIG', 'Sở', 'Dept', id FROM u RETURNING id)"
                " INSERT INTO agency_secrets (id, agency_id, secret)"
                " SELECT gen_random_uuid(), a.id, s FROM a, unnest($3::text[]) AS s",
                unit_id,
                agency_id,
                plain,
            )
        )
        command.upgrade(cfg, "0060")
        rows = asyncio.run(_run(dsn, "SELECT secret FROM agency_secrets"))
        stored = [r["secret"] for r in rows]
        assert all(v.startswith("v1.") for v in stored)
        assert not any(p in " ".join(stored) for p in plain)
        key = settings.data_encryption_key
        assert sorted(sealed.unseal(key, "agency-secret", v) for v in stored) == sorted(plain)
        # the downgrade opens them again (each was sealed exactly once)
        command.downgrade(cfg, "0050")
        rows = asyncio.run(_run(dsn, "SELECT secret FROM agency_secrets"))
        assert sorted(r["secret"] for r in rows) == sorted(plain)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
