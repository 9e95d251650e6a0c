"""Applying agencies' events to dossiers, set-based (issue 19 item 1).

``apply_events`` takes a batch of normalised events (``formats.ParsedEvent``, or the
``formats.EventProblem`` a parser refused) for one agency and answers one ``EventResult``
per event, in the batch's order:

- ``applied``: the event is the newest the dossier has seen; its fields and status (if
  any) are applied and it is in the timeline;
- ``recorded``: an older event that arrived after a newer one: kept in the timeline
  (``applied = false``) without moving the status or overwriting newer fields; a
  supplement request it carries is stored all the same (what is needed, the old and new
  due dates), and its new due date becomes the dossier's only if it is the newest request
  the dossier has (by the time of the event that asked): a late request never overrides
  a newer one. Its ``supplied_at`` is the first applied move to ``processing`` after it;
- ``duplicate``: an event id this agency already sent (in an earlier batch or earlier in
  this one): nothing happens;
- ``refused``: with a catalogue code (``event_*``) and the field at fault; the event
  writes nothing (an impossible transition, another agency's dossier, a progress event
  for a dossier we do not have, a status code the agency's mapping lacks …).

Events of one dossier are applied in the order of their time, then sequence
(``lifecycle.place``), whatever their order in the batch. The work is a fixed number of
statements per batch, whatever its size: the agency's status mapping, one
``SELECT … FOR UPDATE`` of the batch's dossiers by code, one look-up of event ids already
seen, then Python, then one INSERT of new dossiers, one UPDATE of changed ones, one
INSERT of timeline events and one of supplements (``unnest`` of arrays, ``ON CONFLICT``).
A concurrent batch that created the same dossier or event first is detected by the
conflict counts, and the batch is applied again inside a savepoint (it then sees them).

The caller owns the transaction; ``notices.dossier_changed`` is called inside it with one
change per status move, supplement request or due-date change a resident cares about,
and ``notices.dossiers_appeared`` with the dossiers that now carry an applicant's citizen
ID (new ones, or one given an ID): "we received your dossier", under its rules.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, Protocol

import asyncpg
import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import (
    BadRequest,
    Conflict,
    FieldError,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
)
from app.core.ratelimit import RateLimiter
from app.dossiers import formats, lifecycle, notices, signing
from app.dossiers.formats import EventProblem, ParsedEvent
from app.dossiers.notices import DossierChange
from app.settings import Settings

log = logging.getLogger("city.dossiers")

# an event dated later than this past our clock is refused (it would pin the status)
FUTURE_TOLERANCE = timedelta(minutes=10)
# creating a dossier needs these (the applicant's name, the procedure)
REQUIRED_TO_CREATE = (
    ("procedure_code", "dossier.procedure_code"),
    ("procedure_name", "dossier.procedure_name"),
    ("applicant_name", "dossier.applicant.name"),
)
_RACE_RETRIES = 5


class AgencyLike(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


Result = Literal["applied", "recorded", "duplicate", "refused"]


class EventResult(msgspec.Struct, omit_defaults=True):
    """What became of one event. ``code``/``field``/``params`` only when refused."""

    id: str | None
    result: Result
    code: str | None = None
    field: str | None = None
    params: dict[str, Any] | None = None


def refused(problem: EventProblem) -> EventResult:
    return EventResult(problem.id, "refused", problem.code, problem.field, problem.params)


def count(results: list[EventResult]) -> dict[str, int]:
    counts = dict.fromkeys(("applied", "recorded", "duplicate", "refused"), 0)
    for r in results:
        counts[r.result] += 1
    return counts


# ---------------------------------------------------------------- the dossier rows

# columns the ingest reads and writes (rating, created_at are the residents' / the row's)
_COLUMNS = (
    "id",
    "code",
    "agency_id",
    "procedure_code",
    "procedure_name",
    "field_code",
    "applicant_name",
    "applicant_kind",
    "applicant_id_hash",
    "applicant_id_last4",
    "applicant_phone",
    "applicant_email",
    "summary",
    "handling_unit_name",
    "online",
    "status",
    "received_at",
    "due_at",
    "completed_at",
    "returned_at",
    "closed_at",
    "refused_reason",
    "finished_on_time",
    "overdue_at",
    "result_pickup",
    "status_at",
    "status_seq",
)
_TYPES = {
    "id": "uuid",
    "code": "text",
    "agency_id": "uuid",
    "applicant_id_hash": "bytea",
    "online": "bool",
    "finished_on_time": "bool",
    "status_seq": "int8",
}
_TIMES = {
    "received_at",
    "due_at",
    "completed_at",
    "returned_at",
    "closed_at",
    "overdue_at",
    "status_at",
}
# the event's dossier fields copied as they are (None: not given)
_PLAIN_FIELDS = (
    "procedure_code",
    "procedure_name",
    "field_code",
    "applicant_name",
    "applicant_kind",
    "applicant_id_hash",
    "applicant_id_last4",
    "applicant_phone",
    "applicant_email",
    "summary",
    "received_at",
    "returned_at",
    "online",
    "handling_unit_name",
    "result_pickup",
)


def _pg_type(column: str) -> str:
    if column in _TIMES:
        return "timestamptz"
    return _TYPES.get(column, "text")


class _Dossier:
    """A dossier as the batch sees it (its row's values, changed in memory)."""

    __slots__ = (
        "row",
        "original",
        "new",
        "changed",
        "fees",
        "results",
        "supplied_at",
        "had_sources",
        "newest_supplement",
    )

    def __init__(self, row: dict[str, Any], new: bool) -> None:
        self.row = row
        self.original = None if new else dict(row)  # to write back only what changed
        self.new = new
        self.changed = new
        self.fees: list[dict[str, Any]] | None = None  # None: unchanged
        self.results: list[dict[str, Any]] | None = None
        self.supplied_at: datetime | None = None  # supplements handed in at this instant
        self.had_sources: set[str] = set()  # supplement requests already stored
        # when the newest supplement request stored or queued was made (its event's time)
        self.newest_supplement: datetime | None = None


_SELECT = (
    f"SELECT {', '.join(_COLUMNS)} FROM dossiers WHERE code = ANY($1::text[]) "
    "ORDER BY code FOR UPDATE"
)
_N = len(_COLUMNS)
# every column's array, then the fees' and results' JSON texts (NULL: unchanged)
_UNNEST = (
    "unnest("
    + ", ".join(f"${i + 1}::{_pg_type(c)}[]" for i, c in enumerate(_COLUMNS))
    + f", ${_N + 1}::text[], ${_N + 2}::text[]) AS u({', '.join(_COLUMNS)}, fees, results)"
)
_INSERT_DOSSIERS = (
    f"INSERT INTO dossiers ({', '.join(_COLUMNS)}, fees, results, created_at, updated_at) "
    f"SELECT {', '.join('u.' + c for c in _COLUMNS)}, coalesce(u.fees::jsonb, '[]'),"
    f" coalesce(u.results::jsonb, '[]'), ${_N + 3}, ${_N + 3} FROM {_UNNEST} "
    "ON CONFLICT (code) DO NOTHING"
)
_MUTABLE = [c for c in _COLUMNS if c not in ("id", "code", "agency_id")]


@lru_cache(maxsize=256)
def _update_statement(columns: tuple[str, ...], fees: bool, results: bool) -> str:
    """UPDATE of the columns some dossier of the batch changed (the others are left
    alone: less to write, and an unchanged row version for the rest)."""
    names = ["id", *columns] + ["fees"] * fees + ["results"] * results
    types = [_pg_type(c) for c in ("id", *columns)] + ["text"] * (fees + results)
    sets = [f"{c} = u.{c}" for c in columns]
    if fees:
        sets.append("fees = coalesce(u.fees::jsonb, d.fees)")
    if results:
        sets.append("results = coalesce(u.results::jsonb, d.results)")
    n = len(names)
    sets.append(f"updated_at = ${n + 1}")
    arrays = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    return (
        f"UPDATE dossiers AS d SET {', '.join(sets)} FROM unnest({arrays}) AS u({', '.join(names)})"
        " WHERE d.id = u.id"
    )


_INSERT_EVENTS = (
    "INSERT INTO dossier_events (dossier_id, agency_id, event_id, at, seq, kind, from_status,"
    " to_status, applied, handler, content, received_at) "
    "SELECT u.dossier_id, $1, u.event_id, u.at, u.seq, u.kind, u.from_status, u.to_status,"
    " u.applied, u.handler, u.content, $2 "
    "FROM unnest($3::uuid[], $4::text[], $5::timestamptz[], $6::int8[], $7::text[],"
    " $8::text[], $9::text[], $10::bool[], $11::text[], $12::text[])"
    " AS u(dossier_id, event_id, at, seq, kind, from_status, to_status, applied, handler,"
    " content) "
    "ON CONFLICT (agency_id, event_id) DO NOTHING"
)
_INSERT_SUPPLEMENTS = (
    "INSERT INTO dossier_supplements (id, dossier_id, source_id, requested_at, needed,"
    " supply_by, old_due_at, new_due_at) "
    "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[],"
    " $6::timestamptz[], $7::timestamptz[], $8::timestamptz[]) "
    "ON CONFLICT (dossier_id, source_id) DO NOTHING"
)
_SEEN = "SELECT event_id FROM dossier_events WHERE agency_id = $1 AND event_id = ANY($2::text[])"
_SUPPLEMENT_SOURCES = (
    "SELECT dossier_id, source_id, requested_at FROM dossier_supplements"
    " WHERE dossier_id = ANY($1::uuid[])"
)
# requests stored from late events: supplied at the first applied move to processing after
_SUPPLIED_LATE = (
    "UPDATE dossier_supplements AS s SET supplied_at = ("
    " SELECT min(e.at) FROM dossier_events e WHERE e.dossier_id = s.dossier_id"
    " AND e.applied AND e.to_status = 'processing' AND e.at > s.requested_at)"
    " WHERE s.id = ANY($1::uuid[]) AND s.supplied_at IS NULL"
)
_SUPPLIED = (
    "UPDATE dossier_supplements AS s SET supplied_at = u.at "
    "FROM unnest($1::uuid[], $2::timestamptz[]) AS u(dossier_id, at) "
    "WHERE s.dossier_id = u.dossier_id AND s.supplied_at IS NULL AND s.requested_at <= u.at"
)


class _Race(Exception):
    """A concurrent batch wrote a dossier or an event this one was about to: apply again."""


async def driver_of(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction (begun
    here if nothing ran yet), for the batch's array statements."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None  # a checked-out connection has its driver's
    if not driver.is_in_transaction():
        await session.execute(text("SELECT 1"))  # SQLAlchemy's adapter begins lazily
    assert driver.is_in_transaction()
    return driver


def _status_codes(events: list[ParsedEvent | EventProblem]) -> list[str]:
    return sorted({e.status_code for e in events if isinstance(e, ParsedEvent) and e.status_code})


async def apply_events(
    session: AsyncSession,
    agency: AgencyLike,
    events: list[ParsedEvent | EventProblem],
    now: datetime,
) -> list[EventResult]:
    """Apply one agency's events (see the module's docstring); one result per event, in
    order. Writes nothing for refused events; the caller's transaction holds the rest."""
    driver = await driver_of(session)
    mapping: dict[str, str] = {}
    codes = _status_codes(events)
    if codes:
        rows = await driver.fetch(
            "SELECT code, status FROM agency_status_codes "
            "WHERE agency_id = $1 AND code = ANY($2::text[])",
            agency.id,
            codes,
        )
        mapping = {r["code"]: r["status"] for r in rows}
    for attempt in range(_RACE_RETRIES):
        try:
            async with driver.transaction():  # a savepoint: a race undoes only this try
                return await _apply(session, driver, agency.id, events, mapping, now)
        except (_Race, asyncpg.DeadlockDetectedError):
            if attempt == _RACE_RETRIES - 1:
                raise Conflict("ingest_busy") from None
    raise AssertionError("unreachable")


class _Pending(msgspec.Struct):
    index: int
    event: ParsedEvent


class _Work:
    """One pass over a batch: the writes it queues and the changes to announce."""

    def __init__(self, agency_id: uuid.UUID, mapping: dict[str, str], now: datetime) -> None:
        self.agency_id = agency_id
        self.mapping = mapping
        self.now = now
        self.dossiers: dict[str, _Dossier] = {}
        self.timeline: list[tuple[Any, ...]] = []
        self.supplements: list[tuple[Any, ...]] = []
        self.late_supplements: list[uuid.UUID] = []  # ids of those stored from late events
        # dossiers that now carry an applicant's citizen ID they did not (new ones included)
        self.appeared: list[uuid.UUID] = []
        self.changes: list[DossierChange] = []

    def sort_out(
        self, events: list[ParsedEvent | EventProblem], results: list[EventResult | None]
    ) -> list[_Pending]:
        """Refuse what can be refused without the database; the rest is pending."""
        pending: list[_Pending] = []
        seen_in_batch: set[str] = set()
        latest = self.now + FUTURE_TOLERANCE
        for i, e in enumerate(events):
            if isinstance(e, EventProblem):
                results[i] = refused(e)
            elif e.id in seen_in_batch:
                results[i] = EventResult(e.id, "duplicate")
            else:
                seen_in_batch.add(e.id)
                problem = _precheck(e, self.mapping, latest)
                if problem is not None:
                    results[i] = refused(problem)
                else:
                    pending.append(_Pending(i, e))
        return pending

    async def load(self, driver: Any, todo: list[_Pending]) -> None:
        """Lock the batch's dossiers (by code, in order) and read their supplements' ids."""
        codes = sorted({p.event.dossier_code for p in todo})
        for r in await driver.fetch(_SELECT, codes):
            self.dossiers[r["code"]] = _Dossier(dict(r), new=False)
        if self.dossiers and any(p.event.supplements for p in todo):
            by_id = {d.row["id"]: d for d in self.dossiers.values()}
            for r in await driver.fetch(_SUPPLEMENT_SOURCES, list(by_id)):
                d = by_id[r["dossier_id"]]
                d.had_sources.add(r["source_id"])
                if d.newest_supplement is None or r["requested_at"] > d.newest_supplement:
                    d.newest_supplement = r["requested_at"]

    def apply(self, e: ParsedEvent) -> EventResult:
        target = e.status if e.status is not None else self.mapping.get(e.status_code or "")
        d = self.dossiers.get(e.dossier_code)
        if d is None:
            problem = _create_problem(e)
            if problem is not None:
                return refused(problem)
            d = self.dossiers[e.dossier_code] = _new_dossier(e, self.agency_id, target)
            self.timeline.append(_timeline(d, e, None, d.row["status"], True))
            if d.row["applicant_id_hash"] is not None:
                self.appeared.append(d.row["id"])
            _add_supplements(d, e, self.supplements, self.now, changes=None)
            return EventResult(e.id, "applied")
        row = d.row
        if row["agency_id"] != self.agency_id:
            return refused(EventProblem(e.id, "event_other_agency", "dossier_code"))
        placed = lifecycle.place(
            row["status"], row["status_at"], row["status_seq"], target, e.at, e.seq
        )
        if placed == "invalid":
            field = "status_code" if e.status is None else "status"
            params = {"from_status": row["status"], "to_status": target}
            return refused(EventProblem(e.id, "event_transition_invalid", field, params))
        if placed == "late" or (e.at, e.seq) < (row["status_at"], row["status_seq"]):
            # older than what the dossier shows: history, and the supplements it asked for
            self.timeline.append(_timeline(d, e, None, target, False))
            if e.supplements:
                self._late_supplements(d, e)
            return EventResult(e.id, "recorded")
        self._update(d, e, target if placed == "apply" else None)
        return EventResult(e.id, "applied")

    def _late_supplements(self, d: _Dossier, e: ParsedEvent) -> None:
        """A late event's supplement requests: stored; the due date moves only if one is
        the dossier's newest request (then residents hear of the new due date)."""
        before = len(self.supplements)
        before_due = d.row["due_at"]
        _add_supplements(d, e, self.supplements, self.now, changes=None)
        self.late_supplements.extend(s[0] for s in self.supplements[before:])
        if d.row["due_at"] != before_due:
            d.changed = True
            self.changes.append(_change(d, e, "due_changed"))

    def _update(self, d: _Dossier, e: ParsedEvent, target: str | None) -> None:
        """The newest event of an existing dossier: its fields, supplements and move."""
        row = d.row
        before_status, before_due = row["status"], row["due_at"]
        before_applicant = row["applicant_id_hash"]
        _apply_fields(d, e, self.now)
        if row["applicant_id_hash"] is not None and row["applicant_id_hash"] != before_applicant:
            self.appeared.append(row["id"])
        changes: list[DossierChange] = []
        added = _add_supplements(d, e, self.supplements, self.now, changes=changes)
        if target is None:
            self.timeline.append(_timeline(d, e, None, None, True))
        else:
            _enter(d, target, e)
            if target == "supplement_requested":
                if added:  # the request's details, and the move
                    changes[0] = msgspec.structs.replace(
                        changes[0], from_status=before_status, to_status=target
                    )
                else:
                    changes.append(_change(d, e, "supplement", before_status, target))
            elif lifecycle.notifies(before_status, target):
                changes.append(_change(d, e, "status", before_status, target))
            if before_status == "supplement_requested" and target == "processing":
                d.supplied_at = e.at
            self.timeline.append(_timeline(d, e, before_status, target, True))
        if row["due_at"] != before_due and not any(c.kind == "supplement" for c in changes):
            changes.append(_change(d, e, "due_changed"))
        d.changed = True
        self.changes.extend(changes)


async def _apply(
    session: AsyncSession,
    driver: Any,
    agency_id: uuid.UUID,
    events: list[ParsedEvent | EventProblem],
    mapping: dict[str, str],
    now: datetime,
) -> list[EventResult]:
    results: list[EventResult | None] = [None] * len(events)
    work = _Work(agency_id, mapping, now)
    pending = work.sort_out(events, results)
    if pending:
        seen = {
            r["event_id"]
            for r in await driver.fetch(_SEEN, agency_id, [p.event.id for p in pending])
        }
        todo = []
        for p in pending:
            if p.event.id in seen:
                results[p.index] = EventResult(p.event.id, "duplicate")
            else:
                todo.append(p)
        await work.load(driver, todo)
        # each dossier's events in the order of their time, then sequence, then arrival
        todo.sort(key=lambda p: (p.event.dossier_code, p.event.at, p.event.seq, p.index))
        for p in todo:
            results[p.index] = work.apply(p.event)
        await _write(driver, work, now)
        if work.appeared:
            await notices.dossiers_appeared(session, [(i, None) for i in work.appeared], now)
        if work.changes:
            await notices.dossier_changed(session, work.changes, now)
    out = [r for r in results if r is not None]
    assert len(out) == len(events)
    return out


def _precheck(e: ParsedEvent, mapping: dict[str, str], latest: datetime) -> EventProblem | None:
    if e.at > latest:
        return EventProblem(e.id, "event_in_future", "at")
    if e.status_code is not None and e.status_code not in mapping:
        return EventProblem(
            e.id, "event_status_code_unknown", "status_code", {"code": e.status_code}
        )
    return None


def _create_problem(e: ParsedEvent) -> EventProblem | None:
    if e.kind != "upsert" or e.dossier is None:
        return EventProblem(e.id, "event_dossier_unknown", "dossier_code")
    for attr, field in REQUIRED_TO_CREATE:
        if not getattr(e.dossier, attr):
            return EventProblem(e.id, "event_field_missing", field)
    return None


def _new_dossier(e: ParsedEvent, agency_id: uuid.UUID, status: str | None) -> _Dossier:
    f = e.dossier
    assert f is not None
    row: dict[str, Any] = dict.fromkeys(_COLUMNS)
    row.update(
        id=uuid.uuid4(),
        code=e.dossier_code,
        agency_id=agency_id,
        applicant_kind="person",
        online=False,
        status="received",
        received_at=e.at,
        status_at=e.at,
        status_seq=e.seq,
    )
    for name in _PLAIN_FIELDS:
        value = getattr(f, name)
        if value is not None:
            row[name] = value
    row["due_at"] = f.due_at
    d = _Dossier(row, new=True)
    d.fees, d.results = f.fees, f.results
    if status is not None and status != "received":
        _enter(d, status, e)
    return d


def _apply_fields(d: _Dossier, e: ParsedEvent, now: datetime) -> None:
    f = e.dossier
    if f is None:
        return
    row = d.row
    for name in _PLAIN_FIELDS:
        value = getattr(f, name)
        if value is not None:
            row[name] = value
    if f.due_at is not None and f.due_at != row["due_at"]:
        _set_due(row, f.due_at, now)
    if f.fees is not None:
        d.fees = f.fees
    if f.results is not None:
        d.results = f.results


def _set_due(row: dict[str, Any], due: datetime, now: datetime) -> None:
    row["due_at"] = due
    # a due date moved past now (the law stops the clock for supplements): no longer overdue
    if row["overdue_at"] is not None and due > now and row["status"] in lifecycle.OPEN_STATUSES:
        row["overdue_at"] = None


def _enter(d: _Dossier, target: str, e: ParsedEvent) -> None:
    """The status ``target`` reached at the event's time, with what goes with it."""
    row = d.row
    row["status"] = target
    row["status_at"], row["status_seq"] = e.at, e.seq
    if target in lifecycle.FINISHED_STATUSES and row["finished_on_time"] is None:
        due = row["due_at"]
        row["finished_on_time"] = None if due is None else e.at <= due
    if target in ("completed", "returned") and row["completed_at"] is None:
        row["completed_at"] = e.at
    if target == "returned" and row["returned_at"] is None:
        row["returned_at"] = e.at
    if target in lifecycle.FINAL_STATUSES:
        row["closed_at"] = e.at
    if target == "refused" and e.refused_reason:
        row["refused_reason"] = e.refused_reason


def _add_supplements(
    d: _Dossier,
    e: ParsedEvent,
    out: list[tuple[Any, ...]],
    now: datetime,
    changes: list[DossierChange] | None,
) -> int:
    """Queue the event's supplement requests not stored yet; a new due date they carry
    becomes the dossier's if the event is at least as new as every request the dossier
    has (stored, or earlier in this batch). Returns how many were new."""
    added = 0
    newest = d.newest_supplement is None or e.at >= d.newest_supplement
    for s in e.supplements:
        source = s.source_id or e.id
        if source in d.had_sources:
            continue
        d.had_sources.add(source)
        out.append(
            (
                uuid.uuid4(),
                d.row["id"],
                source,
                e.at,
                s.needed,
                s.supply_by,
                s.old_due_at,
                s.new_due_at,
            )
        )
        added += 1
        if newest:
            d.newest_supplement = e.at
            if s.new_due_at is not None:
                _set_due(d.row, s.new_due_at, now)
        if changes is not None:
            changes.append(
                DossierChange(
                    dossier_id=d.row["id"],
                    code=d.row["code"],
                    kind="supplement",
                    at=e.at,
                    needed=s.needed,
                    supply_by=s.supply_by,
                    due_at=d.row["due_at"],
                )
            )
    return added


def _change(
    d: _Dossier,
    e: ParsedEvent,
    kind: str,
    from_status: str | None = None,
    to_status: str | None = None,
) -> DossierChange:
    return DossierChange(
        dossier_id=d.row["id"],
        code=d.row["code"],
        kind=kind,
        at=e.at,
        from_status=from_status,
        to_status=to_status,
        due_at=d.row["due_at"],
    )


def _timeline(
    d: _Dossier, e: ParsedEvent, from_status: str | None, to_status: str | None, applied: bool
) -> tuple[Any, ...]:
    return (
        d.row["id"],
        e.id,
        e.at,
        e.seq,
        e.kind,
        from_status,
        to_status,
        applied,
        e.handler,
        e.content,
    )


def _json(value: list[dict[str, Any]] | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _columns_of(ds: list[_Dossier]) -> list[list[Any]]:
    args = [[d.row[c] for d in ds] for c in _COLUMNS]
    args.append([_json(d.fees) for d in ds])
    args.append([_json(d.results) for d in ds])
    return args


def _inserted(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def _write(driver: Any, work: _Work, now: datetime) -> None:
    dossiers = work.dossiers.values()
    new = [d for d in dossiers if d.new]
    if new:
        status = await driver.execute(_INSERT_DOSSIERS, *_columns_of(new), now)
        if _inserted(status) != len(new):
            raise _Race  # another batch created one of them first
    changed = [d for d in dossiers if d.changed and not d.new]
    if changed:
        columns = tuple(
            c for c in _MUTABLE if any(d.row[c] != (d.original or {}).get(c) for d in changed)
        )
        fees = any(d.fees is not None for d in changed)
        results = any(d.results is not None for d in changed)
        args: list[list[Any]] = [[d.row[c] for d in changed] for c in ("id", *columns)]
        if fees:
            args.append([_json(d.fees) for d in changed])
        if results:
            args.append([_json(d.results) for d in changed])
        await driver.execute(_update_statement(columns, fees, results), *args, now)
    if work.timeline:
        event_columns = [list(c) for c in zip(*work.timeline, strict=True)]
        status = await driver.execute(_INSERT_EVENTS, work.agency_id, now, *event_columns)
        if _inserted(status) != len(work.timeline):
            raise _Race  # another batch stored one of these events first
    if work.supplements:
        supplement_columns = [list(c) for c in zip(*work.supplements, strict=True)]
        await driver.execute(_INSERT_SUPPLEMENTS, *supplement_columns)
    supplied = [d for d in dossiers if d.supplied_at is not None]
    if supplied:
        await driver.execute(
            _SUPPLIED, [d.row["id"] for d in supplied], [d.supplied_at for d in supplied]
        )
    if work.late_supplements:
        await driver.execute(_SUPPLIED_LATE, work.late_supplements)


# ---------------------------------------------------------------- signed batches


class BatchOutcome(msgspec.Struct):
    results: list[EventResult]
    counts: dict[str, int]
    replayed: bool = False


_STORED = msgspec.json.Decoder(BatchOutcome)


def body_digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


async def ingest_batch(
    session: AsyncSession,
    agency_id: uuid.UUID,
    webhook_id: str,
    body: bytes,
    events: list[ParsedEvent | EventProblem],
    now: datetime,
) -> BatchOutcome:
    """A signed batch: the ``webhook-id`` is its idempotency key. The same id again
    answers what was answered (nothing applied twice); with another body: 409."""
    digest = body_digest(body)
    driver = await driver_of(session)
    # claim the id first: a concurrent retry of the same batch waits here for this one
    claimed = await driver.fetchval(
        "INSERT INTO dossier_ingest_batches (agency_id, webhook_id, body_sha256, results,"
        " received_at) VALUES ($1, $2, $3, '{}'::jsonb, $4) ON CONFLICT DO NOTHING RETURNING true",
        agency_id,
        webhook_id,
        digest,
        now,
    )
    if not claimed:
        stored = await driver.fetchrow(
            "SELECT body_sha256, results::text AS results FROM dossier_ingest_batches"
            " WHERE agency_id = $1 AND webhook_id = $2",
            agency_id,
            webhook_id,
        )
        if bytes(stored["body_sha256"]) != digest:
            raise Conflict("ingest_batch_conflict")
        outcome = _STORED.decode(stored["results"])
        outcome.replayed = True
        return outcome
    results = await apply_events(session, _Agency(agency_id), events, now)
    outcome = BatchOutcome(results=results, counts=count(results))
    await driver.execute(
        "UPDATE dossier_ingest_batches SET results = $3::text::jsonb"
        " WHERE agency_id = $1 AND webhook_id = $2",
        agency_id,
        webhook_id,
        msgspec.json.encode(outcome).decode(),
    )
    return outcome


class _Agency(msgspec.Struct, frozen=True):
    id: uuid.UUID


# ---------------------------------------------------------------- the HTTP edge's service

_AGENCY = (
    "SELECT a.id, a.active,"
    " coalesce(array_agg(s.id) FILTER (WHERE s.id IS NOT NULL), '{}') AS secret_ids,"
    " coalesce(array_agg(s.secret) FILTER (WHERE s.id IS NOT NULL), '{}') AS secrets"
    " FROM agencies a LEFT JOIN agency_secrets s ON s.agency_id = a.id"
    " AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > $2)"
    " WHERE a.code = $1 GROUP BY a.id"
)


async def signed_agency(
    session: AsyncSession,
    agency_code: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    sealing_key: str,
) -> tuple[uuid.UUID, str]:
    """The agency that signed this request and the batch's ``webhook-id``; 401 when the
    headers are missing or stale, the agency unknown or inactive, or no signature
    matches one of its valid secrets (the last three answer alike). The stored secrets
    are opened with ``sealing_key`` (``DATA_ENCRYPTION_KEY``)."""
    signed = signing.read_headers(headers, now)
    driver = await driver_of(session)
    row = await driver.fetchrow(_AGENCY, agency_code, now) if len(agency_code) <= 40 else None
    if row is None or not row["active"]:
        raise signing.SignatureRefused()
    secrets = signing.open_secrets(sealing_key, zip(row["secret_ids"], row["secrets"], strict=True))
    signing.verify(signed, secrets, body)
    return row["id"], signed.webhook_id


@dataclass(frozen=True, slots=True)
class FailedSignIns:
    """The ingest's 401s counted with ``app/core/ratelimit.py`` (issue 19, second pass), so
    a flood of bad requests costs one Redis check each instead of a database read and an
    HMAC of up to ``INGEST_MAX_BODY_BYTES`` per secret:

    - per client address, whatever the agency (``INGEST_AUTH_FAILURES_PER_IP``): past it
      that address gets 429 with Retry-After before its body is read or anything verified;
    - per agency code from all addresses (``INGEST_AUTH_FAILURES_PER_AGENCY``): past it an
      address that has itself failed for that code in the window gets 429; one that has
      not is served. So the agency's own system, signing right, is never slowed by other
      addresses' failures (as the staff sign-in's account-wide count, ``accounts``).

    Only failures count: a valid batch is never refused here. Redis unreachable: the
    gate is skipped with a warning (the batch is signed; losing Redis must not stop the
    agencies' push), unlike sign-in codes, which fail closed."""

    limiter: RateLimiter
    per_ip: str
    per_agency: str
    ip: str
    agency_code: str

    @property
    def _code(self) -> str:
        return self.agency_code[:40]  # the longest code; longer ones are refused as unknown

    async def check(self) -> None:
        try:
            await self.limiter.check(self.per_ip, "ingest-auth-ip", self.ip)
            try:
                await self.limiter.check(self.per_agency, "ingest-auth-agency", self._code)
            except TooManyRequests:
                mine = await self.limiter.used(
                    self.per_agency, "ingest-auth-agency-ip", self._code, self.ip
                )
                if mine > 0:
                    raise
        except ServiceUnavailable:
            log.warning("ingest_auth_limit_skipped", extra={"reason": "redis"})

    async def count(self) -> None:
        try:
            await self.limiter.count(self.per_ip, "ingest-auth-ip", self.ip)
            await self.limiter.count(self.per_agency, "ingest-auth-agency", self._code)
            await self.limiter.count(self.per_agency, "ingest-auth-agency-ip", self._code, self.ip)
        except ServiceUnavailable:
            log.warning("ingest_auth_failure_not_counted", extra={"reason": "redis"})


Shape = Literal["native", "portal"]


def parse_body(shape: Shape, body: bytes, id_key: str) -> list[ParsedEvent | EventProblem]:
    """A verified body → its events, each parsed (or refused) alone. The envelope itself
    must be right: 400 if not, 413 past ``MAX_EVENTS``."""
    try:
        if shape == "native":
            raws = formats.split_batch(body)
            service = ""
        else:
            service, raws = formats.split_portal(body)
    except ValueError:
        field = "events" if shape == "native" else "data"
        raise BadRequest(
            "ingest_body_invalid",
            errors=[FieldError(field=field, message="not a batch of this shape", source="body")],
        ) from None
    if not raws:
        raise BadRequest(
            "ingest_body_invalid",
            errors=[FieldError(field="events", message="empty", source="body")],
        )
    if len(raws) > formats.MAX_EVENTS:
        raise PayloadTooLarge("ingest_too_many_events", params={"max": formats.MAX_EVENTS})
    if shape == "native":
        return formats.parse_native_batch(raws, id_key=id_key)
    return formats.parse_portal_batch(service, raws, id_key=id_key)


async def receive(
    session: AsyncSession,
    agency_code: str,
    shape: Shape,
    headers: Mapping[str, str],
    read_body: Callable[[], Awaitable[bytes]],
    now: datetime,
    settings: Settings,
    failures: FailedSignIns,
) -> BatchOutcome:
    """A signed batch from an agency's system, end to end (the controller's one call):
    an address past its failed sign-ins is refused (429) before the body is read; a
    refused signature (401) is counted."""
    await failures.check()
    body = await read_body()
    try:
        agency_id, webhook_id = await signed_agency(
            session, agency_code, headers, body, now, settings.data_encryption_key
        )
    except signing.SignatureRefused:
        await failures.count()
        raise
    events = parse_body(shape, body, settings.citizen_id_hash_key)
    return await ingest_batch(session, agency_id, webhook_id, body, events, now)
