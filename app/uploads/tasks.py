"""The uploads context's worker task (registered by ``workers/main.py``): the purge of
expired resumable uploads and their received bytes. One statement, idempotent."""

from __future__ import annotations

import logging
from typing import Any

from app.core.tasks import in_transaction
from app.uploads.service import purge_expired

log = logging.getLogger("city.worker")


async def purge_expired_uploads(ctx: dict[str, Any]) -> int:
    """Cron, every 10 minutes: unfinished uploads past UPLOAD_TTL_HOURS (their pieces go
    with them) and finished ones whose photo would have expired unfiled."""
    deleted = await in_transaction(ctx, purge_expired, ctx["clock"].now())
    if deleted:
        log.info("expired_uploads_purged", extra={"uploads": deleted})
    return deleted
