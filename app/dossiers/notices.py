"""What the applicant hears when an agency moves their dossier (issue 19 item 5): the
ingest collects one ``DossierChange`` per change a resident cares about and calls
``dossier_changed`` in the same transaction; this module turns them into inbox rows and
pushes through the notifications capability.

Who hears it: everyone who follows the dossier — the residents who linked it and the
level-2 account whose verified citizen ID it was filed under (a user both ways hears it
once). One statement finds which of the changed dossiers anyone follows (with the
procedure's name and where the result is collected, for the texts); only those changes
are rendered, and ``notifications.service.notify`` writes the rows for the audience
``dossier`` in one more statement, enqueueing the pushes after the commit.

Kinds (each mutable for push in the preferences, kept in the inbox always):

- ``dossier_status``: the status moved (which status, the code, the procedure);
- ``dossier_supplement``: more documents requested — what is needed and by when;
- ``dossier_due_changed``: the agency moved the due date;
- ``dossier_result_ready``: the result is ready (completed), and where to collect it.

Dedupe keys are built from the change itself (dossier, kind, target, time), so an event
the agency sends again — or a batch replayed, a job rerun — never notifies twice.

**A dossier appears** (``dossiers_appeared``, issue 19 second pass): "we received your
dossier X at agency Y; due date Z" (kind ``dossier_status``, so muting status notices
mutes it too; its own texts ``notification.dossier_received``), to one resident at a
time (audience ``user``), once per dossier and resident (dedupe key
``dossier:{id}:received``, whoever triggers it):

- when the ingest creates a dossier filed under a citizen ID (or gives an existing one
  its first or another ID), to the level-2 account verified with that ID — but only if
  the dossier was received (``received_at``, NgayTiepNhan) no earlier than the account
  was verified. Dossiers imported in bulk with older receipt dates (an agency's backlog,
  a file import of last year's dossiers) are listed for the resident, not announced: a
  flood of notices on the first sign-in helps nobody. The verification time is that of
  the account's ``account.identity_verified`` audit entry (written by
  ``accounts.service.bind_citizen_identity`` in the transaction that raised the level;
  the users table keeps no such column), or the account's creation for an account
  verified without one;
- when a resident links it (``service.link``, a new link), to that resident, whatever
  the dossier's age: they asked for it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import i18n
from app.dossiers import lifecycle
from app.dossiers.links import resident_link
from app.notifications.service import Notice, notify
from app.policy import DOSSIER_OWNER_LEVEL

STATUS = "dossier_status"
SUPPLEMENT = "dossier_supplement"
DUE_CHANGED = "dossier_due_changed"
RESULT_READY = "dossier_result_ready"
KINDS = (STATUS, SUPPLEMENT, DUE_CHANGED, RESULT_READY)


RECEIVED_TEXTS = "dossier_received"  # notification.dossier_received.{title,body}


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


def _when(value: datetime | None, language: str) -> str:
    return i18n.format_datetime(value, language) if value is not None else "—"


@dataclass(frozen=True, slots=True)
class DossierNotice(Notice):
    """A notice about a dossier: ``report_id``/``report_code`` carry the dossier's id and
    code (the inbox's columns are shared); the texts take the dossier's parameters."""

    procedure: str = ""
    status: str | None = None
    needed: str | None = None
    supply_by: datetime | None = None
    pickup: str | None = None
    agency_vi: str = ""
    agency_en: str = ""
    texts: str | None = None  # the catalogue's notification.<texts> (default: the kind)

    def render(self, language: str) -> tuple[str, str]:
        params = {
            "code": self.report_code,
            "procedure": self.procedure,
            "status": i18n.text(f"dossier_status.{self.status}", language) if self.status else "",
            "needed": self.needed or i18n.text("dossier.needed_unknown", language),
            "by": _when(self.supply_by, language),
            "due": _when(self.due, language),
            "pickup": self.pickup or i18n.text("dossier.pickup_unknown", language),
            "agency": self.agency_en if language == "en" else self.agency_vi,
        }
        key = f"notification.{self.texts or self.kind}"
        return i18n.text(f"{key}.title", language, **params), i18n.text(
            f"{key}.body", language, **params
        )


# the changed dossiers that anyone follows, with what the texts name
_FOLLOWED = text(
    """
    SELECT d.id, d.procedure_name, d.result_pickup
      FROM dossiers d
     WHERE d.id = ANY(CAST(:ids AS uuid[]))
       AND (EXISTS (SELECT 1 FROM dossier_links l WHERE l.dossier_id = d.id)
            OR EXISTS (SELECT 1 FROM users u
                        WHERE u.citizen_id_hash = d.applicant_id_hash
                          AND u.identity_level >= :level
                          AND u.deleted_at IS NULL AND u.status = 'active'))
    """
)


def _stamp(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "none"


def _notice(change: DossierChange, procedure: str, pickup: str | None) -> DossierNotice | None:
    """The notice a change makes, or None when it is not one residents hear about."""
    base: dict[str, Any] = {
        "report_id": change.dossier_id,
        "report_code": change.code,
        "audience": "dossier",
        "procedure": procedure,
        # the inbox's report_code is a report's: a dossier's code goes in dossier_code
        "data": {"report_code": None, "dossier_code": change.code, **resident_link(change.code)},
    }
    key = f"dossier:{change.dossier_id}"
    if change.kind == "supplement":
        # one event may ask for several documents: each request is its own notice
        asked = hashlib.sha256((change.needed or "").encode()).hexdigest()[:16]
        return DossierNotice(
            kind=SUPPLEMENT,
            dedupe_key=f"{key}:supplement:{_stamp(change.at)}:{asked}",
            needed=change.needed,
            supply_by=change.supply_by,
            due=change.due_at,
            **base,
        )
    if change.kind == "due_changed":
        return DossierNotice(
            kind=DUE_CHANGED,
            dedupe_key=f"{key}:due:{_stamp(change.at)}:{_stamp(change.due_at)}",
            due=change.due_at,
            **base,
        )
    if change.kind != "status" or change.to_status is None:
        return None
    if change.from_status is not None and not lifecycle.notifies(
        change.from_status, change.to_status
    ):
        return None
    if change.to_status == "completed":
        # reached once (no edge leads back): one notice ever
        return DossierNotice(
            kind=RESULT_READY,
            dedupe_key=f"{key}:result_ready",
            status=change.to_status,
            pickup=pickup,
            **base,
        )
    return DossierNotice(
        kind=STATUS,
        dedupe_key=f"{key}:status:{change.to_status}:{_stamp(change.at)}",
        status=change.to_status,
        **base,
    )


async def dossier_changed(
    session: AsyncSession, changes: list[DossierChange], now: datetime
) -> None:
    """Notify everyone who follows these dossiers: inbox rows in this transaction, pushes
    after its commit. Set-based: one statement finds the followed dossiers, one writes the
    rows (``notify``); nothing is rendered for a dossier no one follows."""
    if not changes:
        return
    ids = list({c.dossier_id for c in changes})
    followed = {
        row[0]: (row[1], row[2])
        for row in await session.execute(_FOLLOWED, {"ids": ids, "level": DOSSIER_OWNER_LEVEL})
    }
    if not followed:
        return
    # a supplement change says more than the status move it came with: that one is enough
    with_supplement = {c.dossier_id for c in changes if c.kind == "supplement"}
    notices: list[Notice] = []
    for change in changes:
        if change.dossier_id not in followed:
            continue
        if (
            change.kind == "status"
            and change.to_status == "supplement_requested"
            and change.dossier_id in with_supplement
        ):
            continue
        procedure, pickup = followed[change.dossier_id]
        notice = _notice(change, procedure, pickup)
        if notice is not None:
            notices.append(notice)
    await notify(session, notices, now)


# the dossiers that appeared and for whom: a given resident (a link), or (NULL) the
# level-2 account verified with the applicant's ID no later than the dossier's receipt
_APPEARED = text(
    f"""
    SELECT d.id, d.code, d.procedure_name, d.due_at, a.name_vi, a.name_en, r.user_id
      FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS uuid[])) AS w(dossier_id, user_id)
      JOIN dossiers d ON d.id = w.dossier_id
      JOIN agencies a ON a.id = d.agency_id
     CROSS JOIN LATERAL (
        SELECT w.user_id WHERE w.user_id IS NOT NULL
        UNION ALL
        SELECT u.id FROM users u
         WHERE w.user_id IS NULL
           AND u.citizen_id_hash = d.applicant_id_hash
           AND u.identity_level >= {DOSSIER_OWNER_LEVEL}
           AND u.deleted_at IS NULL AND u.status = 'active'
           AND d.received_at >= coalesce(
                (SELECT max(l.at) FROM audit_log l
                  WHERE l.actor_id = u.id AND l.action = 'account.identity_verified'),
                u.created_at)
     ) AS r(user_id)
    """
)


async def dossiers_appeared(
    session: AsyncSession,
    appeared: list[tuple[uuid.UUID, uuid.UUID | None]],
    now: datetime,
) -> None:
    """ "We received your dossier" for each (dossier, resident) — a resident None: the
    verified applicant, if the dossier is not older than their verification (see the
    module's docstring). One statement finds the recipients, one writes the rows."""
    if not appeared:
        return
    rows = await session.execute(
        _APPEARED,
        {"ids": [d for d, _ in appeared], "users": [u for _, u in appeared]},
    )
    notices: list[Notice] = [
        DossierNotice(
            kind=STATUS,
            texts=RECEIVED_TEXTS,
            report_id=dossier_id,
            report_code=code,
            audience="user",
            user_id=user_id,
            dedupe_key=f"dossier:{dossier_id}:received",
            procedure=procedure,
            status="received",
            due=due_at,
            agency_vi=agency_vi,
            agency_en=agency_en,
            data={"report_code": None, "dossier_code": code, **resident_link(code)},
        )
        for dossier_id, code, procedure, due_at, agency_vi, agency_en, user_id in rows
    ]
    await notify(session, notices, now)
