"""Console sign-in sessions and CSRF tokens.

A console session is a sign-in session of the accounts context (a refresh-token family)
whose token lives only in an HttpOnly, SameSite=Lax cookie and expires after a working
day. Every page reads it from the database with the staff member's current roles, so a
role removed or an account disabled takes effect on the next click; signing out (or
"sign out everywhere") revokes it like any other session.

CSRF: every form carries a token = HMAC(secret, session id). It is bound to the session,
so a token from another session (or none) is refused; the sign-in form, before any
session exists, binds it to a random value in a short-lived pre-session cookie.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import RefreshToken, StaffRole, User
from app.accounts.totp_schemas import SecondFactorChallenge
from app.core.auth import Principal, RoleGrant
from app.core.errors import AppError, Forbidden
from app.core.ratelimit import RateLimiter
from app.core.security import keyed_hash, random_token
from app.notifications import service as notifications
from app.settings import Settings

SESSION_COOKIE = "city_console"
PRE_SESSION_COOKIE = "city_console_pre"
LANG_COOKIE = "city_lang"


class SignInRequired(AppError):
    status = 401
    code = "sign_in_required"


class CsrfFailed(Forbidden):
    code = "csrf_failed"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    principal: Principal
    email: str
    full_name: str | None
    locale: str
    unread: int = 0  # unread notifications, shown in the header on every page


def csrf_token(settings: Settings, binding: str) -> str:
    return keyed_hash(settings.secret_key, "csrf:" + binding).hex()


def check_csrf(settings: Settings, binding: str | None, sent: object) -> None:
    if not binding or not isinstance(sent, str):
        raise CsrfFailed()
    if not hmac.compare_digest(csrf_token(settings, binding), sent):
        raise CsrfFailed()


def new_pre_session() -> str:
    return random_token(18)


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    email: str,
    password: str,
    ip: str,
    now: datetime,
    user_agent: str | None,
) -> str | SecondFactorChallenge:
    """Checks the password like the API's staff sign-in (same rate limits, same audit
    entry) and returns the session token for the cookie: a ``console`` session, which
    lasts CONSOLE_SESSION_HOURS and which /api/v1/auth/refresh refuses. When a second
    factor is due (issue 22 item 3), the challenge instead (app/web/two_factor.py)."""
    pair = await accounts.staff_login(
        session, settings, limiter, email, password, ip, now, user_agent, kind="console"
    )
    if isinstance(pair, SecondFactorChallenge):
        return pair
    return pair.refresh_token


async def current_user(
    session: AsyncSession, settings: Settings, token: str | None, now: datetime
) -> ConsoleUser:
    if not token:
        raise SignInRequired()
    row = (
        await session.execute(
            select(RefreshToken.family_id, User)
            .join(User, User.id == RefreshToken.user_id)
            .where(
                RefreshToken.token_hash == accounts.hash_refresh_token(settings, token),
                RefreshToken.kind == "console",
                RefreshToken.revoked_at.is_(None),
                RefreshToken.used_at.is_(None),
                RefreshToken.expires_at > now,
                User.kind == "staff",
                User.status == "active",
                User.deleted_at.is_(None),
            )
        )
    ).first()
    if row is None:
        raise SignInRequired()
    family_id, user = row
    roles = await session.execute(
        select(StaffRole.role, StaffRole.unit_id)
        .where(StaffRole.user_id == user.id)
        .order_by(StaffRole.role, StaffRole.unit_id)
    )
    principal = Principal(
        user_id=user.id,
        kind="staff",
        identity_level=user.identity_level,
        sid=family_id,
        roles=tuple(RoleGrant(role, unit_id) for role, unit_id in roles),
    )
    unread = await notifications.unread_count(session, user.id)
    return ConsoleUser(principal, user.email or "", user.full_name, user.locale, unread)


def session_id(user: ConsoleUser) -> uuid.UUID:
    return user.principal.sid
