"""Staff second factor (xác thực hai lớp, issue 22 item 3): TOTP as RFC 6238 defines it
over RFC 4226's HOTP, with what every authenticator app uses: SHA-1, 6 digits, 30-second
steps; a code of the step before or after the current one is accepted (clock drift), and
each step's code works once (``last_used_step``). The algorithm is ``pyotp``'s; the
enrolment QR code is ``segno``'s SVG of the ``otpauth://totp/<issuer>:<account>?secret=…``
URI (Google Authenticator's Key Uri Format).

- The seed is stored sealed (``app.core.sealed``, purpose ``totp-seed``), never in clear.
- Enrolment: a pending seed, confirmed by a current code; then ten recovery codes are
  shown once and only their hashes kept (HMAC-SHA256 under a per-user random salt), each
  usable once; regenerating them (with a current code) replaces them all.
- Sign-in: a right password for an account with an active factor, or whose role is in
  STAFF_TOTP_REQUIRED_ROLES, gives a challenge (``verify`` or ``enrol``), not a session.
  The challenge token works once and for STAFF_SECOND_FACTOR_CHALLENGE_SECONDS; the
  session it gives is of the kind the password step asked for (app or console).
- Wrong codes count per account and per client address (failures only); past either
  limit a 429 with Retry-After; each failure is in the audit log.
- An admin resets a colleague's factor (``policy.may_reset_second_factor``), which also
  revokes every session of the colleague.

Services take the session and never commit; errors that must keep a write (a counted
failure's audit row) say ``keep_writes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import uuid
from datetime import datetime, timedelta

import pyotp
import segno
from redis.asyncio import Redis
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import policy
from app.accounts import service as accounts
from app.accounts import totp_schemas as schemas
from app.accounts.models import (
    StaffRecoveryCode,
    StaffRole,
    StaffSecondFactor,
    StaffSignInChallenge,
    User,
)
from app.accounts.schemas import TokenPair
from app.core import audit
from app.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
)
from app.core.ratelimit import RateLimiter
from app.core.sealed import seal, unseal
from app.core.security import keyed_hash, random_token
from app.policy import Actor
from app.settings import Settings

SEAL_PURPOSE = "totp-seed"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # one step either side of the current one
RECOVERY_CODE_COUNT = 10
# no 0/o, 1/l/i: a code read off paper is typed right
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10  # ~49.5 bits each, shown as xxxxx-xxxxx

VERIFY_PATH = "/api/v1/auth/staff/second-factor"
ENROL_PATH = "/api/v1/auth/staff/second-factor/enrolment"


# ---------------------------------------------------------------- the algorithm


def _totp(seed: str, digits: int = DIGITS) -> pyotp.TOTP:
    return pyotp.TOTP(seed, digits=digits, interval=STEP_SECONDS)  # HMAC-SHA-1


def matching_step(
    seed: str, code: str, at: datetime, *, digits: int = DIGITS, window: int = DRIFT_STEPS
) -> int | None:
    """The 30-second step (RFC 6238's T) within ``window`` steps of ``at`` whose code is
    ``code``, or None. Every candidate is compared, in constant time."""
    if len(code) != digits or not code.isdigit():
        return None
    totp = _totp(seed, digits)
    current = totp.timecode(at)
    found: int | None = None
    for step in range(max(0, current - window), current + window + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def provisioning_uri(settings: Settings, seed: str, account: str) -> str:
    """``otpauth://totp/<issuer>:<account>?secret=…&issuer=…`` (Key Uri Format)."""
    return _totp(seed).provisioning_uri(name=account, issuer_name=settings.staff_totp_issuer)


def qr_svg(uri: str, label: str) -> str:
    """The URI as an inline SVG QR code (no image library), named for screen readers."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", title=label)
    return svg.replace("<svg ", '<svg role="img" focusable="false" ', 1)


def _new_seed() -> str:
    return pyotp.random_base32(32)  # 160 bits, the HMAC-SHA-1 key length RFC 4226 advises


def _open_seed(settings: Settings, factor: StaffSecondFactor) -> str:
    return unseal(settings.data_encryption_key, SEAL_PURPOSE, factor.seed_sealed)


# ---------------------------------------------------------------- recovery codes


def _normalize_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch not in " -")


def _recovery_hash(salt: bytes, code: str) -> bytes:
    return hmac.new(salt, _normalize_recovery(code).encode(), hashlib.sha256).digest()


async def _replace_recovery_codes(session: AsyncSession, factor: StaffSecondFactor) -> list[str]:
    """Ten new codes under a new salt; every earlier code stops working."""
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    salt = os.urandom(16)
    factor.recovery_salt = salt
    await session.execute(
        delete(StaffRecoveryCode).where(StaffRecoveryCode.user_id == factor.user_id)
    )
    await session.execute(
        insert(StaffRecoveryCode),
        [{"user_id": factor.user_id, "code_hash": _recovery_hash(salt, c)} for c in codes],
    )
    return [f"{c[:5]}-{c[5:]}" for c in codes]


# ---------------------------------------------------------------- who must have one


def required_roles(settings: Settings) -> frozenset[str]:
    return frozenset(r.strip() for r in settings.staff_totp_required_roles.split(",") if r.strip())


async def _required_for(session: AsyncSession, settings: Settings, user_id: uuid.UUID) -> bool:
    roles = required_roles(settings)
    if not roles:
        return False
    held = await session.scalar(
        select(func.count())
        .select_from(StaffRole)
        .where(StaffRole.user_id == user_id, StaffRole.role.in_(roles))
    )
    return bool(held)


async def _factor(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> StaffSecondFactor | None:
    stmt = select(StaffSecondFactor).where(StaffSecondFactor.user_id == user_id)
    return await session.scalar(stmt.with_for_update() if lock else stmt)


async def status(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID
) -> schemas.SecondFactorStatus:
    factor = await _factor(session, user_id)
    left = await session.scalar(
        select(func.count())
        .select_from(StaffRecoveryCode)
        .where(StaffRecoveryCode.user_id == user_id, StaffRecoveryCode.used_at.is_(None))
    )
    active = factor is not None and factor.confirmed_at is not None
    return schemas.SecondFactorStatus(
        active=active,
        pending=factor is not None and not active,
        required=await _required_for(session, settings, user_id),
        confirmed_at=factor.confirmed_at if factor else None,
        recovery_codes_left=int(left or 0) if active else 0,
    )


async def active_for(session: AsyncSession, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these accounts have an active second factor (the staff page's column)."""
    if not user_ids:
        return set()
    rows = await session.scalars(
        select(StaffSecondFactor.user_id).where(
            StaffSecondFactor.user_id.in_(user_ids), StaffSecondFactor.confirmed_at.is_not(None)
        )
    )
    return set(rows)


# ---------------------------------------------------------------- enrolment


async def begin_enrolment(
    session: AsyncSession, settings: Settings, user: User, *, keep_pending: bool = False
) -> schemas.Enrolment:
    """A new pending seed (replacing a pending one), or with ``keep_pending`` the pending
    one again (a page shown twice shows the same QR code). An active factor is a 409: an
    admin resets it first."""
    factor = await _factor(session, user.id, lock=True)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("second_factor_already_active")
    if factor is not None and keep_pending:
        seed = _open_seed(settings, factor)
    else:
        seed = _new_seed()
        sealed = seal(settings.data_encryption_key, SEAL_PURPOSE, seed)
        await session.execute(
            insert(StaffSecondFactor)
            .values(user_id=user.id, seed_sealed=sealed)
            .on_conflict_do_update(
                index_elements=[StaffSecondFactor.user_id],
                set_={"seed_sealed": sealed, "last_used_step": None, "recovery_salt": None},
                where=StaffSecondFactor.confirmed_at.is_(None),
            )
        )
    uri = provisioning_uri(settings, seed, user.email or str(user.id))
    # drawing the QR code is ~25 ms of pure Python: off the event loop
    svg = await asyncio.to_thread(qr_svg, uri, settings.staff_totp_issuer)
    return schemas.Enrolment(secret=seed, otpauth_uri=uri, qr_svg=svg)


async def confirm_enrolment(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    code: str,
    now: datetime,
    ip: str | None,
) -> schemas.RecoveryCodes:
    """The first code from the app makes the pending factor active; the ten recovery
    codes are returned (once)."""
    factor = await _factor(session, user_id, lock=True)
    if factor is None:
        raise Conflict("second_factor_not_started")
    if factor.confirmed_at is not None:
        raise Conflict("second_factor_already_active")
    step = matching_step(_open_seed(settings, factor), code, now)
    if step is None:
        raise Unprocessable(
            "second_factor_enrolment_code_invalid",
            errors=[FieldError(field="code", message="not the app's current code", source="body")],
        )
    factor.confirmed_at = now
    factor.last_used_step = step
    codes = await _replace_recovery_codes(session, factor)
    await audit.record(
        session, actor_id=user_id, actor_kind="staff", action="auth.second_factor_enrolled", ip=ip
    )
    return schemas.RecoveryCodes(recovery_codes=codes)


async def regenerate_recovery_codes(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    user_id: uuid.UUID,
    code: str,
    now: datetime,
    ip: str,
) -> schemas.RecoveryCodes:
    """Ten new recovery codes for a current code from the app; the old ones stop working."""
    factor = await _factor(session, user_id, lock=True)
    if factor is None or factor.confirmed_at is None:
        raise Conflict("second_factor_not_active")
    await _verify_code(session, settings, limiter, factor, code, None, now, ip)
    codes = await _replace_recovery_codes(session, factor)
    await audit.record(
        session,
        actor_id=user_id,
        actor_kind="staff",
        action="auth.recovery_codes_regenerated",
        ip=ip,
    )
    return schemas.RecoveryCodes(recovery_codes=codes)


# ---------------------------------------------------------------- checking a code


async def _limits_checked(
    settings: Settings, limiter: RateLimiter, user_id: uuid.UUID, ip: str
) -> None:
    try:
        await limiter.check(
            settings.staff_second_factor_failures_per_account, "2fa-account", str(user_id)
        )
        await limiter.check(settings.staff_second_factor_failures_per_ip, "2fa-ip", ip)
    except TooManyRequests as exc:
        raise TooManyRequests(
            "second_factor_rate_limited", params=exc.params, retry_after=exc.retry_after
        ) from exc


async def _failed(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    user_id: uuid.UUID,
    ip: str,
    reason: str,
) -> None:
    """A wrong, replayed or spent code: counted against the account and the address, and
    in the audit log (the error raised after this keeps the row)."""
    await limiter.count(
        settings.staff_second_factor_failures_per_account, "2fa-account", str(user_id)
    )
    await limiter.count(settings.staff_second_factor_failures_per_ip, "2fa-ip", ip)
    await audit.record(
        session,
        actor_id=user_id,
        actor_kind="staff",
        action="auth.second_factor_failed",
        ip=ip,
        details={"reason": reason},
    )


async def _verify_code(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    factor: StaffSecondFactor,
    code: str | None,
    recovery_code: str | None,
    now: datetime,
    ip: str,
) -> str:
    """Checks a TOTP code (once per step) or a recovery code (once) against the locked,
    active ``factor``; returns the method used. Failures are counted and audited."""
    user_id = factor.user_id
    await _limits_checked(settings, limiter, user_id, ip)
    if code is not None:
        step = matching_step(_open_seed(settings, factor), code, now)
        if step is None:
            await _failed(session, settings, limiter, user_id, ip, "code_invalid")
            raise Unauthenticated("second_factor_invalid", keep_writes=True)
        if factor.last_used_step is not None and step <= factor.last_used_step:
            await _failed(session, settings, limiter, user_id, ip, "code_used")
            raise Unauthenticated("second_factor_code_used", keep_writes=True)
        factor.last_used_step = step
        return "totp"
    assert recovery_code is not None
    digest = _recovery_hash(factor.recovery_salt or b"", recovery_code)
    row = (
        await session.execute(
            select(StaffRecoveryCode.id, StaffRecoveryCode.used_at)
            .where(StaffRecoveryCode.user_id == user_id, StaffRecoveryCode.code_hash == digest)
            .with_for_update()
        )
    ).first()
    if row is None:
        await _failed(session, settings, limiter, user_id, ip, "recovery_code_invalid")
        raise Unauthenticated("recovery_code_invalid", keep_writes=True)
    if row.used_at is not None:
        await _failed(session, settings, limiter, user_id, ip, "recovery_code_used")
        raise Unauthenticated("recovery_code_used", keep_writes=True)
    await session.execute(
        update(StaffRecoveryCode).where(StaffRecoveryCode.id == row.id).values(used_at=now)
    )
    return "recovery_code"


# ---------------------------------------------------------------- sign-in challenges


def _challenge_hash(settings: Settings, token: str) -> bytes:
    return keyed_hash(settings.secret_key, "2fa-challenge:" + token)


async def challenge_if_needed(
    session: AsyncSession, settings: Settings, user: User, now: datetime, kind: str
) -> schemas.SecondFactorChallenge | None:
    """Called by the password sign-in once the password is right: None when the password
    is enough, else the challenge (a code is due, or enrolment is)."""
    factor = await _factor(session, user.id)
    active = factor is not None and factor.confirmed_at is not None
    if not active and not await _required_for(session, settings, user.id):
        return None
    purpose = "verify" if active else "enrol"
    # expired ones are purged by the worker a day later (app/accounts/tasks.py)
    token = random_token()
    ttl = settings.staff_second_factor_challenge_seconds
    session.add(
        StaffSignInChallenge(
            id=uuid.uuid4(),
            user_id=user.id,
            token_hash=_challenge_hash(settings, token),
            purpose=purpose,
            kind=kind,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return schemas.SecondFactorChallenge(
        status="second_factor_required" if active else "second_factor_enrolment_required",
        challenge_token=token,
        expires_in=ttl,
        next_step=VERIFY_PATH if active else ENROL_PATH,
    )


async def open_challenge(
    session: AsyncSession, settings: Settings, token: str, purpose: str, now: datetime
) -> tuple[StaffSignInChallenge, User]:
    """The unspent, unexpired challenge of this purpose (locked) and its active staff
    account; a 401 naming why otherwise."""
    challenge = await session.scalar(
        select(StaffSignInChallenge)
        .where(StaffSignInChallenge.token_hash == _challenge_hash(settings, token))
        .with_for_update()
    )
    if challenge is None or challenge.consumed_at is not None or challenge.purpose != purpose:
        raise Unauthenticated("second_factor_challenge_invalid")
    if challenge.expires_at <= now:
        raise Unauthenticated("second_factor_challenge_expired")
    user = await session.get(User, challenge.user_id)
    if user is None or user.kind != "staff" or user.status != "active":
        raise Unauthenticated("second_factor_challenge_invalid")
    return challenge, user


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    token: str,
    code: str | None,
    recovery_code: str | None,
    now: datetime,
    ip: str,
    user_agent: str | None,
) -> TokenPair:
    """The second step: a code from the app (or a recovery code) for the challenge gives
    the session the password step asked for."""
    if (code is None) == (recovery_code is None):
        raise Unprocessable(
            "second_factor_code_missing",
            errors=[FieldError(field="code", message="code or recovery_code", source="body")],
        )
    challenge, user = await open_challenge(session, settings, token, "verify", now)
    factor = await _factor(session, user.id, lock=True)
    if factor is None or factor.confirmed_at is None:  # reset since the password step
        raise Unauthenticated("second_factor_challenge_invalid")
    method = await _verify_code(session, settings, limiter, factor, code, recovery_code, now, ip)
    challenge.consumed_at = now
    await audit.record(
        session,
        actor_id=user.id,
        actor_kind="staff",
        action="auth.sign_in_second_factor",
        ip=ip,
        details={"method": method},
    )
    return await accounts.issue_staff_session(
        session, settings, user, now, user_agent, challenge.kind
    )


async def enrolment_for_challenge(
    session: AsyncSession, settings: Settings, token: str, now: datetime, *, keep_pending: bool
) -> schemas.Enrolment:
    """Enrolment for an account whose role requires it, with only its challenge token."""
    _, user = await open_challenge(session, settings, token, "enrol", now)
    return await begin_enrolment(session, settings, user, keep_pending=keep_pending)


async def confirm_for_challenge(
    session: AsyncSession,
    settings: Settings,
    token: str,
    code: str,
    now: datetime,
    ip: str,
    user_agent: str | None,
) -> schemas.EnrolledSignIn:
    """Enrolment confirmed from a sign-in challenge: the recovery codes and the session."""
    challenge, user = await open_challenge(session, settings, token, "enrol", now)
    codes = await confirm_enrolment(session, settings, user.id, code, now, ip)
    challenge.consumed_at = now
    tokens = await accounts.issue_staff_session(
        session, settings, user, now, user_agent, challenge.kind
    )
    return schemas.EnrolledSignIn(recovery_codes=codes.recovery_codes, tokens=tokens)


# ---------------------------------------------------------------- admin reset


async def reset(
    session: AsyncSession, settings: Settings, redis: Redis, actor: Actor, target_id: uuid.UUID
) -> None:
    """An admin removes a colleague's second factor (lost phone): seed, recovery codes and
    open challenges go, every session of the colleague is revoked, and it is audited. The
    colleague enrols again at the next sign-in (at once if their role requires it)."""
    if not policy.may_reset_second_factor(actor, target_id):
        raise Forbidden("second_factor_reset_forbidden")
    target = await session.scalar(
        select(User).where(User.id == target_id, User.kind == "staff").with_for_update()
    )
    if target is None:
        raise NotFound("staff_member_not_found")
    removed = await session.scalar(
        delete(StaffSecondFactor)
        .where(StaffSecondFactor.user_id == target_id)
        .returning(StaffSecondFactor.user_id)
    )
    if removed is None:
        raise NotFound("second_factor_not_found")
    await session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.user_id == target_id))
    await session.execute(
        delete(StaffSignInChallenge).where(StaffSignInChallenge.user_id == target_id)
    )
    sessions = await accounts.revoke_all_sessions(session, settings, redis, target_id, actor.now)
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff" if actor.is_staff else "system",
        action="staff.second_factor_reset",
        object_type="user",
        object_id=str(target_id),
        ip=actor.ip,
        details={"sessions_revoked": sessions},
    )
