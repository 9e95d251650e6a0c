"""Hot reads: one statement, no transaction round trips (issue 18 item 9).

The request's session opens a transaction on its first statement (``BEGIN``) and the
boundary commits it (``COMMIT``): two round trips to PostgreSQL around a read that needs
one. A read path that makes a single statement takes the session's connection in
autocommit instead, so only the statement goes over the wire; it sees one snapshot, as
any single statement does. Only for requests that write nothing: once the session has
begun (something ran before), the connection is used as it is, inside its transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


async def single_statement(session: AsyncSession) -> AsyncConnection:
    """The connection to run a read-only request's one statement on."""
    if session.in_transaction():
        return await session.connection()
    return await session.connection(execution_options=_AUTOCOMMIT)
