"""The photo claim: the one rule by which a report takes uploaded photos (issue 18 item 4).

Three paths claim photos: the resident's filing (a CTE of its one statement,
``app.complaints.service``), photos a reporter adds later (``add_photos``) and the
photos staff attach to a resolution (``app.complaints.handling``). All three run the
UPDATE that ``claim_sql`` writes, with the parameters ``claim_params`` gives, so they
cannot disagree on:

- **which photos may be claimed**: the claimant's own (``owner_id``), not yet attached
  to any report, and not expired (``expires_at > now``). An upload always carries an
  expiry (``upload_photo``: ``PHOTO_UNATTACHED_TTL_HOURS``); a claim clears it, so
  ``expires_at IS NULL`` means "already claimed", never "no expiry": such a row is not
  claimable (``NULL > now`` is not true), whatever its ``report_id`` says.
- **the flags it sets for staff** (never a reason to refuse): ``geotag_far`` when the
  photo's geotag is more than ``PHOTO_GEOTAG_FAR_METERS`` from the report's location,
  ``taken_long_before`` when it was taken more than ``PHOTO_STALE_DAYS`` before the claim.
- **order**: positions follow the order of ``photo_ids``, from ``position_base``.

Any photo that cannot be claimed refuses the whole request with ``photo_ids_invalid``
naming each one (``refuse_unclaimed``); the caller's transaction rolls the rest back.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import FieldError, Unprocessable
from app.settings import Settings


def claim_sql(report: str) -> str:
    """The claim as one UPDATE … RETURNING p.id. ``report`` is a FROM item named
    ``report`` with the columns ``id`` and ``location``: the filing's CTE of the report
    it inserts, or the stored report (``STORED_REPORT``). Parameters: ``claim_params``."""
    return f"""
        UPDATE report_photos AS p
           SET report_id = report.id,
               event_id = CAST(:claim_event_id AS bigint),
               position = :claim_position_base
                          + array_position(CAST(:photo_ids AS uuid[]), p.id) - 1,
               expires_at = NULL,
               taken_long_before = coalesce(p.taken_at < :claim_stale_before, false),
               geotag_far = coalesce(
                   ST_DistanceSphere(p.geotag, report.location) > :claim_far_m, false)
          FROM {report}
         WHERE p.id = ANY(CAST(:photo_ids AS uuid[]))
           AND p.owner_id = :claim_owner
           AND p.report_id IS NULL
           AND p.expires_at > :now
        RETURNING p.id
    """


STORED_REPORT = "(SELECT id, location FROM reports WHERE id = :claim_report_id) AS report"

# photos found by primary key (id = ANY), so the plan never walks the owner's other
# photos; a concurrent claim of the same photo waits for the row lock, then sees it taken
_CLAIM_FOR_STORED_REPORT = text(claim_sql(STORED_REPORT))


def claim_params(
    settings: Settings,
    now: datetime,
    owner_id: uuid.UUID,
    photo_ids: Sequence[uuid.UUID],
    *,
    position_base: int = 0,
    event_id: int | None = None,
) -> dict[str, Any]:
    """The bind parameters of ``claim_sql`` (``:now`` included)."""
    return {
        "now": now,
        "photo_ids": list(photo_ids),
        "claim_owner": owner_id,
        "claim_position_base": position_base,
        "claim_event_id": event_id,
        "claim_stale_before": now - timedelta(days=settings.photo_stale_days),
        "claim_far_m": settings.photo_geotag_far_meters,
    }


def refuse_unclaimed(wanted: Sequence[uuid.UUID], claimed: Collection[uuid.UUID]) -> None:
    """422 ``photo_ids_invalid`` naming every photo that was not claimed (not the
    claimant's, already used, expired or unknown), if any."""
    missing = [str(i) for i in wanted if i not in claimed]
    if missing:
        raise Unprocessable(
            "photo_ids_invalid",
            errors=[FieldError(field="photo_ids", message=m, source="body") for m in missing],
        )


async def claim_photos(
    session: AsyncSession,
    settings: Settings,
    *,
    owner_id: uuid.UUID,
    report_id: uuid.UUID,
    photo_ids: Sequence[uuid.UUID],
    now: datetime,
    position_base: int = 0,
    event_id: int | None = None,
) -> None:
    """Claim ``photo_ids`` for a stored report in one statement, or refuse them all."""
    if not photo_ids:
        return
    rows = await session.execute(
        _CLAIM_FOR_STORED_REPORT,
        {
            **claim_params(
                settings, now, owner_id, photo_ids, position_base=position_base, event_id=event_id
            ),
            "claim_report_id": report_id,
        },
    )
    refuse_unclaimed(photo_ids, {row[0] for row in rows})
