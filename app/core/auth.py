"""Access tokens, the authentication middleware and the guards.

Access tokens are short-lived JWTs (HS256) carrying who the caller is and their roles,
so a request needs no database read to be authorised by role. Each token names its
sign-in session (``sid``, the refresh-token family); logout, refresh-token reuse and
account deletion put the sid on a deny list in Redis for the token's remaining life.

PostgreSQL holds the record of those revocations (``session_revocations``, written in
the transaction that revokes); Redis is the fast path every request reads, one MGET of
the sid's key and a marker. When the marker is gone (Redis restarted or was flushed), or
this process failed to reach Redis since it last synced (and once at start), the first
request that reaches Redis again republishes every unexpired revocation from PostgreSQL,
so every process honours a revocation once Redis is back. While Redis is unreachable
tokens are served (signed, minutes to live); sign-out says 503 then instead of claiming
what it could not do (docs/architecture.md, "Sign-out").
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import jwt
import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError, Forbidden, Unauthenticated, app_error_handler
from app.settings import Settings

log = logging.getLogger("city.auth")
ALGORITHM = "HS256"
UNIT_ROLES = ("officer", "manager")
CITY_ROLES = ("dispatcher", "admin")


class RoleGrant(msgspec.Struct, array_like=True, frozen=True):
    role: str
    unit_id: uuid.UUID | None = None


class Principal(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    kind: str  # resident | staff
    identity_level: int
    sid: uuid.UUID
    roles: tuple[RoleGrant, ...] = ()

    def has_role(self, *roles: str) -> bool:
        return any(grant.role in roles for grant in self.roles)

    def unit_ids(self, *roles: str) -> set[uuid.UUID]:
        return {g.unit_id for g in self.roles if g.unit_id and (not roles or g.role in roles)}


def issue_access_token(settings: Settings, principal: Principal, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": str(principal.user_id),
        "knd": principal.kind,
        "lvl": principal.identity_level,
        "sid": str(principal.sid),
        "rol": [[g.role, str(g.unit_id) if g.unit_id else None] for g in principal.roles],
        "iat": issued,
        "exp": issued + settings.access_token_ttl_seconds,
        "typ": "access",
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "sid"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated("token_invalid") from exc
    if claims.get("typ") != "access":
        raise Unauthenticated("token_invalid")
    try:
        return Principal(
            user_id=uuid.UUID(claims["sub"]),
            kind=claims["knd"],
            identity_level=int(claims["lvl"]),
            sid=uuid.UUID(claims["sid"]),
            roles=tuple(
                RoleGrant(role, uuid.UUID(unit) if unit else None) for role, unit in claims["rol"]
            ),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Unauthenticated("token_invalid") from exc


def revoked_session_key(prefix: str, sid: uuid.UUID | str) -> str:
    return f"{prefix}:revoked-sid:{sid}"


def deny_list_marker_key(prefix: str) -> str:
    """Present while Redis holds every revocation PostgreSQL records (set by a resync)."""
    return f"{prefix}:revoked-sid-synced"


# (sid, expires_at) of every revocation whose access tokens may still be alive
RevocationLoader = Callable[[AsyncSession, datetime], Awaitable[list[tuple[uuid.UUID, datetime]]]]
_revocation_loader: RevocationLoader | None = None


def register_revocation_loader(loader: RevocationLoader) -> None:
    """The accounts context, which owns the revocations table, says how to read it."""
    global _revocation_loader
    _revocation_loader = loader


async def deny_sessions(
    redis: Redis, prefix: str, revocations: Iterable[tuple[uuid.UUID, datetime]], now: datetime
) -> None:
    """Put sessions on the deny list until their expiry. Raises when Redis fails."""
    async with redis.pipeline(transaction=False) as pipe:
        queued = False
        for sid, expires_at in revocations:
            seconds = math.ceil((expires_at - now).total_seconds())
            if seconds > 0:
                pipe.set(revoked_session_key(prefix, sid), 1, ex=seconds)
                queued = True
        if queued:
            await pipe.execute()


async def resync_deny_list(app_state: Any) -> set[uuid.UUID] | None:
    """Republish PostgreSQL's unexpired revocations to Redis, then set the marker.
    Returns the sids published, or None when it could not (it will be tried again)."""
    if _revocation_loader is None or app_state.get("deny_list_resyncing"):
        return None
    app_state.deny_list_resyncing = True
    settings: Settings = app_state.settings
    clock = app_state.get("clock")
    now = clock.now() if clock is not None else datetime.now(UTC)
    try:
        async with app_state.sessionmaker() as session:
            revocations = await _revocation_loader(session, now)
        await deny_sessions(app_state.redis, settings.redis_prefix, revocations, now)
        await app_state.redis.set(deny_list_marker_key(settings.redis_prefix), now.isoformat())
    except Exception as exc:  # noqa: BLE001
        log.warning("deny_list_resync_failed", extra={"error": type(exc).__name__})
        return None
    finally:
        app_state.deny_list_resyncing = False
    app_state.deny_list_stale = False
    log.info("deny_list_resynced", extra={"revocations": len(revocations)})
    return {sid for sid, _ in revocations}


class AuthenticationMiddleware:
    """Sets ``scope["user"]`` to a Principal when a valid bearer token is present, else
    None. A token that is present but invalid, expired or revoked is a 401 at once.
    Endpoints that need a caller say so with a guard."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["user"] = None
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and credentials:
                    token = credentials.strip()
                break
        if token is not None:
            try:
                scope["user"] = await self._authenticate(scope, token)
            except AppError as exc:
                # rendered here, inside the request-id middleware, so the access log and
                # the X-Request-ID header see the real 401
                request: Request = Request(scope)
                response = app_error_handler(request, exc)
                await response.to_asgi_response(app=None, request=request)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _authenticate(scope: Scope, token: str) -> Principal:
        app_state = scope["app"].state
        principal = decode_access_token(app_state.settings, token)
        prefix = app_state.settings.redis_prefix
        try:
            revoked, synced = await app_state.redis.mget(
                revoked_session_key(prefix, principal.sid), deny_list_marker_key(prefix)
            )
        except Exception as exc:  # noqa: BLE001
            # Redis down: the token is still signed and short-lived; serve rather than
            # lock every resident out. Sign-out answers 503 meanwhile (nothing claimed),
            # and this process republishes PostgreSQL's revocations once Redis is back.
            app_state.deny_list_stale = True
            log.warning("deny_list_unavailable", extra={"error": type(exc).__name__})
            return principal
        if synced is None or app_state.get("deny_list_stale", True):
            published = await resync_deny_list(app_state)
            if published is not None and principal.sid in published:
                revoked = True
        if revoked:
            raise Unauthenticated("token_revoked")
        return principal


def _principal(connection: ASGIConnection) -> Principal:
    principal = connection.scope.get("user")
    if principal is None:
        raise Unauthenticated()
    return principal


# The guards are coroutine functions although they never wait: Litestar runs a plain
# function guard in a worker thread (``sync_to_thread``), a thread-pool round trip on
# every guarded request (~5 % of an inbox read's CPU, issue 18 item 9).


async def require_user(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    _principal(connection)


async def require_resident(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if _principal(connection).kind != "resident":
        raise Forbidden("residents_only")


async def require_staff(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if _principal(connection).kind != "staff":
        raise Forbidden("staff_only")


def require_roles(*roles: str):
    """Guard: the caller holds at least one of the roles (anywhere)."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal = _principal(connection)
        if principal.kind != "staff" or not principal.has_role(*roles):
            raise Forbidden("role_required", params={"roles": ", ".join(roles)})

    return guard
