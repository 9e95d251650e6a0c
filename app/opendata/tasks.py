"""Open data's worker task (registered by ``workers/main.py``): the daily files."""

from __future__ import annotations

import logging
from typing import Any

from app.core.tasks import in_transaction
from app.opendata import service

log = logging.getLogger("city.worker")


async def publish_open_data(ctx: dict[str, Any]) -> int:
    """Publish yesterday's (local day) CSV and GeoJSON; a rerun replaces them."""
    day = service.yesterday(ctx["clock"].now())
    count = await in_transaction(
        ctx, service.publish_day, ctx["storage"], ctx["settings"], day, ctx["clock"].now()
    )
    log.info("open_data_published", extra={"day": day.isoformat(), "reports": count})
    return int(count)
