"""Migrations run from empty, downgrade to base, upgrade again, and match the models."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.models import include_object, metadata
from tests.conftest import DATABASE_URL, PG_ADMIN_DSN, alembic_config


def _scratch_database() -> tuple[str, str]:
    name = f"city_mig_{uuid.uuid4().hex[:8]}"
    base = DATABASE_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_upgrade_downgrade_upgrade_round_trip():
    name, url = _scratch_database()
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        cfg = alembic_config()
        cfg.attributes["database_url"] = url
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_models_and_migrations_agree(database):
    """Autogenerate against the migrated test database finds nothing to do."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def diff() -> list:
        engine = create_async_engine(database)
        async with engine.connect() as conn:

            def compare(sync_conn):
                context = MigrationContext.configure(
                    sync_conn, opts={"include_object": include_object, "compare_type": True}
                )
                return compare_metadata(context, metadata)

            result = await conn.run_sync(compare)
        await engine.dispose()
        return result

    assert asyncio.run(diff()) == []
