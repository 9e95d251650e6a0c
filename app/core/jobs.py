"""Enqueue after commit.

Services call :func:`enqueue` while they work; the call only records the job in a
per-transaction list. The boundary (request or job) flushes the list to arq once its
transaction has committed and drops it on rollback. Every job has a deterministic
``_job_id`` so a double enqueue is one job, and a reconciliation cron re-enqueues
whatever a crash between commit and flush lost. :func:`after_commit` does the same for
small side effects that must not happen for a rolled-back transaction (an SMS, a
deny-list entry in Redis). :func:`after_rollback` is the converse, for undoing what was
written outside the database before a transaction that then rolled back (objects put in
storage for rows that never committed).

A boundary is :func:`begin` … :func:`flush` (committed) or :func:`discard` (rolled back).
``begin`` sets the contextvar and keeps its token; ending the boundary resets it, so
successive boundaries never share a list and a nested one hands the outer one back. Outside
a boundary (never opened, or already ended) :func:`enqueue`, :func:`after_commit` and
:func:`after_rollback` raise ``RuntimeError``: a job would otherwise be dropped silently.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis

Redis = ArqRedis
log = logging.getLogger("city.jobs")


@dataclass(frozen=True, slots=True)
class PendingJob:
    function: str
    args: tuple[Any, ...]
    job_id: str


@dataclass(slots=True)
class PendingWork:
    jobs: list[PendingJob] = field(default_factory=list)
    callbacks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    rollback_callbacks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # the contextvar's token while the boundary is open; None once it has ended
    token: contextvars.Token[PendingWork | None] | None = None
    ended: bool = False


_current: contextvars.ContextVar[PendingWork | None] = contextvars.ContextVar(
    "pending_work", default=None
)


def begin() -> PendingWork:
    """Start collecting; the returned object is what the boundary flushes or discards
    (either ends the boundary)."""
    pending = PendingWork()
    pending.token = _current.set(pending)
    return pending


def end(pending: PendingWork) -> None:
    """End the boundary: the contextvar goes back to what it was before :func:`begin`
    (the outer boundary, or none). Idempotent."""
    pending.ended = True
    token, pending.token = pending.token, None
    if token is not None:
        try:
            _current.reset(token)
        except ValueError:  # ended from another context: that context's var is its own
            pass


def discard(pending: PendingWork) -> None:
    """The boundary rolled back: drop its jobs and callbacks, and end it."""
    end(pending)
    pending.jobs.clear()
    pending.callbacks.clear()


def _pending() -> PendingWork:
    pending = _current.get()
    if pending is None or pending.ended:
        raise RuntimeError(
            "enqueue()/after_commit()/after_rollback() called outside a transaction "
            "boundary (db.transaction): the work would never be sent"
        )
    return pending


def enqueue(function: str, *args: Any, job_id: str) -> None:
    _pending().jobs.append(PendingJob(function, args, job_id))


def after_commit(callback: Callable[[], Awaitable[None]]) -> None:
    _pending().callbacks.append(callback)


def current() -> PendingWork | None:
    """The transaction boundary's collector, or None outside any boundary."""
    pending = _current.get()
    return None if pending is None or pending.ended else pending


def after_rollback(callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` if the transaction rolls back (dropped when it commits)."""
    _pending().rollback_callbacks.append(callback)


async def rolled_back(pending: PendingWork) -> None:
    """The boundary rolled back: run the undo callbacks. Failures are logged, not raised
    (the purge cron removes what is left, e.g. objects no row refers to)."""
    callbacks, pending.rollback_callbacks = pending.rollback_callbacks, []
    for callback in callbacks:
        try:
            await callback()
        except Exception as exc:
            log.warning("after_rollback_failed", extra={"error": repr(exc)})


def qualified_job_id(redis: ArqRedis, job_id: str) -> str:
    """arq keys jobs by id across all queues of a Redis; name ours by our queue so two
    deployments sharing a Redis never swallow each other's jobs."""
    return f"{redis.default_queue_name}:{job_id}"


async def flush(pending: PendingWork, redis: ArqRedis | None) -> None:
    """Run callbacks and send jobs. Failures are logged, not raised: the database holds
    the state, and the reconciliation cron enqueues what is missing. Ends the boundary
    first, so what the callbacks enqueue raises instead of joining a sent list."""
    end(pending)
    jobs, pending.jobs = pending.jobs, []
    callbacks, pending.callbacks = pending.callbacks, []
    pending.rollback_callbacks.clear()  # committed: nothing to undo
    for callback in callbacks:
        try:
            await callback()
        except Exception as exc:
            log.warning("after_commit_failed", extra={"error": repr(exc)})
    if redis is None:
        return
    for job in jobs:
        try:
            await redis.enqueue_job(
                job.function, *job.args, _job_id=qualified_job_id(redis, job.job_id)
            )
        except Exception as exc:  # Redis down: the reconciler catches up
            log.warning("enqueue_failed", extra={"job": job.function, "error": repr(exc)})
