"""Open data's worker task (registered by ``workers/main.py``): the daily files."""

from __future__ import annotations

import logging
from typing import Any

from app.core.tasks import in_transaction
from app.opendata import service

log = logging.getLogger("city.worker")


async def publish_open_data(ctx: dict[str, Any]) -> int:
    """Publish yesterday's (local day) CSV and GeoJSON, a rerun replacing them, and any
    day of the catch-up window a stopped worker missed; each day in its own transaction.
    Returns the number of reports published."""
    now = ctx["clock"].now()
    days = await in_transaction(
        ctx, service.days_to_publish, now, ctx["settings"].open_data_catch_up_days
    )
    total = 0
    for day in days:
        count = await in_transaction(
            ctx, service.publish_day, ctx["storage"], ctx["settings"], day, now
        )
        log.info("open_data_published", extra={"day": day.isoformat(), "reports": count})
        total += int(count)
    return total
