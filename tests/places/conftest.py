"""Fixtures of the places tests: a session on the migrated test database (no app)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.places.demo import load_reference_data


@pytest.fixture(scope="module")
async def reference_data(database: str) -> str:
    """Hanoi's reference data, loaded (again: the load is idempotent) for this module."""
    engine = create_async_engine(database, poolclass=NullPool)
    async with AsyncSession(engine) as s, s.begin():
        await load_reference_data(s)
    await engine.dispose()
    return database


@pytest.fixture
async def session(reference_data: str) -> AsyncIterator[AsyncSession]:
    """A session on the migrated test database (the app is not needed here)."""
    engine = create_async_engine(reference_data, poolclass=NullPool)
    async with AsyncSession(engine, expire_on_commit=False) as s:
        yield s
    await engine.dispose()
