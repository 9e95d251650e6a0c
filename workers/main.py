"""The arq worker: wiring only. Each job function and cron lives beside the service it
calls, in its context's ``tasks.py`` (``app/<context>/tasks.py``); this module lists them
and builds the worker's context (engine, Redis, storage, push sender, clock, deadlines).

Run with ``python -m workers`` (or ``arq workers.main.WorkerSettings``).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from arq import cron
from arq.connections import RedisSettings

from app.accounts.tasks import purge_expired_sign_in_data, republish_deny_list
from app.complaints.tasks import (
    purge_orphaned_objects,
    purge_unattached_photos,
    refresh_report_map,
    send_automatic_replies,
)
from app.core import db
from app.core.clock import Clock
from app.core.logging import configure_logging
from app.core.ops import heartbeat_key
from app.core.push import make_push_sender
from app.core.storage import make_storage
from app.core.tasks import in_transaction
from app.dossiers.tasks import (
    import_dossier_file,
    purge_dossier_import_files,
    rebuild_agency_index,
    reconcile_dossier_imports,
    refresh_agency_index,
    sweep_dossier_overdue,
)
from app.health.tasks import reconcile_health_imports, run_health_import
from app.notifications.tasks import (
    push_notification,
    push_notification_batch,
    reconcile_pushes,
    release_deferred_pushes,
    send_announcement,
)
from app.open311.tasks import (
    fetch_open311_media,
    purge_open311_contacts,
    reconcile_open311_media,
)
from app.opendata.tasks import publish_open_data
from app.routing import service as routing
from app.routing.tasks import close_unrated, reconcile, route_report, route_waiting, sweep_deadlines
from app.settings import get_settings
from app.stats.tasks import refresh_service_index
from app.sync.tasks import purge_sync_changes  # issue 24 item 2
from app.uploads.tasks import purge_expired_uploads  # issue 24 item 3

__all__ = ["WorkerSettings", "in_transaction", "shutdown", "startup"]

log = logging.getLogger("city.worker")
settings = get_settings()


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
    log.info("worker_started", extra={"queue": settings.queue_name})


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["push"].close()
    await ctx["engine"].dispose()
    log.info("worker_stopped")


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Lets readiness and metrics see that a worker is alive."""
    await ctx["redis"].set(heartbeat_key(settings.redis_prefix), str(time.time()), ex=180)


def _cron(coroutine: Callable[..., Coroutine[Any, Any, Any]], **schedule: Any) -> Any:
    """A cron named by this deployment's prefix: arq keys a cron's runs by its name, so
    two deployments sharing a Redis must not share names (one would skip the other's)."""
    return cron(coroutine, name=f"{settings.redis_prefix}:cron:{coroutine.__name__}", **schedule)


class WorkerSettings:
    # arq names a job by its function's name: these names are the jobs' names in Redis
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
        push_notification,
        reconcile_pushes,
        push_notification_batch,
        send_announcement,
        import_dossier_file,
        purge_dossier_import_files,  # issue 19 (also a daily cron)
        run_health_import,
        fetch_open311_media,  # issue 21
        purge_open311_contacts,  # also a daily cron
        publish_open_data,  # issue 22 item 4 (also a daily cron)
        purge_expired_uploads,  # issue 24 item 3 (also a cron)
    ]
    cron_jobs = [
        _cron(heartbeat, second={0, 30}, run_at_startup=True, unique=False),
        _cron(purge_expired_sign_in_data, minute=set(range(0, 60, 10)), run_at_startup=False),
        # the deny list republished when Redis lost it, even if no API process noticed
        _cron(republish_deny_list, second=25, run_at_startup=True),
        _cron(purge_unattached_photos, minute={5, 35}, run_at_startup=False),
        # expired resumable uploads and their bytes (issue 24 item 3)
        _cron(purge_expired_uploads, minute=set(range(7, 60, 10)), run_at_startup=False),
        _cron(purge_orphaned_objects, hour={20}, minute={47}, run_at_startup=False),
        # sync on app open (issue 24 item 2): the change log past its retention
        _cron(purge_sync_changes, hour={20}, minute={13}, run_at_startup=False),
        # every minute (at second 15, away from the heartbeat); at start so a fresh deploy
        # serves clusters from the snapshot as soon as possible
        _cron(refresh_report_map, second=15, run_at_startup=True),
        _cron(sweep_deadlines, second=40, run_at_startup=True),
        _cron(reconcile, second=50, run_at_startup=True),
        # every 3 minutes: the published index is never more than ~3 minutes stale
        _cron(refresh_service_index, minute=set(range(1, 60, 3)), second=5, run_at_startup=True),
        _cron(reconcile_pushes, second=55, run_at_startup=True),
        # pushes held for quiet hours, released when they end
        _cron(release_deferred_pushes, second=0, run_at_startup=True),
        _cron(close_unrated, minute=set(range(2, 60, 10)), second=20, run_at_startup=False),
        # dossier file imports whose job was lost (Redis) or whose worker died
        _cron(reconcile_dossier_imports, second=45, run_at_startup=True),
        # daily: import files past DOSSIER_IMPORT_FILE_RETENTION_DAYS, and those no import names
        _cron(purge_dossier_import_files, hour={20}, minute={53}, run_at_startup=False),
        # open dossiers past their due date (issue 19 item 7), and the agency index every
        # 3 minutes, a minute after the units' (app/dossiers/index.py)
        _cron(sweep_dossier_overdue, second=35, run_at_startup=True),
        _cron(refresh_agency_index, minute=set(range(2, 60, 3)), second=5, run_at_startup=True),
        # nightly (02:40 in Hanoi if the worker runs on UTC): the whole index from every dossier
        _cron(rebuild_agency_index, hour={19}, minute={40}, run_at_startup=False),
        # health book imports that stopped moving (a worker killed, a run lost in Redis)
        _cron(reconcile_health_imports, second=10, run_at_startup=True),
        # Open311 filings' media_url fetches whose job was lost or whose try may be retried
        _cron(reconcile_open311_media, second=20, run_at_startup=True),
        # daily: third-party submitters' contacts past OPEN311_CONTACT_RETENTION_DAYS
        _cron(purge_open311_contacts, hour={20}, minute={33}, run_at_startup=False),
        # response templates sent when a report enters a status (issue 22 item 1): the
        # trigger's queue, twice a minute
        _cron(send_automatic_replies, second={12, 42}, run_at_startup=True),
        # open data (issue 22 item 4): yesterday's files, at 00:20 in Hanoi (17:20 UTC) and
        # again at 03:20 and 06:20 (a rerun replaces them; a day missed by a stopped worker
        # is published by the next run that day)
        _cron(publish_open_data, hour={17, 20, 23}, minute={20}, run_at_startup=False),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    queue_name = settings.queue_name
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
