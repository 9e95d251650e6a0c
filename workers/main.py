"""The arq worker: job functions and cron jobs. Jobs are thin: each opens one
transaction (the boundary), calls an app service, and commits.

Run with ``python -m workers`` (or ``arq workers.main.WorkerSettings``).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import cron
from arq.connections import RedisSettings

from app.complaints import clusters as complaints_clusters
from app.complaints import service as complaints_service
from app.core import db, jobs
from app.core.clock import Clock
from app.core.logging import configure_logging
from app.core.ops import heartbeat_key
from app.core.push import make_push_sender
from app.core.storage import make_storage
from app.notifications import jobs as notification_jobs
from app.routing import service as routing
from app.settings import get_settings
from app.stats import service as stats
from workers import housekeeping

log = logging.getLogger("city.worker")
settings = get_settings()


def queue_name(prefix: str) -> str:
    return f"{prefix}:queue"


async def startup(ctx: dict[str, Any]) -> None:
    configure_logging(settings.log_level)
    engine = db.make_engine(settings)
    ctx.update(
        settings=settings,
        engine=engine,
        sessionmaker=db.make_sessionmaker(engine),
        storage=make_storage(settings),
        push=make_push_sender(settings),
        clock=ctx.get("clock") or Clock(),
        deadlines=routing.Deadlines.from_settings(settings),
    )
    await heartbeat(ctx)
    # Everything made so far (modules, the SDK, SQLAlchemy's mappers) lives as long as the
    # process: leave it out of every garbage collection from now on. Jobs allocate many
    # short-lived containers, and each full collection walked all of these too (≈ 20 %
    # of a worker's CPU per push; docs/benchmarks.md, "Push").
    gc.freeze()
    log.info("worker_started", extra={"queue": queue_name(settings.redis_prefix)})


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["push"].close()
    await ctx["engine"].dispose()
    log.info("worker_stopped")


async def in_transaction(
    ctx: dict[str, Any], work: Callable[..., Awaitable[Any]], *args: Any
) -> Any:
    """The job's boundary: one session and transaction; jobs it enqueues go after commit."""
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        return await work(session, *args)


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Lets readiness and metrics see that a worker is alive."""
    await ctx["redis"].set(heartbeat_key(settings.redis_prefix), str(time.time()), ex=180)


async def purge_expired_sign_in_data(ctx: dict[str, Any]) -> int:
    return await in_transaction(ctx, housekeeping.purge_expired_sign_in_data, ctx["clock"].now())


async def purge_unattached_photos(ctx: dict[str, Any]) -> int:
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        return await complaints_service.purge_unattached_photos(
            session, ctx["storage"], ctx["clock"].now()
        )


async def refresh_report_map(ctx: dict[str, Any]) -> int | None:
    """Rebuild the public map's cluster snapshot (one statement, one transaction), then
    vacuum the rows it replaced. Returns the number of cells, or None when another
    refresh was already running."""
    result = await in_transaction(ctx, complaints_clusters.refresh_map_cells)
    if result is not None:
        await complaints_clusters.vacuum_map_cells(ctx["engine"])
        log.info(
            "report_map_refreshed",
            extra={"cells": result.cells, "reports": result.reports, "build_ms": result.build_ms},
        )
        return result.cells
    return None


async def route_report(ctx: dict[str, Any], report_id: str) -> int:
    """Route the report (and every other one waiting, up to a batch). Idempotent: a
    report already routed, or being routed by another worker, is left alone."""
    routed = await in_transaction(
        ctx,
        routing.route_pending,
        ctx["deadlines"],
        ctx["clock"].now(),
        settings.routing_batch_size,
    )
    if routed:
        log.info("reports_routed", extra={"count": len(routed), "job_report": report_id})
    return len(routed)


async def sweep_deadlines(ctx: dict[str, Any]) -> dict[str, int]:
    """Reminders at 75 %, overdue marks, escalations; one set-based statement each."""
    result = await in_transaction(ctx, routing.sweep_deadlines, ctx["clock"].now())
    if result.reminded or result.overdue or result.escalated:
        log.info(
            "deadlines_swept",
            extra={
                "reminded": result.reminded,
                "overdue": result.overdue,
                "escalated": result.escalated,
            },
        )
    return {"reminded": result.reminded, "overdue": result.overdue, "escalated": result.escalated}


async def close_unrated(ctx: dict[str, Any]) -> int:
    return await in_transaction(
        ctx, routing.close_unrated, ctx["clock"].now(), settings.rating_window_days
    )


async def route_waiting(ctx: dict[str, Any]) -> int:
    """Route the whole backlog, a batch per transaction, until none is left."""
    total = 0
    while True:
        routed = await in_transaction(
            ctx,
            routing.route_pending,
            ctx["deadlines"],
            ctx["clock"].now(),
            settings.routing_batch_size,
        )
        total += len(routed)
        if len(routed) < settings.routing_batch_size:
            return total


async def reconcile(ctx: dict[str, Any]) -> int:
    """Nothing is lost: when a report still waits for routing a minute after its last
    change (its job was lost to a Redis flush or outage, a crash between commit and
    enqueue, or is stuck with a killed worker), one job routes the whole backlog. Its id
    names the minute, so several workers running this cron enqueue it once. Returns the
    number of reports found waiting."""
    now = ctx["clock"].now()
    async with ctx["sessionmaker"]() as session:
        waiting = await routing.count_awaiting_routing(
            session, now, settings.reconcile_after_seconds
        )
    if waiting:
        await ctx["redis"].enqueue_job(
            "route_waiting",
            _job_id=jobs.qualified_job_id(ctx["redis"], f"route-waiting:{now:%Y%m%d%H%M}"),
        )
        log.warning("reconciling_unrouted_reports", extra={"waiting": waiting})
    return waiting


async def refresh_service_index(ctx: dict[str, Any]) -> int | None:
    """Rebuild the service index (unit_stats) in one transaction; None when another
    worker is already rebuilding it."""
    result = await in_transaction(ctx, stats.refresh_unit_stats, ctx["clock"].now())
    if result is not None:
        log.info(
            "service_index_refreshed", extra={"cells": result.cells, "build_ms": result.build_ms}
        )
        return result.cells
    return None


def _cron(coroutine: Callable[..., Awaitable[Any]], **schedule: Any) -> Any:
    """A cron named by this deployment's prefix: arq keys a cron's runs by its name, so
    two deployments sharing a Redis must not share names (one would skip the other's)."""
    return cron(coroutine, name=f"{settings.redis_prefix}:cron:{coroutine.__name__}", **schedule)


class WorkerSettings:
    functions = [
        purge_expired_sign_in_data,
        purge_unattached_photos,
        refresh_report_map,
        route_report,
        route_waiting,
        sweep_deadlines,
        close_unrated,
        reconcile,
        refresh_service_index,
        notification_jobs.push_notification,
        notification_jobs.reconcile_pushes,
        notification_jobs.push_notification_batch,
        notification_jobs.send_announcement,
    ]
    cron_jobs = [
        _cron(heartbeat, second={0, 30}, run_at_startup=True, unique=False),
        _cron(purge_expired_sign_in_data, minute=set(range(0, 60, 10)), run_at_startup=False),
        _cron(purge_unattached_photos, minute={5, 35}, run_at_startup=False),
        _cron(housekeeping.purge_orphaned_objects, hour={20}, minute={47}, run_at_startup=False),
        # every minute (at second 15, away from the heartbeat); at start so a fresh deploy
        # serves clusters from the snapshot as soon as possible
        _cron(refresh_report_map, second=15, run_at_startup=True),
        _cron(sweep_deadlines, second=40, run_at_startup=True),
        _cron(reconcile, second=50, run_at_startup=True),
        # every 3 minutes: the published index is never more than ~3 minutes stale
        _cron(refresh_service_index, minute=set(range(1, 60, 3)), second=5, run_at_startup=True),
        _cron(notification_jobs.reconcile_pushes, second=55, run_at_startup=True),
        # pushes held for quiet hours, released when they end
        _cron(notification_jobs.release_deferred_pushes, second=0, run_at_startup=True),
        _cron(close_unrated, minute=set(range(2, 60, 10)), second=20, run_at_startup=False),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    queue_name = queue_name(settings.redis_prefix)
    health_check_key = f"{settings.redis_prefix}:worker:health"
    max_jobs = 20
    job_timeout = settings.worker_job_timeout_seconds
    keep_result = 60
    max_tries = 5
    # arq reads up to 100 job ids per poll; at its default 0.5 s a worker tops out near
    # 200 jobs/s (measured); 50 ms keeps routing latency p95 in tens of milliseconds
    poll_delay = 0.05
    # graceful shutdown: on SIGTERM stop taking jobs and let running ones finish for up
    # to 20 s; what is still running then is cancelled and retried (jobs are idempotent)
    job_completion_wait = 20
