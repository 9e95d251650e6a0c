"""API keys for third-party apps (ứng dụng bên thứ ba) that file through Open311.

An admin issues a key to an app (its name and a contact); the key is shown once and
only its SHA-256 is kept, with a prefix admins see to tell keys apart. Each key gets a
stand-in reporter account (a resident account that cannot sign in: no phone, disabled),
so the reports it files belong to no real person. A revoked key is refused at once.
Issuing and revoking are audit-logged (ids and names only, never a key); the admin JSON
API (``admin_api.py``) and the CLI (``open311-key-*``) call these same functions.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts.models import User
from app.core import audit
from app.core.errors import Forbidden, NotFound
from app.core.schemas import Input
from app.open311.models import Open311Key
from app.policy import Actor

KEY_PREFIX = "o311_"
PREFIX_SHOWN = len(KEY_PREFIX) + 8  # "o311_" and 8 characters of the secret part
LAST_USED_GRANULARITY = timedelta(minutes=1)


class KeyIn(Input):
    """An app to issue a key to: its name and whom to call about it."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    contact: Annotated[str, Meta(min_length=1, max_length=300)]


class KeyOut(msgspec.Struct):
    """A key's record; never the key."""

    id: uuid.UUID
    name: str
    contact: str
    prefix: str
    created_at: datetime
    created_by: uuid.UUID | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyIssued(msgspec.Struct):
    """A new key: ``key`` is shown this once and never again."""

    key: str
    record: KeyOut


class KeyInUse(msgspec.Struct, frozen=True):
    """What filing needs of a valid key."""

    id: uuid.UUID
    reporter_id: uuid.UUID
    name: str


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _out(key: Open311Key) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        contact=key.contact,
        prefix=key.prefix,
        created_at=key.created_at,
        created_by=key.created_by,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


def _require(actor: Actor) -> None:
    if not policy.may_manage_open311_keys(actor):
        raise Forbidden("open311_keys_admin_only")


async def _record(session: AsyncSession, actor: Actor, action: str, key: Open311Key) -> None:
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="system" if actor.is_system else "staff",
        action=action,
        object_type="open311_key",
        object_id=str(key.id),
        ip=actor.ip,
        details={"name": key.name, "prefix": key.prefix},
    )


async def issue_key(session: AsyncSession, actor: Actor, body: KeyIn) -> KeyIssued:
    """A new key for an app, with its stand-in reporter account."""
    _require(actor)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    name = body.name.strip()
    reporter = User(
        id=uuid.uuid4(),
        kind="resident",
        status="disabled",  # never signs in: it only owns the app's reports
        full_name=f"Open311: {name}",
        created_at=actor.now,
    )
    session.add(reporter)
    await session.flush()
    record = Open311Key(
        id=uuid.uuid4(),
        name=name,
        contact=body.contact.strip(),
        prefix=key[:PREFIX_SHOWN],
        key_hash=key_hash(key),
        reporter_id=reporter.id,
        created_by=actor.user_id,
        created_at=actor.now,
    )
    session.add(record)
    await session.flush()
    await _record(session, actor, "open311.key_issued", record)
    return KeyIssued(key=key, record=_out(record))


async def list_keys(session: AsyncSession, actor: Actor) -> list[KeyOut]:
    """Every key, newest first, revoked ones included."""
    _require(actor)
    rows = await session.scalars(
        select(Open311Key).order_by(Open311Key.created_at.desc(), Open311Key.id)
    )
    return [_out(k) for k in rows]


async def revoke_key(session: AsyncSession, actor: Actor, key_id: uuid.UUID) -> KeyOut:
    """Refuse the key from now on (revoking a revoked key changes nothing)."""
    _require(actor)
    record = await session.scalar(
        select(Open311Key).where(Open311Key.id == key_id).with_for_update()
    )
    if record is None:
        raise NotFound("open311_key_not_found")
    if record.revoked_at is None:
        record.revoked_at = actor.now
        await session.flush()
        await _record(session, actor, "open311.key_revoked", record)
    return _out(record)


async def find_by_prefix(session: AsyncSession, prefix: str) -> list[Open311Key]:
    """Keys whose shown prefix starts with ``prefix`` (the CLI names keys this way)."""
    return list(
        await session.scalars(
            select(Open311Key)
            .where(Open311Key.prefix.startswith(prefix, autoescape=True))
            .order_by(Open311Key.created_at)
        )
    )


async def key_in_use(session: AsyncSession, api_key: str, now: datetime) -> KeyInUse | None:
    """The valid key this is, or None for an unknown or revoked one. ``last_used_at`` is
    written at most once a minute (concurrent filings by one app do not queue on it)."""
    if not api_key.startswith(KEY_PREFIX) or len(api_key) > 100:
        return None
    row = (
        await session.execute(
            select(
                Open311Key.id, Open311Key.reporter_id, Open311Key.name, Open311Key.last_used_at
            ).where(Open311Key.key_hash == key_hash(api_key), Open311Key.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        await session.execute(
            update(Open311Key).where(Open311Key.id == row.id).values(last_used_at=now)
        )
    return KeyInUse(row.id, row.reporter_id, row.name)
