"""Bodies of the sync call. Each item carries the same list-item Struct as the list it
mirrors (``ReportSummary`` of /reports/mine, ``NotificationOut`` of the inbox,
``DossierSummary`` of /me/dossiers, ``Summary`` of /me/health), so the app stores what it
gets from either in one shape."""

from __future__ import annotations

from typing import Literal

import msgspec

from app.complaints.schemas import ReportSummary
from app.dossiers.schemas import DossierSummary
from app.health.schemas import Summary
from app.notifications.schemas import NotificationOut

EntityType = Literal["report", "notification", "dossier", "health"]


class SyncItem(msgspec.Struct, omit_defaults=True):
    """One entity as it stands now, or its tombstone (``deleted``: erased,
    unlinked, or no longer yours to see; drop it from the app's copy).

    ``id``: a report's id, a notification's id, a dossier's code, ``summary`` for the
    health book. Exactly one of the payloads is set on an item that is not deleted."""

    type: EntityType
    id: str
    deleted: bool
    report: ReportSummary | None = None
    answers: int | None = None  # a report's public answers from staff
    rating_asked: bool | None = None  # a report waits for the reporter's rating
    notification: NotificationOut | None = None
    dossier: DossierSummary | None = None
    health: Summary | None = None
    sections: list[str] | None = None  # the health book's sections that changed


class SyncPage(msgspec.Struct):
    items: list[SyncItem]
    # opaque; pass as ?cursor= next time (also when has_more is false: it is where the
    # app's copy stands). Bound to the account that got it.
    cursor: str
    has_more: bool  # call again at once with ``cursor`` for the rest
