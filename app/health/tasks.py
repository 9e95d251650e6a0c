"""The health book's jobs (issue 20): run an import job one slice at a time, and the
reconciler that resumes jobs that stopped moving (a worker killed, a job lost in Redis).

``run_health_import`` is idempotent: a finished job returns at once, a job another run
holds (the import lock) returns "busy", anything else continues from its committed
cursors and, if its slice ran out, enqueues its own next run after commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.core import jobs
from app.core.tasks import in_transaction
from app.health import runner, service

RUN_JOB = "run_health_import"


async def run_health_import(ctx: dict[str, Any], job_id: str) -> str:
    result = await runner.run_job(ctx["engine"], ctx["settings"], uuid.UUID(job_id))
    if result.outcome == "continue":
        # nothing to commit first: the run's batches are committed; if this enqueue is
        # lost, the reconciler resumes the job
        redis = ctx["redis"]
        await redis.enqueue_job(
            RUN_JOB,
            job_id,
            _job_id=jobs.qualified_job_id(redis, service.run_job_id(job_id, result.run)),
            _defer_by=result.defer_seconds or None,
        )
    return result.outcome


async def reconcile_health_imports(ctx: dict[str, Any]) -> int:
    """Unfinished jobs whose progress is older than HEALTH_IMPORT_STALE_SECONDS get a run."""
    now = ctx["clock"].now()
    stale = ctx["settings"].health_import_stale_seconds
    return await in_transaction(ctx, service.resume_stale_jobs, now, stale)


__all__ = ["jobs", "reconcile_health_imports", "run_health_import"]
