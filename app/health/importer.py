"""The FHIR R4 import (issue 20 items 1–3): NDJSON streamed line by line, or a
transaction/collection Bundle, into the health book's tables.

A batch of lines (``HEALTH_IMPORT_BATCH_LINES``) is parsed into Structs of the fields
kept (``app/health/fhir.py``), copied with COPY into staging tables (temporary, emptied
at each commit) and written with one set-based upsert per table; the per-line errors,
the counts and the file's cursor (byte offset, line) are written in the same
transaction. So a run killed at any moment leaves whole batches behind it, and the next
run starts at the committed cursor: nothing twice, nothing lost. Memory is one batch,
whatever the file's size (a Bundle is the exception: one JSON document, read whole up to
``HEALTH_BUNDLE_MAX_BYTES``).

Rules of the upsert: a resource is its (type, id) in the health system; within a batch
the newest ``meta.lastUpdated`` (then the later line) wins and the others are reported as
duplicates; against what is stored, a row changes only when its content differs and its
``lastUpdated`` is not older. The same file twice changes nothing. Patients are matched
by the citizen-ID identifier (``HEALTH_CITIZEN_ID_SYSTEM``), kept only as the accounts'
keyed hash; a Patient without it, or whose citizen ID another Patient already holds, is
reported and not imported, and so are the resources that point at no imported Patient.

One import runs at a time (a PostgreSQL advisory lock held by the run's connection: a
killed worker's lock goes with its connection).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from app.core.security import keyed_hash
from app.health import fhir
from app.settings import Settings

log = logging.getLogger("city.health")

LOCK_KEY = 0x4845_414C_5448  # "HEALTH": one import at a time
_CITIZEN_ID = re.compile(r"^\d{12}$")

STAGE_PATIENT_COLUMNS = (
    "line", "source_id", "citizen_id_hash", "citizen_id_last4", "full_name", "birth_date",
    "sex", "last_updated", "content_hash",
)  # fmt: skip
STAGE_PARTY_COLUMNS = (
    "line", "resource_type", "source_id", "name", "last_updated", "content_hash",
)  # fmt: skip
STAGE_RESOURCE_COLUMNS = (
    "line", "resource_type", "source_id", "patient_source", "section", "active", "code",
    "code_system", "display", "status", "effective_at", "sort_at", "value_num", "value_text",
    "unit", "performer_ref", "detail", "last_updated", "content_hash",
)  # fmt: skip

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS stage_health_patients (
    line bigint, source_id text, citizen_id_hash bytea, citizen_id_last4 text,
    full_name text, birth_date text, sex text, last_updated timestamptz, content_hash bytea
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_health_parties (
    line bigint, resource_type text, source_id text, name text, last_updated timestamptz,
    content_hash bytea
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_health_resources (
    line bigint, resource_type text, source_id text, patient_source text, section text,
    active boolean, code text, code_system text, display text, status text,
    effective_at timestamptz, sort_at timestamptz, value_num double precision,
    value_text text, unit text, performer_ref text, detail jsonb, last_updated timestamptz,
    content_hash bytea
) ON COMMIT DELETE ROWS;
"""
DROP_STAGE = (
    "DROP TABLE IF EXISTS stage_health_patients, stage_health_parties, stage_health_resources"
)

# a stored row is replaced only by different content that is not older
_NEWER = """
excluded.content_hash <> {t}.content_hash
AND coalesce(excluded.last_updated, '-infinity') >= coalesce({t}.last_updated, '-infinity')
"""

UPSERT_PATIENTS = f"""
WITH clash AS (  -- a citizen ID another patient already holds: that one keeps it
    SELECT s.line FROM stage_health_patients s
    WHERE EXISTS (SELECT 1 FROM health_patients p
                  WHERE p.citizen_id_hash = s.citizen_id_hash AND p.source_id <> s.source_id)
), up AS (
    INSERT INTO health_patients AS t (source_id, citizen_id_hash, citizen_id_last4, full_name,
        birth_date, sex, last_updated, content_hash)
    SELECT source_id, citizen_id_hash, citizen_id_last4, full_name, birth_date, sex,
        last_updated, content_hash
    FROM stage_health_patients WHERE line NOT IN (SELECT line FROM clash)
    ON CONFLICT (source_id) DO UPDATE SET
        citizen_id_hash = excluded.citizen_id_hash,
        citizen_id_last4 = excluded.citizen_id_last4,
        full_name = excluded.full_name, birth_date = excluded.birth_date, sex = excluded.sex,
        last_updated = excluded.last_updated, content_hash = excluded.content_hash,
        imported_at = now()
    WHERE {_NEWER.format(t="t")}
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) AS written,
       ARRAY(SELECT line FROM clash ORDER BY line) AS refused
"""

UPSERT_PARTIES = f"""
WITH up AS (
    INSERT INTO health_parties AS t (resource_type, source_id, name, last_updated, content_hash)
    SELECT resource_type, source_id, name, last_updated, content_hash FROM stage_health_parties
    ON CONFLICT (resource_type, source_id) DO UPDATE SET
        name = excluded.name, last_updated = excluded.last_updated,
        content_hash = excluded.content_hash
    WHERE {_NEWER.format(t="t")}
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) AS written, ARRAY[]::bigint[] AS refused
"""

UPSERT_RESOURCES = f"""
WITH up AS (
    INSERT INTO health_resources AS t (resource_type, source_id, patient_id, section, active,
        code, code_system, display, status, effective_at, sort_at, value_num, value_text,
        unit, performer_ref, detail, last_updated, content_hash)
    SELECT s.resource_type, s.source_id, p.id, s.section, s.active, s.code, s.code_system,
        s.display, s.status, s.effective_at, s.sort_at, s.value_num, s.value_text, s.unit,
        s.performer_ref, s.detail, s.last_updated, s.content_hash
    FROM stage_health_resources s JOIN health_patients p ON p.source_id = s.patient_source
    ON CONFLICT (resource_type, source_id) DO UPDATE SET
        patient_id = excluded.patient_id, section = excluded.section,
        active = excluded.active, code = excluded.code, code_system = excluded.code_system,
        display = excluded.display, status = excluded.status,
        effective_at = excluded.effective_at, sort_at = excluded.sort_at,
        value_num = excluded.value_num, value_text = excluded.value_text,
        unit = excluded.unit, performer_ref = excluded.performer_ref,
        detail = excluded.detail, last_updated = excluded.last_updated,
        content_hash = excluded.content_hash, imported_at = now()
    WHERE {_NEWER.format(t="t")}
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) AS written,
       ARRAY(SELECT s.line FROM stage_health_resources s
             WHERE NOT EXISTS (SELECT 1 FROM health_patients p
                               WHERE p.source_id = s.patient_source)
             ORDER BY s.line) AS refused
"""

ADVANCE_FILE = """
UPDATE health_import_files SET
    byte_offset = $3, line = $4, done = $5,
    lines = lines + $6, imported = imported + $7, unchanged = unchanged + $8,
    skipped = skipped + $9, duplicates = duplicates + $10, errors = errors + $11
WHERE job_id = $1 AND position = $2
"""
ADVANCE_JOB = """
UPDATE health_import_jobs SET
    lines = lines + $2, imported = imported + $3, unchanged = unchanged + $4,
    skipped = skipped + $5, duplicates = duplicates + $6, errors = errors + $7,
    progressed_at = now()
WHERE id = $1
"""


@dataclass(slots=True)
class Batch:
    """One batch's rows and what it counted; ``errors`` are (line, code, field)."""

    patients: list[tuple[Any, ...]] = field(default_factory=list)
    parties: list[tuple[Any, ...]] = field(default_factory=list)
    resources: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[int, str, str | None]] = field(default_factory=list)
    lines: int = 0
    skipped: int = 0


@dataclass(slots=True)
class Counts:
    lines: int = 0
    imported: int = 0
    unchanged: int = 0
    skipped: int = 0
    duplicates: int = 0
    errors: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Parser:
    """Lines into staging rows: the part of the import that runs in Python."""

    def __init__(self, settings: Settings) -> None:
        self.system = settings.health_citizen_id_system
        self.key = settings.citizen_id_hash_key

    def add(
        self,
        batch: Batch,
        number: int,
        raw: bytes,
        resource: fhir.AnyResource | None = None,
        resolve: dict[str, str] | None = None,
        source_id: str | None = None,
    ) -> None:
        """One line (or Bundle entry) into the batch: a row, an error or a skip."""
        batch.lines += 1
        try:
            if resource is None:
                resource = fhir.decode(raw)
            rid = source_id or resource.id
            if not rid:
                raise fhir.Unreadable("health_resource_invalid", "$.id")
            self._row(batch, number, raw, resource, rid, resolve)
        except fhir.Skipped:
            batch.skipped += 1
        except fhir.Unreadable as exc:
            batch.errors.append((number, exc.code, exc.field))

    def _row(
        self,
        batch: Batch,
        number: int,
        raw: bytes,
        res: fhir.AnyResource,
        rid: str,
        resolve: dict[str, str] | None,
    ) -> None:
        digest = fhir.content_hash(raw)
        try:
            updated = fhir.instant(res.meta.lastUpdated) if res.meta else None
        except ValueError:
            raise fhir.Unreadable("health_resource_invalid", "$.meta.lastUpdated") from None
        if isinstance(res, fhir.Patient):
            citizen_id = fhir.citizen_id_of(res, self.system)
            if citizen_id is None:
                raise fhir.Unreadable("health_patient_without_citizen_id")
            if not _CITIZEN_ID.match(citizen_id):
                raise fhir.Unreadable("health_citizen_id_invalid", "$.identifier")
            name, birth, sex = fhir.patient_fields(res)
            hashed = keyed_hash(self.key, citizen_id)
            row = (number, rid, hashed, citizen_id[-4:], name, (birth or "")[:10] or None)
            batch.patients.append((*row, sex, updated, digest))
            return
        if isinstance(res, fhir.Practitioner | fhir.Organization):
            batch.parties.append(
                (number, res.__struct_config__.tag, rid, fhir.party_name(res), updated, digest)
            )
            return
        patient, fields = fhir.clinical_row(res, resolve)
        if patient is None:
            raise fhir.Unreadable("health_patient_reference_missing")
        section, active, code, system, display, status, when, vnum, vtext, unit, perf, detail = (
            fields
        )
        try:
            effective = fhir.instant(when)
        except ValueError:
            raise fhir.Unreadable("health_resource_invalid", "date") from None
        batch.resources.append(
            (
                number,
                res.__struct_config__.tag,
                rid,
                patient,
                section,
                active,
                code,
                system,
                display,
                status,
                effective,
                effective or fhir.NEG_INFINITY,
                vnum,
                vtext,
                unit,
                perf,
                fhir.detail_json(detail),
                updated,
                digest,
            )  # fmt: skip
        )


def _newest_first(row: tuple[Any, ...], updated: int) -> tuple[bool, Any, int]:
    """Sort key of duplicates: a ``lastUpdated`` beats none, newer beats older, then the
    later line."""
    stamp = row[updated]
    return stamp is not None, stamp or fhir.NEG_INFINITY, row[0]


def dedupe(
    rows: list[tuple[Any, ...]], key: slice, updated: int
) -> tuple[list[tuple[Any, ...]], list[int]]:
    """The rows of a batch with one per key (the newest), and the lines of the others.
    Done here rather than in SQL: an INSERT ... ON CONFLICT may not touch a row twice, and
    a dict is cheaper than a window over the staged rows."""
    best: dict[Any, int] = {}
    losers: list[int] = []
    for i, row in enumerate(rows):
        k = row[key]
        j = best.get(k)
        if j is None:
            best[k] = i
        elif _newest_first(row, updated) > _newest_first(rows[j], updated):
            losers.append(rows[j][0])
            best[k] = i
        else:
            losers.append(row[0])
    if not losers:
        return rows, losers
    return [rows[i] for i in sorted(best.values())], losers


def claimed_twice(rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Patients of a batch whose citizen ID an earlier line of the batch gave to another
    patient: those lines are refused (the first keeps it)."""
    holder: dict[bytes, str] = {}
    kept, refused = [], []
    for row in rows:
        first = holder.setdefault(row[2], row[1])
        if first == row[1]:
            kept.append(row)
        else:
            refused.append(row[0])
    return kept, refused


async def write_batch(
    pg: asyncpg.Connection, job_id: uuid.UUID, position: int, batch: Batch
) -> Counts:
    """COPY the batch into staging and upsert it; the per-line errors go in too. Runs in
    the caller's transaction (the one that also advances the cursor)."""
    counts = Counts(lines=batch.lines, skipped=batch.skipped)
    errors = list(batch.errors)
    patients, duplicates = dedupe(batch.patients, slice(1, 2), 7)
    patients, twice = claimed_twice(patients)
    errors += [(line, "health_citizen_id_conflict", None) for line in twice]
    parties, more = dedupe(batch.parties, slice(1, 3), 4)
    duplicates += more
    resources, more = dedupe(batch.resources, slice(1, 3), 17)
    duplicates += more
    # patients first: a resource may name a patient of the same batch
    plan = (
        ("stage_health_patients", STAGE_PATIENT_COLUMNS, patients, UPSERT_PATIENTS,
         "health_citizen_id_conflict"),
        ("stage_health_parties", STAGE_PARTY_COLUMNS, parties, UPSERT_PARTIES, None),
        ("stage_health_resources", STAGE_RESOURCE_COLUMNS, resources, UPSERT_RESOURCES,
         "health_unknown_patient"),
    )  # fmt: skip
    for table, columns, rows, upsert, refusal in plan:
        if not rows:
            continue
        await pg.copy_records_to_table(table, records=rows, columns=columns)
        result = await pg.fetchrow(upsert)
        assert result is not None
        refused = result["refused"]
        counts.imported += result["written"]
        counts.unchanged += len(rows) - len(refused) - result["written"]
        if refusal:
            errors += [(line, refusal, None) for line in refused]
    counts.duplicates = len(duplicates)
    counts.errors = len(errors)
    errors += [(line, "health_duplicate_resource", None) for line in duplicates]
    if errors:
        await pg.copy_records_to_table(
            "health_import_errors",
            records=[(job_id, position, line, code, fld) for line, code, fld in errors],
            columns=("job_id", "position", "line", "code", "field"),
        )
    return counts


async def advance(
    pg: asyncpg.Connection,
    job_id: uuid.UUID,
    position: int,
    offset: int,
    line: int,
    done: bool,
    c: Counts,
) -> None:
    await pg.execute(
        ADVANCE_FILE, job_id, position, offset, line, done,
        c.lines, c.imported, c.unchanged, c.skipped, c.duplicates, c.errors,
    )  # fmt: skip
    await pg.execute(
        ADVANCE_JOB, job_id, c.lines, c.imported, c.unchanged, c.skipped, c.duplicates, c.errors
    )


# ---------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class FileState:
    position: int
    path: str
    format: str
    byte_offset: int
    line: int


class SliceOver(Exception):
    """The run used its share of time: the job continues in a new run."""


def _lines(path: str, offset: int) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, line) from ``offset``, one buffered line at a time."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        position = offset
        for raw in handle:
            position += len(raw)
            yield position, raw


async def _commit(
    pg: asyncpg.Connection,
    job_id: uuid.UUID,
    position: int,
    batch: Batch,
    offset: int,
    line: int,
    done: bool,
) -> Counts:
    """One batch, its errors, its counts and the file's cursor: one transaction. The
    commit need not wait for the disk: a crash losing it loses the cursor with the rows
    (the same transaction), so the next run reads those lines again."""
    async with pg.transaction():
        await pg.execute("SET LOCAL synchronous_commit = off")
        counts = await write_batch(pg, job_id, position, batch)
        await advance(pg, job_id, position, offset, line, done, counts)
    return counts


YIELD_EVERY = 256  # lines parsed between two turns of the event loop


async def import_ndjson(
    pg: asyncpg.Connection,
    parser: Parser,
    job_id: uuid.UUID,
    f: FileState,
    batch_lines: int,
    deadline: float,
) -> Counts:
    """Batches are parsed while the previous one is written: PostgreSQL works on batch n
    while Python parses batch n + 1 (the parse gives the event loop a turn every
    ``YIELD_EVERY`` lines), and batches commit in order."""
    total = Counts()
    number, offset = f.line, f.byte_offset
    lines = _lines(f.path, offset)
    pending: asyncio.Task[Counts] | None = None
    try:
        while True:
            batch = Batch()
            exhausted = True
            for after, raw in lines:
                number += 1
                offset = after
                line = raw.strip()
                if line:
                    parser.add(batch, number, line)
                    if batch.lines % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                if batch.lines >= batch_lines:
                    exhausted = False
                    break
            if pending is not None:
                total.add(await pending)
                pending = None
            pending = asyncio.create_task(
                _commit(pg, job_id, f.position, batch, offset, number, exhausted)
            )
            if exhausted:
                break
            if time.monotonic() > deadline:
                total.add(await pending)
                pending = None
                raise SliceOver
        total.add(await pending)
        pending = None
    finally:
        if pending is not None:  # a failure while parsing: the batch in flight ends first
            await asyncio.gather(pending, return_exceptions=True)
    return total


class BundleHead(msgspec.Struct):
    resourceType: str | None = None  # noqa: N815
    type: str | None = None
    entry: list[BundleEntry] = []


class BundleEntry(msgspec.Struct):
    fullUrl: str | None = None  # noqa: N815
    resource: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)  # empty: none


class _Id(msgspec.Struct):
    resourceType: Any = None  # noqa: N815
    id: Any = None


BUNDLE_TYPES = ("transaction", "collection", "batch", "searchset", "transaction-response")
_bundle = msgspec.json.Decoder(BundleHead)
_ids = msgspec.json.Decoder(_Id)


class FileRefused(Exception):
    """A whole file could not be read: one error for the file, the job goes on."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _entry_id(entry: BundleEntry) -> tuple[str | None, str | None]:
    """(resource type, id) of an entry: the resource's id, else its urn:uuid fullUrl's."""
    if not entry.resource:
        return None, None
    try:
        head = _ids.decode(entry.resource)
    except msgspec.DecodeError:
        return None, None
    kind = head.resourceType if isinstance(head.resourceType, str) else None
    rid = head.id if isinstance(head.id, str) and head.id else None
    if rid is None and entry.fullUrl and entry.fullUrl.startswith("urn:uuid:"):
        rid = entry.fullUrl[9:]
    return kind, rid


def _read_whole(path: str, max_bytes: int) -> bytes:
    if os.path.getsize(path) > max_bytes:
        raise FileRefused("health_bundle_too_large")
    with open(path, "rb") as handle:
        return handle.read()


async def import_bundle(
    pg: asyncpg.Connection,
    parser: Parser,
    job_id: uuid.UUID,
    f: FileState,
    batch_lines: int,
    max_bytes: int,
    deadline: float,
) -> Counts:
    """A transaction or collection Bundle: ``urn:uuid:`` references resolved through the
    entries' fullUrls. An entry's "line" is its place in the Bundle (1-based)."""
    data = await asyncio.to_thread(_read_whole, f.path, max_bytes)
    try:
        bundle = _bundle.decode(data)
    except msgspec.DecodeError:
        raise FileRefused("health_bundle_malformed") from None
    if bundle.resourceType != "Bundle" or bundle.type not in BUNDLE_TYPES:
        raise FileRefused("health_bundle_type_unsupported")
    resolve: dict[str, str] = {}
    ids: list[str | None] = []
    for entry in bundle.entry:
        kind, rid = _entry_id(entry)
        ids.append(rid)
        if kind and rid and entry.fullUrl:
            resolve[entry.fullUrl] = f"{kind}/{rid}"
    total = Counts()
    done = f.line
    # patients before what points at them, whatever the entries' order
    order = sorted(
        range(len(bundle.entry)),
        key=lambda i: (
            0 if (resolve.get(bundle.entry[i].fullUrl or "", "")).startswith("Patient/") else 1
        ),
    )
    while done < len(order):
        batch = Batch()
        for i in order[done : done + batch_lines]:
            entry = bundle.entry[i]
            if not entry.resource:
                batch.lines += 1
                batch.errors.append((i + 1, "health_resource_invalid", "$.resource"))
                continue
            raw = bytes(entry.resource)
            try:
                resource = fhir.decode(raw)
            except fhir.Skipped:
                batch.lines += 1
                batch.skipped += 1
                continue
            except fhir.Unreadable as exc:
                batch.lines += 1
                batch.errors.append((i + 1, exc.code, exc.field))
                continue
            parser.add(batch, i + 1, raw, resource, resolve, ids[i])
        done = min(done + batch_lines, len(order))
        total.add(await _commit(pg, job_id, f.position, batch, 0, done, done >= len(order)))
        if done < len(order) and time.monotonic() > deadline:
            raise SliceOver
    if not order:
        async with pg.transaction():
            await advance(pg, job_id, f.position, 0, 0, True, Counts())
    return total


async def refuse_file(pg: asyncpg.Connection, job_id: uuid.UUID, position: int, code: str) -> None:
    async with pg.transaction():
        await pg.execute(
            "INSERT INTO health_import_errors (job_id, position, line, code)"
            " VALUES ($1, $2, NULL, $3)",
            job_id,
            position,
            code,
        )
        await advance(pg, job_id, position, 0, 0, True, Counts(errors=1))


async def import_files(
    pg: asyncpg.Connection, settings: Settings, job_id: uuid.UUID, deadline: float
) -> Counts:
    """Every file of the job not yet done, in order, from its committed cursor."""
    parser = Parser(settings)
    rows = await pg.fetch(
        "SELECT position, path, format, byte_offset, line FROM health_import_files"
        " WHERE job_id = $1 AND NOT done ORDER BY position",
        job_id,
    )
    total = Counts()
    for row in rows:
        f = FileState(**dict(row))
        try:
            if f.format == "bundle":
                counts = await import_bundle(
                    pg, parser, job_id, f, settings.health_import_batch_lines,
                    settings.health_bundle_max_bytes, deadline,
                )  # fmt: skip
            else:
                counts = await import_ndjson(
                    pg, parser, job_id, f, settings.health_import_batch_lines, deadline
                )
        except FileRefused as exc:
            await refuse_file(pg, job_id, f.position, exc.code)
            continue
        except FileNotFoundError:
            await refuse_file(pg, job_id, f.position, "health_file_unreadable")
            continue
        except IsADirectoryError:
            await refuse_file(pg, job_id, f.position, "health_file_unreadable")
            continue
        total.add(counts)
    return total


async def create_stage(pg: asyncpg.Connection) -> None:
    await pg.execute(CREATE_STAGE)


async def drop_stage(pg: asyncpg.Connection) -> None:
    await pg.execute(DROP_STAGE)
