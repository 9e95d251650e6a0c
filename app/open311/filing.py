"""A third-party app files a report through Open311 (POST requests, issue 21).

``parse_filing`` reads the specification's form fields into a ``Filing`` (every problem
is a 400 naming the parameter, collected into one answer); ``file`` checks the service
and its attributes, then files through the complaints filing service (one statement:
category, area, report, timeline) as the app's stand-in reporter with
``reports.open311_key_id`` set, keeps what the app sent about its user for the unit
(``open311_filings``), audits the filing with the key's id, and after commit enqueues
routing and, with a ``media_url``, the fetch of the photo (``tasks.fetch_open311_media``).

The media fetch job (``claim_fetch`` → ``media.fetch_media`` → ``finish_fetch``) counts
its tries in the row, attaches the photo through the upload's pipeline (EXIF stripped,
HEIC, pixel-bomb checks) and the photo claim, or records the failure on the report's
timeline for staff; ``stale_fetches`` is the reconciliation's list.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import lifecycle, photo_claim
from app.complaints import service as complaints
from app.complaints.models import ReportEvent, ReportPhoto
from app.complaints.schemas import Point, ReportIn
from app.core import audit, i18n, jobs
from app.core.errors import AppError
from app.core.storage import Storage
from app.open311.formats import Open311Error
from app.open311.keys import KeyInUse
from app.open311.media import check_url
from app.open311.models import Open311Filing
from app.places.models import Category, CategoryAttribute
from app.settings import Settings

DESCRIPTION_MIN, DESCRIPTION_MAX = 10, 4000  # the app's own filing rule (ReportIn)
ADDRESS_MAX = 300
STRING_MAX, TEXT_MAX = 300, 4000
# the submitter fields the specification names, and the longest value kept of each
SUBMITTER_FIELDS = {
    "email": 254,
    "device_id": 200,
    "account_id": 200,
    "first_name": 100,
    "last_name": 100,
    "phone": 30,
}
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,100})\](\[\])?$")
KNOWN_FIELDS = frozenset(
    {
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "description",
        "media_url",
        "locale",
        *SUBMITTER_FIELDS,
    }
)


class Filing(msgspec.Struct, frozen=True):
    """The form's fields, read but not yet checked against the service."""

    service_code: str
    lat: float
    lon: float
    placed: bool  # lat/long given; else the ward of address_id or address_string
    address: str | None
    address_id: int | None
    description: str
    media_url: str | None
    submitter: dict[str, str]
    answers: dict[str, list[str]]  # attribute code → the values given (in order)


class Filed(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    code: str
    deadline_working_days: int
    account_id: str | None


def _one(form: Any, name: str, errors: list[str]) -> str | None:
    """A single-valued field; empty is the same as absent (the spec's optional rule)."""
    values = [v for v in form.getall(name, []) if isinstance(v, str)]
    if len(values) > 1:
        errors.append(f"{name} was given more than once")
        return None
    value = values[0].strip() if values else ""
    if "\x00" in value:
        errors.append(f"{name} contains a NUL character")
        return None
    return value or None


def _coordinate(name: str, raw: str, low: float, high: float, errors: list[str]) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        errors.append(f"{name} must be a number from {low:g} to {high:g}")
        return 0.0
    return value


def _location(form: Any, errors: list[str]) -> tuple[float, float, bool, str | None, int | None]:
    """lat/long (both, in range); without them, ``address_id`` (an id from the address
    search, ``/api/v1/places/address-search``) or ``address_string``: the report is filed
    at the ward's point and marked location approximate for staff (as the app's filing
    by address, issue 22 item 7)."""
    lat_raw, lon_raw = _one(form, "lat", errors), _one(form, "long", errors)
    address = _one(form, "address_string", errors)
    address_id_raw = _one(form, "address_id", errors)
    address_id: int | None = None
    if address_id_raw is not None:
        if (
            address_id_raw.isascii()
            and address_id_raw.isdigit()
            and 0 < int(address_id_raw) < 2**31
        ):
            address_id = int(address_id_raw)
        else:
            errors.append("address_id must be an id from the city's address search")
    lat = lon = 0.0
    placed = False
    if lat_raw is not None and lon_raw is not None:
        lat = _coordinate("lat", lat_raw, -90, 90, errors)
        lon = _coordinate("long", lon_raw, -180, 180, errors)
        placed = True
    elif lat_raw is not None or lon_raw is not None:
        errors.append("lat and long must both be given")
    elif address is None and address_id_raw is None:
        errors.append("a location is required: lat and long, address_string or address_id")
    if address is not None and len(address) > ADDRESS_MAX:
        errors.append(f"address_string is longer than {ADDRESS_MAX} characters")
    return lat, lon, placed, address, address_id


def _answers(form: Any, errors: list[str]) -> dict[str, list[str]]:
    """``attribute[code]`` and ``attribute[code][]`` (repeated for a multivaluelist)."""
    answers: dict[str, list[str]] = {}
    for key in dict.fromkeys(k for k in form if k not in KNOWN_FIELDS):
        match = _ATTRIBUTE.match(key)
        if match is None:
            errors.append(f"{key} is not a parameter of POST requests")
            continue
        values = [v.strip() for v in form.getall(key, []) if isinstance(v, str)]
        if any("\x00" in v for v in values):
            errors.append(f"{key} contains a NUL character")
            continue
        values = [v for v in values if v]
        if values:
            answers.setdefault(match[1], []).extend(values)
    return answers


def parse_filing(form: Any) -> Filing:
    """The form as the specification names its fields, or a 400 naming every problem."""
    errors: list[str] = []
    service_code = _one(form, "service_code", errors)
    if service_code is None and not any("service_code" in e for e in errors):
        errors.append("service_code is required")
    lat, lon, placed, address, address_id = _location(form, errors)
    description = _one(form, "description", errors) or ""
    if len(description) > DESCRIPTION_MAX:
        errors.append(f"description is longer than {DESCRIPTION_MAX:,} characters")
    elif len(description) < DESCRIPTION_MIN:
        errors.append(
            f"description is required, {DESCRIPTION_MIN} to {DESCRIPTION_MAX:,} characters"
        )
    media_url = _one(form, "media_url", errors)
    if media_url is not None and (problem := check_url(media_url)) is not None:
        errors.append(f"media_url {problem}")
    submitter: dict[str, str] = {}
    for name, longest in SUBMITTER_FIELDS.items():
        value = _one(form, name, errors)
        if value is not None and len(value) > longest:
            errors.append(f"{name} is longer than {longest} characters")
        elif value is not None:
            submitter[name] = value
    answers = _answers(form, errors)
    if errors:
        raise Open311Error(400, "; ".join(errors))
    assert service_code is not None
    return Filing(
        service_code=service_code,
        lat=lat,
        lon=lon,
        placed=placed,
        address=address,
        address_id=address_id,
        description=description,
        media_url=media_url,
        submitter=submitter,
        answers=answers,
    )


def _number(raw: str) -> int | float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _answer(question: CategoryAttribute, values: list[str]) -> tuple[Any, str | None]:
    """One attribute's answer as stored, or what is wrong with it."""
    if question.datatype != "multivaluelist" and len(values) > 1:
        return None, "takes one value"
    value = values[0]
    if question.datatype == "number":
        number = _number(value)
        return (number, None) if number is not None else (None, "must be a number")
    if question.datatype == "datetime":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            return None, "must be a W3C datetime with a time zone"
        return moment.isoformat(), None
    if question.datatype in ("singlevaluelist", "multivaluelist"):
        keys = [str(v["key"]) for v in question.values]
        if any(v not in keys for v in values):
            return None, f"must be one of {', '.join(keys)}"
        if question.datatype == "singlevaluelist":
            return value, None
        return list(dict.fromkeys(values)), None
    longest = TEXT_MAX if question.datatype == "text" else STRING_MAX
    if len(value) > longest:
        return None, f"is longer than {longest} characters"
    return value, None


def check_answers(
    service_code: str, questions: Iterable[CategoryAttribute], answers: dict[str, list[str]]
) -> dict[str, Any]:
    """The answers as stored (a number, a W3C datetime, a key or a list of keys), or a
    400 naming every attribute that is unknown, missing or not one of its values."""
    asked = {q.code: q for q in questions}
    errors = [
        f"attribute[{code}] is not an attribute of service {service_code}"
        for code in answers
        if code not in asked
    ]
    stored: dict[str, Any] = {}
    for code, question in asked.items():
        values = answers.get(code, [])
        if not values:
            if question.required:
                errors.append(f"attribute[{code}] is required")
            continue
        value, problem = _answer(question, values)
        if problem is not None:
            errors.append(f"attribute[{code}] {problem}")
        else:
            stored[code] = value
    if errors:
        raise Open311Error(400, "; ".join(errors))
    return stored


def media_job_id(report_id: uuid.UUID, attempts: int) -> str:
    return f"open311-media:{report_id}:{attempts}"


async def file(
    session: AsyncSession,
    settings: Settings,
    key: KeyInUse,
    filing: Filing,
    now: datetime,
    ip: str | None,
) -> Filed:
    """File the report as the key's app; a 404 for an unknown or inactive service."""
    category = await session.get(Category, filing.service_code)
    if category is None or not category.active:
        raise Open311Error(404, f"service_code '{filing.service_code}' not found")
    questions = await session.scalars(
        select(CategoryAttribute)
        .where(
            CategoryAttribute.category_code == category.code,
            CategoryAttribute.active.is_(True),
        )
        .order_by(CategoryAttribute.position)
    )
    attributes = check_answers(category.code, questions, filing.answers)
    body = ReportIn(
        kind="complaint",
        category_code=category.code,
        description=filing.description,
        location=Point(lat=filing.lat, lon=filing.lon) if filing.placed else None,
        address_text=filing.address,
        address_id=None if filing.placed else filing.address_id,
    )
    try:
        created, _ = await complaints.file_report(
            session,
            settings,
            key.reporter_id,
            body,
            None,
            now,
            attributes=attributes or None,
            open311_key_id=key.id,
        )
    except AppError as exc:
        if exc.code == "location_outside_city":
            raise Open311Error(400, "lat/long is outside the city's areas") from exc
        if exc.code == "address_not_found":
            named = "address_id" if filing.address_id is not None else "address_string"
            raise Open311Error(400, f"{named} matches no place in the city") from exc
        if exc.code == "address_ambiguous":
            places = ", ".join(f"{c['id']} ({c['label']})" for c in (exc.candidates or []))
            raise Open311Error(
                400,
                "address_string matches places in several wards: send lat/long, or "
                f"address_id, one of: {places}",
            ) from exc
        if exc.code == "category_unknown":  # deactivated since it was read
            raise Open311Error(404, f"service_code '{filing.service_code}' not found") from exc
        raise
    session.add(
        Open311Filing(
            report_id=created.id,
            key_id=key.id,
            media_url=filing.media_url,
            media_state="pending" if filing.media_url else "none",
            created_at=now,
            **filing.submitter,
        )
    )
    await session.flush()
    await audit.record(
        session,
        actor_id=None,
        actor_kind="open311",
        action="open311.report_filed",
        object_type="report",
        object_id=created.code,
        ip=ip,
        details={"key_id": str(key.id), "media_url": filing.media_url is not None},
    )
    if filing.media_url:
        jobs.enqueue("fetch_open311_media", str(created.id), job_id=media_job_id(created.id, 0))
    return Filed(
        report_id=created.id,
        code=created.code,
        deadline_working_days=category.deadline_working_days,
        account_id=filing.submitter.get("account_id"),
    )


def service_notice(filed: Filed, locale: str) -> str:
    return i18n.text("open311.service_notice", locale, days=filed.deadline_working_days)


async def request_of_token(session: AsyncSession, token: str) -> str | None:
    """The service_request_id (report code) a token (the report's id) stands for, if
    the report was filed through Open311."""
    try:
        report_id = uuid.UUID(token)
    except ValueError:
        return None
    return await session.scalar(
        text(
            "SELECT r.code FROM reports r JOIN open311_filings f ON f.report_id = r.id"
            " WHERE r.id = :id"
        ),
        {"id": report_id},
    )


# ---------------------------------------------------------------- the media fetch


class MediaTask(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    url: str
    owner_id: uuid.UUID  # the key's stand-in reporter: the photo's uploader
    attempts: int


async def claim_fetch(
    session: AsyncSession, report_id: uuid.UUID, now: datetime
) -> MediaTask | None:
    """Count a try of a pending fetch (committed before the fetch, so a killed worker's
    try counts too); None when there is nothing to fetch."""
    row = (
        await session.execute(
            text(
                """
                UPDATE open311_filings f
                   SET media_attempts = f.media_attempts + 1, media_tried_at = :now
                  FROM open311_keys k
                 WHERE f.report_id = :id AND f.media_state = 'pending' AND k.id = f.key_id
                RETURNING f.media_url, k.reporter_id, f.media_attempts
                """
            ),
            {"id": report_id, "now": now},
        )
    ).first()
    if row is None or row.media_url is None:
        return None
    return MediaTask(report_id, row.media_url, row.reporter_id, row.media_attempts)


async def _locked_pending(session: AsyncSession, report_id: uuid.UUID) -> Open311Filing | None:
    filing = await session.scalar(
        select(Open311Filing).where(Open311Filing.report_id == report_id).with_for_update()
    )
    return filing if filing is not None and filing.media_state == "pending" else None


async def attach_media(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    task: MediaTask,
    data: bytes,
    now: datetime,
) -> bool:
    """The fetched bytes through the upload's pipeline, claimed by the report. False when
    another run already finished it. A picture the pipeline refuses is a failure."""
    filing = await _locked_pending(session, task.report_id)
    if filing is None:
        return False
    try:
        photo = await complaints.upload_photo(session, settings, storage, task.owner_id, data, now)
    except AppError as exc:  # unreadable, too many pixels, not a picture
        await _fail(session, filing, exc.code, now)
        return True
    position = await session.scalar(
        select(func.count()).select_from(ReportPhoto).where(ReportPhoto.report_id == task.report_id)
    )
    await photo_claim.claim_photos(
        session,
        settings,
        owner_id=task.owner_id,
        report_id=task.report_id,
        photo_ids=[photo.id],
        now=now,
        position_base=position or 0,
    )
    filing.media_state, filing.media_done_at, filing.media_error = "attached", now, None
    session.add(
        ReportEvent(
            report_id=task.report_id,
            at=now,
            kind="photos_added",
            actor_id=None,
            actor_kind="system",
            public=True,
        )
    )
    return True


async def _fail(session: AsyncSession, filing: Open311Filing, reason: str, now: datetime) -> None:
    filing.media_state, filing.media_done_at, filing.media_error = "failed", now, reason
    session.add(
        ReportEvent(
            report_id=filing.report_id,
            at=now,
            kind="media_failed",
            actor_id=None,
            actor_kind="system",
            public=False,  # for staff: the app's photo could not be used
            body=f"media_url: {reason}",
        )
    )


async def record_refusal(
    session: AsyncSession,
    settings: Settings,
    task: MediaTask,
    reason: str,
    transient: bool,
    now: datetime,
) -> str:
    """A try that failed: kept pending for the reconciliation to try again while tries
    are left and the cause may pass, else failed with the reason on the timeline.
    Returns the state left."""
    filing = await _locked_pending(session, task.report_id)
    if filing is None:
        return "done"
    if transient and task.attempts < settings.open311_media_max_attempts:
        filing.media_error = reason
        return "pending"
    await _fail(session, filing, reason, now)
    return "failed"


# pending fetches whose tries were all used by runs that never finished (killed workers),
# failed in one statement with their timeline events
_FAIL_EXHAUSTED = text(
    """
    WITH failed AS (
        UPDATE open311_filings
           SET media_state = 'failed', media_done_at = :now,
               media_error = coalesce(media_error, 'not_fetched')
         WHERE report_id = ANY(CAST(:ids AS uuid[])) AND media_state = 'pending'
        RETURNING report_id, media_error
    )
    INSERT INTO report_events (report_id, at, kind, actor_kind, public, body)
    SELECT report_id, :now, 'media_failed', 'system', false, 'media_url: ' || media_error
      FROM failed
    """
)


async def stale_fetches(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Enqueue a fetch for every pending media whose job was lost or whose last try
    failed and may be tried again (one job id per try: a rerun never doubles a try)."""
    quiet = timedelta(
        seconds=settings.reconcile_after_seconds + settings.open311_media_timeout_seconds
    )
    rows = (
        await session.execute(
            select(Open311Filing.report_id, Open311Filing.media_attempts)
            .where(
                Open311Filing.media_state == "pending",
                Open311Filing.created_at
                < now - timedelta(seconds=settings.reconcile_after_seconds),
                func.coalesce(Open311Filing.media_tried_at, Open311Filing.created_at) < now - quiet,
            )
            .order_by(Open311Filing.created_at)
            .limit(500)
        )
    ).all()
    tries = settings.open311_media_max_attempts
    exhausted = [r.report_id for r in rows if r.media_attempts >= tries]
    if exhausted:  # tries used up by runs that never finished: a failure for staff
        await session.execute(_FAIL_EXHAUSTED, {"ids": exhausted, "now": now})
    for row in rows:
        if row.media_attempts < tries:
            jobs.enqueue(
                "fetch_open311_media",
                str(row.report_id),
                job_id=media_job_id(row.report_id, row.media_attempts),
            )
    return len(rows)


async def submitter_contact(session: AsyncSession, report_id: uuid.UUID) -> Open311Filing | None:
    """What the app sent about its user (for the unit's managers, as a reporter's contact)."""
    return await session.get(Open311Filing, report_id)


async def erase_old_contacts(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Decree 13's storage limitation for third-party filings: the submitter's contact
    served the unit while the report was handled; OPEN311_CONTACT_RETENTION_DAYS after the
    report ended (a final status, no change since) it is erased, in one statement. Returns
    how many filings lost their contact."""
    cutoff = now - timedelta(days=settings.open311_contact_retention_days)
    result = await session.execute(
        text(
            f"""
            UPDATE open311_filings f
               SET email = NULL, device_id = NULL, account_id = NULL,
                   first_name = NULL, last_name = NULL, phone = NULL
              FROM reports r
             WHERE r.id = f.report_id
               AND r.status IN ({lifecycle.sql_in(lifecycle.FINAL_STATUSES)})
               AND r.updated_at < :cutoff
               AND COALESCE(f.email, f.device_id, f.account_id, f.first_name, f.last_name,
                            f.phone) IS NOT NULL
            """
        ),
        {"cutoff": cutoff},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
