"""The worker's push jobs, registered in ``workers/main.py``. Thin: one transaction
boundary (the same as ``workers.main.in_transaction``), one call to ``push.py``.

``ctx`` is arq's: ``sessionmaker``, ``redis``, ``push`` (the sender), ``clock`` and
``settings`` as the worker's start-up sets them; ``push_policy`` (a
:class:`~app.notifications.push.PushPolicy`) may override the retry policy (tests).
"""

from __future__ import annotations

import logging
from typing import Any

from arq import Retry

from app.core import db, jobs
from app.notifications import push

log = logging.getLogger("city.notifications.jobs")


def _policy(ctx: dict[str, Any]) -> push.PushPolicy:
    return ctx.get("push_policy") or push.DEFAULT_POLICY


async def push_notification(ctx: dict[str, Any], notification_id: int) -> dict[str, int]:
    """Push one notification to its recipient's devices. Idempotent: what was sent is
    not sent again. Retryable FCM errors commit what was done, then ask arq to run the
    job again later (``Retry``: exponential backoff with jitter, at least Retry-After)."""
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        outcome = await push.push_notifications(
            session, ctx["push"], [notification_id], ctx["clock"].now(), policy=_policy(ctx)
        )
    if outcome.retry_in is not None:
        log.info(
            "push_retry_scheduled",
            extra={
                "notification_id": notification_id,
                "retry_in": round(outcome.retry_in, 3),
                "job_try": ctx.get("job_try"),
            },
        )
        raise Retry(defer=outcome.retry_in)
    return outcome.summary()


async def reconcile_pushes(ctx: dict[str, Any]) -> int:
    """Nothing is left unpushed: notifications still pending a minute after they were
    written get their job again (same id, so a job that exists — say, waiting for its
    retry — is not doubled); those pending past the policy's max age expire. Returns how
    many were enqueued."""
    now = ctx["clock"].now()
    policy = _policy(ctx)
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        expired = await push.expire_stale_pushes(session, now, policy.max_age_seconds)
        ids = await push.pending_pushes(
            session,
            now,
            ctx["settings"].reconcile_after_seconds,
            max_age_seconds=policy.max_age_seconds,
        )
        for notification_id in ids:
            jobs.enqueue(push.PUSH_JOB, notification_id, job_id=push.push_job_id(notification_id))
    if ids or expired:
        log.info("pushes_reconciled", extra={"enqueued": len(ids), "expired": expired})
    return len(ids)
