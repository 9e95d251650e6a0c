"""Agencies and what they sign with (issue 19 items 1, 3): an admin registers an agency
with its code and unit, issues, rotates and revokes its signing secrets and edits the
mapping from the agency's status codes (``TrangThaiHoSo``) to ours. Every change is
audit-logged with ids only (never a secret).

Rotation: issuing a secret leaves the ones valid before valid until now +
``AGENCY_SECRET_OVERLAP_HOURS`` (their ``expires_at``), so the agency can switch without
a refused batch; revoking one ends it at once. A new secret is returned once and never
shown again; it is stored sealed (``signing.seal_secret``), never in clear.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.core import audit
from app.core.errors import Conflict, FieldError, Forbidden, NotFound, Unprocessable
from app.dossiers import signing
from app.dossiers.ingest_schemas import (
    AgencyIn,
    AgencyOut,
    AgencyPatch,
    AgencySummary,
    SecretIssued,
    SecretOut,
    StatusCodeOut,
    StatusCodesIn,
)
from app.dossiers.models import Agency, AgencySecret, AgencyStatusCode
from app.places.models import Unit
from app.policy import Actor
from app.settings import get_settings


def _require(actor: Actor) -> None:
    if not policy.may_manage_agencies(actor):
        raise Forbidden("agency_admin_only")


async def _record(
    session: AsyncSession, actor: Actor, action: str, agency_code: str, **details: object
) -> None:
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="system" if actor.is_system else "staff",
        action=action,
        object_type="agency",
        object_id=agency_code,
        ip=actor.ip,
        details=dict(details),
    )


async def _agency(session: AsyncSession, code: str, *, lock: bool = False) -> Agency:
    stmt = select(Agency).where(Agency.code == code)
    if lock:
        stmt = stmt.with_for_update()
    agency = await session.scalar(stmt)
    if agency is None:
        raise NotFound("agency_not_found")
    return agency


async def _unit_id(session: AsyncSession, unit_code: str) -> uuid.UUID:
    unit_id = await session.scalar(select(Unit.id).where(Unit.code == unit_code))
    if unit_id is None:
        raise Unprocessable(
            "agency_unit_unknown",
            errors=[FieldError(field="unit_code", message="unknown unit", source="body")],
        )
    return unit_id


def _valid(secret: AgencySecret, now: datetime) -> bool:
    return secret.revoked_at is None and (secret.expires_at is None or secret.expires_at > now)


async def create_agency(session: AsyncSession, actor: Actor, body: AgencyIn) -> AgencyOut:
    _require(actor)
    if await session.scalar(select(Agency.id).where(Agency.code == body.code)):
        raise Conflict("agency_code_taken")
    agency = Agency(
        id=uuid.uuid4(),
        code=body.code,
        name_vi=body.name_vi,
        name_en=body.name_en,
        unit_id=await _unit_id(session, body.unit_code),
        active=True,
        created_at=actor.now,
    )
    session.add(agency)
    await session.flush()
    await _record(session, actor, "agency.created", body.code, unit=body.unit_code)
    return await agency_detail(session, actor, body.code, audited=False)


async def update_agency(
    session: AsyncSession, actor: Actor, code: str, body: AgencyPatch
) -> AgencyOut:
    _require(actor)
    agency = await _agency(session, code, lock=True)
    changed: dict[str, object] = {}
    if body.name_vi is not None:
        agency.name_vi = body.name_vi
        changed["name_vi"] = True
    if body.name_en is not None:
        agency.name_en = body.name_en
        changed["name_en"] = True
    if body.unit_code is not None:
        agency.unit_id = await _unit_id(session, body.unit_code)
        changed["unit"] = body.unit_code
    if body.active is not None:
        agency.active = body.active
        changed["active"] = body.active
    await session.flush()
    await _record(session, actor, "agency.updated", code, **changed)
    return await agency_detail(session, actor, code, audited=False)


async def list_agencies(session: AsyncSession, actor: Actor) -> list[AgencySummary]:
    _require(actor)
    rows = await session.execute(
        select(Agency, Unit.code).join(Unit, Unit.id == Agency.unit_id).order_by(Agency.code)
    )
    agencies = rows.all()
    secrets = await session.scalars(
        select(AgencySecret).where(AgencySecret.agency_id.in_([a.id for a, _ in agencies]))
    )
    valid: dict[uuid.UUID, int] = {}
    for s in secrets:
        if _valid(s, actor.now):
            valid[s.agency_id] = valid.get(s.agency_id, 0) + 1
    return [
        AgencySummary(
            code=a.code,
            name_vi=a.name_vi,
            name_en=a.name_en,
            unit_code=unit_code,
            active=a.active,
            valid_secrets=valid.get(a.id, 0),
        )
        for a, unit_code in agencies
    ]


async def agency_detail(
    session: AsyncSession, actor: Actor, code: str, *, audited: bool = True
) -> AgencyOut:
    _require(actor)
    agency = await _agency(session, code)
    unit_code = await session.scalar(select(Unit.code).where(Unit.id == agency.unit_id))
    secrets = await session.scalars(
        select(AgencySecret)
        .where(AgencySecret.agency_id == agency.id)
        .order_by(AgencySecret.created_at.desc(), AgencySecret.id)
    )
    codes = await session.scalars(
        select(AgencyStatusCode)
        .where(AgencyStatusCode.agency_id == agency.id)
        .order_by(AgencyStatusCode.code)
    )
    return AgencyOut(
        code=agency.code,
        name_vi=agency.name_vi,
        name_en=agency.name_en,
        unit_code=unit_code or "",
        active=agency.active,
        created_at=agency.created_at,
        secrets=[
            SecretOut(
                id=s.id,
                created_at=s.created_at,
                expires_at=s.expires_at,
                revoked_at=s.revoked_at,
                valid=_valid(s, actor.now),
            )
            for s in secrets
        ],
        status_codes=[StatusCodeOut(code=c.code, status=c.status) for c in codes],
    )


async def issue_secret(
    session: AsyncSession,
    actor: Actor,
    code: str,
    overlap: timedelta,
    *,
    sealing_key: str | None = None,
) -> SecretIssued:
    """A new secret; the valid ones before it expire after ``overlap`` (rotation). It is
    stored sealed under ``sealing_key`` (default: the settings' ``DATA_ENCRYPTION_KEY``)
    and returned in clear this once."""
    _require(actor)
    key = sealing_key if sealing_key is not None else get_settings().data_encryption_key
    agency = await _agency(session, code, lock=True)  # one rotation at a time
    until = actor.now + overlap
    previous = await session.scalars(
        select(AgencySecret).where(
            AgencySecret.agency_id == agency.id, AgencySecret.revoked_at.is_(None)
        )
    )
    ending = []
    for s in previous:
        if _valid(s, actor.now) and (s.expires_at is None or s.expires_at > until):
            s.expires_at = until
            ending.append(str(s.id))
    plain = signing.new_secret()
    secret = AgencySecret(
        id=uuid.uuid4(),
        agency_id=agency.id,
        secret=signing.seal_secret(key, plain),
        created_at=actor.now,
    )
    session.add(secret)
    await session.flush()
    await _record(
        session,
        actor,
        "agency.secret_issued",
        code,
        secret_id=str(secret.id),
        previous_expire=ending,
        previous_valid_until=until.isoformat() if ending else None,
    )
    return SecretIssued(
        id=secret.id,
        secret=plain,
        created_at=secret.created_at,
        previous_valid_until=until if ending else None,
    )


async def revoke_secret(
    session: AsyncSession, actor: Actor, code: str, secret_id: uuid.UUID
) -> None:
    _require(actor)
    agency = await _agency(session, code, lock=True)
    result = await session.execute(
        update(AgencySecret)
        .where(
            AgencySecret.id == secret_id,
            AgencySecret.agency_id == agency.id,
            AgencySecret.revoked_at.is_(None),
        )
        .values(revoked_at=actor.now)
        .returning(AgencySecret.id)
    )
    if result.scalar() is None:
        exists = await session.scalar(
            select(AgencySecret.id).where(
                AgencySecret.id == secret_id, AgencySecret.agency_id == agency.id
            )
        )
        if exists is None:
            raise NotFound("agency_secret_not_found")
        return  # already revoked: nothing to do, nothing to log
    await _record(session, actor, "agency.secret_revoked", code, secret_id=str(secret_id))


async def status_codes(session: AsyncSession, actor: Actor, code: str) -> list[StatusCodeOut]:
    _require(actor)
    agency = await _agency(session, code)
    rows = await session.scalars(
        select(AgencyStatusCode)
        .where(AgencyStatusCode.agency_id == agency.id)
        .order_by(AgencyStatusCode.code)
    )
    return [StatusCodeOut(code=r.code, status=r.status) for r in rows]


async def replace_status_codes(
    session: AsyncSession, actor: Actor, code: str, body: StatusCodesIn
) -> list[StatusCodeOut]:
    """The agency's whole mapping, replaced in one go."""
    _require(actor)
    agency = await _agency(session, code, lock=True)
    seen: set[str] = set()
    for i, c in enumerate(body.codes):
        if c.code in seen:
            raise Unprocessable(
                "agency_status_code_twice",
                errors=[FieldError(field=f"codes[{i}].code", message="given twice", source="body")],
            )
        seen.add(c.code)
    await session.execute(delete(AgencyStatusCode).where(AgencyStatusCode.agency_id == agency.id))
    if body.codes:
        await session.execute(
            insert(AgencyStatusCode),
            [{"agency_id": agency.id, "code": c.code, "status": c.status} for c in body.codes],
        )
    await _record(
        session,
        actor,
        "agency.status_codes_replaced",
        code,
        mapping={c.code: c.status for c in body.codes},
    )
    return await status_codes(session, actor, code)


async def set_status_code(
    session: AsyncSession, actor: Actor, code: str, agency_code_value: str, status: str
) -> StatusCodeOut:
    _require(actor)
    agency = await _agency(session, code, lock=True)
    await session.execute(
        insert(AgencyStatusCode)
        .values(agency_id=agency.id, code=agency_code_value, status=status)
        .on_conflict_do_update(
            index_elements=[AgencyStatusCode.agency_id, AgencyStatusCode.code],
            set_={"status": status},
        )
    )
    await _record(
        session, actor, "agency.status_code_set", code, status_code=agency_code_value, status=status
    )
    return StatusCodeOut(code=agency_code_value, status=status)


async def remove_status_code(
    session: AsyncSession, actor: Actor, code: str, agency_code_value: str
) -> None:
    _require(actor)
    agency = await _agency(session, code, lock=True)
    result = await session.execute(
        delete(AgencyStatusCode)
        .where(AgencyStatusCode.agency_id == agency.id, AgencyStatusCode.code == agency_code_value)
        .returning(AgencyStatusCode.code)
    )
    if result.scalar() is None:
        raise NotFound("agency_status_code_not_found")
    await _record(session, actor, "agency.status_code_removed", code, status_code=agency_code_value)
