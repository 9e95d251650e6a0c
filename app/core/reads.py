"""Hot reads: one statement, no transaction round trips, no per-call SQL building
(issue 18 item 9).

The request's session opens a transaction on its first statement (``BEGIN``) and the
boundary commits it (``COMMIT``): two round trips to PostgreSQL around a read that needs
one. A read path that makes a single statement takes the session's connection in
autocommit instead, so only the statement goes over the wire; it sees one snapshot, as
any single statement does. Only for requests that write nothing: once the session has
begun (something ran before), the connection is used as it is, inside its transaction.

``Query`` goes one step further for the hottest reads: the SQLAlchemy Core statement is
compiled once (at import) and run on the driver's connection with its bind values in
order, so a call costs asyncpg's prepared-statement execution and no statement building,
cache-key generation or result metadata (measured: ~1 ms of CPU per request on /me).
Rows come back as asyncpg records, for the caller to put into its msgspec Structs.

A read endpoint whose whole answer is one ``Query`` needs no session at all: give the
query the engine (``state.engine``) instead, and it borrows a pooled connection for the
one statement and gives it back. No ``Session`` is built, begun, committed and closed
around it, and no generator dependency is resolved and cleaned up by the framework:
measured, that was ~240 µs of CPU per request on this machine, more than the statement
itself (issue 18 item 9, second pass; the areas lookup and the inbox read this way).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import Select

_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
_DIALECT = asyncpg_dialect()
# what a Query reads through: the request's session (inside its transaction once it has
# begun, else in autocommit), or the engine (a pooled connection for the one statement)
Reader = AsyncSession | AsyncEngine


async def single_statement(session: AsyncSession) -> AsyncConnection:
    """The connection to run a read-only request's one statement on."""
    if session.in_transaction():
        return await session.connection()
    return await session.connection(execution_options=_AUTOCOMMIT)


class Query:
    """A Core SELECT compiled once; ``await q.fetch(session_or_engine, name=value, ...)``. Every
    bind parameter must be a named ``bindparam`` given at each call."""

    def __init__(self, statement: Select) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        literal = {
            name: param.value
            for name, param in compiled.binds.items()
            if not param.required and name in self.names
        }
        self._literal = literal

    def _args(self, values: dict[str, Any]) -> list[Any]:
        return [values[n] if n in values else self._literal[n] for n in self.names]

    async def fetch(self, db: Reader, **values: Any) -> list[Any]:
        if isinstance(db, AsyncEngine):
            pooled = await db.raw_connection()
            try:
                return await _driver(pooled).fetch(self.sql, *self._args(values))
            finally:
                pooled.close()  # back to the pool (nothing to roll back: no transaction)
        raw = await (await single_statement(db)).get_raw_connection()
        return await _driver(raw).fetch(self.sql, *self._args(values))

    async def fetchrow(self, db: Reader, **values: Any) -> Any:
        if isinstance(db, AsyncEngine):
            pooled = await db.raw_connection()
            try:
                return await _driver(pooled).fetchrow(self.sql, *self._args(values))
            finally:
                pooled.close()
        raw = await (await single_statement(db)).get_raw_connection()
        return await _driver(raw).fetchrow(self.sql, *self._args(values))


def _driver(raw: PoolProxiedConnection) -> Any:
    driver = raw.driver_connection
    assert driver is not None  # a connection checked out of the pool has its driver's
    return driver
