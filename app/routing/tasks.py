"""Routing's worker tasks (registered by ``workers/main.py``): routing a report and the
backlog, the deadline sweep, closing unrated resolutions, and the reconciliation that
finds reports whose routing job was lost. Thin: one boundary per step around
``app.routing.service``."""

from __future__ import annotations

import logging
from typing import Any

from app.core import jobs
from app.core.tasks import in_transaction
from app.routing import service as routing

log = logging.getLogger("city.worker")


async def route_report(ctx: dict[str, Any], report_id: str) -> int:
    """Route the report (and every other one waiting, up to a batch). Idempotent: a
    report already routed, or being routed by another worker, is left alone."""
    routed = await in_transaction(
        ctx,
        routing.route_pending,
        ctx["deadlines"],
        ctx["clock"].now(),
        ctx["settings"].routing_batch_size,
    )
    if routed:
        log.info("reports_routed", extra={"count": len(routed), "job_report": report_id})
    return len(routed)


async def route_waiting(ctx: dict[str, Any]) -> int:
    """Route the whole backlog, a batch per transaction, until none is left."""
    batch_size = ctx["settings"].routing_batch_size
    total = 0
    while True:
        routed = await in_transaction(
            ctx, routing.route_pending, ctx["deadlines"], ctx["clock"].now(), batch_size
        )
        total += len(routed)
        if len(routed) < batch_size:
            return total


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
    """Resolutions nobody rated within the rating window are closed."""
    return await in_transaction(
        ctx, routing.close_unrated, ctx["clock"].now(), ctx["settings"].rating_window_days
    )


async def reconcile(ctx: dict[str, Any]) -> int:
    """Nothing is lost: when a report still waits for routing a minute after its last
    change (its job was lost to a Redis flush or outage, a crash between commit and
    enqueue, or is stuck with a killed worker), one job routes the whole backlog. Its id
    names the minute, so several workers running this cron enqueue it once. Returns the
    number of reports found waiting."""
    now = ctx["clock"].now()
    async with ctx["sessionmaker"]() as session:
        waiting = await routing.count_awaiting_routing(
            session, now, ctx["settings"].reconcile_after_seconds
        )
    if waiting:
        await ctx["redis"].enqueue_job(
            route_waiting.__name__,
            _job_id=jobs.qualified_job_id(ctx["redis"], f"route-waiting:{now:%Y%m%d%H%M}"),
        )
        log.warning("reconciling_unrouted_reports", extra={"waiting": waiting})
    return waiting
