"""The notifications context's worker tasks, registered in ``workers/main.py``. Thin: one
transaction boundary per step (``app.core.tasks.in_transaction``), one call to
``push.py`` or ``announcements.py``.

``ctx`` is arq's: ``sessionmaker``, ``redis``, ``push`` (the sender), ``clock`` and
``settings`` as the worker's start-up sets them; ``push_policy`` (a
:class:`~app.notifications.push.PushPolicy`) may override the retry policy (tests), and
``announcement_batch`` the fan-out's step size.

Quiet hours: a push run leaves the notifications whose recipients are in their quiet
hours with ``push_after`` set to the end of them (``preferences.gate``). The cron
:func:`release_deferred_pushes` (every minute, at second 0) enqueues their jobs once that
instant has passed. The database holds the wait, not Redis: no job sits in the queue
for hours (the queue-length gauge stays meaningful, burst workers end), and losing Redis
loses no held push.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from arq import Retry

from app.core import db, jobs
from app.notifications import announcements, push

log = logging.getLogger("city.notifications.tasks")

ANNOUNCEMENT_RECONCILE_LIMIT = 5000  # announcement rows re-pushed per reconciliation


def _policy(ctx: dict[str, Any]) -> push.PushPolicy:
    return ctx.get("push_policy") or push.DEFAULT_POLICY


# a push's claim outlasts the job that holds it (arq cancels a job at its timeout)
CLAIM_MARGIN_SECONDS = 30


async def _push(ctx: dict[str, Any], ids: list[int]) -> dict[str, int]:
    """Claim, send, record: two short transactions, none open while FCM answers."""
    outcome = await push.push_notifications(
        lambda: db.transaction(ctx["sessionmaker"], ctx["redis"]),
        ctx["push"],
        ids,
        ctx["clock"].now(),
        policy=_policy(ctx),
        lease_seconds=ctx["settings"].worker_job_timeout_seconds + CLAIM_MARGIN_SECONDS,
    )
    if outcome.retry_in is not None:
        log.info(
            "push_retry_scheduled",
            extra={
                "notifications": len(ids),
                "first_id": ids[0],
                "retry_in": round(outcome.retry_in, 3),
                "job_try": ctx.get("job_try"),
            },
        )
        raise Retry(defer=outcome.retry_in)
    return outcome.summary()


async def push_notification(ctx: dict[str, Any], notification_id: int) -> dict[str, int]:
    """Push one notification to its recipient's devices. Idempotent: what was sent is
    not sent again. Retryable FCM errors commit what was done, then ask arq to run the
    job again later (``Retry``: exponential backoff with jitter, at least Retry-After).
    In the recipient's quiet hours it is held (see the module's docstring)."""
    return await _push(ctx, [notification_id])


async def push_notification_batch(ctx: dict[str, Any], notification_ids: list[int]) -> dict:
    """Push a batch of notifications (``push.PUSH_JOB_BATCH``, at most 500) in one run:
    the same service, rules and record as :func:`push_notification`, one transaction."""
    return await _push(ctx, sorted(notification_ids))


async def send_announcement(ctx: dict[str, Any], announcement_id: str) -> dict[str, int]:
    """Fan an announcement out to its areas' followers, a step (one transaction) at a
    time, until done. Past half the job timeout it hands over to a continuation job
    (named by its cursor) so no step is cut short by arq. Idempotent: a rerun resumes at
    the committed cursor; a second job waits for the row lock and finds the work done."""
    aid = uuid.UUID(announcement_id)
    size = ctx.get("announcement_batch") or announcements.FANOUT_BATCH
    budget = ctx["settings"].worker_job_timeout_seconds / 2
    started = time.monotonic()
    totals = {"steps": 0, "recipients": 0, "inbox_rows": 0, "push_jobs": 0}
    while True:
        async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
            step = await announcements.fan_out_step(session, aid, ctx["clock"].now(), size)
        if step is None:
            break
        totals["steps"] += 1
        totals["recipients"] += step.recipients
        totals["inbox_rows"] += step.inbox_rows
        totals["push_jobs"] += step.push_jobs
        if step.done:
            log.info("announcement_written", extra={"announcement": announcement_id, **totals})
            break
        if time.monotonic() - started > budget:
            redis = ctx["redis"]
            await redis.enqueue_job(
                announcements.ANNOUNCE_JOB,
                announcement_id,
                _job_id=jobs.qualified_job_id(
                    redis, announcements.announcement_job_id(aid, step.cursor)
                ),
            )
            log.info("announcement_continues", extra={"announcement": announcement_id, **totals})
            break
    return totals


async def reconcile_pushes(ctx: dict[str, Any]) -> int:
    """Nothing is left unpushed: notifications still pending a minute after they were
    written (or after their quiet hours ended) get their job again — the same id for a
    report's, so a job that exists (say, waiting for its retry) is not doubled; batches
    of ``PUSH_JOB_BATCH`` for an announcement's — and those pending past the policy's
    max age expire. Announcements whose fan-out stopped moving get their job again.
    Returns how many jobs were enqueued."""
    now = ctx["clock"].now()
    policy = _policy(ctx)
    after = ctx["settings"].reconcile_after_seconds
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        expired = await push.expire_stale_pushes(session, now, policy.max_age_seconds)
        ids = await push.pending_pushes(session, now, after, max_age_seconds=policy.max_age_seconds)
        for notification_id in ids:
            jobs.enqueue(push.PUSH_JOB, notification_id, job_id=push.push_job_id(notification_id))
        batched = await push.pending_pushes(
            session,
            now,
            after,
            max_age_seconds=policy.max_age_seconds,
            limit=ANNOUNCEMENT_RECONCILE_LIMIT,
            announcements=True,
            policy=policy,
        )
        size = push.PUSH_JOB_BATCH
        batches = [batched[i : i + size] for i in range(0, len(batched), size)]
        for chunk in batches:
            jobs.enqueue(push.PUSH_BATCH_JOB, chunk, job_id=push.push_batch_job_id(chunk))
        stalled = await announcements.unfinished_announcements(session, now, after)
        for aid in stalled:
            jobs.enqueue(
                announcements.ANNOUNCE_JOB, str(aid), job_id=announcements.announcement_job_id(aid)
            )
    enqueued = len(ids) + len(batches) + len(stalled)
    if enqueued or expired:
        log.info(
            "pushes_reconciled",
            extra={
                "enqueued": len(ids),
                "batches": len(batches),
                "announcement_rows": len(batched),
                "announcements": len(stalled),
                "expired": expired,
            },
        )
    return enqueued


RELEASE_BATCH = 20_000  # held notifications released per transaction


async def release_deferred_pushes(ctx: dict[str, Any]) -> int:
    """Cron, every minute: notifications held for quiet hours that have ended get their
    push job (a report's alone, an announcement's in batches), a transaction of
    up to ``RELEASE_BATCH`` at a time until none is left. Returns how many."""
    now = ctx["clock"].now()
    total = 0
    while True:
        async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
            released = await push.release_deferred(session, now, RELEASE_BATCH)
        total += len(released)
        if len(released) < RELEASE_BATCH:
            break
    if total:
        log.info("deferred_pushes_released", extra={"notifications": total})
    return total
