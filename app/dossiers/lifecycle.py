"""The dossier lifecycle as one transition table (issue 19; the shape of
``app/complaints/lifecycle.py``).

    received → processing → supplement_requested → processing …
    received/processing → completed → returned
    received/processing/supplement_requested → refused (a reason) | withdrawn

Agencies report the status their own system reached; their codes are mapped to these
statuses per agency (``agency_status_codes``). An agency may skip a step it does not
track (received → completed), never go back (completed → processing is refused for that
event alone). An event older than the status already applied (by its time, then its
sequence) is kept in the timeline without moving the status: see ``place``.

Every change is made by the ingest (``agency``); the overdue sweep marks, it does not
change the status. Set-based statements build their status lists from the constants here
(``sql_in``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.complaints.lifecycle import sql_in as sql_in

OPEN_STATUSES = ("received", "processing", "supplement_requested")
# finished: the agency is done with it (the on-time verdict is taken at the first of these)
FINISHED_STATUSES = ("completed", "returned", "refused")
FINAL_STATUSES = ("returned", "refused", "withdrawn")
# a resident may rate a dossier whose result is ready or handed over
RATEABLE_STATUSES = ("completed", "returned")
assert set(OPEN_STATUSES).isdisjoint(FINISHED_STATUSES)


@dataclass(frozen=True, slots=True)
class Rule:
    actions: frozenset[str]  # what the event is called in the timeline and the notices
    notify: bool = True  # does the applicant get a notification?


def _rule(actions: str, *, notify: bool = True) -> Rule:
    return Rule(frozenset(actions.split()), notify)


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("received", "processing"): _rule("process", notify=False),
    ("received", "supplement_requested"): _rule("request_supplement"),
    ("received", "completed"): _rule("complete"),
    ("received", "refused"): _rule("refuse"),
    ("received", "withdrawn"): _rule("withdraw"),
    ("processing", "supplement_requested"): _rule("request_supplement"),
    ("processing", "completed"): _rule("complete"),
    ("processing", "refused"): _rule("refuse"),
    ("processing", "withdrawn"): _rule("withdraw"),
    # the documents came: processing again (the new due date stands)
    ("supplement_requested", "processing"): _rule("supplied"),
    ("supplement_requested", "refused"): _rule("refuse"),
    ("supplement_requested", "withdrawn"): _rule("withdraw"),
    ("completed", "returned"): _rule("return"),
}


def allows(current: str, target: str) -> bool:
    return (current, target) in TRANSITIONS


def allowed_from(status: str) -> list[str]:
    return sorted(to for (frm, to) in TRANSITIONS if frm == status)


def sources(target: str) -> tuple[str, ...]:
    """The statuses a dossier may move to ``target`` from (for set-based statements)."""
    return tuple(sorted(frm for (frm, to) in TRANSITIONS if to == target))


def action_of(current: str, target: str) -> str:
    """The one action name of an edge (for the timeline and the notice)."""
    return min(TRANSITIONS[(current, target)].actions)


def notifies(current: str, target: str) -> bool:
    rule = TRANSITIONS.get((current, target))
    return rule is not None and rule.notify


def is_newer(at: datetime, seq: int, than_at: datetime, than_seq: int) -> bool:
    """Is an event at (``at``, ``seq``) after the one the status was last set by? Events
    are placed by their time, then by the agency's sequence number."""
    return (at, seq) > (than_at, than_seq)


def place(
    current: str,
    status_at: datetime,
    status_seq: int,
    target: str | None,
    at: datetime,
    seq: int,
) -> str:
    """What an event reporting ``target`` at (``at``, ``seq``) does to a dossier whose
    status is ``current``, last set at (``status_at``, ``status_seq``):

    - ``"apply"``: a legal move, and the event is the newest: the status changes;
    - ``"same"``: no status in the event, or the status it already has: timeline only;
    - ``"late"``: an older event that arrived after a newer one: timeline only, unless
      the move it reports is impossible from where the dossier then stood (we cannot
      know), so it is kept as history;
    - ``"invalid"``: the newest event, but the move is not in the table: refused.
    """
    if target is None or target == current:
        return "same"
    if not is_newer(at, seq, status_at, status_seq):
        return "late"
    return "apply" if allows(current, target) else "invalid"


__all__ = [
    "FINAL_STATUSES",
    "FINISHED_STATUSES",
    "OPEN_STATUSES",
    "RATEABLE_STATUSES",
    "TRANSITIONS",
    "action_of",
    "allowed_from",
    "allows",
    "is_newer",
    "notifies",
    "place",
    "sources",
    "sql_in",
]
