"""The health book's rules (issue 20): import jobs (started by an admin or the CLI, run
by the worker), the resident's lookup with its access log, and the admin's view of jobs.

Reads of a record: who may read is ``policy.may_read_health_record`` (the person, level
2, matching verified citizen ID); everyone else gets the one 404 that says nothing
(``health_record_not_found``: no record, not yours, not verified, staff). Each read is one
statement that writes the access-log row and returns the data (a data-modifying CTE), so
the row is committed with the read or not at all; the statements run in autocommit (the
hot-read pattern of ``app/core/reads.py``): two round trips for a summary, the account's
match and the read.
"""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.core import audit, i18n, jobs, reads
from app.core.errors import BadRequest, Conflict, Forbidden, NotFound
from app.health import lifecycle
from app.health.schemas import (
    AccessLogEntry,
    AccessLogPage,
    Entry,
    ImportErrorOut,
    ImportErrorPage,
    ImportFileOut,
    ImportJobOut,
    ImportJobPage,
    SectionPage,
    Summary,
)
from app.settings import Settings

RUN_JOB = "run_health_import"
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
BUNDLE_SUFFIXES = (".json",)
# types read first: the patients, then the names others point at
_FIRST = {"patient": 0, "practitioner": 1, "organization": 1}


def run_job_id(job_id: uuid.UUID | str, run: int) -> str:
    return f"health-import:{job_id}:{run}"


async def _driver(session: AsyncSession) -> Any:
    connection = await reads.single_statement(session)
    raw = await connection.get_raw_connection()
    return raw.driver_connection


# ---------------------------------------------------------------- starting imports


def _file_rank(path: str) -> tuple[int, str]:
    name = os.path.basename(path).lower()
    rank = next((r for prefix, r in _FIRST.items() if name.startswith(prefix)), 2)
    return rank, name


def files_of(paths: list[str]) -> list[tuple[str, str]]:
    """(absolute path, format) of every file given or found in a directory given, the
    Patient files first. Raises BadRequest naming what cannot be imported."""
    found: list[str] = []
    for given in paths:
        path = os.path.abspath(given)
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.lower().endswith(NDJSON_SUFFIXES + BUNDLE_SUFFIXES):
                    found.append(os.path.join(path, name))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise BadRequest("health_import_path_missing", params={"path": given})
    if not found:
        raise BadRequest("health_import_nothing_found")
    result = []
    for path in sorted(found, key=_file_rank):
        lower = path.lower()
        if lower.endswith(NDJSON_SUFFIXES):
            result.append((path, "ndjson"))
        elif lower.endswith(BUNDLE_SUFFIXES):
            result.append((path, "bundle"))
        else:
            raise BadRequest("health_import_format_unknown", params={"path": path})
    return result


async def create_file_job(
    session: AsyncSession, actor: policy.Actor, paths: list[str]
) -> uuid.UUID:
    """A job importing files on this machine (the admin CLI); the worker runs it."""
    if not (actor.is_system or policy.may_manage_health_imports(actor)):
        raise Forbidden("health_imports_forbidden")
    files = files_of(paths)
    job_id = uuid.uuid4()
    source = ", ".join(os.path.basename(p) for p in paths)[:500]
    await session.execute(
        text(
            "INSERT INTO health_import_jobs (id, kind, source, created_by)"
            " VALUES (:id, 'files', :source, :by)"
        ),
        {"id": job_id, "source": source, "by": actor.user_id},
    )
    await session.execute(
        text(
            "INSERT INTO health_import_files (job_id, position, path, name, format)"
            " VALUES (:job, :position, :path, :name, :format)"
        ),
        [
            {
                "job": job_id,
                "position": n,
                "path": path,
                "name": os.path.basename(path),
                "format": fmt,
            }
            for n, (path, fmt) in enumerate(files, start=1)
        ],
    )
    await _audit(session, actor, "health.import_started", job_id, {"files": len(files)})
    jobs.enqueue(RUN_JOB, str(job_id), job_id=run_job_id(job_id, 0))
    return job_id


async def create_bulk_job(
    session: AsyncSession, actor: policy.Actor, settings: Settings
) -> ImportJobOut:
    """A job pulling a Bulk Data export from the health system's FHIR server."""
    if not (actor.is_system or policy.may_manage_health_imports(actor)):
        raise Forbidden("health_imports_forbidden")
    if not settings.health_bulk_export_url:
        raise Conflict("health_bulk_not_configured")
    job_id = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO health_import_jobs (id, kind, source, created_by)"
            " VALUES (:id, 'bulk', :source, :by)"
        ),
        {
            "id": job_id,
            "source": settings.health_bulk_export_url.split("?", 1)[0][:500],
            "by": actor.user_id,
        },
    )
    await _audit(session, actor, "health.import_started", job_id, {"kind": "bulk"})
    jobs.enqueue(RUN_JOB, str(job_id), job_id=run_job_id(job_id, 0))
    job = await _job(session, job_id, "vi")
    assert job is not None
    return job


async def _audit(
    session: AsyncSession,
    actor: policy.Actor,
    action: str,
    job_id: uuid.UUID,
    details: dict[str, Any],
) -> None:
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="system" if actor.is_system else "staff",
        action=action,
        object_type="health_import_job",
        object_id=str(job_id),
        ip=actor.ip,
        details=details,
    )
    await session.flush()


async def resume_stale_jobs(session: AsyncSession, now: datetime, stale_seconds: int) -> int:
    """The reconciler: an unfinished job that has not moved for ``stale_seconds`` gets a
    run (named by its last progress, so a job gets one such run per stall)."""
    pg = await _driver(session)
    rows = await pg.fetch(
        "SELECT id, progressed_at FROM health_import_jobs"
        f" WHERE status IN ({lifecycle.sql_in(lifecycle.UNFINISHED_STATUSES)})"
        " AND progressed_at < $1::timestamptz - make_interval(secs => $2)",
        now,
        float(stale_seconds),
    )
    for row in rows:
        stamp = int(row["progressed_at"].timestamp())
        jobs.enqueue(RUN_JOB, str(row["id"]), job_id=f"health-import:{row['id']}:resume:{stamp}")
    return len(rows)


# ---------------------------------------------------------------- admin: jobs

_JOB_COLUMNS = """
id, kind, status, source, created_at, started_at, finished_at,
extract(epoch FROM coalesce(finished_at, now()) - started_at) AS duration, runs,
failure_code, failure_params, lines, imported, unchanged, skipped, duplicates, errors
"""


def _job_out(row: Any, locale: str, files: list[ImportFileOut] | None = None) -> ImportJobOut:
    failure = None
    if row["failure_code"]:
        params = row["failure_params"] or {}
        if isinstance(params, str | bytes):  # a connection without the app's JSON codec
            params = msgspec.json.decode(params)
        failure = i18n.translate(row["failure_code"], locale, params)
    return ImportJobOut(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        source=row["source"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_seconds=float(row["duration"]) if row["duration"] is not None else None,
        runs=row["runs"],
        failure_code=row["failure_code"],
        failure=failure,
        lines=row["lines"],
        imported=row["imported"],
        unchanged=row["unchanged"],
        skipped=row["skipped"],
        duplicates=row["duplicates"],
        errors=row["errors"],
        files=files or [],
    )


async def _job(session: AsyncSession, job_id: uuid.UUID, locale: str) -> ImportJobOut | None:
    pg = await _driver(session)
    row = await pg.fetchrow(f"SELECT {_JOB_COLUMNS} FROM health_import_jobs WHERE id = $1", job_id)
    if row is None:
        return None
    files = await pg.fetch(
        "SELECT position, name, format, done, lines, imported, unchanged, skipped, duplicates,"
        " errors FROM health_import_files WHERE job_id = $1 ORDER BY position",
        job_id,
    )
    return _job_out(row, locale, [ImportFileOut(**dict(f)) for f in files])


async def list_jobs(
    session: AsyncSession,
    actor: policy.Actor,
    locale: str,
    cursor: str | None = None,
    limit: int = 20,
) -> ImportJobPage:
    if not policy.may_manage_health_imports(actor):
        raise Forbidden("health_imports_forbidden")
    pg = await _driver(session)
    before = _decode_job_cursor(cursor)
    rows = await pg.fetch(
        f"SELECT {_JOB_COLUMNS} FROM health_import_jobs"
        " WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT $3",
        before[0],
        before[1],
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = _encode_cursor(f"{last['created_at'].timestamp():.6f}|{last['id']}")
    return ImportJobPage(items=[_job_out(r, locale) for r in rows], next_cursor=next_cursor)


async def get_job(
    session: AsyncSession, actor: policy.Actor, job_id: uuid.UUID, locale: str
) -> ImportJobOut:
    if not policy.may_manage_health_imports(actor):
        raise Forbidden("health_imports_forbidden")
    job = await _job(session, job_id, locale)
    if job is None:
        raise NotFound("health_import_not_found")
    return job


async def job_errors(
    session: AsyncSession,
    actor: policy.Actor,
    job_id: uuid.UUID,
    locale: str,
    cursor: str | None = None,
    limit: int = 100,
) -> ImportErrorPage:
    """The lines not imported, in file and line order: the reason, never the content."""
    if not policy.may_manage_health_imports(actor):
        raise Forbidden("health_imports_forbidden")
    pg = await _driver(session)
    after = 0
    if cursor:
        try:
            after = int(_decode_cursor(cursor))
        except ValueError:
            raise BadRequest("health_cursor_invalid") from None
    rows = await pg.fetch(
        "SELECT e.id, f.name, e.line, e.code, e.field,"
        " EXISTS (SELECT 1 FROM health_import_jobs j WHERE j.id = $1) AS job_exists"
        " FROM (SELECT 1) one"
        " LEFT JOIN health_import_errors e ON e.job_id = $1 AND e.id > $2"
        " LEFT JOIN health_import_files f ON f.job_id = e.job_id AND f.position = e.position"
        " ORDER BY e.id LIMIT $3",
        job_id,
        after,
        limit + 1,
    )
    if not rows or not rows[0]["job_exists"]:
        raise NotFound("health_import_not_found")
    rows = [r for r in rows if r["id"] is not None]
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        ImportErrorOut(
            file=r["name"],
            line=r["line"],
            code=r["code"],
            field=r["field"],
            reason=i18n.translate(r["code"], locale, {"field": r["field"] or ""}),
        )
        for r in rows
    ]
    next_cursor = _encode_cursor(str(rows[-1]["id"])) if more else None
    return ImportErrorPage(items=items, next_cursor=next_cursor)


# ---------------------------------------------------------------- cursors


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("health_cursor_invalid") from None


def _decode_job_cursor(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    if not cursor:
        return None, None
    try:
        stamp, _, ident = _decode_cursor(cursor).partition("|")
        return datetime.fromtimestamp(float(stamp), UTC), uuid.UUID(ident)
    except ValueError:
        raise BadRequest("health_cursor_invalid") from None


# ---------------------------------------------------------------- the resident's book


class ReadContext(msgspec.Struct, frozen=True):
    """Where a read comes from, for the access log (the controller fills it)."""

    session_id: uuid.UUID | None
    device: str | None
    ip: str | None
    request_id: str | None


OWNER_SQL = """
SELECT u.identity_level, u.status, u.citizen_id_hash AS verified, p.id AS patient_id,
       p.citizen_id_hash AS owner
FROM users u LEFT JOIN health_patients p ON p.citizen_id_hash = u.citizen_id_hash
WHERE u.id = $1
"""


async def _record_of(pg: Any, actor: policy.Actor) -> int:
    """The patient id of the actor's own record, or the one 404 for every refusal."""
    if actor.user_id is None:
        raise NotFound("health_record_not_found")
    row = await pg.fetchrow(OWNER_SQL, actor.user_id)
    if (
        row is None
        or row["status"] != "active"
        or row["patient_id"] is None
        or not policy.may_read_health_record(
            actor, row["identity_level"], row["verified"], row["owner"]
        )
    ):
        raise NotFound("health_record_not_found")
    return int(row["patient_id"])


# the access-log row, written by the statement that reads ($1 patient, $2..$8 the read)
_LOG_CTE = """
log AS (
    INSERT INTO health_access_log (patient_id, user_id, at, section, session_id, device, ip,
        request_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7::inet, $8)
    RETURNING 1
)
"""

# one entry as JSON (x: health_resources, pa: health_parties)
_ENTRY_JSON = """
json_strip_nulls(json_build_object(
    'type', x.resource_type, 'id', x.source_id, 'display', x.display, 'code', x.code,
    'code_system', x.code_system, 'status', x.status, 'active', x.active,
    'effective_at', x.effective_at, 'value', x.value_num, 'value_text', x.value_text,
    'unit', x.unit, 'performer', pa.name, 'detail', x.detail))
"""
_PARTY_JOIN = """
LEFT JOIN health_parties pa ON pa.resource_type = split_part(x.performer_ref, '/', 1)
    AND pa.source_id = split_part(x.performer_ref, '/', 2)
"""


def _section_json(where: str, limit: int, order: str = "x.sort_at DESC, x.source_id DESC") -> str:
    return f"""coalesce((SELECT json_agg(e.j ORDER BY e.n) FROM (
        SELECT {_ENTRY_JSON} AS j, row_number() OVER (ORDER BY {order}) AS n
        FROM health_resources x {_PARTY_JOIN}
        WHERE x.patient_id = $1 AND {where}
        ORDER BY {order} LIMIT {limit}) e), '[]'::json)"""


BLOOD_TYPE_CODES = ("882-1",)  # LOINC: ABO and Rh group [Type] in Blood

SUMMARY_SQL = f"""
WITH {_LOG_CTE}
SELECT json_build_object(
    'person', (SELECT json_build_object('full_name', full_name, 'birth_date', birth_date,
                  'sex', sex, 'citizen_id_last4', citizen_id_last4)
               FROM health_patients WHERE id = $1),
    'blood_type', (SELECT coalesce(x.value_text, x.display) FROM health_resources x
                   WHERE x.patient_id = $1 AND x.section IN ('results', 'vital_signs')
                     AND x.code IN ({", ".join(f"'{c}'" for c in BLOOD_TYPE_CODES)})
                   ORDER BY x.sort_at DESC LIMIT 1),
    'allergies', {_section_json("x.section = 'allergies' AND x.active", 50)},
    'active_conditions', {_section_json("x.section = 'conditions' AND x.active", 50)},
    'immunizations', {_section_json("x.section = 'immunizations'", 20)},
    'recent_encounters', {_section_json("x.section = 'encounters'", 5)},
    'latest_vital_signs', coalesce((SELECT json_agg(v.j ORDER BY v.display) FROM (
        SELECT DISTINCT ON (coalesce(x.code, x.display)) {_ENTRY_JSON} AS j, x.display
        FROM health_resources x {_PARTY_JOIN}
        WHERE x.patient_id = $1 AND x.section = 'vital_signs'
        ORDER BY coalesce(x.code, x.display), x.sort_at DESC) v), '[]'::json),
    'current_medications', {_section_json("x.section = 'medications' AND x.active", 50)}
)::text AS summary, (SELECT count(*) FROM log) AS logged
"""

SECTION_SQL = f"""
WITH {_LOG_CTE}
SELECT {_ENTRY_JSON}::text AS entry, x.sort_at, x.resource_type, x.source_id,
       (SELECT count(*) FROM log) AS logged
FROM health_resources x {_PARTY_JOIN}
WHERE x.patient_id = $1 AND x.section = $9
  AND ($10::timestamptz IS NULL OR (x.sort_at, x.resource_type, x.source_id) < ($10, $11, $12))
ORDER BY x.sort_at DESC, x.resource_type DESC, x.source_id DESC
LIMIT $13
"""
# an empty page still writes its access-log row (the CTE runs whatever the SELECT finds)

EVERYTHING_SQL = f"""
WITH {_LOG_CTE}
SELECT x.section, {_ENTRY_JSON}::text AS entry, (SELECT count(*) FROM log) AS logged
FROM health_resources x {_PARTY_JOIN}
WHERE x.patient_id = $1
ORDER BY x.section, x.sort_at DESC, x.resource_type, x.source_id
"""
PERSON_SQL = """
SELECT full_name, birth_date, sex, citizen_id_last4, source_id FROM health_patients WHERE id = $1
"""


def _log_args(
    patient_id: int, actor: policy.Actor, section: str, context: ReadContext
) -> tuple[Any, ...]:
    return (
        patient_id,
        actor.user_id,
        actor.now,
        section,
        context.session_id,
        (context.device or "")[:200] or None,
        context.ip,
        context.request_id,
    )


_summary = msgspec.json.Decoder(Summary)
_entry = msgspec.json.Decoder(Entry)


async def summary(session: AsyncSession, actor: policy.Actor, context: ReadContext) -> Summary:
    pg = await _driver(session)
    patient_id = await _record_of(pg, actor)
    row = await pg.fetchrow(SUMMARY_SQL, *_log_args(patient_id, actor, "summary", context))
    return _summary.decode(row["summary"])


def _section_cursor(cursor: str | None) -> tuple[datetime | None, str | None, str | None]:
    if not cursor:
        return None, None, None
    try:
        stamp, kind, ident = _decode_cursor(cursor).split("|", 2)
        return datetime.fromtimestamp(int(stamp) / 1_000_000, UTC), kind, ident
    except ValueError:
        raise BadRequest("health_cursor_invalid") from None


def _stamp(value: datetime) -> int:
    return int((value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


async def section(
    session: AsyncSession,
    actor: policy.Actor,
    context: ReadContext,
    name: str,
    cursor: str | None = None,
    limit: int = 20,
) -> SectionPage:
    pg = await _driver(session)
    after = _section_cursor(cursor)
    patient_id = await _record_of(pg, actor)
    rows = await pg.fetch(
        SECTION_SQL, *_log_args(patient_id, actor, name, context), name, *after, limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        key = f"{_stamp(last['sort_at'])}|{last['resource_type']}|{last['source_id']}"
        next_cursor = _encode_cursor(key)
    return SectionPage(
        section=name, items=[_entry.decode(r["entry"]) for r in rows], next_cursor=next_cursor
    )


async def everything(
    session: AsyncSession, actor: policy.Actor, context: ReadContext, purpose: str
) -> tuple[dict[str, Any], dict[str, list[Entry]]]:
    """The whole record (for the FHIR Bundle and the download): the person and every
    entry by section. ``purpose`` is the access log's section (fhir, download)."""
    pg = await _driver(session)
    patient_id = await _record_of(pg, actor)
    rows = await pg.fetch(EVERYTHING_SQL, *_log_args(patient_id, actor, purpose, context))
    person = await pg.fetchrow(PERSON_SQL, patient_id)
    by_section: dict[str, list[Entry]] = {}
    for r in rows:
        by_section.setdefault(r["section"], []).append(_entry.decode(r["entry"]))
    return dict(person), by_section


async def access_log(
    session: AsyncSession, actor: policy.Actor, cursor: str | None = None, limit: int = 50
) -> AccessLogPage:
    """Every read of the actor's own record, newest first (listing it is not a read)."""
    pg = await _driver(session)
    before = None
    if cursor:
        try:
            before = int(_decode_cursor(cursor))
        except ValueError:
            raise BadRequest("health_cursor_invalid") from None
    patient_id = await _record_of(pg, actor)
    rows = await pg.fetch(
        "SELECT id, at, section, user_id, session_id, device, host(ip) AS ip"
        " FROM health_access_log WHERE patient_id = $1 AND ($2::bigint IS NULL OR id < $2)"
        " ORDER BY id DESC LIMIT $3",
        patient_id,
        before,
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        AccessLogEntry(
            at=r["at"],
            section=r["section"],
            by_me=r["user_id"] == actor.user_id,
            session_id=r["session_id"],
            device=r["device"],
            ip=r["ip"],
        )
        for r in rows
    ]
    return AccessLogPage(
        items=items, next_cursor=_encode_cursor(str(rows[-1]["id"])) if more else None
    )
