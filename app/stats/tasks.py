"""The service index's worker task (registered by ``workers/main.py``)."""

from __future__ import annotations

import logging
from typing import Any

from app.core.tasks import in_transaction
from app.stats import service as stats

log = logging.getLogger("city.worker")


async def refresh_service_index(ctx: dict[str, Any]) -> int | None:
    """Rebuild the service index (unit_stats) in one transaction; None when another
    worker is already rebuilding it."""
    result = await in_transaction(ctx, stats.refresh_unit_stats, ctx["clock"].now())
    if result is not None:
        log.info(
            "service_index_refreshed", extra={"cells": result.cells, "build_ms": result.build_ms}
        )
        return result.cells
    return None
