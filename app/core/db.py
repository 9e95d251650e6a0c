"""Database engine and the per-request session.

The boundary owns the transaction: the request (here) or the job (workers) opens one
session, commits on success, rolls back on error. Services take the session and never
commit. Jobs collected during the request are enqueued only after the commit; what was
put in storage during a transaction that rolls back is deleted (``jobs.after_rollback``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from litestar.di import NamedDependency
from sqlalchemy import CursorResult, Result
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core import jobs
from app.core.errors import AppError
from app.settings import Settings


def make_engine(settings: Settings) -> AsyncEngine:
    # DB_POOL_SIZE connections plus as many again, all kept open. Not as SQLAlchemy
    # "overflow": an overflow connection is closed when it comes back while the idle
    # queue is full, and under asyncio that happens all the time at a steady load (the
    # queue fills before the waiting tasks run): the filing bench opened 12-18 new
    # PostgreSQL connections a second that way (a backend fork and asyncpg's set-up each).
    return create_async_engine(
        settings.database_url,
        pool_size=2 * settings.db_pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        # a failing statement's error (and so its log line) never carries the values it
        # was given: they are what people typed (names, phones, report texts)
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": "city-app", "timezone": "UTC"}},
    )


def rowcount(result: Result[Any]) -> int:
    """Rows an INSERT, UPDATE or DELETE touched. SQLAlchemy types ``session.execute()`` as
    ``Result``; for those statements it is a ``CursorResult``, which has ``rowcount``."""
    return cast(CursorResult[Any], result).rowcount


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession], redis: jobs.Redis | None
) -> AsyncIterator[AsyncSession]:
    """One session and one transaction; commit on success, then enqueue collected jobs."""
    pending = jobs.begin()
    async with sessionmaker() as session:
        try:
            yield session
        except AppError as exc:
            if not exc.keep_writes:
                await _roll_back(session, pending)
                raise
            # e.g. a wrong one-time code: the failed attempt must count
            await session.commit()
            await jobs.flush(pending, redis)
            raise
        except BaseException:
            await _roll_back(session, pending)
            raise
        else:
            # a failed COMMIT undoes nothing here: it may have reached PostgreSQL before
            # the connection broke; objects left without a row go with the purge cron
            try:
                await session.commit()
            except BaseException:
                jobs.discard(pending)  # the boundary ends with it (jobs.end)
                raise
    await jobs.flush(pending, redis)


async def _roll_back(session: AsyncSession, pending: jobs.PendingWork) -> None:
    """Roll back, drop the collected jobs, then undo what was written outside the
    database for this transaction (``jobs.after_rollback``: stored photos)."""
    try:
        await session.rollback()
    finally:
        jobs.discard(pending)
        await jobs.rolled_back(pending)


# the request's session, injected by name into controllers
DbSession = NamedDependency[AsyncSession]
