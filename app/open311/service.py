"""GeoReport v2, the read side (issue 21): discovery, services, service definitions,
requests and mySociety's ``servicerequestupdates``, over the public view of reports.

Only what the public report view shows (``app/complaints/public.py``): withdrawn reports
never, a text moderators hid never, the reporter never; the public timeline's events
only, and a resident's own words never. Each list is one statement (``app.core.reads``:
compiled once, run in autocommit on a pooled connection); categories and units come from
the per-process reference snapshot, the categories' questions from a copy held beside
it (reloaded whenever the snapshot is, since ``category_attributes`` notifies the same
channel). Parameters are read here from plain strings, each bad one a 400 naming it.
"""

from __future__ import annotations

import functools
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from app.complaints import lifecycle
from app.complaints.abuse import PUBLIC_REPORT
from app.complaints.codes import normalize_code
from app.complaints.models import Report, ReportEvent, ReportPhoto
from app.core import i18n
from app.core.reads import Query, Reader
from app.core.storage import Storage
from app.open311.formats import Open311Error
from app.open311.schemas import (
    AttributeOut,
    DiscoveryOut,
    EndpointOut,
    RequestOut,
    ServiceDefinitionOut,
    ServiceOut,
    UpdateOut,
    ValueOut,
)
from app.places.models import CategoryAttribute
from app.places.reference import ReferenceData, Snapshot

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# when the discovery document or the endpoint's shape last changed (sortable)
CHANGESET = "2026-12-05T00:00:00+07:00"
MEDIA_TYPES = ["text/xml", "application/json"]
# the specification's window for GET requests, and its default (the last 90 days)
MAX_WINDOW = timedelta(days=90)
# rows in one answer: the default and the most a client may ask for (page_size)
MAX_PAGE_SIZE = 1000
# W3C datetime in Hanoi's offset (no daylight saving since 1975: always +07:00)
_W3C = 'YYYY-MM-DD"T"HH24:MI:SS"+07:00"'
_ZONE = "Asia/Ho_Chi_Minh"


def open311_status(status: str) -> str:
    """Our lifecycle's status as GeoReport v2's: ``open`` while a unit still owes an
    answer (``lifecycle.OPEN_STATUSES``), ``closed`` once resolved, closed, rejected or
    merged as a duplicate."""
    return "open" if status in lifecycle.OPEN_STATUSES else "closed"


# ---- parameters ---------------------------------------------------------------------


def check_jurisdiction(raw: str | None, served: str) -> None:
    """``jurisdiction_id`` may be left out (one jurisdiction here); given, it must be ours."""
    if raw and raw.strip().lower() != served.lower():
        raise Open311Error(
            404, f"jurisdiction_id '{raw.strip()}' not found: this endpoint serves '{served}'"
        )


def locale_of(raw: str | None, accept_language: str | None) -> str:
    """``locale`` (``vi``, ``en``, ``en-US`` …) when it names one we have, else the
    Accept-Language header's choice; Vietnamese by default."""
    if raw:
        primary = raw.strip().lower().replace("_", "-").split("-")[0]
        if primary in i18n.LOCALES:
            return primary
    return i18n.negotiate(accept_language)


def parse_datetime(name: str, raw: str | None) -> datetime | None:
    """A W3C datetime with its zone (``2026-12-01T00:00:00Z``, ``…+07:00``)."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise Open311Error(
            400,
            f"{name} '{raw}' is not a W3C datetime with a time zone, "
            "e.g. 2026-12-01T00:00:00Z or 2026-12-01T07:00:00+07:00",
        )
    return value


def window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The requested_datetime range: both given (at most 90 days apart), one given (90
    days from or up to it), or neither (the last 90 days)."""
    if start is None and end is None:
        return now - MAX_WINDOW, now
    if start is None:
        assert end is not None
        return end - MAX_WINDOW, end
    if end is None:
        return start, start + MAX_WINDOW
    if start > end:
        raise Open311Error(400, "start_date is after end_date")
    if end - start > MAX_WINDOW:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    return start, end


def parse_list(raw: str | None) -> list[str]:
    """A comma-separated parameter's values, blanks dropped."""
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def parse_statuses(raw: str | None) -> frozenset[str]:
    """``open``, ``closed`` or both (comma list); none given: every status."""
    values = frozenset(v.lower() for v in parse_list(raw))
    unknown = sorted(values - {"open", "closed"})
    if unknown:
        raise Open311Error(400, f"status '{unknown[0]}' is unknown: use open, closed or both")
    return values


def parse_page(page: str | None, page_size: str | None) -> tuple[int, int]:
    """The pagination extension: ``page`` from 1, ``page_size`` 1..1000 (default 1000)."""

    def number(name: str, raw: str | None, default: int, most: int) -> int:
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= most:
            raise Open311Error(400, f"{name} '{raw}' must be a whole number from 1 to {most}")
        return value

    return (
        number("page", page, 1, 1_000_000),
        number("page_size", page_size, MAX_PAGE_SIZE, MAX_PAGE_SIZE),
    )


@dataclass(frozen=True, slots=True)
class RequestsQuery:
    """GET requests' parameters, checked."""

    codes: tuple[str, ...]  # service_request_id: overrides the rest
    service_codes: tuple[str, ...]
    start: datetime
    end: datetime
    statuses: frozenset[str]
    page: int
    page_size: int


def requests_query(params: dict[str, str | None], now: datetime) -> RequestsQuery:
    codes = parse_list(params.get("service_request_id"))
    if len(codes) > MAX_PAGE_SIZE:
        raise Open311Error(400, f"service_request_id lists more than {MAX_PAGE_SIZE} ids")
    if codes:  # "This overrides all other arguments": they are not even read
        return RequestsQuery(
            codes=tuple(dict.fromkeys(normalize_code(c) for c in codes)),
            service_codes=(),
            start=now - MAX_WINDOW,
            end=now,
            statuses=frozenset(),
            page=1,
            page_size=MAX_PAGE_SIZE,
        )
    page, page_size = parse_page(params.get("page"), params.get("page_size"))
    start, end = window(
        parse_datetime("start_date", params.get("start_date")),
        parse_datetime("end_date", params.get("end_date")),
        now,
    )
    return RequestsQuery(
        codes=(),
        service_codes=tuple(parse_list(params.get("service_code"))),
        start=start,
        end=end,
        statuses=parse_statuses(params.get("status")),
        page=page,
        page_size=page_size,
    )


# ---- discovery and services ---------------------------------------------------------


def discovery(base_url: str, contact_email: str, locale: str) -> DiscoveryOut:
    return DiscoveryOut(
        changeset=CHANGESET,
        contact=i18n.text("open311.discovery.contact", locale, email=contact_email),
        key_service=i18n.text("open311.discovery.key_service", locale, email=contact_email),
        endpoints=[
            EndpointOut(
                specification=SPECIFICATION,
                url=base_url,
                changeset=CHANGESET,
                type="production",
                formats=list(MEDIA_TYPES),
            )
        ],
    )


class _Attribute(msgspec.Struct, frozen=True, gc=False):
    category_code: str
    code: str
    position: int
    datatype: str
    required: bool
    description_vi: str
    description_en: str
    datatype_description_vi: str | None
    datatype_description_en: str | None
    values: list[dict[str, str]]


# the active questions of each category, per reference snapshot: a new snapshot (any
# change to categories, units, areas or their questions) reads them again
_attributes: weakref.WeakKeyDictionary[Snapshot, dict[str, list[_Attribute]]] = (
    weakref.WeakKeyDictionary()
)


async def _category_attributes(
    engine: AsyncEngine, snapshot: Snapshot
) -> dict[str, list[_Attribute]]:
    cached = _attributes.get(snapshot)
    if cached is None:
        a = CategoryAttribute
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    a.category_code,
                    a.code,
                    a.position,
                    a.datatype,
                    a.required,
                    a.description_vi,
                    a.description_en,
                    a.datatype_description_vi,
                    a.datatype_description_en,
                    a.values,
                )
                .where(a.active.is_(True))
                .order_by(a.category_code, a.position, a.code)
            )
            cached = {}
            for row in rows:
                cached.setdefault(row.category_code, []).append(_Attribute(*row))
        _attributes[snapshot] = cached
    return cached


async def services(engine: AsyncEngine, reference: ReferenceData, locale: str) -> list[ServiceOut]:
    """The active categories, in code order."""
    snapshot = await reference.current()
    attributes = await _category_attributes(engine, snapshot)
    group = i18n.text("open311.service.group", locale)
    out = []
    for category in snapshot.categories.values():
        if not category.active:
            continue
        name = category.name(locale)
        keywords = dict.fromkeys([category.name_vi, category.name_en, category.code])
        out.append(
            ServiceOut(
                service_code=category.code,
                service_name=name,
                description=i18n.text(
                    "open311.service.description",
                    locale,
                    name=name,
                    days=category.deadline_working_days,
                ),
                metadata=bool(attributes.get(category.code)),
                type="realtime",
                keywords=", ".join(keywords),
                group=group,
            )
        )
    return out


async def service_definition(
    engine: AsyncEngine, reference: ReferenceData, service_code: str, locale: str
) -> ServiceDefinitionOut:
    snapshot = await reference.current()
    category = snapshot.categories.get(service_code)
    if category is None or not category.active:
        raise Open311Error(404, f"service_code '{service_code}' not found")
    attributes = (await _category_attributes(engine, snapshot)).get(service_code, [])
    en = locale == "en"
    return ServiceDefinitionOut(
        service_code=category.code,
        attributes=[
            AttributeOut(
                variable=True,
                code=a.code,
                datatype=a.datatype,
                required=a.required,
                datatype_description=(
                    a.datatype_description_en if en else a.datatype_description_vi
                ),
                order=order,
                description=a.description_en if en else a.description_vi,
                values=[
                    ValueOut(key=str(v["key"]), name=v["name_en"] if en else v["name_vi"])
                    for v in a.values
                ],
            )
            for order, a in enumerate(attributes, start=1)
        ],
    )


# ---- requests ----------------------------------------------------------------------


def _w3c(column: Any) -> Any:
    return func.to_char(func.timezone(_ZONE, column), _W3C)


# the public view's rule (app/complaints/abuse.py): not withdrawn, not flagged abusive
_PUBLIC_REPORT = PUBLIC_REPORT
_OPEN = text(f"reports.status IN ({lifecycle.sql_in(lifecycle.OPEN_STATUSES)})")
_CLOSED = text(f"reports.status NOT IN ({lifecycle.sql_in(lifecycle.OPEN_STATUSES)})")
# a public answer: staff's (or the system's) words on a public event moderators left up
# (literal, as ix_report_events_answers' predicate, for prepared statements' plans)
_ANSWER = and_(
    ReportEvent.public,
    ReportEvent.body.is_not(None),
    ReportEvent.actor_kind != literal_column("'resident'"),
    ReportEvent.hidden_reason.is_(None),
)
_STATUS_NOTES = (
    select(ReportEvent.body)
    .where(ReportEvent.report_id == Report.id, _ANSWER)
    .order_by(ReportEvent.id.desc())
    .limit(1)
    .correlate(Report)
    .scalar_subquery()
)
# the first photo the public view shows
_PHOTO = (
    select(ReportPhoto.display_key)
    .where(ReportPhoto.report_id == Report.id, ReportPhoto.hidden_reason.is_(None))
    .order_by(ReportPhoto.position, ReportPhoto.id)
    .limit(1)
    .correlate(Report)
    .scalar_subquery()
)
_TEXT_SHOWN = Report.description_hidden_reason.is_(None)
_REQUEST_COLUMNS = (
    Report.code,
    Report.status,
    Report.category_code,
    case((_TEXT_SHOWN, Report.description)),
    case((_TEXT_SHOWN, Report.address_text)),
    func.ST_Y(Report.location),
    func.ST_X(Report.location),
    _w3c(Report.created_at),
    _w3c(Report.updated_at),
    _w3c(Report.due_at),
    Report.unit_id,
    _STATUS_NOTES,
    _PHOTO,
)


@functools.cache
def _requests_query(by_codes: bool, by_service: bool, statuses: frozenset[str]) -> Query:
    """One statement per shape of filter (so each has its own plan): by ids, or a window
    of requested_datetime with optional service codes and open/closed; newest first."""
    filters: list[Any] = [_PUBLIC_REPORT]
    if by_codes:
        filters.append(Report.code == any_(bindparam("codes", type_=ARRAY(String))))
    else:
        filters += [
            Report.created_at >= bindparam("start", type_=DateTime(timezone=True)),
            Report.created_at <= bindparam("end", type_=DateTime(timezone=True)),
        ]
        if by_service:
            filters.append(
                Report.category_code == any_(bindparam("service_codes", type_=ARRAY(String)))
            )
        if statuses == {"open"}:
            filters.append(_OPEN)
        elif statuses == {"closed"}:
            filters.append(_CLOSED)
    stmt = (
        select(*_REQUEST_COLUMNS)
        .where(*filters)
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return Query(stmt)


class _Texts:
    """Names and notices in one locale, each made once per answer."""

    def __init__(self, snapshot: Snapshot, locale: str) -> None:
        self.snapshot = snapshot
        self.locale = locale
        self._services: dict[str, tuple[str, str | None]] = {}
        self._units: dict[uuid.UUID, str] = {}

    def service(self, code: str) -> tuple[str, str | None]:
        found = self._services.get(code)
        if found is None:
            category = self.snapshot.categories.get(code)
            if category is None:  # a category deleted since: its code stands for it
                found = (code, None)
            else:
                notice = i18n.text(
                    "open311.service_notice", self.locale, days=category.deadline_working_days
                )
                found = (category.name(self.locale), notice)
            self._services[code] = found
        return found

    def unit(self, unit_id: uuid.UUID | None) -> str | None:
        if unit_id is None:
            return None
        name = self._units.get(unit_id)
        if name is None:
            unit = self.snapshot.units.get(unit_id)
            name = self._units[unit_id] = unit.name(self.locale) if unit else ""
        return name or None


# A photo's signed URL lives MEDIA_URL_TTL seconds and is handed out again while it has
# at least half of that left (longer than any cache may keep an answer): a page of 1,000
# requests signs only the photos it has not signed lately (signing cost ~10 us each on
# local disk, a thread hop each on S3: 7-12 ms a page on the bench machine).
MEDIA_URL_TTL = 600
_REUSE_SECONDS = MEDIA_URL_TTL / 2
_SIGNED_MAX = 50_000
# per storage (a test run may build more than one app): key -> (signed at, URL)
_signed: weakref.WeakKeyDictionary[Storage, dict[str, tuple[float, str]]] = (
    weakref.WeakKeyDictionary()
)


async def _media_urls(storage: Storage, keys: Sequence[str | None]) -> list[str | None]:
    now = time.monotonic()
    signed = _signed.get(storage)
    if signed is None:
        signed = _signed[storage] = {}
    urls: list[str | None] = []
    for key in keys:
        if key is None:
            urls.append(None)
            continue
        entry = signed.get(key)
        if entry is None or now - entry[0] > _REUSE_SECONDS:
            url = await storage.signed_url(key, MEDIA_URL_TTL)
            if len(signed) >= _SIGNED_MAX:
                signed.clear()
            signed[key] = (now, url)
        else:
            url = entry[1]
        urls.append(url)
    return urls


async def requests(
    db: Reader,
    reference: ReferenceData,
    storage: Storage,
    query: RequestsQuery,
    locale: str,
) -> list[RequestOut]:
    """GET requests: by ids (at most 1,000), or a page of a window, newest first."""
    statement = _requests_query(
        bool(query.codes), bool(query.service_codes), query.statuses & {"open", "closed"}
    )
    values: dict[str, Any] = {
        "limit": query.page_size,
        "offset": (query.page - 1) * query.page_size,
    }
    if query.codes:
        values["codes"] = list(query.codes)
    else:
        values["start"], values["end"] = query.start, query.end
        if query.service_codes:
            values["service_codes"] = list(query.service_codes)
    rows = await statement.fetch(db, **values)
    texts = _Texts(await reference.current(), locale)
    media = await _media_urls(storage, [row[12] for row in rows])
    out = []
    for row, media_url in zip(rows, media, strict=True):
        service_name, notice = texts.service(row[2])
        out.append(
            RequestOut(
                service_request_id=row[0],
                status=open311_status(row[1]),
                status_notes=row[11],
                service_name=service_name,
                service_code=row[2],
                description=row[3],
                agency_responsible=texts.unit(row[10]),
                service_notice=notice,
                requested_datetime=row[7],
                updated_datetime=row[8],
                expected_datetime=row[9],
                address=row[4],
                address_id=None,
                zipcode=None,
                lat=row[5],
                long=row[6],
                media_url=media_url,
            )
        )
    return out


async def request(
    db: Reader, reference: ReferenceData, storage: Storage, raw_id: str, locale: str
) -> list[RequestOut]:
    """GET requests/{id}: an array of one, or 404 (unknown, or not public)."""
    code = normalize_code(raw_id)
    query = RequestsQuery(
        codes=(code,),
        service_codes=(),
        start=datetime.min.replace(tzinfo=UTC),
        end=datetime.max.replace(tzinfo=UTC),
        statuses=frozenset(),
        page=1,
        page_size=1,
    )
    found = await requests(db, reference, storage, query, locale)
    if not found:
        raise Open311Error(404, f"service_request_id '{raw_id}' not found")
    return found


# ---- updates (mySociety's servicerequestupdates) ------------------------------------

_Earlier = ReportEvent.__table__.alias("earlier")
# the report's status right after the event: its own target, or the last change before
_STATUS_AFTER = func.coalesce(
    ReportEvent.to_status,
    select(_Earlier.c.to_status)
    .where(
        _Earlier.c.report_id == ReportEvent.report_id,
        _Earlier.c.id < ReportEvent.id,
        _Earlier.c.to_status.is_not(None),
    )
    .order_by(_Earlier.c.id.desc())
    .limit(1)
    .correlate(ReportEvent.__table__)
    .scalar_subquery(),
    "submitted",
)
_EVENT_PHOTO = (
    select(ReportPhoto.display_key)
    .where(ReportPhoto.event_id == ReportEvent.id, ReportPhoto.hidden_reason.is_(None))
    .order_by(ReportPhoto.position, ReportPhoto.id)
    .limit(1)
    .correlate(ReportEvent.__table__)
    .scalar_subquery()
)
_UPDATES = Query(
    select(
        ReportEvent.id,
        Report.code,
        _STATUS_AFTER,
        _w3c(ReportEvent.at),
        case((ReportEvent.actor_kind != "resident", ReportEvent.body), else_=literal_column("''")),
        _EVENT_PHOTO,
    )
    .join(Report, Report.id == ReportEvent.report_id)
    .where(
        ReportEvent.at >= bindparam("start", type_=DateTime(timezone=True)),
        ReportEvent.at <= bindparam("end", type_=DateTime(timezone=True)),
        ReportEvent.public,  # ix_report_events_public_at's predicate
        ReportEvent.hidden_reason.is_(None),
        # a change of status (the filing, from nothing to submitted, is not one) or an answer
        or_(
            and_(ReportEvent.from_status.is_not(None), ReportEvent.to_status.is_not(None)), _ANSWER
        ),
        _PUBLIC_REPORT,
    )
    .order_by(ReportEvent.at, ReportEvent.id)
    .limit(bindparam("limit", type_=Integer))
    .offset(bindparam("offset", type_=Integer))
)


async def updates(
    db: Reader, storage: Storage, params: dict[str, str | None], now: datetime
) -> list[UpdateOut]:
    """Each public status change and public answer in the window (start_date, end_date;
    90 days at most, the last 90 by default), oldest first, a page at a time."""
    page, page_size = parse_page(params.get("page"), params.get("page_size"))
    start, end = window(
        parse_datetime("start_date", params.get("start_date")),
        parse_datetime("end_date", params.get("end_date")),
        now,
    )
    rows = await _UPDATES.fetch(
        db, start=start, end=end, limit=page_size, offset=(page - 1) * page_size
    )
    media = await _media_urls(storage, [row[5] for row in rows])
    return [
        UpdateOut(
            update_id=str(row[0]),
            service_request_id=row[1],
            status=open311_status(row[2]),
            updated_datetime=row[3],
            description=row[4] or "",
            media_url=media_url or "",
        )
        for row, media_url in zip(rows, media, strict=True)
    ]
