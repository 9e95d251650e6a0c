"""The sync context's cron (listed in ``workers/main.py``)."""

from __future__ import annotations

import logging
from typing import Any

from app.core.tasks import in_transaction
from app.sync import service

log = logging.getLogger("city.worker")


async def purge_sync_changes(ctx: dict[str, Any]) -> int:
    """Daily: change rows older than SYNC_RETENTION_DAYS go, and the horizon moves past
    them, so a cursor from before answers 410 (the app starts over without a cursor)."""
    purged = await in_transaction(ctx, service.purge, ctx["settings"], ctx["clock"].now())
    if purged:
        log.info("sync_changes_purged", extra={"rows": purged})
    return int(purged)
