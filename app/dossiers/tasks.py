"""The dossiers context's jobs and crons (listed in ``workers/main.py``)."""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any

from app.core.tasks import in_transaction
from app.dossiers import imports, index

log = logging.getLogger("city.worker")

# ---- file imports (issue 19 item 2)


async def import_dossier_file(ctx: dict[str, Any], import_id: str) -> dict[str, Any]:
    """Apply an uploaded NDJSON/CSV file from where it stands, a chunk per transaction,
    for up to DOSSIER_IMPORT_JOB_SECONDS; the rest goes to the next job (app/dossiers/
    imports.py). Killed at any moment, it loses at most the chunk in flight."""
    settings = ctx["settings"]
    result = await imports.run_import(
        ctx["sessionmaker"],
        ctx["redis"],
        ctx["storage"],
        settings,
        ctx["clock"].now,
        uuid.UUID(import_id),
        budget_seconds=settings.dossier_import_job_seconds,
    )
    log.info(
        "dossier_import_run",
        extra={"import_id": import_id, "status": result.status, "lines_done": result.lines_done},
    )
    return {"status": result.status, "chunks": result.chunks, "lines_done": result.lines_done}


async def purge_dossier_import_files(ctx: dict[str, Any]) -> dict[str, int]:
    """Daily: the stored files of imports finished more than
    DOSSIER_IMPORT_FILE_RETENTION_DAYS ago (a batch per transaction), then stored import
    files no import names, older than a day (app/dossiers/imports.py)."""
    now = ctx["clock"].now()
    days = ctx["settings"].dossier_import_file_retention_days
    expired = 0
    while True:
        done = await in_transaction(ctx, imports.purge_finished_files, ctx["storage"], now, days)
        expired += done
        if done < imports.PURGE_BATCH:
            break
    orphans = await in_transaction(ctx, imports.delete_orphaned_files, ctx["storage"], now)
    if expired or orphans:
        log.info("dossier_import_files_purged", extra={"expired": expired, "orphans": orphans})
    return {"expired": expired, "orphans": orphans}


async def reconcile_dossier_imports(ctx: dict[str, Any]) -> int:
    """The cron: a job for every unfinished import idle past RECONCILE_AFTER_SECONDS (its
    job lost with Redis, or its worker killed)."""
    return await in_transaction(
        ctx, imports.reconcile, ctx["clock"].now(), ctx["settings"].reconcile_after_seconds
    )


# ---- overdue sweep and the agency index (issue 19 item 7)


async def sweep_dossier_overdue(ctx: dict[str, Any]) -> dict[str, int]:
    """Every minute: open dossiers past their due date marked overdue, those whose due
    date moved past now unmarked, the working days of those finished since frozen
    (app/dossiers/index.py; three indexed UPDATEs)."""
    result = await in_transaction(
        ctx, index.sweep_overdue, ctx["clock"].now(), ctx["deadlines"].calendar
    )
    counts = {"marked": result.marked, "cleared": result.cleared, "measured": result.measured}
    if any(counts.values()):
        log.info("dossier_overdue_swept", extra=counts)
    return counts


async def refresh_agency_index(ctx: dict[str, Any], full: bool = False) -> int | None:
    """Refresh the agency index (agency_stats) in one transaction: the months of what
    changed since the previous refresh (or everything, ``full``); None when another
    worker is already refreshing it."""
    refresh = functools.partial(index.refresh_agency_stats, full=full)
    result = await in_transaction(ctx, refresh, ctx["deadlines"].calendar, ctx["clock"].now())
    if result is None:
        return None
    log.info(
        "agency_index_refreshed",
        extra={
            "mode": result.mode,
            "months": result.months,
            "cells": result.cells,
            "build_ms": result.build_ms,
        },
    )
    return result.cells


async def rebuild_agency_index(ctx: dict[str, Any]) -> int | None:
    """Nightly: the whole agency index from every dossier (the all-time median, and the
    reconciliation of anything a refresh of changes could miss)."""
    return await refresh_agency_index(ctx, full=True)
