"""Operational endpoints: liveness, readiness (database, Redis, storage) and metrics
(closed by a bearer token when ``METRICS_TOKEN`` is set)."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text

from app.complaints import lifecycle
from app.core.errors import Unauthenticated, app_error_handler

READY = Gauge(
    "city_dependency_up", "1 when a dependency answered the last readiness check", ["dependency"]
)
WORKER_HEARTBEAT_AGE = Gauge(
    "city_worker_heartbeat_age_seconds", "Seconds since a worker last wrote its heartbeat"
)
QUEUED_JOBS = Gauge("city_queued_jobs", "Jobs waiting in the arq queue")
REPORTS_UNROUTED = Gauge(
    "city_reports_unrouted", "Reports submitted or reopened more than a minute ago, unrouted"
)
REPORTS_OVERDUE = Gauge(
    "city_reports_open_overdue", "Open reports past their deadline (as of the service index)"
)
CHECK_TIMEOUT_SECONDS = 2.0
# the statuses routing takes reports from (submitted, reopened): the unrouted backlog
WAITING_FOR_ROUTING = lifecycle.sources("assigned", "route")
# a worker writes this every 30 s (workers.main.heartbeat); it expires after 3 minutes
WORKER_STALE_SECONDS = 90


METRICS_PATH = "/metrics"


def heartbeat_key(prefix: str) -> str:
    return f"{prefix}:worker:heartbeat"


class Liveness(msgspec.Struct):
    status: str


class DependencyStatus(msgspec.Struct, omit_defaults=True):
    name: str
    ok: bool
    error: str | None = None


class WorkerStatus(msgspec.Struct):
    """What the workers are doing. Informational: the API stays ready without workers
    (it files and answers; the reconciler catches up), but an operator alerts on it."""

    ok: bool  # a heartbeat within 90 s and no report waiting for routing
    heartbeat_age_seconds: float | None  # None: no worker seen for 3 minutes
    queued_jobs: int | None
    reports_unrouted: int | None  # submitted/reopened more than a minute ago
    reports_open_overdue: int | None  # as of the service index's last rebuild


class Readiness(msgspec.Struct):
    status: str  # ready | unavailable
    checks: list[DependencyStatus]
    worker: WorkerStatus | None = None


async def worker_status(state: State) -> WorkerStatus:
    """Reads the heartbeat and queue from Redis, the routing backlog (partial index) and
    the open overdue count (service index) from the database; sets the matching gauges.
    Never raises."""
    prefix = state.settings.redis_prefix
    age = queued = unrouted = overdue = None
    try:
        beat, queued = await asyncio.wait_for(
            asyncio.gather(
                state.redis.get(heartbeat_key(prefix)),
                state.redis.zcard(state.settings.queue_name),
            ),
            CHECK_TIMEOUT_SECONDS,
        )
        if beat is not None:
            age = max(0.0, round(time.time() - float(beat), 1))
    except Exception:  # Redis down: the dependency check says so
        pass
    try:
        async with state.engine.connect() as conn:
            row = (
                await asyncio.wait_for(
                    conn.execute(
                        text(
                            # both cheap at any size: a partial index, and the service
                            # index's per-unit figures (rebuilt every few minutes)
                            "SELECT (SELECT count(*) FROM reports"
                            f"         WHERE status IN ({lifecycle.sql_in(WAITING_FOR_ROUTING)})"
                            "           AND updated_at < now() - interval '1 minute'),"
                            "       (SELECT coalesce(sum(open_overdue), 0) FROM unit_stats"
                            "         WHERE period = 'all')"
                        )
                    ),
                    CHECK_TIMEOUT_SECONDS,
                )
            ).one()
            unrouted, overdue = row[0], row[1]
    except Exception:
        pass
    for gauge, value in (
        (WORKER_HEARTBEAT_AGE, age if age is not None else float("inf")),
        (QUEUED_JOBS, queued),
        (REPORTS_UNROUTED, unrouted),
        (REPORTS_OVERDUE, overdue),
    ):
        if value is not None:
            gauge.set(value)
    ok = age is not None and age <= WORKER_STALE_SECONDS and not unrouted
    return WorkerStatus(ok, age, queued, unrouted, overdue)


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
        checks, worker = await asyncio.gather(readiness_checks(state), worker_status(state))
        ok = all(c.ok for c in checks)
        return Response(
            Readiness(status="ready" if ok else "unavailable", checks=checks, worker=worker),
            status_code=200 if ok else 503,
        )


# The request metrics Litestar's PrometheusMiddleware recorded (PrometheusConfig(app_name=
# "city", prefix="city", group_path=True)), same names, labels and buckets, kept by a
# pure-ASGI middleware of our own (issue 18 item 9): Litestar's built a Request, merged
# label dicts and looked up four labelled children under their locks on every request
# (~90 µs of a 1,200 µs areas lookup); here each (method, route, status) finds its
# children in a dict.
REQUEST_LABELS = ("method", "path", "status_code", "app_name")
APP_NAME = "city"
REQUESTS_TOTAL = Counter("city_requests_total", "Total requests", REQUEST_LABELS)
REQUEST_DURATION = Histogram(
    "city_request_duration_seconds", "Request duration, in seconds", REQUEST_LABELS
)
REQUESTS_IN_PROGRESS = Gauge(
    "city_requests_in_progress",
    "Total requests currently in progress",
    REQUEST_LABELS,
    multiprocess_mode="livesum",
)
REQUEST_ERRORS = Counter("city_requests_error_total", "Total errors in requests", REQUEST_LABELS)
# not measured: the scrape itself and the probes (as the access log leaves them out)
UNMEASURED_PREFIXES = ("/metrics", "/health")

_in_progress: dict[tuple[str, str], Any] = {}
_finished: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _in_progress_child(method: str, path: str) -> Any:
    try:
        return _in_progress[method, path]
    except KeyError:
        # status_code is 200 while in progress, as Litestar's middleware labelled it
        child = _in_progress[method, path] = REQUESTS_IN_PROGRESS.labels(
            method, path, 200, APP_NAME
        )
        return child


def _finished_children(method: str, path: str, status: int) -> tuple[Any, Any]:
    try:
        return _finished[method, path, status]
    except KeyError:
        labels = (method, path, status, APP_NAME)
        children = _finished[method, path, status] = (
            REQUESTS_TOTAL.labels(*labels),
            REQUEST_DURATION.labels(*labels),
        )
        return children


class RequestMetricsMiddleware:
    """Counts every routed request by method, route template and status; its duration
    (to the last body message) in a histogram; requests in progress; 5xx answers.
    Exposed by ``/metrics``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(
            UNMEASURED_PREFIXES
        ):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method") or "websocket")  # a websocket is labelled by its type
        path = scope.get("path_template") or scope["path"]
        in_progress = _in_progress_child(method, path)
        started = perf_counter()
        span = [200, 0.0]  # status, seconds to the last body message

        async def send_measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                span[0] = message["status"]
            elif message["type"] == "http.response.body":
                span[1] = perf_counter() - started
            await send(message)

        in_progress.inc()
        try:
            await self.app(scope, receive, send_measured)
        finally:
            in_progress.dec()
            status = int(span[0])
            total, duration = _finished_children(method, path, status)
            if status >= 500:  # a series only for what failed, as before
                REQUEST_ERRORS.labels(method, path, status, APP_NAME).inc()
            total.inc()
            duration.observe(span[1])


class MetricsTokenMiddleware:
    """With ``METRICS_TOKEN`` set, ``/metrics`` needs ``Authorization: Bearer <token>``
    (else 401 problem+json). It sits before the authentication middleware and takes the
    header off a scrape it let through, as that token is not a user's access token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == METRICS_PATH:
            expected = scope["app"].state.settings.metrics_token
            if expected:
                headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
                given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
                scheme, _, credentials = given.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    credentials.strip().encode(), expected.encode()
                ):
                    request: Request = Request(scope)
                    response = app_error_handler(request, Unauthenticated())
                    response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
                    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
                    return
                scope["headers"] = headers
        await self.app(scope, receive, send)
