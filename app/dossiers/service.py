"""What residents and the public see of administrative dossiers (issue 19 items 5 and 6).

Residents (``/me/dossiers``): a level-2 account sees every dossier whose applicant's
keyed citizen-ID hash is its own — also the ones ingested before the account existed,
since the match is made when reading, never stored; any signed-in resident may link a
dossier by its code plus the applicant's citizen ID (hashed with the accounts' key and
compared; a wrong ID and an unknown code get the same answer) and unlink it. Whether an
account sees a dossier, and whether it sees the applicant's name and contact, is asked of
``app/policy.py`` (``may_see_dossier``, ``may_see_dossier_applicant``); another
resident's dossier is "not found", so its existence is not revealed.

The public (``/public/dossiers/{code}``, tra cứu hồ sơ): status, agency, procedure, dates
and the statuses of the timeline, the applicant's name masked; nothing else personal.

Hot reads are one statement each, compiled once (``app.core.reads.Query``), rows straight
into the response's Structs; a resident's list is a UNION of two index scans (their
dossiers by the hash, their links) so it stays fast with millions of dossiers.
"""

from __future__ import annotations

import base64
import functools
import hmac
import re
import unicodedata
import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Text,
    bindparam,
    cast,
    delete,
    exists,
    false,
    func,
    select,
    tuple_,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts.models import User
from app.core import audit, i18n
from app.core.errors import BadRequest, Conflict, FieldError, Forbidden, NotFound
from app.core.reads import Query, Reader
from app.core.security import keyed_hash
from app.dossiers import lifecycle, notices
from app.dossiers.models import Agency, Dossier, DossierEvent, DossierLink, DossierSupplement
from app.dossiers.schemas import (
    AgencyRef,
    Applicant,
    DossierDetail,
    DossierPage,
    DossierSummary,
    FeeOut,
    LinkIn,
    PublicDossier,
    PublicStep,
    RatingOut,
    ResultOut,
    SupplementOut,
    TimelineEntry,
)
from app.policy import Actor
from app.settings import Settings

# what a dossier code may look like (mã hồ sơ as agencies issue them: letters, digits,
# dots, dashes, underscores); anything else cannot exist and is answered as "not found"
CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")


def valid_code(code: str) -> bool:
    return CODE.match(code) is not None


def status_name(status: str, language: str) -> str:
    return i18n.text(f"dossier_status.{status}", language)


def mask_name(name: str) -> str:
    """A name as the public sees it: each word's initial, the letters after it starred,
    the last word (the given name) its initial only: "Nguyễn Văn An" → "N***** V** A"."""
    words = unicodedata.normalize("NFC", name).split()
    if not words:
        return ""
    masked = [w[0] + "*" * (len(w) - 1) for w in words[:-1]]
    return " ".join([*masked, words[-1][0]])


def overdue(status: str, due_at: datetime | None, on_time: bool | None, now: datetime) -> bool:
    """Open past its due date, or finished after it (the verdict frozen when it finished)."""
    if status in lifecycle.OPEN_STATUSES:
        return due_at is not None and due_at < now
    return on_time is False


def _agency(code: str, name_vi: str, name_en: str, language: str) -> AgencyRef:
    return AgencyRef(code=code, name=name_en if language == "en" else name_vi)


def _encode_cursor(received_at: datetime, dossier_id: uuid.UUID) -> str:
    raw = f"{received_at.isoformat()}|{dossier_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, did = raw.partition("|")
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(did)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "dossier_cursor_invalid",
            errors=[FieldError(field="cursor", message="malformed", source="query")],
        ) from exc


# ---------------------------------------------------------------- the statements

# the caller's keyed citizen-ID hash when the account is its verified owner (level 2)
_OWNER_HASH = (
    select(User.citizen_id_hash)
    .where(
        User.id == bindparam("user_id"),
        User.identity_level >= policy.DOSSIER_OWNER_LEVEL,
        User.deleted_at.is_(None),
    )
    .scalar_subquery()
)
_LEVEL = (
    select(User.identity_level)
    .where(User.id == bindparam("user_id"), User.deleted_at.is_(None))
    .scalar_subquery()
)
# same hash as the caller's account (whatever its level: the policy decides what it means)
_SAME_CITIZEN = func.coalesce(
    Dossier.applicant_id_hash
    == select(User.citizen_id_hash).where(User.id == bindparam("user_id")).scalar_subquery(),
    false(),
)
_LINKED = exists().where(
    DossierLink.user_id == bindparam("user_id"), DossierLink.dossier_id == Dossier.id
)
SUMMARY_COLUMNS = (
    Dossier.id,
    Dossier.code,
    Dossier.status,
    Agency.code,
    Agency.name_vi,
    Agency.name_en,
    Dossier.procedure_code,
    Dossier.procedure_name,
    Dossier.received_at,
    Dossier.due_at,
    Dossier.returned_at,
    Dossier.finished_on_time,
    _LEVEL,
    _SAME_CITIZEN,
    _LINKED,
)


def _page_filters(by_status: bool, after_cursor: bool) -> list[Any]:
    filters: list[Any] = []
    if by_status:
        filters.append(Dossier.status == bindparam("status"))
    if after_cursor:
        filters.append(
            tuple_(Dossier.received_at, Dossier.id)
            < tuple_(
                bindparam("at", type_=Dossier.received_at.type),
                bindparam("before", type_=Dossier.id.type),
            )
        )
    return filters


_NEWEST_FIRST = (Dossier.received_at.desc(), Dossier.id.desc())


@functools.cache
def _mine_query(by_status: bool, after_cursor: bool) -> Query:
    """A page of the caller's dossiers: those filed under their verified citizen ID (the
    partial index on the hash) and those they linked (the links' primary key), each
    branch cut to the page size before the union."""
    filters = _page_filters(by_status, after_cursor)
    own = (
        select(Dossier.id, Dossier.received_at)
        .where(Dossier.applicant_id_hash == _OWNER_HASH, *filters)
        .order_by(*_NEWEST_FIRST)
        .limit(bindparam("limit"))
    )
    linked = (
        select(Dossier.id, Dossier.received_at)
        .join(DossierLink, DossierLink.dossier_id == Dossier.id)
        .where(DossierLink.user_id == bindparam("user_id"), *filters)
        .order_by(*_NEWEST_FIRST)
        .limit(bindparam("limit"))
    )
    page = union(own, linked).subquery("page")
    stmt = (
        select(*SUMMARY_COLUMNS)
        .select_from(page)
        .join(Dossier, Dossier.id == page.c.id)
        .join(Agency, Agency.id == Dossier.agency_id)
        .order_by(*_NEWEST_FIRST)
        .limit(bindparam("limit"))
    )
    return Query(stmt)


_SUMMARY_BY_ID = Query(
    select(*SUMMARY_COLUMNS)
    .join(Agency, Agency.id == Dossier.agency_id)
    .where(Dossier.id == bindparam("dossier_id"))
)


def _json_list(*columns: Any, order_by: tuple[Any, ...]) -> Any:
    """One JSON array of arrays (as text, for msgspec to decode), in ``order_by`` order."""
    return cast(func.json_agg(aggregate_order_by(func.json_build_array(*columns), *order_by)), Text)


_TIMELINE = (
    select(
        _json_list(
            DossierEvent.at,
            DossierEvent.kind,
            DossierEvent.from_status,
            DossierEvent.to_status,
            DossierEvent.handler,
            DossierEvent.content,
            order_by=(DossierEvent.at, DossierEvent.seq, DossierEvent.id),
        )
    )
    .where(DossierEvent.dossier_id == Dossier.id)
    .scalar_subquery()
)
_SUPPLEMENTS = (
    select(
        _json_list(
            DossierSupplement.requested_at,
            DossierSupplement.needed,
            DossierSupplement.supply_by,
            DossierSupplement.old_due_at,
            DossierSupplement.new_due_at,
            DossierSupplement.supplied_at,
            order_by=(DossierSupplement.requested_at, DossierSupplement.id),
        )
    )
    .where(DossierSupplement.dossier_id == Dossier.id)
    .scalar_subquery()
)
_DETAIL = Query(
    select(
        Dossier.code,
        Dossier.status,
        Agency.code,
        Agency.name_vi,
        Agency.name_en,
        Dossier.procedure_code,
        Dossier.procedure_name,
        Dossier.field_code,
        Dossier.summary,
        Dossier.handling_unit_name,
        Dossier.online,
        Dossier.received_at,
        Dossier.due_at,
        Dossier.completed_at,
        Dossier.returned_at,
        Dossier.finished_on_time,
        Dossier.refused_reason,
        Dossier.applicant_kind,
        Dossier.applicant_name,
        Dossier.applicant_id_last4,
        Dossier.applicant_phone,
        Dossier.applicant_email,
        cast(Dossier.fees, Text),
        cast(Dossier.results, Text),
        Dossier.result_pickup,
        Dossier.rating,
        Dossier.rated_at,
        _LEVEL,
        _SAME_CITIZEN,
        _LINKED,
        _TIMELINE,
        _SUPPLEMENTS,
    )
    .join(Agency, Agency.id == Dossier.agency_id)
    .where(Dossier.code == bindparam("code"))
)
_timeline = msgspec.json.Decoder(
    list[tuple[datetime, str, str | None, str | None, str | None, str | None]]
)
_supplements = msgspec.json.Decoder(
    list[tuple[datetime, str, datetime | None, datetime | None, datetime | None, datetime | None]]
)
_fees = msgspec.json.Decoder(list[FeeOut])
_results = msgspec.json.Decoder(list[ResultOut])

# the public's: the statuses the timeline moved through, with their times (no handler,
# no content: those may name people)
_PUBLIC_STEPS = (
    select(
        _json_list(
            DossierEvent.at,
            DossierEvent.to_status,
            order_by=(DossierEvent.at, DossierEvent.seq, DossierEvent.id),
        )
    )
    .where(DossierEvent.dossier_id == Dossier.id, DossierEvent.to_status.is_not(None))
    .scalar_subquery()
)
_PUBLIC = Query(
    select(
        Dossier.code,
        Dossier.status,
        Agency.code,
        Agency.name_vi,
        Agency.name_en,
        Dossier.procedure_code,
        Dossier.procedure_name,
        Dossier.applicant_name,
        Dossier.online,
        Dossier.received_at,
        Dossier.due_at,
        Dossier.completed_at,
        Dossier.returned_at,
        Dossier.finished_on_time,
        _PUBLIC_STEPS,
    )
    .join(Agency, Agency.id == Dossier.agency_id)
    .where(Dossier.code == bindparam("code"))
)
_steps = msgspec.json.Decoder(list[tuple[datetime, str]])


# ---------------------------------------------------------------- residents


def summary_of(row: Any, actor: Actor, language: str) -> DossierSummary | None:
    """A list row as the caller sees it, or None when the policy says they do not."""
    (_, code, status, a_code, a_vi, a_en, p_code, p_name, received, due, returned, on_time) = row[
        :12
    ]
    level, same, linked = row[12] or 0, bool(row[13]), bool(row[14])
    if not policy.may_see_dossier(actor, identity_level=level, same_citizen_id=same, linked=linked):
        return None
    return DossierSummary(
        code=code,
        status=status,
        status_name=status_name(status, language),
        agency=_agency(a_code, a_vi, a_en, language),
        procedure_code=p_code,
        procedure_name=p_name,
        received_at=received,
        due_at=due,
        returned_at=returned,
        overdue=overdue(status, due, on_time, actor.now),
        relation="applicant" if policy.dossier_applicant(level, same) else "linked",
        linked=linked,
    )


async def my_dossiers(
    db: Reader,
    actor: Actor,
    language: str,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> DossierPage:
    """The caller's dossiers, newest received first (keyset pagination)."""
    values: dict[str, Any] = {"user_id": actor.user_id, "limit": limit + 1, "status": status}
    if cursor:
        values["at"], values["before"] = _decode_cursor(cursor)
    rows = await _mine_query(bool(status), bool(cursor)).fetch(db, **values)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [s for s in (summary_of(row, actor, language) for row in rows) if s is not None]
    next_cursor = _encode_cursor(rows[-1][8], rows[-1][0]) if more else None
    return DossierPage(items=items, next_cursor=next_cursor)


async def dossier_detail(
    session: AsyncSession, actor: Actor, code: str, language: str
) -> DossierDetail:
    """One dossier the caller sees: timeline, supplements, fees, results and where to
    collect them. Anything else — unknown, malformed, someone else's — is "not found"."""
    row = (
        await _DETAIL.fetchrow(session, code=code, user_id=actor.user_id)
        if valid_code(code)
        else None
    )
    if row is None:
        raise NotFound("dossier_not_found")
    level, same, linked = row[27] or 0, bool(row[28]), bool(row[29])
    if not policy.may_see_dossier(actor, identity_level=level, same_citizen_id=same, linked=linked):
        raise NotFound("dossier_not_found")
    status = row[1]
    applicant_sees = policy.may_see_dossier_applicant(
        actor, identity_level=level, same_citizen_id=same
    )
    timeline = [
        TimelineEntry(
            at=at,
            kind=kind,
            from_status=frm,  # type: ignore[arg-type]  # the table's check keeps them statuses
            to_status=to,  # type: ignore[arg-type]
            to_status_name=status_name(to, language) if to else None,
            handler=handler,
            content=content,
        )
        for at, kind, frm, to, handler, content in (_timeline.decode(row[30]) if row[30] else ())
    ]
    supplements = [
        SupplementOut(
            requested_at=requested,
            needed=needed,
            supply_by=by,
            old_due_at=old_due,
            new_due_at=new_due,
            supplied_at=supplied,
        )
        for requested, needed, by, old_due, new_due, supplied in (
            _supplements.decode(row[31]) if row[31] else ()
        )
    ]
    actions = []
    if status in lifecycle.RATEABLE_STATUSES and row[25] is None:
        if policy.may_rate_dossier(
            actor, identity_level=level, same_citizen_id=same, linked=linked
        ):
            actions.append("rate")
    if linked:
        actions.append("unlink")
    return DossierDetail(
        code=row[0],
        status=status,
        status_name=status_name(status, language),
        agency=_agency(row[2], row[3], row[4], language),
        procedure_code=row[5],
        procedure_name=row[6],
        field_code=row[7],
        summary=row[8],
        handling_unit=row[9],
        online=row[10],
        received_at=row[11],
        due_at=row[12],
        completed_at=row[13],
        returned_at=row[14],
        overdue=overdue(status, row[12], row[15], actor.now),
        refused_reason=row[16],
        applicant=Applicant(
            kind=row[17],
            name=row[18] if applicant_sees else mask_name(row[18]),
            name_masked=not applicant_sees,
            citizen_id_last4=row[19] if applicant_sees else None,
            phone=row[20] if applicant_sees else None,
            email=row[21] if applicant_sees else None,
        ),
        timeline=timeline,
        supplements=supplements,
        fees=_fees.decode(row[22]) if row[22] else [],
        results=_results.decode(row[23]) if row[23] else [],
        result_pickup=row[24],
        rating=row[25],
        rated_at=row[26],
        relation="applicant" if policy.dossier_applicant(level, same) else "linked",
        linked=linked,
        allowed_actions=actions,
    )


async def link(
    session: AsyncSession, settings: Settings, actor: Actor, body: LinkIn, language: str
) -> tuple[DossierSummary, bool]:
    """Follow a dossier by its code and the applicant's citizen ID; returns it and whether
    the link is new (linking again changes nothing). An unknown code, a code that cannot
    exist, a dossier filed without a citizen ID and a wrong ID all answer the same
    "not found", after the same work, so the answer tells nothing about which it was."""
    if not policy.may_link_dossier(actor):
        raise Forbidden("residents_only")
    digest = keyed_hash(settings.citizen_id_hash_key, body.citizen_id)
    code = body.code.strip()
    row = (
        (
            await session.execute(
                select(Dossier.id, Dossier.applicant_id_hash).where(Dossier.code == code)
            )
        ).first()
        if valid_code(code)
        else None
    )
    stored: bytes | None = row[1] if row is not None else None
    # compared in constant time, and compared even when there is nothing to compare with
    matches = hmac.compare_digest(stored or bytes(len(digest)), digest) and stored is not None
    if row is None or not matches:
        raise NotFound("dossier_not_found")
    dossier_id: uuid.UUID = row[0]
    inserted = await session.execute(
        pg_insert(DossierLink)
        .values(user_id=actor.user_id, dossier_id=dossier_id, linked_at=actor.now)
        .on_conflict_do_nothing()
        .returning(DossierLink.dossier_id)
    )
    new = inserted.first() is not None
    if new:
        await audit.record(
            session,
            actor_id=actor.user_id,
            actor_kind="resident",
            action="dossier.linked",
            object_type="dossier",
            object_id=str(dossier_id),
            ip=actor.ip,
        )
        # "we received your dossier": once per dossier for this resident, ever
        await notices.dossiers_appeared(session, [(dossier_id, actor.user_id)], actor.now)
    summary_row = await _SUMMARY_BY_ID.fetchrow(
        session, dossier_id=dossier_id, user_id=actor.user_id
    )
    summary = summary_of(summary_row, actor, language)
    assert summary is not None  # linked just now
    return summary, new


async def unlink(session: AsyncSession, actor: Actor, code: str) -> None:
    """Stop following a dossier one linked (a verified applicant keeps seeing their own)."""
    removed = None
    if valid_code(code):
        removed = (
            await session.execute(
                delete(DossierLink)
                .where(
                    DossierLink.user_id == actor.user_id,
                    DossierLink.dossier_id
                    == select(Dossier.id).where(Dossier.code == code).scalar_subquery(),
                )
                .returning(DossierLink.dossier_id)
                .execution_options(synchronize_session=False)
            )
        ).first()
    if removed is None:
        raise NotFound("dossier_link_not_found")
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="resident",
        action="dossier.unlinked",
        object_type="dossier",
        object_id=str(removed[0]),
        ip=actor.ip,
    )


async def rate(session: AsyncSession, actor: Actor, code: str, rating: str) -> RatingOut:
    """Rate a dossier whose result is ready or handed over, once, by someone who sees it
    (the same three answers as complaints)."""
    row = None
    if valid_code(code):
        row = (
            await session.execute(
                select(Dossier.id, Dossier.status, Dossier.rating, _LEVEL, _SAME_CITIZEN, _LINKED)
                .where(Dossier.code == code)
                .with_for_update(of=Dossier),
                {"user_id": actor.user_id},
            )
        ).first()
    if row is None:
        raise NotFound("dossier_not_found")
    dossier_id, status, existing, level, same, linked = row
    level, same, linked = level or 0, bool(same), bool(linked)
    if not policy.may_see_dossier(
        actor, identity_level=level, same_citizen_id=same, linked=linked
    ) or not policy.may_rate_dossier(
        actor, identity_level=level, same_citizen_id=same, linked=linked
    ):
        raise NotFound("dossier_not_found")
    if existing is not None:
        raise Conflict("dossier_already_rated")
    if status not in lifecycle.RATEABLE_STATUSES:
        raise Conflict("dossier_not_rateable", allowed=list(lifecycle.RATEABLE_STATUSES))
    await session.execute(
        update(Dossier)
        .where(Dossier.id == dossier_id, Dossier.rating.is_(None))
        .values(rating=rating, rated_at=actor.now)
        .execution_options(synchronize_session=False)
    )
    return RatingOut(code=code, rating=rating, rated_at=actor.now)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the public lookup


async def public_dossier(db: Reader, code: str, language: str, now: datetime) -> PublicDossier:
    """A dossier by its code, for anyone: no personal data. A code that cannot exist is
    answered exactly as one that does not."""
    row = await _PUBLIC.fetchrow(db, code=code) if valid_code(code) else None
    if row is None:
        raise NotFound("dossier_not_found")
    status = row[1]
    return PublicDossier(
        code=row[0],
        status=status,
        status_name=status_name(status, language),
        agency=_agency(row[2], row[3], row[4], language),
        procedure_code=row[5],
        procedure_name=row[6],
        applicant_masked=mask_name(row[7]),
        online=row[8],
        received_at=row[9],
        due_at=row[10],
        completed_at=row[11],
        returned_at=row[12],
        overdue=overdue(status, row[10], row[13], now),
        timeline=[
            PublicStep(at=at, status=to, status_name=status_name(to, language))  # type: ignore[arg-type]
            for at, to in (_steps.decode(row[14]) if row[14] else ())
        ],
    )
