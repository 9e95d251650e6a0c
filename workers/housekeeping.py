"""Housekeeping jobs that keep the sign-in tables small. Set-based, idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import OtpChallenge, RefreshToken

OTP_KEEP = timedelta(days=1)  # kept a day for abuse investigations, then gone


async def purge_expired_sign_in_data(session: AsyncSession, now: datetime) -> int:
    otp = await session.execute(
        delete(OtpChallenge).where(OtpChallenge.expires_at < now - OTP_KEEP)
    )
    tokens = await session.execute(
        delete(RefreshToken).where(
            or_(RefreshToken.expires_at < now, RefreshToken.revoked_at < now - timedelta(days=7))
        )
    )
    return otp.rowcount + tokens.rowcount
