"""What the applicant hears when an agency moves their dossier (issue 19 item 5): the
ingest collects one ``DossierChange`` per change a resident cares about and calls
``dossier_changed`` in the same transaction; this module turns them into inbox rows and
pushes through the notifications capability."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession


class DossierChange(msgspec.Struct, frozen=True):
    dossier_id: uuid.UUID
    code: str
    # status: the status moved (from_status → to_status);
    # supplement: more documents requested (needed, supply_by, due_at: the new due date);
    # due_changed: the agency moved the due date (due_at)
    kind: str
    at: datetime
    from_status: str | None = None
    to_status: str | None = None
    needed: str | None = None
    supply_by: datetime | None = None
    due_at: datetime | None = None


async def dossier_changed(
    session: AsyncSession, changes: list[DossierChange], now: datetime
) -> None:
    """Notify everyone who follows these dossiers (the residents' part of issue 19
    writes this; until then the ingest's calls notify no one)."""
    del session, changes, now
