"""Pushing inbox rows to the recipients' devices (thông báo đẩy), through the sender of
``app.core.push`` (FCM via firebase-admin, or the log).

``notification_deliveries`` is the record: one row per (notification, device), made the
first time a notification is pushed, for the recipient's active devices then. A run sends
only the rows still ``pending``, in three steps, so that no transaction stays open while
FCM answers:

1. *claim* (one short transaction, committed): the rows to send get ``claimed_until``
   (now + the lease, longer than a job may run), taken with ``FOR UPDATE SKIP LOCKED``
   among pending rows whose claim is absent or lapsed;
2. *send*, outside any transaction;
3. *record* (another short transaction): each answer, the claim cleared.

So a job that runs twice, a retry or a reconciliation never sends a ``sent`` row again,
nor a row another run is sending (it asks to be run again when that claim lapses). A
worker killed or timed out between the claim and the record leaves its rows claimed and
``pending``: sent again once the lease lapses — at least once, never twice on purpose;
the collapse key makes a phone show such a repeat once.

What FCM answers decides each row:

- success → ``sent``, with FCM's message id;
- the token is dead (``UNREGISTERED``, ``SENDER_ID_MISMATCH``, ``INVALID_ARGUMENT`` about
  the token) → the device is disabled (``disabled_at``, ``disabled_reason``) and the row
  ``failed``; the device's rows of other notifications are ``skipped`` when their turn
  comes;
- retryable (``QUOTA_EXCEEDED``, ``UNAVAILABLE``, ``INTERNAL``, timeouts) → the row stays
  ``pending`` with the error, and the outcome says when to try again: exponential backoff
  with jitter, never sooner than FCM's ``Retry-After``; at the policy's last attempt the
  row is ``failed`` with the error instead;
- any other error (our credentials, a payload FCM refuses) → ``failed`` with the error.

Before the first push of a notification, the recipient's preferences are applied
(``preferences.gate``): a kind they muted settles as ``muted`` with no delivery; a
non-urgent one in their quiet hours gets ``push_after`` (the end of the quiet period) and
is left out of the run; :func:`release_deferred` (a cron) enqueues it again once that
instant has passed.

When no row of a notification is pending any more, its ``push_status`` settles: ``sent``
(at least one device got it), ``failed`` (none did), ``no_device`` (the recipient had no
active device, or every one was disabled before its turn). A notification still pending
after ``max_age_seconds`` is not worth a push any more: it becomes ``expired``.

Which layer retries: the sender makes one HTTP attempt per message (``app.core.push``
turns the SDK's own retries off); the job retries, with arq's ``Retry``.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import rowcount
from app.core.jobs import enqueue
from app.core.push import MAX_BATCH, PushMessage, PushResult, PushSender
from app.notifications import preferences

log = logging.getLogger("city.notifications.push")

PUSH_JOB = "push_notification"
PUSH_BATCH_JOB = "push_notification_batch"
PUSH_JOB_BATCH = 100
"""Notifications per batch job (an announcement's, or released, or reconciled). A push job
keeps its deliveries claimed while it sends, and the running jobs
of a worker (up to 20) share one sender, so a job lasts about (running jobs × batch) ÷
pushes per second: with 100, a round is 2,000 messages — seconds, far from the job
timeout (120 s) even at 100 pushes/s, where 500 would need 85/s — and the first
followers' phones ring after ~2,000 sends, not ~10,000. (The sender still sends up to
``MAX_BATCH`` = 500 per call.)"""

CLAIM_LEASE_SECONDS = 150.0
"""How long a run's claim on the deliveries it sends lasts (``claimed_until``) unless it
records them first: longer than a push job may run (the worker's job timeout, 120 s by
default, plus a margin; the worker passes its own). Past it, the rows are sent again.
"""

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Opens one transaction boundary (``db.transaction``) and yields its session."""

# Android delivers "normal" messages when the phone wakes; everything a person should
# see at once goes "high" (FCM wants a visible notification for high-priority messages).
PRIORITY: Mapping[str, Literal["high", "normal"]] = {
    "report_reminder": "normal",
    preferences.ANNOUNCEMENT: "normal",
}

# FCM refuses these data keys (and any starting with "google." or "gcm.")
_RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type", "collapse_key"})


def push_job_id(notification_id: int, after: datetime | None = None) -> str:
    """The job's deterministic id: one push job per notification, however often enqueued
    (and one more when it is released after quiet hours, naming that instant)."""
    base = f"push:{notification_id}"
    return f"{base}@{int(after.timestamp())}" if after else base


def push_batch_job_id(notification_ids: list[int], after: datetime | None = None) -> str:
    """A batch's deterministic id, from its (sorted) notification ids."""
    ids = sorted(notification_ids)
    base = f"push-batch:{ids[0]}-{ids[-1]}:{len(ids)}"
    return f"{base}@{int(after.timestamp())}" if after else base


@dataclass(frozen=True, slots=True)
class PushPolicy:
    """How hard to try. Attempt *n* that fails retryably is tried again after
    ``min(backoff_max, backoff_base · 2^(n-1))`` seconds, or after FCM's Retry-After if
    that is longer (capped at ``retry_after_max``), plus up to ``jitter`` of it on top so
    that many retries do not come back together."""

    max_attempts: int = 5
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 900.0
    jitter: float = 0.25
    retry_after_max_seconds: float = 3600.0
    max_age_seconds: float = 86400.0

    @property
    def longest_delay_seconds(self) -> float:
        """The longest wait before a retry this policy can ask for."""
        return max(self.backoff_max_seconds, self.retry_after_max_seconds) * (1 + self.jitter)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        floor = max(backoff, min(retry_after or 0.0, self.retry_after_max_seconds))
        return floor * (1.0 + rng.uniform(0.0, self.jitter))


DEFAULT_POLICY = PushPolicy()


@dataclass(slots=True)
class PushOutcome:
    """What one run did. ``retry_in``: seconds after which the caller should run again
    (some deliveries failed retryably), or None."""

    sent: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    devices_disabled: int = 0
    expired: int = 0
    muted: int = 0
    settled: dict[int, str] = field(default_factory=dict)  # notification id → push_status
    # notification id → end of the recipient's quiet hours (held until then)
    deferred: dict[int, datetime] = field(default_factory=dict)
    retry_in: float | None = None

    def summary(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "retrying": self.retrying,
            "skipped": self.skipped,
            "devices_disabled": self.devices_disabled,
            "expired": self.expired,
            "muted": self.muted,
            "deferred": len(self.deferred),
            "settled": len(self.settled),
        }


@dataclass(frozen=True, slots=True)
class _Delivery:
    notification_id: int
    device_id: uuid.UUID
    attempts: int
    token: str
    user_id: uuid.UUID
    kind: str
    title: str
    body: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Verdict:
    status: str  # sent | failed | pending
    error: str | None
    message_id: str | None


# ------------------------------------------------------------------------- the messages


def push_data(notification_id: int, kind: str, data: Mapping[str, Any]) -> dict[str, str]:
    """The data payload: FCM carries strings only. Booleans become "true"/"false",
    numbers their decimal text, anything else JSON; reserved keys are dropped."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if key in _RESERVED_DATA_KEYS or key.startswith(("google.", "gcm.")) or value is None:
            continue
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            out[key] = str(value)
        else:
            out[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    out["notification_id"] = str(notification_id)
    out["kind"] = kind
    return out


def collapse_key(data: Mapping[str, Any]) -> str | None:
    """One key per report: a newer push about the same report replaces an older one
    still waiting on an offline phone (Android collapse_key, APNs apns-collapse-id)."""
    code = data.get("report_code")
    return f"report-{code}" if isinstance(code, str) and code else None


def push_message(delivery: _Delivery, badge: int) -> PushMessage:
    return PushMessage(
        token=delivery.token,
        title=delivery.title,
        body=delivery.body,
        data=push_data(delivery.notification_id, delivery.kind, delivery.data),
        collapse_key=collapse_key(delivery.data),
        badge=badge,
        priority=PRIORITY.get(delivery.kind, "high"),
    )


# ------------------------------------------------------------------------- SQL
#
# Notifications looked up by id test ``(push_status = 'pending') IS NOT FALSE``, the same
# as ``push_status = 'pending'`` for this NOT NULL column, so that the planner cannot
# answer them from the partial index of pending rows (ix_notifications_push_pending): its
# statistics are taken when almost nothing is pending, so it believes that index tiny,
# while an announcement's fan-out puts 200,000 rows in it and every 100-row push job
# scanned them all. (preferences.py does the same.) The reconciler's scans below do want
# that index, and test ``push_status = 'pending'``.

# first run only: the recipient's active devices at that moment
_CREATE_DELIVERIES = text(
    """
    INSERT INTO notification_deliveries (notification_id, device_id, created_at)
    SELECT n.id, d.id, :now
      FROM notifications n
      JOIN devices d ON d.user_id = n.user_id AND d.disabled_at IS NULL
     WHERE n.id = ANY(CAST(:ids AS bigint[])) AND (n.push_status = 'pending') IS NOT FALSE
       AND NOT EXISTS (
           SELECT 1 FROM notification_deliveries x WHERE x.notification_id = n.id)
    ON CONFLICT DO NOTHING
    """
)

_SKIP_DISABLED = text(
    """
    UPDATE notification_deliveries nd
       SET status = 'skipped',
           last_error = 'device_disabled' || COALESCE(': ' || d.disabled_reason, '')
      FROM devices d
     WHERE d.id = nd.device_id AND d.disabled_at IS NOT NULL
       AND nd.notification_id = ANY(CAST(:ids AS bigint[])) AND nd.status = 'pending'
    """
)

# rows another run is sending (claimed, lease not lapsed): when may we look again
_BUSY_UNTIL = text(
    """
    SELECT max(claimed_until) FROM notification_deliveries
     WHERE notification_id = ANY(CAST(:ids AS bigint[]))
       AND status = 'pending' AND claimed_until > :now
    """
)

_CLAIM = text(
    """
    WITH free AS (
        SELECT nd.notification_id, nd.device_id
          FROM notification_deliveries nd
          JOIN notifications n ON n.id = nd.notification_id
         WHERE nd.notification_id = ANY(CAST(:ids AS bigint[]))
           AND nd.status = 'pending' AND (n.push_status = 'pending') IS NOT FALSE
           AND (nd.claimed_until IS NULL OR nd.claimed_until <= :now)
         ORDER BY nd.notification_id, nd.device_id
           FOR UPDATE OF nd SKIP LOCKED
    )
    UPDATE notification_deliveries nd SET claimed_until = :until
      FROM free
      JOIN notifications n ON n.id = free.notification_id
      JOIN devices d ON d.id = free.device_id
     WHERE nd.notification_id = free.notification_id AND nd.device_id = free.device_id
    RETURNING nd.notification_id, nd.device_id, nd.attempts, d.token,
              n.user_id, n.kind, n.title, n.body, n.data
    """
)

_UNREAD = text(
    """
    SELECT user_id, count(*) FROM notifications
     WHERE user_id = ANY(CAST(:users AS uuid[])) AND read_at IS NULL
     GROUP BY user_id
    """
)

_RECORD = text(
    """
    UPDATE notification_deliveries nd
       SET status = r.status,
           attempts = nd.attempts + 1,
           attempted_at = :now,
           last_error = r.error,
           fcm_message_id = COALESCE(r.message_id, nd.fcm_message_id),
           sent_at = CASE WHEN r.status = 'sent' THEN CAST(:now AS timestamptz) END,
           claimed_until = NULL
      FROM unnest(CAST(:nids AS bigint[]), CAST(:dids AS uuid[]), CAST(:statuses AS text[]),
                  CAST(:errors AS text[]), CAST(:message_ids AS text[]))
           AS r(notification_id, device_id, status, error, message_id)
     WHERE nd.notification_id = r.notification_id AND nd.device_id = r.device_id
       AND nd.claimed_until = :until
    """
)

_DISABLE_DEVICES = text(
    """
    UPDATE devices d SET disabled_at = :now, disabled_reason = r.reason
      FROM unnest(CAST(:ids AS uuid[]), CAST(:reasons AS text[])) AS r(id, reason)
     WHERE d.id = r.id AND d.disabled_at IS NULL
    RETURNING d.id
    """
)

_SETTLE = text(
    """
    UPDATE notifications n SET push_status = s.status
      FROM (
        SELECT n2.id,
               CASE WHEN count(*) FILTER (WHERE nd.status = 'sent') > 0 THEN 'sent'
                    WHEN count(*) FILTER (WHERE nd.status = 'failed') > 0 THEN 'failed'
                    ELSE 'no_device' END AS status
          FROM notifications n2
          LEFT JOIN notification_deliveries nd ON nd.notification_id = n2.id
         WHERE n2.id = ANY(CAST(:ids AS bigint[])) AND (n2.push_status = 'pending') IS NOT FALSE
         GROUP BY n2.id
        HAVING count(*) FILTER (WHERE nd.status = 'pending') = 0
      ) AS s
     WHERE n.id = s.id AND (n.push_status = 'pending') IS NOT FALSE
    RETURNING n.id, n.push_status
    """
)

_EXPIRE = text(
    """
    WITH stale AS (
        UPDATE notifications SET push_status = 'expired'
         WHERE push_status = 'pending' AND created_at < :cutoff
           AND (push_after IS NULL OR push_after < :cutoff)
           AND (CAST(:ids AS bigint[]) IS NULL OR id = ANY(CAST(:ids AS bigint[])))
        RETURNING id
    ), skipped AS (
        UPDATE notification_deliveries nd SET status = 'skipped', last_error = 'expired'
          FROM stale WHERE nd.notification_id = stale.id AND nd.status = 'pending'
    )
    SELECT count(*) FROM stale
    """
)

# due (not waiting for quiet hours to end) for a while, not too old; announcements apart
# (pushed in batches), and without a delivery that may be waiting for its retry
_PENDING = text(
    """
    SELECT n.id FROM notifications n
     WHERE n.push_status = 'pending' AND n.created_at < :older
       AND (n.push_after IS NULL OR n.push_after < :older)
       AND (n.created_at >= :cutoff OR n.push_after >= :cutoff)
       AND (n.announcement_id IS NOT NULL) = CAST(:announcements AS boolean)
       AND (NOT CAST(:announcements AS boolean) OR NOT EXISTS (
            SELECT 1 FROM notification_deliveries d
             WHERE d.notification_id = n.id AND d.status = 'pending'
               AND d.attempted_at >= :retrying_since))
     ORDER BY n.created_at, n.id
     LIMIT :limit
    """
)


# held for quiet hours that have ended: cleared and returned, to be pushed
_RELEASE = text(
    """
    WITH due AS (
        SELECT id, announcement_id, push_after FROM notifications
         WHERE push_status = 'pending' AND push_after <= :now
         ORDER BY push_after, id
         LIMIT :limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE notifications n SET push_after = NULL
      FROM due WHERE n.id = due.id
    RETURNING n.id, n.announcement_id IS NOT NULL
    """
)


# ------------------------------------------------------------------------- the service


async def push_notifications(
    transaction: Transaction,
    sender: PushSender,
    notification_ids: list[int],
    now: datetime,
    *,
    policy: PushPolicy = DEFAULT_POLICY,
    rng: random.Random | None = None,
    lease_seconds: float = CLAIM_LEASE_SECONDS,
) -> PushOutcome:
    """Push the notifications to their recipients' devices: rows still pending, in
    batches of at most ``MAX_BATCH``; record every answer; settle what is done.
    ``transaction`` opens a boundary; it is opened twice, to claim the rows and to record
    the answers, and no transaction is open while FCM answers (see the module's
    docstring). The caller retries after ``outcome.retry_in`` if set. The
    ``outcome.deferred`` ones are held (``push_after``) until their quiet hours end."""
    rng = rng or random.Random()
    outcome = PushOutcome()
    ids = sorted(set(notification_ids))
    if not ids:
        return outcome
    until = now + timedelta(seconds=lease_seconds)
    async with transaction() as session:
        ids, muted, deliveries, unread, busy_until = await _claim(
            session, ids, now, until, outcome, policy
        )
        if not deliveries and ids:
            settled = await session.execute(_SETTLE, {"ids": ids})
            outcome.settled |= dict(settled.all())
    delays: list[float] = []
    if deliveries:
        verdicts, disable = await _send_claimed(sender, deliveries, unread, policy, rng, delays)
        async with transaction() as session:
            await _record(session, deliveries, verdicts, disable, now, until, outcome)
            settled = await session.execute(_SETTLE, {"ids": ids})
            outcome.settled |= dict(settled.all())
        outcome.sent = sum(v.status == "sent" for v in verdicts)
        outcome.failed = sum(v.status == "failed" for v in verdicts)
        outcome.retrying = len(delays)
    if busy_until is not None:  # another run is sending some: look again when it is done
        delays.append(max((busy_until - now).total_seconds(), 1.0))
    outcome.retry_in = max(delays) if delays else None
    if deliveries or outcome.settled or outcome.deferred or muted:
        log.info("notifications_pushed", extra=outcome.summary())
    return outcome


async def _claim(
    session: AsyncSession,
    ids: list[int],
    now: datetime,
    until: datetime,
    outcome: PushOutcome,
    policy: PushPolicy,
) -> tuple[list[int], list[int], list[_Delivery], dict[uuid.UUID, int], datetime | None]:
    """Step 1, in its own transaction: expire, apply preferences, make the deliveries of
    a first run, skip disabled devices, claim the rows to send. Returns the ids still in
    play, the muted, the claimed deliveries, unread counts (the badge) and when rows
    another run holds are free again."""
    outcome.expired = await expire_stale_pushes(session, now, policy.max_age_seconds, ids)
    gate = await preferences.gate(session, ids, now)
    outcome.muted = len(gate.muted)
    outcome.deferred = gate.deferred
    outcome.settled = dict.fromkeys(gate.muted, "muted")
    if gate.muted or gate.deferred:
        held = set(gate.muted) | set(gate.deferred)
        ids = [i for i in ids if i not in held]
    if not ids:
        return ids, list(gate.muted), [], {}, None
    await session.execute(_CREATE_DELIVERIES, {"ids": ids, "now": now})
    skipped = await session.execute(_SKIP_DISABLED, {"ids": ids})
    outcome.skipped = rowcount(skipped) or 0
    busy_until = await session.scalar(_BUSY_UNTIL, {"ids": ids, "now": now})
    rows = await session.execute(_CLAIM, {"ids": ids, "now": now, "until": until})
    deliveries = sorted(
        (_Delivery(*row) for row in rows), key=lambda d: (d.notification_id, d.device_id)
    )
    unread: dict[uuid.UUID, int] = {}
    if deliveries:
        users = sorted({d.user_id for d in deliveries})
        unread = dict((await session.execute(_UNREAD, {"users": users})).all())
    return ids, list(gate.muted), deliveries, unread, busy_until


async def _send_claimed(
    sender: PushSender,
    deliveries: list[_Delivery],
    unread: dict[uuid.UUID, int],
    policy: PushPolicy,
    rng: random.Random,
    delays: list[float],
) -> tuple[list[_Verdict], dict[uuid.UUID, str]]:
    """Step 2, outside any transaction: send, and judge every answer."""
    verdicts: list[_Verdict] = []
    disable: dict[uuid.UUID, str] = {}
    for start in range(0, len(deliveries), MAX_BATCH):
        batch = deliveries[start : start + MAX_BATCH]
        messages = [push_message(d, unread.get(d.user_id, 0)) for d in batch]
        results = await _send(sender, messages)
        for delivery, result in zip(batch, results, strict=True):
            verdict = _judge(delivery, result, policy)
            verdicts.append(verdict)
            if result.permanent:
                disable[delivery.device_id] = f"fcm:{result.error_code}"
            if verdict.status == "pending":
                delays.append(policy.delay(delivery.attempts + 1, result.retry_after, rng))
    return verdicts, disable


async def _record(
    session: AsyncSession,
    deliveries: list[_Delivery],
    verdicts: list[_Verdict],
    disable: dict[uuid.UUID, str],
    now: datetime,
    until: datetime,
    outcome: PushOutcome,
) -> None:
    """Step 3, in its own transaction: every answer on its row (only rows this run still
    holds: ``claimed_until`` names the claim), the claim cleared, dead devices disabled."""
    await session.execute(
        _RECORD,
        {
            "now": now,
            "until": until,
            "nids": [d.notification_id for d in deliveries],
            "dids": [d.device_id for d in deliveries],
            "statuses": [v.status for v in verdicts],
            "errors": [v.error for v in verdicts],
            "message_ids": [v.message_id for v in verdicts],
        },
    )
    if disable:
        disabled = await session.execute(
            _DISABLE_DEVICES,
            {"now": now, "ids": list(disable), "reasons": list(disable.values())},
        )
        outcome.devices_disabled = len(disabled.all())


async def _send(sender: PushSender, messages: list[PushMessage]) -> list[PushResult]:
    """The sender's answers; if it raises (it should not), every message of the batch is
    a retryable ``unknown`` failure, so what other batches sent is still recorded."""
    try:
        return await sender.send(messages)
    except Exception as exc:
        log.exception("push_batch_raised", extra={"messages": len(messages)}, exc_info=exc)
        return [PushResult(token=m.token, ok=False, error_code="unknown") for m in messages]


def _judge(delivery: _Delivery, result: PushResult, policy: PushPolicy) -> _Verdict:
    if result.ok:
        return _Verdict("sent", None, result.message_id)
    error = result.error_code or "unknown"
    if result.retryable and delivery.attempts + 1 < policy.max_attempts:
        return _Verdict("pending", error, None)
    if result.retryable:
        error = f"{error} (gave up after {delivery.attempts + 1} attempts)"
    return _Verdict("failed", error, None)


async def expire_stale_pushes(
    session: AsyncSession,
    now: datetime,
    max_age_seconds: float = DEFAULT_POLICY.max_age_seconds,
    notification_ids: list[int] | None = None,
) -> int:
    """Notifications still pending after ``max_age_seconds`` (of those given, or all)
    become ``expired``, their pending deliveries ``skipped``: a reminder a day late is
    noise. One statement; returns how many."""
    cutoff = now - timedelta(seconds=max_age_seconds)
    result = await session.execute(_EXPIRE, {"cutoff": cutoff, "ids": notification_ids})
    return int(result.scalar_one())


async def pending_pushes(
    session: AsyncSession,
    now: datetime,
    older_than_seconds: float = 60,
    *,
    max_age_seconds: float = DEFAULT_POLICY.max_age_seconds,
    limit: int = 1000,
    announcements: bool = False,
    policy: PushPolicy = DEFAULT_POLICY,
) -> list[int]:
    """Ids of notifications still waiting for their push ``older_than_seconds`` after
    they were written or their quiet hours ended (their job was lost, or is waiting for
    a retry), oldest first; younger than ``max_age_seconds``.

    ``announcements``: those of announcements instead of the others. They are pushed in
    batches whose job ids the reconciler cannot reproduce, so one waiting for a retry is
    left alone until the longest retry delay has passed (rather than retried early)."""
    rows = await session.scalars(
        _PENDING,
        {
            "older": now - timedelta(seconds=older_than_seconds),
            "cutoff": now - timedelta(seconds=max_age_seconds),
            "limit": limit,
            "announcements": announcements,
            "retrying_since": now - timedelta(seconds=policy.longest_delay_seconds),
        },
    )
    return list(rows)


async def release_deferred(session: AsyncSession, now: datetime, limit: int = 20_000) -> list[int]:
    """Notifications held for quiet hours that ended by ``now`` (up to ``limit``, oldest
    first): ``push_after`` is cleared and their push jobs are enqueued after the commit —
    a report's alone, an announcement's in batches of ``PUSH_JOB_BATCH``, under ids naming
    the release so a finished job of the same notifications does not swallow them.
    Returns their ids."""
    rows = (await session.execute(_RELEASE, {"now": now, "limit": limit})).all()
    single = sorted(nid for nid, batched in rows if not batched)
    batched = sorted(nid for nid, is_batched in rows if is_batched)
    for notification_id in single:
        enqueue(PUSH_JOB, notification_id, job_id=push_job_id(notification_id, now))
    for start in range(0, len(batched), PUSH_JOB_BATCH):
        chunk = batched[start : start + PUSH_JOB_BATCH]
        enqueue(PUSH_BATCH_JOB, chunk, job_id=push_batch_job_id(chunk, now))
    return single + batched
