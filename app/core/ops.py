"""Operational endpoints: liveness, readiness (database, Redis, storage) and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import Gauge
from sqlalchemy import text

READY = Gauge(
    "city_dependency_up", "1 when a dependency answered the last readiness check", ["dependency"]
)
CHECK_TIMEOUT_SECONDS = 2.0


class Liveness(msgspec.Struct):
    status: str


class DependencyStatus(msgspec.Struct, omit_defaults=True):
    name: str
    ok: bool
    error: str | None = None


class Readiness(msgspec.Struct):
    status: str  # ready | unavailable
    checks: list[DependencyStatus]


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> DependencyStatus:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # report which dependency failed and how, never raise
        READY.labels(name).set(0)
        message = str(exc) or type(exc).__name__
        return DependencyStatus(name=name, ok=False, error=f"{type(exc).__name__}: {message}"[:200])
    READY.labels(name).set(1)
    return DependencyStatus(name=name, ok=True)


async def readiness_checks(state: State) -> list[DependencyStatus]:
    async def database() -> None:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await state.redis.ping()

    async def storage() -> None:
        await state.storage.check()

    return list(
        await asyncio.gather(
            _check("database", database), _check("redis", redis), _check("storage", storage)
        )
    )


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]
    include_in_schema = True

    @get("/live", summary="Liveness: the process answers", cache=False)
    async def live(self) -> Liveness:
        return Liveness(status="alive")

    @get(
        "/ready",
        summary="Readiness: database, Redis and storage answer",
        description="200 when every dependency answers; 503 naming the ones that failed.",
        cache=False,
        responses={
            503: ResponseSpec(
                data_container=Readiness,
                generate_examples=False,
                description="A dependency failed: the checks say which",
            )
        },
    )
    async def ready(self, state: State) -> Response[Readiness]:
        checks = await readiness_checks(state)
        ok = all(c.ok for c in checks)
        return Response(
            Readiness(status="ready" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
        )
