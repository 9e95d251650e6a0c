"""Accounts: sign-in by one-time code or staff password, tokens, profile, devices and
the data-subject rights of Decree 13/2023 (export, deletion).

Services take the session and never commit; the boundary does. Side effects outside
PostgreSQL (SMS, Redis deny-list) run after the commit via ``jobs.after_commit``.
"""

from __future__ import annotations

import hmac
import math
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import (
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts import schemas
from app.accounts.models import (
    Device,
    OtpChallenge,
    RefreshToken,
    SessionRevocation,
    StaffRole,
    User,
)
from app.accounts.phones import normalize_phone
from app.accounts.sms import SmsSender
from app.accounts.totp_schemas import SecondFactorChallenge
from app.complaints import service as complaints_service
from app.core import audit, jobs
from app.core.auth import (
    Principal,
    RoleGrant,
    deny_sessions,
    issue_access_token,
    register_revocation_loader,
)
from app.core.db import rowcount
from app.core.errors import (
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
)
from app.core.ratelimit import RateLimiter
from app.core.reads import Query
from app.core.security import hash_password, keyed_hash, numeric_code, random_token, verify_password
from app.notifications import announcements as notifications_announcements
from app.places.models import Area, Unit
from app.policy import Actor
from app.settings import Settings

MAX_DEVICES_PER_USER = 10
_UNSET = schemas.msgspec.UNSET


# ---------------------------------------------------------------- sessions and tokens


def hash_refresh_token(settings: Settings, token: str) -> bytes:
    return keyed_hash(settings.secret_key, "refresh:" + token)


async def _roles(session: AsyncSession, user_id: uuid.UUID) -> tuple[RoleGrant, ...]:
    rows = await session.execute(
        select(StaffRole.role, StaffRole.unit_id)
        .where(StaffRole.user_id == user_id)
        .order_by(StaffRole.role, StaffRole.unit_id)
    )
    return tuple(RoleGrant(role, unit_id) for role, unit_id in rows)


SESSION_KINDS = ("app", "console")


async def _issue(
    session: AsyncSession,
    settings: Settings,
    user: User,
    now: datetime,
    family_id: uuid.UUID,
    user_agent: str | None,
    kind: str = "app",
) -> schemas.TokenPair:
    """A new refresh token of the family (an ``app`` session lives REFRESH_TOKEN_TTL_DAYS
    and rotates; a ``console`` one lives CONSOLE_SESSION_HOURS and never rotates)."""
    if kind not in SESSION_KINDS:
        raise ValueError(f"unknown session kind {kind!r}")
    refresh = random_token()
    if kind == "console":
        expires_at = now + timedelta(hours=settings.console_session_hours)
    else:
        expires_at = now + timedelta(days=settings.refresh_token_ttl_days)
    session.add(
        RefreshToken(
            family_id=family_id,
            user_id=user.id,
            token_hash=hash_refresh_token(settings, refresh),
            expires_at=expires_at,
            user_agent=(user_agent or "")[:200] or None,
            kind=kind,
        )
    )
    principal = Principal(
        user_id=user.id,
        kind=user.kind,
        identity_level=user.identity_level,
        sid=family_id,
        roles=await _roles(session, user.id) if user.kind == "staff" else (),
    )
    return schemas.TokenPair(
        access_token=issue_access_token(settings, principal, now.timestamp()),
        refresh_token=refresh,
        token_type="Bearer",
        expires_in=settings.access_token_ttl_seconds,
        user_id=user.id,
    )


async def unexpired_revocations(
    session: AsyncSession, now: datetime
) -> list[tuple[uuid.UUID, datetime]]:
    """Revoked sessions whose access tokens may still be alive (for the deny list)."""
    rows = await session.execute(
        select(SessionRevocation.sid, SessionRevocation.expires_at).where(
            SessionRevocation.expires_at > now
        )
    )
    return [(sid, expires_at) for sid, expires_at in rows]


register_revocation_loader(unexpired_revocations)


async def _record_revocations(
    session: AsyncSession, settings: Settings, sids: list[uuid.UUID], now: datetime
) -> list[tuple[uuid.UUID, datetime]]:
    """The record, in this transaction: these sessions' access tokens are void until the
    last one issued has expired."""
    if not sids:
        return []
    expires_at = now + timedelta(seconds=settings.access_token_ttl_seconds + 5)
    stmt = insert(SessionRevocation).values(
        [{"sid": sid, "expires_at": expires_at} for sid in sids]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SessionRevocation.sid],
            set_={"expires_at": func.greatest(SessionRevocation.expires_at, expires_at)},
        )
    )
    return [(sid, expires_at) for sid in sids]


def _deny_sessions_after_commit(
    redis: Redis,
    settings: Settings,
    revocations: list[tuple[uuid.UUID, datetime]],
    now: datetime,
) -> None:
    """Access tokens of these sign-in sessions stop working at once (not at expiry). If
    Redis fails here, PostgreSQL keeps the record and the deny list is republished from
    it once Redis answers again (``app.core.auth.resync_deny_list``)."""

    async def deny() -> None:
        await deny_sessions(redis, settings.redis_prefix, revocations, now)

    if revocations:
        jobs.after_commit(deny)


async def refresh_session(
    session: AsyncSession,
    settings: Settings,
    redis: Redis,
    token: str,
    now: datetime,
    user_agent: str | None,
) -> schemas.TokenPair:
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(settings, token))
        .with_for_update()
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthenticated("refresh_token_invalid")
    if row.kind != "app":
        # a console session lives only in its cookie: never traded for API tokens
        raise Unauthenticated("refresh_token_invalid")
    if row.used_at is not None:
        # a spent token came back: someone holds a copy. Revoke the whole family.
        await _revoke_families(session, [row.family_id], now)
        revocations = await _record_revocations(session, settings, [row.family_id], now)
        _deny_sessions_after_commit(redis, settings, revocations, now)
        await audit.record(
            session,
            actor_id=row.user_id,
            actor_kind="system",
            action="session.refresh_reuse_detected",
            object_type="session",
            object_id=str(row.family_id),
        )
        raise Unauthenticated("refresh_token_reused", keep_writes=True)
    user = await session.get(User, row.user_id)
    if user is None or user.status != "active":
        raise Unauthenticated("refresh_token_invalid")
    row.used_at = now
    return await _issue(session, settings, user, now, row.family_id, user_agent)


async def _revoke_families(
    session: AsyncSession, family_ids: list[uuid.UUID], now: datetime
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id.in_(family_ids), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def logout(
    session: AsyncSession, settings: Settings, redis: Redis, principal: Principal, now: datetime
) -> None:
    """End the sign-in session: its refresh tokens are revoked and the revocation recorded
    in PostgreSQL; its access tokens are put on Redis's deny list before the answer. When
    Redis cannot be reached the record is still committed (the session can no longer be
    renewed, and the deny list is republished from the record once Redis is back) but the
    answer is 503, not "signed out": the app retries (docs/architecture.md, Sign-out)."""
    await _revoke_families(session, [principal.sid], now)
    revocations = await _record_revocations(session, settings, [principal.sid], now)
    try:
        await deny_sessions(redis, settings.redis_prefix, revocations, now)
    except Exception as exc:
        minutes = math.ceil(settings.access_token_ttl_seconds / 60)
        raise ServiceUnavailable(
            "sign_out_unconfirmed", params={"minutes": minutes}, retry_after=5, keep_writes=True
        ) from exc


# ---------------------------------------------------------------- residents: OTP


def _otp_hash(settings: Settings, challenge_id: uuid.UUID, code: str) -> bytes:
    return keyed_hash(settings.secret_key, f"otp:{challenge_id}:{code}")


async def request_otp(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    sms: SmsSender,
    raw_phone: str,
    ip: str,
    now: datetime,
) -> schemas.OtpRequested:
    phone = normalize_phone(raw_phone)
    await limiter.hit(settings.otp_rate_per_ip, "otp-ip", ip)
    # the tight per-phone limit is per (phone, address): a stranger who asks for codes
    # for someone else's phone uses up only their own budget, not the resident's day
    await limiter.hit(settings.otp_rate_per_phone, "otp-phone", phone, ip)
    await limiter.hit(settings.otp_rate_per_phone_all_addresses, "otp-phone-all", phone)
    # a new code replaces any earlier one still open for this phone
    await session.execute(
        update(OtpChallenge)
        .where(OtpChallenge.phone == phone, OtpChallenge.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    challenge_id = uuid.uuid4()
    code = numeric_code(6)
    session.add(
        OtpChallenge(
            id=challenge_id,
            phone=phone,
            code_hash=_otp_hash(settings, challenge_id, code),
            expires_at=now + timedelta(seconds=settings.otp_ttl_seconds),
        )
    )
    minutes = max(1, settings.otp_ttl_seconds // 60)
    text = f"Ma xac thuc iCity cua ban la {code}. Hieu luc {minutes} phut. Khong chia se ma nay."

    async def send() -> None:
        await sms.send(phone, text)

    jobs.after_commit(send)
    return schemas.OtpRequested(phone=phone, expires_in=settings.otp_ttl_seconds)


async def verify_otp(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    raw_phone: str,
    code: str,
    now: datetime,
    user_agent: str | None,
    ip: str,
) -> schemas.TokenPair:
    """Sign in with the code sent by SMS.

    Wrong codes count per (code, client address): OTP_MAX_ATTEMPTS from one address
    spend the code for that address only, so a stranger guessing at someone's phone
    cannot kill the code the resident is about to type. All addresses together get
    OTP_MAX_ATTEMPTS_PER_CODE wrong tries (a distributed guesser), then the code is
    spent for everyone. Wrong codes also count per address whatever the phone
    (OTP_VERIFY_FAILURES_PER_IP). A spent code says so: request a new one.
    """
    phone = normalize_phone(raw_phone)
    await limiter.check(settings.otp_verify_failures_per_ip, "otp-verify-ip", ip)
    challenge = await session.scalar(
        select(OtpChallenge)
        .where(OtpChallenge.phone == phone)
        .order_by(OtpChallenge.created_at.desc(), OtpChallenge.id)
        .limit(1)
        .with_for_update()
    )
    if challenge is None:
        raise BadRequest("otp_not_requested")
    if challenge.consumed_at is not None:
        # used to sign in, or spent by wrong tries from everywhere
        spent = challenge.attempts >= settings.otp_max_attempts_per_code
        raise BadRequest("otp_spent" if spent else "otp_not_requested")
    if challenge.expires_at <= now:
        raise BadRequest("otp_expired")
    per_address = f"{settings.otp_max_attempts}/day"
    try:
        await limiter.check(per_address, "otp-code-ip", str(challenge.id), ip)
    except TooManyRequests as exc:
        raise BadRequest("otp_spent") from exc
    if not hmac.compare_digest(challenge.code_hash, _otp_hash(settings, challenge.id, code)):
        challenge.attempts += 1
        await limiter.count(per_address, "otp-code-ip", str(challenge.id), ip)
        await limiter.count(settings.otp_verify_failures_per_ip, "otp-verify-ip", ip)
        used_here = await limiter.used(per_address, "otp-code-ip", str(challenge.id), ip)
        left = min(
            settings.otp_max_attempts - used_here,
            settings.otp_max_attempts_per_code - challenge.attempts,
        )
        if challenge.attempts >= settings.otp_max_attempts_per_code:
            challenge.consumed_at = now
        if left <= 0:
            raise TooManyRequests("otp_too_many_attempts", keep_writes=True)
        raise BadRequest("otp_invalid", params={"attempts_left": left}, keep_writes=True)
    challenge.consumed_at = now

    user = await session.scalar(select(User).where(User.phone == phone).with_for_update())
    if user is None:
        user = User(id=uuid.uuid4(), kind="resident", phone=phone, identity_level=1, locale="vi")
        session.add(user)
        await session.flush()
    elif user.status != "active":
        raise Forbidden("account_disabled")
    elif user.kind != "resident":
        raise Forbidden("residents_only")
    elif user.identity_level < 1:
        user.identity_level = 1
    await audit.record(
        session, actor_id=user.id, actor_kind="resident", action="auth.sign_in_otp", ip=ip
    )
    return await _issue(session, settings, user, now, uuid.uuid4(), user_agent)


# ---------------------------------------------------------------- staff: password


def _login_delay(settings: Settings, address_failures: int, account_failures: int) -> int:
    """Seconds an address must wait after its last failure for this account."""
    if account_failures >= settings.staff_login_account_failures:
        free = 1  # the account is under attack: slowed from the first failure
    else:
        free = settings.staff_login_free_failures
    if address_failures < free:
        return 0
    return min(settings.staff_login_max_delay_seconds, 2 ** (address_failures - free))


async def staff_login(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    email: str,
    password: str,
    ip: str,
    now: datetime,
    user_agent: str | None,
    kind: str = "app",
) -> schemas.TokenPair | SecondFactorChallenge:
    """Password sign-in for staff. Only failures count, per (account, address) and per
    account, within STAFF_LOGIN_FAILURE_WINDOW_SECONDS; an address that failed too often
    waits a growing delay (429 with Retry-After), never a lock-out: an address with no
    failures is not slowed, so nobody can keep an account out by guessing at it."""
    email = email.strip().lower()
    window = settings.staff_login_failure_window_seconds
    keys = [("staff-login", email, ip), ("staff-login", email)]
    await limiter.check(settings.staff_login_rate_per_ip, "staff-login-ip", ip)
    (here, last_here), (everywhere, _) = await limiter.failures(keys, now.timestamp(), window)
    delay = _login_delay(settings, here, everywhere)
    if delay and last_here is not None:
        wait = math.ceil(last_here + delay - now.timestamp())
        if wait > 0:
            raise TooManyRequests(
                "login_slowed_down", params={"retry_after": wait}, retry_after=wait
            )
    user = await session.scalar(select(User).where(User.email == email, User.kind == "staff"))
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        await limiter.record_failure(keys, now.timestamp(), window)
        await limiter.count(settings.staff_login_rate_per_ip, "staff-login-ip", ip)
        raise Unauthenticated("login_failed")
    if user.status != "active":
        raise Forbidden("account_disabled")
    await audit.record(
        session, actor_id=user.id, actor_kind="staff", action="auth.sign_in_password", ip=ip
    )
    # ---- staff second factor (issue 22 item 3): with an active factor, or a role that
    # requires one, the password gives a challenge (a code, or enrolment), not a session
    from app.accounts import totp  # totp builds on this module

    challenge = await totp.challenge_if_needed(session, settings, user, now, kind)
    if challenge is not None:
        return challenge
    # ---- end staff second factor
    return await _issue(session, settings, user, now, uuid.uuid4(), user_agent, kind)


# ---- staff second factor (issue 22 item 3): what app/accounts/totp.py needs of sessions


async def issue_staff_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    now: datetime,
    user_agent: str | None,
    kind: str,
) -> schemas.TokenPair:
    """A new sign-in session for a staff member who passed every factor."""
    return await _issue(session, settings, user, now, uuid.uuid4(), user_agent, kind)


async def revoke_all_sessions(
    session: AsyncSession, settings: Settings, redis: Redis, user_id: uuid.UUID, now: datetime
) -> int:
    """Every open session of the account ends (refresh tokens revoked, access tokens on the
    deny list after the commit, as sign-out does); returns how many."""
    families = list(
        await session.scalars(
            select(RefreshToken.family_id)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .distinct()
        )
    )
    if families:
        await _revoke_families(session, families, now)
    revocations = await _record_revocations(session, settings, families, now)
    _deny_sessions_after_commit(redis, settings, revocations, now)
    return len(families)


# ---- end staff second factor


async def create_staff(
    session: AsyncSession,
    email: str,
    full_name: str,
    password: str,
    roles: list[tuple[str, str | None]],
) -> User:
    """Create a staff account with roles [(role, unit_code | None)]. Used by the CLI."""
    email = email.strip().lower()
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("staff_email_taken")
    user = User(
        id=uuid.uuid4(),
        kind="staff",
        email=email,
        full_name=full_name,
        password_hash=await hash_password(password),
        identity_level=0,
    )
    session.add(user)
    await session.flush()
    for role, unit_code in roles:
        unit_id = None
        if unit_code is not None:
            unit_id = await session.scalar(select(Unit.id).where(Unit.code == unit_code))
            if unit_id is None:
                raise NotFound("unit_not_found")
        session.add(StaffRole(user_id=user.id, role=role, unit_id=unit_id))
    await session.flush()
    return user


# ---------------------------------------------------------------- profile


async def _active_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or user.status != "active":
        raise Unauthenticated("token_invalid")
    return user


# ``GET /me`` in one statement, no ORM instance (issue 18 item 9): the user's columns and,
# for staff, their roles as one JSON array (residents hold none: no subquery run)
_ROLES_JSON = (
    select(
        cast(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_array(StaffRole.role, StaffRole.unit_id, Unit.code),
                        StaffRole.role,
                        Unit.code,
                    )
                ),
                literal_column("'[]'::json"),
            ),
            Text,
        )
    )
    .select_from(StaffRole)
    .outerjoin(Unit, Unit.id == StaffRole.unit_id)
    .where(StaffRole.user_id == User.id)
    .scalar_subquery()
)
_PROFILE = select(
    User.id,
    User.kind,
    User.phone,
    User.email,
    User.full_name,
    User.locale,
    User.identity_level,
    User.citizen_id_last4,
    User.home_area_code,
    User.created_at,
    case((User.kind == "staff", _ROLES_JSON)),
    User.status,
)
_profile_roles = msgspec.json.Decoder(list[tuple[str, uuid.UUID | None, str | None]])


_PROFILE_BY_ID = Query(_PROFILE.where(User.id == bindparam("user_id")))


async def get_profile(session: AsyncSession, user_id: uuid.UUID) -> schemas.Profile:
    row = await _PROFILE_BY_ID.fetchrow(session, user_id=user_id)
    if row is None or row[11] != "active":
        raise Unauthenticated("token_invalid")
    roles = [schemas.RoleOut(*role) for role in _profile_roles.decode(row[10])] if row[10] else []
    # mypy cannot tell that the ten columns stop before roles (its *args of unknown length)
    return schemas.Profile(*row[:10], roles=roles)  # type: ignore[misc]


async def _profile(session: AsyncSession, user: User) -> schemas.Profile:
    roles: Iterable[tuple[str, uuid.UUID | None, str | None]] = []
    if user.kind == "staff":  # residents hold no roles: skip the query
        roles = await session.execute(
            select(StaffRole.role, StaffRole.unit_id, Unit.code)
            .outerjoin(Unit, Unit.id == StaffRole.unit_id)
            .where(StaffRole.user_id == user.id)
            .order_by(StaffRole.role, Unit.code)
        )
    return schemas.Profile(
        id=user.id,
        kind=user.kind,
        phone=user.phone,
        email=user.email,
        full_name=user.full_name,
        locale=user.locale,
        identity_level=user.identity_level,
        citizen_id_last4=user.citizen_id_last4,
        home_area_code=user.home_area_code,
        created_at=user.created_at,
        roles=[schemas.RoleOut(role=r, unit_id=u, unit_code=c) for r, u, c in roles],
    )


async def update_profile(
    session: AsyncSession, user_id: uuid.UUID, change: schemas.ProfileUpdate
) -> schemas.Profile:
    user = await _active_user(session, user_id)
    if change.home_area_code is not None and change.home_area_code is not _UNSET:
        if await session.get(Area, change.home_area_code) is None:
            raise Unprocessable(
                "area_unknown",
                errors=[FieldError(field="home_area_code", message="unknown area", source="body")],
            )
    for field in ("full_name", "locale", "home_area_code"):
        value = getattr(change, field)
        if value is not _UNSET:
            setattr(user, field, value.strip() if isinstance(value, str) else value)
    await session.flush()
    return await _profile(session, user)


# ---------------------------------------------------------------- devices


def _device_out(device: Device) -> schemas.DeviceOut:
    return schemas.DeviceOut(
        id=device.id,
        platform=device.platform,
        token_suffix=device.token[-6:],
        created_at=device.created_at,
        last_seen_at=device.last_seen_at,
        active=device.disabled_at is None,
    )


async def register_device(
    session: AsyncSession, user_id: uuid.UUID, body: schemas.DeviceIn, now: datetime
) -> tuple[schemas.DeviceOut, bool]:
    """Register (or refresh) an FCM token. Returns (device, created)."""
    await _active_user(session, user_id)
    existing = await session.scalar(
        select(Device).where(Device.token == body.token).with_for_update()
    )
    if existing is not None:
        if existing.user_id != user_id:
            raise Conflict("device_token_in_use")
        existing.platform = body.platform
        existing.last_seen_at = now
        existing.disabled_at = None
        existing.disabled_reason = None
        await session.flush()
        return _device_out(existing), False
    device = Device(
        id=uuid.uuid4(),
        user_id=user_id,
        token=body.token,
        platform=body.platform,
        last_seen_at=now,
        created_at=now,
    )
    session.add(device)
    await session.flush()
    # keep the newest MAX_DEVICES_PER_USER; older installs are most likely gone
    stale = (
        select(Device.id)
        .where(Device.user_id == user_id)
        .order_by(Device.last_seen_at.desc(), Device.created_at.desc())
        .offset(MAX_DEVICES_PER_USER)
    )
    await session.execute(delete(Device).where(Device.id.in_(stale)))
    return _device_out(device), True


async def list_devices(session: AsyncSession, user_id: uuid.UUID) -> list[schemas.DeviceOut]:
    rows = await session.scalars(
        select(Device).where(Device.user_id == user_id).order_by(Device.created_at)
    )
    return [_device_out(d) for d in rows]


async def remove_device(session: AsyncSession, user_id: uuid.UUID, device_id: uuid.UUID) -> None:
    # another user's device is "not found": its existence is not revealed
    result = await session.execute(
        delete(Device).where(and_(Device.id == device_id, Device.user_id == user_id))
    )
    if rowcount(result) == 0:
        raise NotFound("device_not_found")


# ---------------------------------------------------------------- Decree 13/2023 rights


async def export_data(
    session: AsyncSession, user_id: uuid.UUID, now: datetime, ip: str | None
) -> schemas.DataExport:
    user = await _active_user(session, user_id)
    sessions = await session.execute(
        select(
            RefreshToken.family_id,
            func.min(RefreshToken.created_at),
            func.max(RefreshToken.created_at),
            func.max(RefreshToken.user_agent),
            func.bool_or(RefreshToken.revoked_at.is_not(None)),
        )
        .where(RefreshToken.user_id == user_id)
        .group_by(RefreshToken.family_id)
        .order_by(func.min(RefreshToken.created_at))
    )
    activity = await session.execute(
        select(
            audit.AuditEntry.at,
            audit.AuditEntry.action,
            audit.AuditEntry.object_type,
            audit.AuditEntry.object_id,
        )
        .where(audit.AuditEntry.actor_id == user_id)
        .order_by(audit.AuditEntry.at)
    )
    export = schemas.DataExport(
        generated_at=now,
        profile=await _profile(session, user),
        devices=await list_devices(session, user_id),
        sessions=[
            schemas.SessionOut(
                family_id=f, started_at=s, last_refreshed_at=last, user_agent=ua, revoked=bool(rev)
            )
            for f, s, last, ua, rev in sessions
        ],
        activity=[
            schemas.AuditOut(at=a, action=act, object_type=ot, object_id=oid)
            for a, act, ot, oid in activity
        ],
        reports=await complaints_service.export_for(session, user_id),
    )
    await audit.record(
        session, actor_id=user_id, actor_kind=user.kind, action="account.export", ip=ip
    )
    return export


async def delete_account(
    session: AsyncSession,
    settings: Settings,
    redis: Redis,
    user_id: uuid.UUID,
    now: datetime,
    ip: str | None,
) -> None:
    """Erase personal data; keep the row (anonymous) so public report content stays."""
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None or user.status == "deleted":
        raise Unauthenticated("token_invalid")
    if user.kind != "resident":
        raise Forbidden("staff_cannot_self_delete")
    families = list(
        await session.scalars(
            select(RefreshToken.family_id)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .distinct()
        )
    )
    user.status = "deleted"
    user.deleted_at = now
    user.phone = None
    user.email = None
    user.full_name = None
    user.password_hash = None
    user.citizen_id_hash = None
    user.citizen_id_last4 = None
    user.vneid_subject = None
    user.home_area_code = None
    await session.execute(delete(Device).where(Device.user_id == user_id))
    await session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))
    await complaints_service.forget_supporter(session, user_id)
    await notifications_announcements.forget_user(session, user_id)
    # the audit trail keeps that the deletion happened, not who the person was
    await audit.record(
        session, actor_id=user_id, actor_kind="resident", action="account.delete", ip=ip
    )
    revocations = await _record_revocations(session, settings, families, now)
    _deny_sessions_after_commit(redis, settings, revocations, now)


# ---------------------------------------------------------------- identity level 2

_CITIZEN_ID = re.compile(r"^\d{12}$")


async def bind_citizen_identity(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    citizen_id: str,
    subject: str,
    full_name: str | None,
    ip: str | None,
) -> schemas.Profile:
    """Raise the account to identity level 2 after VNeID verified who it belongs to."""
    if not _CITIZEN_ID.match(citizen_id):
        raise Unprocessable("vneid_claims_invalid")
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None or user.status != "active":
        raise Unauthenticated("token_invalid")
    digest = keyed_hash(settings.citizen_id_hash_key, citizen_id)
    other = await session.scalar(
        select(User.id).where(User.citizen_id_hash == digest, User.id != user_id)
    )
    if other is not None:
        raise Conflict("citizen_id_bound_elsewhere")
    user.citizen_id_hash = digest
    user.citizen_id_last4 = citizen_id[-4:]
    user.vneid_subject = subject
    user.identity_level = max(user.identity_level, 2)
    if full_name and not user.full_name:
        user.full_name = full_name
    await audit.record(
        session,
        actor_id=user_id,
        actor_kind="resident",
        action="account.identity_verified",
        ip=ip,
        details={"level": 2, "provider": "vneid"},
    )
    await session.flush()
    return await _profile(session, user)


# ---------------------------------------------------------------- staff administration


async def unit_staff(
    session: AsyncSession, actor: Actor, unit_code: str, ip: str | None
) -> list[schemas.StaffMember]:
    unit = await session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise NotFound("unit_not_found")
    if not policy.may_manage_unit(actor, unit.id):
        raise Forbidden("not_your_unit")
    rows = await session.execute(
        select(User.id, User.email, User.full_name, StaffRole.role, User.status)
        .join(StaffRole, StaffRole.user_id == User.id)
        .where(StaffRole.unit_id == unit.id)
        .order_by(StaffRole.role, User.email)
    )
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="unit.staff_listed",
        object_type="unit",
        object_id=unit.code,
        ip=ip,
    )
    return [
        schemas.StaffMember(id=i, email=e, full_name=n, role=r, status=s) for i, e, n, r, s in rows
    ]


async def create_unit(
    session: AsyncSession, principal: Principal, body: schemas.UnitIn, ip: str | None
) -> uuid.UUID:
    if await session.scalar(select(Unit.id).where(Unit.code == body.code)):
        raise Conflict("unit_code_taken")
    parent_id = None
    if body.parent_code:
        parent_id = await session.scalar(select(Unit.id).where(Unit.code == body.parent_code))
        if parent_id is None:
            raise Unprocessable(
                "unit_not_found",
                errors=[FieldError(field="parent_code", message="unknown unit", source="body")],
            )
    if body.area_code and await session.get(Area, body.area_code) is None:
        raise Unprocessable(
            "area_unknown",
            errors=[FieldError(field="area_code", message="unknown area", source="body")],
        )
    unit = Unit(
        id=uuid.uuid4(),
        code=body.code,
        name_vi=body.name_vi,
        name_en=body.name_en,
        kind=body.kind,
        parent_id=parent_id,
        area_code=body.area_code,
    )
    session.add(unit)
    await audit.record(
        session,
        actor_id=principal.user_id,
        actor_kind="staff",
        action="unit.created",
        object_type="unit",
        object_id=body.code,
        ip=ip,
    )
    await session.flush()
    return unit.id


async def audit_trail(
    session: AsyncSession, before_id: int | None, limit: int, actor_ids: Any = None
) -> list[schemas.AuditEntryOut]:
    """Newest first, keyset-paginated by id; optionally only these actors' entries."""
    stmt = select(audit.AuditEntry).order_by(audit.AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(audit.AuditEntry.id < before_id)
    if actor_ids is not None:
        stmt = stmt.where(audit.AuditEntry.actor_id.in_(actor_ids))
    return [
        schemas.AuditEntryOut(
            id=e.id,
            at=e.at,
            actor_id=e.actor_id,
            actor_kind=e.actor_kind,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            ip=str(e.ip) if e.ip else None,
            request_id=e.request_id,
        )
        for e in await session.scalars(stmt)
    ]


async def unit_audit_trail(
    session: AsyncSession,
    actor: Actor,
    unit_code: str,
    before_id: int | None,
    limit: int,
    ip: str | None,
) -> list[schemas.AuditEntryOut]:
    """What the unit's staff did (its managers, or an admin, may read it; the read is
    itself audit-logged)."""
    unit = await session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise NotFound("unit_not_found")
    if not policy.may_manage_unit(actor, unit.id):
        raise Forbidden("not_your_unit")
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="unit.audit_viewed",
        object_type="unit",
        object_id=unit.code,
        ip=ip,
    )
    members = select(StaffRole.user_id).where(StaffRole.unit_id == unit.id).scalar_subquery()
    return await audit_trail(session, before_id, limit, members)
