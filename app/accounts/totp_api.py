"""Thin controllers of the staff second factor (issue 22 item 3): the sign-in's second
step and enrolment from a challenge (no bearer token: the challenge token is the proof
of the password), a staff member's own factor, and an admin's reset of a colleague's.
Every answer carries secrets or tokens: ``Cache-Control: no-store``."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import CacheControlHeader, State
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from app.accounts import totp
from app.accounts.api import BEARER
from app.accounts.models import User
from app.accounts.schemas import TokenPair
from app.accounts.totp_schemas import (
    ChallengeConfirmIn,
    ChallengeIn,
    CodeIn,
    EnrolledSignIn,
    Enrolment,
    RecoveryCodes,
    SecondFactorSignIn,
    SecondFactorStatus,
)
from app.core.auth import require_staff
from app.core.client_address import client_ip
from app.core.db import DbSession
from app.core.errors import Unauthenticated
from app.policy import actor_of

NO_STORE = CacheControlHeader(no_store=True)


class SecondFactorSignInController(Controller):
    """After ``POST /auth/staff/login`` answered with a challenge."""

    path = "/auth/staff/second-factor"
    tags = ["auth"]
    cache_control = NO_STORE

    @post(
        "/",
        status_code=HTTP_200_OK,
        summary="Second step of a staff sign-in: a code from the authenticator app",
        description=(
            "With the challenge token from the password step (`second_factor_required`) and "
            "exactly one of `code` (6 digits, TOTP RFC 6238; the previous and next 30-second "
            "step are accepted, each step once) or `recovery_code` (each works once). The "
            "token works once and for STAFF_SECOND_FACTOR_CHALLENGE_SECONDS. Wrong codes "
            "count per account and per client address: past either limit a 429 with "
            "Retry-After."
        ),
    )
    async def verify(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: JSONBody[SecondFactorSignIn],
    ) -> TokenPair:
        return await totp.sign_in(
            session,
            state.settings,
            state.limiter,
            data.challenge_token,
            data.code,
            data.recovery_code,
            state.clock.now(),
            client_ip(request),
            request.headers.get("user-agent"),
        )

    @post(
        "/enrolment",
        status_code=HTTP_200_OK,
        summary="Enrolment required by the role: a new authenticator seed",
        description=(
            "With the challenge token of `second_factor_enrolment_required`: a new pending "
            "seed as an otpauth:// URI, its QR code (SVG) and the base32 secret. Confirm "
            "with a code from the app at `/enrolment/confirm`."
        ),
    )
    async def enrolment(
        self, state: State, session: DbSession, data: JSONBody[ChallengeIn]
    ) -> Enrolment:
        return await totp.enrolment_for_challenge(
            session, state.settings, data.challenge_token, state.clock.now(), keep_pending=False
        )

    @post(
        "/enrolment/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm the enrolment with a code: recovery codes (shown once) and the session",
    )
    async def confirm(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: JSONBody[ChallengeConfirmIn],
    ) -> EnrolledSignIn:
        return await totp.confirm_for_challenge(
            session,
            state.settings,
            data.challenge_token,
            data.code,
            state.clock.now(),
            client_ip(request),
            request.headers.get("user-agent"),
        )


async def _me(session: DbSession, request: Request) -> User:
    user = await session.get(User, request.user.user_id)
    if user is None or user.status != "active":
        raise Unauthenticated("token_invalid")
    return user


class MySecondFactorController(Controller):
    """A signed-in staff member's own second factor."""

    path = "/me/second-factor"
    tags = ["me"]
    guards = [require_staff]
    security = BEARER
    cache_control = NO_STORE

    @get("/", summary="My second factor: active, pending, required by my role")
    async def status(
        self, request: Request, state: State, session: DbSession
    ) -> SecondFactorStatus:
        return await totp.status(session, state.settings, request.user.user_id)

    @post(
        "/enrolment",
        status_code=HTTP_200_OK,
        summary="Start enrolment: a new pending authenticator seed",
        description="409 `second_factor_already_active` when one is active (an admin resets it).",
    )
    async def enrolment(self, request: Request, state: State, session: DbSession) -> Enrolment:
        return await totp.begin_enrolment(session, state.settings, await _me(session, request))

    @post(
        "/enrolment/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm with a code from the app: the factor is active; recovery codes once",
    )
    async def confirm(
        self, request: Request, state: State, session: DbSession, data: JSONBody[CodeIn]
    ) -> RecoveryCodes:
        return await totp.confirm_enrolment(
            session,
            state.settings,
            request.user.user_id,
            data.code,
            state.clock.now(),
            client_ip(request),
        )

    @post(
        "/recovery-codes",
        status_code=HTTP_200_OK,
        summary="Ten new recovery codes for a current code (the old ones stop working)",
    )
    async def regenerate(
        self, request: Request, state: State, session: DbSession, data: JSONBody[CodeIn]
    ) -> RecoveryCodes:
        return await totp.regenerate_recovery_codes(
            session,
            state.settings,
            state.limiter,
            request.user.user_id,
            data.code,
            state.clock.now(),
            client_ip(request),
        )


class SecondFactorResetController(Controller):
    path = "/admin/staff"
    tags = ["administration"]
    guards = [require_staff]
    security = BEARER

    @delete(
        "/{user_id:uuid}/second-factor",
        status_code=204,
        summary="Reset a colleague's second factor (admin; never one's own)",
        description=(
            "Removes the seed and recovery codes and revokes every session of the colleague; "
            "audit-logged. 403 `second_factor_reset_forbidden` for anyone but an admin, and "
            "for an admin's own; 404 when the colleague has none."
        ),
    )
    async def reset(
        self, request: Request, state: State, session: DbSession, user_id: FromPath[uuid.UUID]
    ) -> None:
        await totp.reset(session, state.settings, state.redis, await actor_of(request), user_id)
