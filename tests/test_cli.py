"""The command line creates units and staff accounts (sync tests: the CLI runs its own
event loop)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from app.cli import main
from tests.conftest import DATABASE_URL


def fetch(sql: str, *args):
    async def run():
        conn = await asyncpg.connect(DATABASE_URL.replace("+asyncpg", ""))
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def unit_code(database):
    code = f"cli-unit-{uuid.uuid4().hex[:6]}"
    yield code
    fetch("DELETE FROM staff_roles WHERE unit_id IN (SELECT id FROM units WHERE code = $1)", code)
    fetch("DELETE FROM units WHERE code = $1", code)


def test_create_unit_and_staff_with_roles(unit_code, monkeypatch, capsys):
    main(
        [
            "create-unit",
            "--code",
            unit_code,
            "--name-vi",
            "Đội thử",
            "--kind",
            "department",
            "--parent",
            "so-xay-dung",
        ]
    )
    [unit] = fetch(
        "SELECT u.kind, p.code AS parent FROM units u JOIN units p ON p.id = u.parent_id "
        "WHERE u.code = $1",
        unit_code,
    )
    assert (unit["kind"], unit["parent"]) == ("department", "so-xay-dung")

    email = f"cli-{uuid.uuid4().hex[:6]}@city.test"
    monkeypatch.setenv("STAFF_PASSWORD", "a long enough password")
    main(
        [
            "create-staff",
            "--email",
            email,
            "--name",
            "Cán bộ CLI",
            "--role",
            f"manager:{unit_code}",
            "--role",
            "dispatcher",
        ]
    )
    assert "created staff" in capsys.readouterr().out
    roles = fetch(
        "SELECT r.role, un.code FROM staff_roles r JOIN users us ON us.id = r.user_id "
        "LEFT JOIN units un ON un.id = r.unit_id WHERE us.email = $1 ORDER BY r.role",
        email,
    )
    assert [(r["role"], r["code"]) for r in roles] == [("dispatcher", None), ("manager", unit_code)]
    fetch("DELETE FROM users WHERE email = $1", email)


@pytest.mark.parametrize(
    ("role", "message"),
    [("officer", "needs a unit"), ("admin:so-xay-dung", "city-wide"), ("mayor", "unknown role")],
)
def test_create_staff_refuses_bad_roles(database, monkeypatch, role, message):
    monkeypatch.setenv("STAFF_PASSWORD", "a long enough password")
    with pytest.raises(SystemExit, match=message):
        main(["create-staff", "--email", "x@city.test", "--name", "X", "--role", role])
    assert fetch("SELECT 1 FROM users WHERE email = 'x@city.test'") == []


def test_create_staff_refuses_short_passwords(database, monkeypatch):
    monkeypatch.setenv("STAFF_PASSWORD", "short")
    with pytest.raises(SystemExit, match="at least 12"):
        main(["create-staff", "--email", "y@city.test", "--name", "Y", "--role", "admin"])
