"""Thin controllers for sign-in, tokens, profile, devices and data rights."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import CacheControlHeader, State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from app.accounts import schemas, service
from app.accounts.totp_schemas import SecondFactorChallenge
from app.accounts.vneid import VneidClient, new_pkce
from app.core.auth import Principal, require_resident, require_roles, require_staff, require_user
from app.core.client_address import client_ip
from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.core.errors import BadRequest
from app.policy import actor_of

VNEID_STATE_TTL_SECONDS = 600
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/otp",
        status_code=HTTP_202_ACCEPTED,
        summary="Send a one-time sign-in code by SMS",
        description=(
            "Rate-limited per phone (per client address, and from all addresses together) "
            "and per client address. The code expires in 5 minutes."
        ),
    )
    async def request_otp(
        self, request: Request, state: State, session: DbSession, data: JSONBody[schemas.OtpRequest]
    ) -> schemas.OtpRequested:
        return await service.request_otp(
            session,
            state.settings,
            state.limiter,
            state.sms,
            data.phone,
            client_ip(request),
            state.clock.now(),
        )

    @post(
        "/otp/verify",
        status_code=HTTP_200_OK,
        summary="Sign in with the one-time code",
        description=(
            "Wrong codes count per client address: after OTP_MAX_ATTEMPTS the code is spent "
            "for that address (`otp_spent`), not for the resident's own phone."
        ),
    )
    async def verify_otp(
        self, request: Request, state: State, session: DbSession, data: JSONBody[schemas.OtpVerify]
    ) -> schemas.TokenPair:
        return await service.verify_otp(
            session,
            state.settings,
            state.limiter,
            data.phone,
            data.code,
            state.clock.now(),
            request.headers.get("user-agent"),
            client_ip(request),
        )

    @post(
        "/staff/login",
        status_code=HTTP_200_OK,
        summary="Staff sign-in with email and password",
        # ---- staff second factor (issue 22 item 3)
        description=(
            "The tokens; or, for an account with an active second factor or whose role "
            "requires one (STAFF_TOTP_REQUIRED_ROLES), a challenge: `second_factor_required` "
            "(send a code to `next_step`) or `second_factor_enrolment_required` (enrol "
            "first; the token opens nothing else)."
        ),
        cache_control=CacheControlHeader(no_store=True),
    )
    async def staff_login(
        self, request: Request, state: State, session: DbSession, data: JSONBody[schemas.StaffLogin]
    ) -> schemas.TokenPair | SecondFactorChallenge:
        return await service.staff_login(
            session,
            state.settings,
            state.limiter,
            data.email,
            data.password,
            client_ip(request),
            state.clock.now(),
            request.headers.get("user-agent"),
        )

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Rotate a refresh token",
        description="Each refresh token works once; presenting a spent one revokes the session.",
    )
    async def refresh(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: JSONBody[schemas.RefreshRequest],
    ) -> schemas.TokenPair:
        return await service.refresh_session(
            session,
            state.settings,
            state.redis,
            data.refresh_token,
            state.clock.now(),
            request.headers.get("user-agent"),
        )

    @post(
        "/logout",
        status_code=204,
        guards=[require_user],
        security=BEARER,
        summary="Revoke the current sign-in session",
        description=(
            "204: signed out everywhere. 503 (`sign_out_unconfirmed`, Retry-After): the "
            "session can no longer be renewed, but its access token could not yet be denied "
            "everywhere; retry."
        ),
    )
    async def logout(self, request: Request, state: State, session: DbSession) -> None:
        await service.logout(session, state.settings, state.redis, request.user, state.clock.now())

    @post(
        "/vneid/start",
        status_code=HTTP_200_OK,
        guards=[require_resident],
        security=BEARER,
        summary="Start identity verification with VNeID (level 2)",
    )
    async def vneid_start(self, request: Request, state: State) -> schemas.VneidStart:
        principal: Principal = request.user
        verifier, challenge = new_pkce()
        nonce = secrets.token_urlsafe(24)
        flow_state = secrets.token_urlsafe(24)
        url = await state.vneid.authorization_url(flow_state, nonce, challenge)
        await state.redis.set(
            f"{state.settings.redis_prefix}:vneid:{flow_state}",
            msgspec.json.encode(
                {"user_id": str(principal.user_id), "nonce": nonce, "verifier": verifier}
            ),
            ex=VNEID_STATE_TTL_SECONDS,
        )
        return schemas.VneidStart(authorization_url=url, state=flow_state)

    @post(
        "/vneid/complete",
        status_code=HTTP_200_OK,
        guards=[require_resident],
        security=BEARER,
        summary="Finish VNeID verification with the authorization code",
    )
    async def vneid_complete(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: JSONBody[schemas.VneidComplete],
    ) -> schemas.Profile:
        principal: Principal = request.user
        raw = await state.redis.getdel(f"{state.settings.redis_prefix}:vneid:{data.state}")
        if raw is None:
            raise BadRequest("vneid_state_invalid")
        flow = msgspec.json.decode(raw)
        if flow["user_id"] != str(principal.user_id):
            raise BadRequest("vneid_state_invalid")
        client: VneidClient = state.vneid
        identity = await client.exchange(data.code, flow["verifier"], flow["nonce"])
        return await service.bind_citizen_identity(
            session,
            state.settings,
            principal.user_id,
            identity.citizen_id,
            identity.subject,
            identity.full_name,
            client_ip(request),
        )


class MeController(Controller):
    path = "/me"
    tags = ["me"]
    guards = [require_user]
    security = BEARER

    @get("/", summary="My profile", opt=CONDITIONAL)
    async def me(self, request: Request, session: DbSession) -> schemas.Profile:
        return await service.get_profile(session, request.user.user_id)

    @patch("/", summary="Update my name, language or home ward")
    async def update(
        self, request: Request, session: DbSession, data: JSONBody[schemas.ProfileUpdate]
    ) -> schemas.Profile:
        return await service.update_profile(session, request.user.user_id, data)

    @get("/export", summary="Export all my data (Decree 13/2023)")
    async def export(
        self, request: Request, state: State, session: DbSession
    ) -> schemas.DataExport:
        return await service.export_data(
            session, request.user.user_id, state.clock.now(), client_ip(request)
        )

    @delete(
        "/",
        status_code=204,
        guards=[require_resident],
        summary="Delete my account (personal data erased; public reports stay anonymous)",
    )
    async def delete_me(self, request: Request, state: State, session: DbSession) -> None:
        await service.delete_account(
            session,
            state.settings,
            state.redis,
            request.user.user_id,
            state.clock.now(),
            client_ip(request),
        )

    @get("/devices", summary="My registered devices")
    async def devices(self, request: Request, session: DbSession) -> list[schemas.DeviceOut]:
        return await service.list_devices(session, request.user.user_id)

    @post(
        "/devices",
        summary="Register this device's FCM token",
        description="201 for a new token; 200 when the token was already yours (refreshed).",
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=schemas.DeviceOut,
                generate_examples=False,
                description="The token was already registered to you: refreshed",
            )
        },
        status_code=HTTP_201_CREATED,
    )
    async def register_device(
        self, request: Request, state: State, session: DbSession, data: JSONBody[schemas.DeviceIn]
    ) -> Response[schemas.DeviceOut]:
        device, created = await service.register_device(
            session, request.user.user_id, data, state.clock.now()
        )
        return Response(device, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @delete("/devices/{device_id:uuid}", status_code=204, summary="Remove a device")
    async def remove_device(
        self, request: Request, session: DbSession, device_id: FromPath[uuid.UUID]
    ) -> None:
        await service.remove_device(session, request.user.user_id, device_id)


class StaffAdminController(Controller):
    """Staff administration: units and their staff, the audit trail."""

    path = "/admin"
    tags = ["administration"]
    guards = [require_staff]
    security = BEARER

    @get(
        "/units/{unit_code:str}/staff",
        summary="Staff of a unit (its managers, or an admin)",
    )
    async def unit_staff(
        self, request: Request, session: DbSession, unit_code: FromPath[str]
    ) -> list[schemas.StaffMember]:
        return await service.unit_staff(
            session, await actor_of(request), unit_code, client_ip(request)
        )

    @get(
        "/units/{unit_code:str}/audit",
        summary="What a unit's staff did, newest first (its managers, or an admin)",
    )
    async def unit_audit(
        self,
        request: Request,
        session: DbSession,
        unit_code: FromPath[str],
        before_id: Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[schemas.AuditEntryOut]:
        return await service.unit_audit_trail(
            session, await actor_of(request), unit_code, before_id, limit, client_ip(request)
        )

    @post(
        "/units",
        status_code=HTTP_201_CREATED,
        guards=[require_roles("admin")],
        summary="Create a responsible unit (admin)",
    )
    async def create_unit(
        self, request: Request, session: DbSession, data: JSONBody[schemas.UnitIn]
    ) -> dict[str, uuid.UUID]:
        unit_id = await service.create_unit(session, request.user, data, client_ip(request))
        return {"id": unit_id}

    @get("/audit", guards=[require_roles("admin")], summary="The audit log, newest first (admin)")
    async def audit_log(
        self,
        session: DbSession,
        # audit_log.id is a bigint: a larger cursor is refused, not sent to PostgreSQL
        before_id: Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[schemas.AuditEntryOut]:
        return await service.audit_trail(session, before_id, limit)
