"""The framework floor: the least a Litestar handler served by granian can cost here.

Two endpoints, the two floors named in DESIGN.md ("Moving parts"):

- ``GET /floor``    returns a tiny msgspec Struct as JSON; nothing else happens.
- ``GET /floor-db`` does one ``SELECT 1`` through an asyncpg pool, nothing else.
- ``GET /floor/<read>`` the query a read endpoint needs, asyncpg rows into msgspec
  Structs (the floor of that read path: what it would cost with nothing in between).

``bench.run`` serves this module with granian (one worker, the same flags as the app
under test) next to the real app, and reports every scenario as a ratio to one of
these two numbers. Keep it trivial: any work added here raises the floor and hides
the app's own cost.

Environment:
- ``DATABASE_URL``  default ``postgresql://postgres@127.0.0.1:5432/postgres``; a
  SQLAlchemy-style ``postgresql+asyncpg://`` URL is accepted too (the app's own form).
- ``DB_POOL_SIZE``  default 10; the pool holds that many connections and may grow to
  twice that, as the app's SQLAlchemy engine does (``app.core.db``: up to twice
  DB_POOL_SIZE, kept open).

If the database cannot be reached at startup, ``/floor`` still works and
``/floor-db`` answers 503, so a floor-only run never needs Postgres.
"""

from __future__ import annotations

import logging
import os

import asyncpg
import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State

log = logging.getLogger("bench.floor")

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class Floor(msgspec.Struct):
    ok: bool
    n: int


_FLOOR = Floor(ok=True, n=1)


class FloorCategory(msgspec.Struct):
    code: str
    name: str
    deadline_working_days: int


class FloorUnit(msgspec.Struct):
    id: str
    code: str
    name: str
    kind: str
    parent_code: str | None
    area_code: str | None


# the same queries the app would make, done as cheaply as asyncpg + msgspec can: the
# floor of a read path ("query floors", issue 18)
_CATEGORIES_SQL = (
    "SELECT code, name_vi, deadline_working_days FROM categories WHERE active ORDER BY code"
)
_UNITS_SQL = (
    "SELECT u.id::text, u.code, u.name_vi, u.kind, p.code, u.area_code"
    " FROM units u LEFT JOIN units p ON p.id = u.parent_id ORDER BY u.code"
)


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants ``postgresql://``; accept the SQLAlchemy driver suffix as well."""
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@get("/floor")
async def floor() -> Floor:
    return _FLOOR


@get("/floor-db")
async def floor_db(state: State) -> Response[Floor]:
    pool: asyncpg.Pool | None = state.get("pool")
    if pool is None:
        return Response(Floor(ok=False, n=0), status_code=503)
    n = await pool.fetchval("SELECT 1")
    return Response(Floor(ok=True, n=n))


@get("/floor/categories")
async def floor_categories(state: State) -> list[FloorCategory]:
    rows = await state.pool.fetch(_CATEGORIES_SQL)
    return [FloorCategory(*row) for row in rows]


@get("/floor/units")
async def floor_units(state: State) -> list[FloorUnit]:
    rows = await state.pool.fetch(_UNITS_SQL)
    return [FloorUnit(*row) for row in rows]


async def _open_pool(app: Litestar) -> None:
    size = int(os.environ.get("DB_POOL_SIZE", "10"))
    dsn = asyncpg_dsn(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    try:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=2 * size, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        log.warning("floor: no database pool (%s); /floor-db will answer 503", exc)
        app.state.pool = None


async def _close_pool(app: Litestar) -> None:
    pool = app.state.get("pool")
    if pool is not None:
        await pool.close()


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[floor, floor_db, floor_categories, floor_units],
        on_startup=[_open_pool],
        on_shutdown=[_close_pool],
    )


app = create_app()
