"""The complaints context's worker tasks (registered by ``workers/main.py``): the public
map's snapshot, and the purges that keep the photo store to what rows name. Set-based,
idempotent."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import clusters, templates
from app.complaints import service as complaints
from app.complaints.models import ReportPhoto
from app.core import db
from app.core.storage import Storage
from app.core.tasks import in_transaction

log = logging.getLogger("city.worker")

# an object no row refers to is left alone this long: its row may still be on its way
# (a filing's transaction) and no transaction lasts a day
ORPHAN_MIN_AGE = timedelta(days=1)
PHOTO_PREFIX = "photos/"
# photos/<year>/<month>/<photo id>/<display|thumb>.jpg (app.complaints.service.upload_photo)
_PHOTO_KEY = re.compile(r"photos/\d{4}/\d{2}/([0-9a-f-]{36})/[^/]+")


async def refresh_report_map(ctx: dict[str, Any]) -> int | None:
    """Rebuild the public map's cluster snapshot (one statement, one transaction), then
    vacuum the rows it replaced. Returns the number of cells, or None when another
    refresh was already running."""
    result = await in_transaction(ctx, clusters.refresh_map_cells)
    if result is not None:
        await clusters.vacuum_map_cells(ctx["engine"])
        log.info(
            "report_map_refreshed",
            extra={"cells": result.cells, "reports": result.reports, "build_ms": result.build_ms},
        )
        return result.cells
    return None


async def purge_unattached_photos(ctx: dict[str, Any]) -> int:
    """Photos uploaded but never filed with a report."""
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        return await complaints.purge_unattached_photos(session, ctx["storage"], ctx["clock"].now())


def photo_id_of(key: str) -> uuid.UUID | None:
    match = _PHOTO_KEY.fullmatch(key)
    if match is None:
        return None
    try:
        return uuid.UUID(match[1])
    except ValueError:
        return None


async def delete_orphaned_objects(
    session: AsyncSession, storage: Storage, now: datetime, min_age: timedelta = ORPHAN_MIN_AGE
) -> int:
    """Delete stored photos that no ``report_photos`` row refers to, written more than
    ``min_age`` ago (a transaction that rolled back after its upload, a crash between
    the object and the row). One primary-key lookup per page of 1,000 keys; a key that
    does not name a photo id is not ours to judge and stays. Returns objects deleted."""
    deleted = 0
    async for keys in storage.iter_older_than(PHOTO_PREFIX, now - min_age):
        ids = {key: photo_id_of(key) for key in keys}
        wanted = {i for i in ids.values() if i is not None}
        known = set(await session.scalars(select(ReportPhoto.id).where(ReportPhoto.id.in_(wanted))))
        orphans = [key for key, i in ids.items() if i is not None and i not in known]
        if orphans:
            await storage.delete_many(orphans)
            deleted += len(orphans)
    return deleted


async def purge_orphaned_objects(ctx: dict[str, Any]) -> int:
    """The daily cron: objects without a row, older than a day."""
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        return await delete_orphaned_objects(session, ctx["storage"], ctx["clock"].now())


async def send_automatic_replies(ctx: dict[str, Any]) -> int:
    """Response templates sent automatically (issue 22 item 1): the reports that entered
    a status an automatic template is kept for (queued by the trigger on the timeline),
    answered as the system, a batch per transaction until none is left. Returns how many
    were handled (sent or skipped)."""
    handled = 0
    while True:
        batch = await in_transaction(
            ctx, templates.send_automatic_replies, ctx["deadlines"].calendar, ctx["clock"].now()
        )
        handled += batch
        if batch < templates.AUTO_BATCH:
            return handled
