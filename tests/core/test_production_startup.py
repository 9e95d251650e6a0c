"""Production refuses development secrets, the log SMS sender and demo staff (issue 17,
item 1): the API's factory and the worker stop at start with one message naming every
problem and a non-zero exit; good production settings start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import msgspec
import pytest

from app.places.demo import DEMO_STAFF_EMAILS
from app.settings import Settings
from app.startup import EXIT_CONFIG, UnsafeForProduction, check_production, settings_problems
from tests.conftest import DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k" * 24 + uuid.uuid4().hex  # 56 bytes
GOOD_HASH_KEY = "h" * 24 + uuid.uuid4().hex
GOOD_SEAL_KEY = "k" * 24 + uuid.uuid4().hex


def fetch(sql: str, *args):
    async def run():
        conn = await asyncpg.connect(DATABASE_URL.replace("+asyncpg", ""))
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def demo_admin(database):
    """The development demo admin (its password is in the README) in the database."""
    user_id = uuid.uuid4()
    fetch(
        "INSERT INTO users (id, kind, status, email, full_name) "
        "VALUES ($1, 'staff', 'active', $2, 'Demo admin')",
        user_id,
        DEMO_STAFF_EMAILS[0],
    )
    yield DEMO_STAFF_EMAILS[0]
    fetch("DELETE FROM users WHERE id = $1", user_id)


def production_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ENVIRONMENT="production",
        DATABASE_URL=DATABASE_URL,
        SECRET_KEY=GOOD_SECRET,
        CITIZEN_ID_HASH_KEY=GOOD_HASH_KEY,
        DATA_ENCRYPTION_KEY=GOOD_SEAL_KEY,
        SMS_BACKEND="http",
        SMS_HTTP_URL="http://127.0.0.1:9/sms",
        UV_PYTHON_DOWNLOADS="never",
    )
    env.update(overrides)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


BAD = {
    "SECRET_KEY": Settings().secret_key,  # the development default
    "CITIZEN_ID_HASH_KEY": "x" * 31,  # one byte short
    "SMS_BACKEND": "log",
}


def assert_names_every_problem(result: subprocess.CompletedProcess, process: str, email: str):
    assert result.returncode == EXIT_CONFIG, result.stderr
    err = result.stderr
    assert f"city {process}: refusing to start with ENVIRONMENT=production:" in err
    assert "SECRET_KEY is a development default" in err
    assert "CITIZEN_ID_HASH_KEY is 31 bytes long; it needs at least 32" in err
    assert "SMS_BACKEND=log writes sign-in codes to the log" in err
    assert f"demo staff accounts exist (password published in the README): {email}" in err
    assert "Traceback" not in err  # one message, not a wall


def test_worker_refuses_unsafe_production_settings(demo_admin):
    result = run([sys.executable, "-m", "workers"], production_env(**BAD))
    assert_names_every_problem(result, "worker", demo_admin)


def test_api_factory_refuses_unsafe_production_settings(demo_admin):
    code = "from app.main import create_app; create_app(); print('started')"
    result = run([sys.executable, "-c", code], production_env(**BAD))
    assert_names_every_problem(result, "api", demo_admin)
    assert "started" not in result.stdout


def test_granian_stops_when_the_factory_refuses(demo_admin):
    """The production command (Dockerfile) exits instead of serving."""
    granian = Path(sys.executable).with_name("granian")
    args = [str(granian), "--interface", "asgi", "--factory", "app.main:create_app"]
    args += ["--host", "127.0.0.1", "--port", "18731", "--workers", "1"]
    result = run(args, production_env(**BAD), timeout=120)
    assert result.returncode != 0
    assert "city api: refusing to start with ENVIRONMENT=production:" in result.stderr
    assert "SMS_BACKEND=log" in result.stderr


def test_an_unreachable_database_is_a_problem_not_a_pass(database):
    """Fails closed: without the database the demo-staff check cannot say yes."""
    missing_db = DATABASE_URL.rsplit("/", 1)[0] + "/city_no_such_db_" + uuid.uuid4().hex[:6]
    result = run([sys.executable, "-m", "workers"], production_env(DATABASE_URL=missing_db))
    assert result.returncode == EXIT_CONFIG
    assert "cannot check for demo staff accounts" in result.stderr
    assert "does not exist" in result.stderr


def test_good_production_settings_start(database):
    code = "from app.main import create_app; create_app(); print('started')"
    result = run([sys.executable, "-c", code], production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_check_in_process_passes_good_settings_and_ignores_development(database):
    good = msgspec.convert(
        {
            k.lower(): v
            for k, v in production_env().items()
            if k.lower() in Settings.__struct_fields__
        },
        Settings,
        strict=False,
    )
    check_production(good)  # no exception
    check_production(Settings(environment="development"))  # defaults are fine there


@pytest.mark.parametrize(
    ("secret_key", "hash_key", "expected"),
    [
        ("change-me-in-production", GOOD_HASH_KEY, "SECRET_KEY is a development default"),
        (GOOD_SECRET, Settings().citizen_id_hash_key, "CITIZEN_ID_HASH_KEY is a development"),
        ("é" * 15, GOOD_HASH_KEY, "SECRET_KEY is 30 bytes long"),  # bytes, not characters
        (GOOD_SECRET, GOOD_SECRET, "SECRET_KEY and CITIZEN_ID_HASH_KEY are the same"),
    ],
)
def test_settings_problems(secret_key, hash_key, expected):
    settings = Settings(
        environment="production",
        secret_key=secret_key,
        citizen_id_hash_key=hash_key,
        data_encryption_key=GOOD_SEAL_KEY,
        sms_backend="http",
    )
    [problem] = settings_problems(settings)
    assert problem.startswith(expected)
    good = {"secret_key": GOOD_SECRET, "citizen_id_hash_key": "y" * 32, "sms_backend": "http"}
    assert settings_problems(Settings(**good, data_encryption_key=GOOD_SEAL_KEY)) == []
    # the key that seals agency and TOTP secrets: not the default, not another key
    assert settings_problems(Settings(**good))[0].startswith(
        "DATA_ENCRYPTION_KEY is a development default"
    )
    assert settings_problems(Settings(**good, data_encryption_key=GOOD_SECRET)) == [
        "DATA_ENCRYPTION_KEY must differ from SECRET_KEY and CITIZEN_ID_HASH_KEY"
    ]


def test_demo_staff_found_in_process(demo_admin):
    settings = Settings(
        environment="production",
        database_url=DATABASE_URL,
        secret_key=GOOD_SECRET,
        citizen_id_hash_key=GOOD_HASH_KEY,
        data_encryption_key=GOOD_SEAL_KEY,
        sms_backend="http",
    )
    with pytest.raises(UnsafeForProduction) as caught:
        check_production(settings)
    assert caught.value.problems == [
        f"demo staff accounts exist (password published in the README): {demo_admin}"
        " — disable or delete them"
    ]
