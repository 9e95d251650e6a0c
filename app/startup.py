"""Refuse to start production with development secrets, the log SMS sender or demo staff.

``refuse_unsafe_production(settings)`` is called before the API (``app.main.create_app``)
and the worker (``python -m workers``) start. In production it collects every problem,
prints one message naming them all and exits with status 78 (EX_CONFIG); in any other
environment it does nothing.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from app.settings import Settings

MIN_SECRET_BYTES = 32
EXIT_CONFIG = 78  # sysexits.h EX_CONFIG: a configuration error
# placeholders that shipped in docker-compose.yml before it demanded real secrets
KNOWN_PLACEHOLDERS = frozenset({"change-me-in-production", "change-me", "secret", "changeme"})


class UnsafeForProduction(Exception):
    """Every reason the settings are unfit for production, as one message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "refusing to start with ENVIRONMENT=production:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def settings_problems(settings: Settings) -> list[str]:
    """What is wrong with the settings themselves (no I/O)."""
    defaults = Settings()
    problems = []
    for name in ("secret_key", "citizen_id_hash_key", "data_encryption_key"):
        value: str = getattr(settings, name)
        env = name.upper()
        if value == getattr(defaults, name) or value.lower() in KNOWN_PLACEHOLDERS:
            problems.append(f"{env} is a development default or placeholder: set a random one")
        elif len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(
                f"{env} is {len(value.encode())} bytes long; it needs at least "
                f"{MIN_SECRET_BYTES} (e.g. `openssl rand -base64 48`)"
            )
    if settings.secret_key == settings.citizen_id_hash_key:
        problems.append("SECRET_KEY and CITIZEN_ID_HASH_KEY are the same: use two keys")
    if settings.data_encryption_key in (settings.secret_key, settings.citizen_id_hash_key):
        problems.append("DATA_ENCRYPTION_KEY must differ from SECRET_KEY and CITIZEN_ID_HASH_KEY")
    if settings.sms_backend == "log":
        problems.append("SMS_BACKEND=log writes sign-in codes to the log: use `http`")
    if settings.open311_media_allow_private:
        problems.append(
            "OPEN311_MEDIA_ALLOW_PRIVATE=true lets third-party apps make the worker fetch "
            "private addresses: tests only"
        )
    return problems


async def _demo_staff_present(database_url: str) -> list[str]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from app.places.demo import DEMO_STAFF_EMAILS

    engine = create_async_engine(
        database_url, poolclass=NullPool, connect_args={"timeout": 5, "command_timeout": 5}
    )
    try:
        async with engine.connect() as conn:
            found = await conn.scalars(
                text(
                    "SELECT email FROM users WHERE kind = 'staff' AND status = 'active'"
                    " AND email = ANY(CAST(:emails AS text[])) ORDER BY email"
                ),
                {"emails": list(DEMO_STAFF_EMAILS)},
            )
            return list(found)
    finally:
        await engine.dispose()


def demo_staff_problems(settings: Settings) -> list[str]:
    """Active demo staff accounts (known password) in the database. Runs its own event
    loop in a thread, so it works whether or not the caller is inside one."""
    result: list[str] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.extend(asyncio.run(_demo_staff_present(settings.database_url)))
        except Exception as exc:  # reported as a problem, not a traceback
            error.append(exc)

    thread = threading.Thread(target=run, name="demo-staff-check")
    thread.start()
    thread.join()
    if error:
        exc = getattr(error[0], "orig", None) or error[0]  # the driver's error, not the wrapper
        reason = (str(exc).splitlines() or [""])[0]
        return [f"cannot check for demo staff accounts: {type(exc).__name__}: {reason}"[:300]]
    if result:
        return [
            f"demo staff accounts exist (password published in the README): {', '.join(result)}"
            " — disable or delete them"
        ]
    return []


def check_production(settings: Settings) -> None:
    """Raise ``UnsafeForProduction`` naming every problem; nothing outside production."""
    if settings.environment != "production":
        return
    problems = settings_problems(settings) + demo_staff_problems(settings)
    if problems:
        raise UnsafeForProduction(problems)


def refuse_unsafe_production(settings: Settings, process: str) -> None:
    """Exit the process with one clear message if production settings are unsafe."""
    try:
        check_production(settings)
    except UnsafeForProduction as exc:
        sys.stderr.write(f"city {process}: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_CONFIG) from None
