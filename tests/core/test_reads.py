"""A ``Query`` read through the engine (issue 18 item 9, second pass): one pooled
connection for the one statement, no session and no transaction, and the connection is
back in the pool whatever happened to the statement."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import Integer, bindparam, func, literal_column, select

from app.core import db
from app.core.reads import Query

SQUARE = Query(select((bindparam("n", type_=Integer) * bindparam("n", type_=Integer)).label("sq")))
# 1 / n: n = 0 makes PostgreSQL refuse the statement
INVERSE = Query(select(literal_column("1") / bindparam("n", type_=Integer)))
SLEEP = Query(select(func.pg_sleep(bindparam("seconds"))))


@pytest.fixture
async def engine(settings):
    engine = db.make_engine(settings)  # 2 × DB_POOL_SIZE connections, no overflow
    yield engine
    await engine.dispose()


async def test_reads_through_the_engine_give_their_connection_back(engine) -> None:
    size = engine.pool.size()
    rows = await asyncio.gather(*(SQUARE.fetchrow(engine, n=n) for n in range(3 * size)))
    assert [r[0] for r in rows] == [n * n for n in range(3 * size)]
    many = await SQUARE.fetch(engine, n=7)
    assert [tuple(r) for r in many] == [(49,)]
    assert engine.pool.checkedout() == 0


async def test_a_read_runs_alone_without_begin_or_commit(engine) -> None:
    sent: list[str] = []
    raw = await engine.raw_connection()  # the pool holds this one connection now
    raw.driver_connection.add_query_logger(lambda record: sent.append(record.query))
    raw.close()
    assert (await SQUARE.fetchrow(engine, n=3))[0] == 9
    await asyncio.sleep(0)  # asyncpg hands its query log to the loop
    assert sent == [SQUARE.sql]


async def test_a_refused_statement_gives_its_connection_back(engine) -> None:
    with pytest.raises(asyncpg.DivisionByZeroError):
        await INVERSE.fetchrow(engine, n=0)
    assert engine.pool.checkedout() == 0
    # and the pool's connections still read
    rows = await asyncio.gather(*(SQUARE.fetchrow(engine, n=2) for _ in range(engine.pool.size())))
    assert {r[0] for r in rows} == {4}


async def test_a_cancelled_read_gives_its_connection_back_usable(engine) -> None:
    task = asyncio.create_task(SLEEP.fetchrow(engine, seconds=5))
    await asyncio.sleep(0.3)  # the statement is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.pool.checkedout() == 0
    started = asyncio.get_running_loop().time()
    rows = await asyncio.wait_for(
        asyncio.gather(*(SQUARE.fetchrow(engine, n=5) for _ in range(engine.pool.size()))), 10
    )
    assert {r[0] for r in rows} == {25}
    # the cancelled pg_sleep(5) did not hold its connection to the end
    assert asyncio.get_running_loop().time() - started < 4
