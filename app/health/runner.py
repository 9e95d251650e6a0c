"""One run of an import job: takes the import lock, moves the job along its lifecycle
(Bulk Data export first when it is one), imports its files from their cursors, and stops
after ``HEALTH_IMPORT_SLICE_SECONDS`` so that an arq job never outlives its timeout: the
caller then starts another run, which resumes where this one committed.

The run works on a connection of its own (COPY and the advisory lock need the driver's
connection); each batch is its own transaction, so the run's boundaries are the batches.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Literal

import asyncpg
import httpx
import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from app.health import bulk, importer, lifecycle
from app.settings import Settings

log = logging.getLogger("city.health")

Outcome = Literal["busy", "finished", "continue", "gone"]


class RunResult(msgspec.Struct, frozen=True):
    outcome: Outcome
    defer_seconds: float = 0.0  # for "continue": when to run again
    run: int = 0  # the job's run counter (names the next run's arq job)


async def run_job(
    engine: AsyncEngine,
    settings: Settings,
    job_id: uuid.UUID,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunResult:
    """Advance the job as far as one slice allows. ``busy``: another run holds the lock
    (the reconciler tries again); ``continue``: run again; ``finished``/``gone``: done."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        pg = raw.driver_connection
        assert pg is not None
        if not await pg.fetchval("SELECT pg_try_advisory_lock($1)", importer.LOCK_KEY):
            return RunResult("busy")
        try:
            await importer.create_stage(pg)
            try:
                return await _advance(pg, settings, job_id, transport)
            finally:
                await importer.drop_stage(pg)
        finally:
            await pg.execute("SELECT pg_advisory_unlock($1)", importer.LOCK_KEY)


async def _advance(
    pg: asyncpg.Connection,
    settings: Settings,
    job_id: uuid.UUID,
    transport: httpx.AsyncBaseTransport | None,
) -> RunResult:
    deadline = time.monotonic() + settings.health_import_slice_seconds
    job = await pg.fetchrow("SELECT kind, status FROM health_import_jobs WHERE id = $1", job_id)
    if job is None or job["status"] in lifecycle.FINISHED_STATUSES:
        return RunResult("gone")
    run = await pg.fetchval(
        "UPDATE health_import_jobs SET runs = runs + 1, progressed_at = now() WHERE id = $1"
        " RETURNING runs",
        job_id,
    )
    status = job["status"]
    started = time.monotonic()
    if job["kind"] == "bulk" and status in ("queued", "exporting"):
        step, wait = await bulk.export(pg, settings, job_id, status, deadline, transport)
        if step == "failed":
            return RunResult("finished")
        if step == "waiting":
            return RunResult("continue", wait, run)
        status = "importing"
    elif status == "queued":
        await lifecycle.transition(pg, job_id, "queued", "importing", "start")
        status = "importing"
    try:
        counts = await importer.import_files(pg, settings, job_id, deadline)
    except importer.SliceOver:
        log.info("health_import_slice", extra={"job": str(job_id)})
        return RunResult("continue", 0.0, run)
    await lifecycle.transition(pg, job_id, "importing", "succeeded", "finish")
    log.info(
        "health_import_finished",
        extra={
            "job": str(job_id),
            "lines": counts.lines,
            "imported": counts.imported,
            "errors": counts.errors,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return RunResult("finished")


def params_json(params: dict[str, object]) -> str:
    return msgspec.json.encode(params).decode()
