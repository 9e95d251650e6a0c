"""PostgreSQL LISTEN on one channel, for caches every process must drop together.

A trigger calls ``pg_notify(channel, ...)`` in the transaction that changes the data, so
the notice arrives after the commit, in every process that listens. While the listening
connection is down (PostgreSQL restarted, network cut) nobody can be told, so the
listener reports itself as not ``live`` and callers treat their cache as stale; it
reconnects with backoff and, once back, calls ``on_notify`` once more, since notices
sent while it was away are lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger("city.listen")


def asyncpg_dsn(url: str) -> str:
    """asyncpg's DSN from the app's SQLAlchemy URL (``postgresql+asyncpg://``)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Listener:
    def __init__(self, database_url: str, channel: str, on_notify: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._on_notify = on_notify
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.live = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"listen:{self._channel}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def _notified(self, *_: object) -> None:
        self._on_notify()

    def _lost(self, *_: object) -> None:
        self.live = False
        self._on_notify()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                self._conn = await asyncpg.connect(
                    self._dsn, timeout=5, server_settings={"application_name": "city-listen"}
                )
                self._conn.add_termination_listener(self._lost)
                await self._conn.add_listener(self._channel, self._notified)
                self.live = True
                self._on_notify()  # whatever changed while nobody listened
                delay = 0.5
                while True:  # a cut that sends no RST shows only when we speak
                    await asyncio.sleep(15)
                    await self._conn.execute("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                self.live = False
                raise
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                self.live = False
                log.warning("listen_unavailable", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
