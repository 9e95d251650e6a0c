"""The accounts context's worker tasks (registered by ``workers/main.py``): the purge of
expired sign-in data and the deny list's republication. Set-based, idempotent."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from litestar.datastructures import State
from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

# importing the service registers its revocation loader (app.core.auth)
from app.accounts import service as _accounts_service  # noqa: F401
from app.accounts.models import (
    OtpChallenge,
    RefreshToken,
    SessionRevocation,
    StaffSignInChallenge,
)
from app.core.auth import deny_list_marker_key, resync_deny_list
from app.core.db import rowcount
from app.core.tasks import in_transaction

log = logging.getLogger("city.worker")

OTP_KEEP = timedelta(days=1)  # kept a day for abuse investigations, then gone


async def delete_expired_sign_in_data(session: AsyncSession, now: datetime) -> int:
    """One DELETE each: one-time codes and staff sign-in challenges (the step between
    password and second factor) a day past their expiry, refresh tokens expired
    or revoked a week ago, and revocations whose access tokens have all expired (the deny
    list no longer needs them). Returns rows deleted."""
    otp = await session.execute(
        delete(OtpChallenge).where(OtpChallenge.expires_at < now - OTP_KEEP)
    )
    tokens = await session.execute(
        delete(RefreshToken).where(
            or_(RefreshToken.expires_at < now, RefreshToken.revoked_at < now - timedelta(days=7))
        )
    )
    revocations = await session.execute(
        delete(SessionRevocation).where(SessionRevocation.expires_at < now)
    )
    # ---- staff second factor (issue 22 item 3): the password-to-code steps, like codes
    challenges = await session.execute(
        delete(StaffSignInChallenge).where(StaffSignInChallenge.expires_at < now - OTP_KEEP)
    )
    return rowcount(otp) + rowcount(tokens) + rowcount(revocations) + rowcount(challenges)


async def purge_expired_sign_in_data(ctx: dict[str, Any]) -> int:
    """Cron, every 10 minutes."""
    return await in_transaction(ctx, delete_expired_sign_in_data, ctx["clock"].now())


async def republish_deny_list(ctx: dict[str, Any]) -> bool:
    """Cron, every minute: when Redis has lost the deny list's marker (restarted, flushed)
    republish every unexpired revocation from PostgreSQL, whether or not an API process
    saw Redis fail (the one that did may have died before Redis came back). Returns
    whether it republished."""
    settings = ctx["settings"]
    if await ctx["redis"].exists(deny_list_marker_key(settings.redis_prefix)):
        return False
    state = State(
        {
            "settings": settings,
            "sessionmaker": ctx["sessionmaker"],
            "redis": ctx["redis"],
            "clock": ctx["clock"],
        }
    )
    published = await resync_deny_list(state)
    if published is None:
        return False
    log.info("deny_list_republished_by_worker", extra={"revocations": len(published)})
    return True
