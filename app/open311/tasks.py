"""The Open311 context's worker tasks (registered by ``workers/main.py``): fetching a
third-party app's ``media_url`` into the report's photos, and the reconciliation of
fetches not done. Idempotent: a fetch works only on a pending row, under its lock."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from app.core import db
from app.open311 import filing
from app.open311.media import MediaRefused, fetch_media

log = logging.getLogger("city.worker")


async def fetch_open311_media(ctx: dict[str, Any], report_id: str) -> str:
    """Fetch one filing's media_url (one try): attached, pending (a try left, the cause
    may pass: the reconciliation comes back), failed (on the timeline) or nothing to do."""
    settings, clock = ctx["settings"], ctx["clock"]
    rid = uuid.UUID(report_id)
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        task = await filing.claim_fetch(session, rid, clock.now())
    if task is None:
        return "nothing_to_do"
    try:
        data = await fetch_media(
            task.url,
            max_bytes=settings.photo_max_bytes,
            timeout_seconds=settings.open311_media_timeout_seconds,
            allow_private=settings.open311_media_allow_private,
        )
    except MediaRefused as refused:
        async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
            state = await filing.record_refusal(
                session, settings, task, refused.reason, refused.transient, clock.now()
            )
        log.info(
            "open311_media_refused",
            extra={"report_id": report_id, "reason": refused.reason, "state": state},
        )
        return state
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        await filing.attach_media(session, settings, ctx["storage"], task, data, clock.now())
    return "attached"


async def reconcile_open311_media(ctx: dict[str, Any]) -> int:
    """The cron: fetches whose job was lost, or whose failed try may be tried again."""
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        return await filing.stale_fetches(session, ctx["settings"], ctx["clock"].now())


async def purge_open311_contacts(ctx: dict[str, Any]) -> int:
    """Daily: third-party submitters' contacts past OPEN311_CONTACT_RETENTION_DAYS after
    their report ended are erased (idempotent: an erased row is not touched again)."""
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        erased = await filing.erase_old_contacts(session, ctx["settings"], ctx["clock"].now())
    if erased:
        log.info("open311_contacts_erased", extra={"filings": erased})
    return erased
