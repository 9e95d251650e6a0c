"""Moved to :mod:`app.notifications.tasks` (issue 18 item 6); this name stays for the
imports that still use it."""

from app.notifications.tasks import (
    ANNOUNCEMENT_RECONCILE_LIMIT,
    RELEASE_BATCH,
    push_notification,
    push_notification_batch,
    reconcile_pushes,
    release_deferred_pushes,
    send_announcement,
)

__all__ = [
    "ANNOUNCEMENT_RECONCILE_LIMIT",
    "RELEASE_BATCH",
    "push_notification",
    "push_notification_batch",
    "reconcile_pushes",
    "release_deferred_pushes",
    "send_announcement",
]
