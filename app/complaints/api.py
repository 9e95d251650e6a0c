"""Thin controllers: photo upload, filing, and the reporter's own reports."""

from __future__ import annotations

import uuid
from typing import Annotated

from msgspec import Meta
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.accounts.schemas import Input
from app.complaints import service
from app.complaints.schemas import (
    CommentIn,
    Kind,
    PhotoOut,
    ReportCreated,
    ReportDetail,
    ReportIn,
    ReportPage,
    Status,
)
from app.core.auth import require_resident
from app.core.db import DbSession
from app.core.errors import FieldError, Unprocessable

BEARER = [{"bearer": []}]
IdempotencyKey = Annotated[
    str | None,
    Parameter(
        header="Idempotency-Key",
        min_length=8,
        max_length=80,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Makes a retried submission return the first result instead of a copy.",
    ),
]


class PhotoIds(Input):
    photo_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=20)]


class PhotoController(Controller):
    path = "/photos"
    tags = ["reports"]
    guards = [require_resident]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Upload one photo (raw image bytes as the body)",
        description=(
            "Send the image bytes as the body (JPEG, PNG, WebP or HEIC; the type is read "
            "from the content). Metadata is stripped; the geotag and capture time are "
            "kept as data. Returns an id to file with a report within 24 hours."
        ),
        request_max_body_size=20_000_000,
    )
    async def upload(self, request: Request, state: State, session: DbSession) -> PhotoOut:
        data = await request.body()
        if not data:
            raise Unprocessable(
                "photo_unreadable",
                errors=[FieldError(field="body", message="empty", source="body")],
            )
        return await service.upload_photo(
            session,
            state.settings,
            state.storage,
            request.user.user_id,
            data,
            state.clock.now(),
        )


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]
    guards = [require_resident]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="File a complaint, petition or initiative",
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=ReportCreated,
                generate_examples=False,
                description="A retry with the same Idempotency-Key: the first report",
            )
        },
    )
    async def file(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: ReportIn,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReportCreated]:
        created, new = await service.file_report(
            session,
            state.settings,
            request.user.user_id,
            data,
            idempotency_key,
            state.clock.now(),
        )
        headers = {} if new else {"Idempotent-Replayed": "true"}
        return Response(
            created, status_code=HTTP_201_CREATED if new else HTTP_200_OK, headers=headers
        )

    @get("/mine", summary="My reports, newest first (keyset pagination)")
    async def mine(
        self,
        request: Request,
        state: State,
        session: DbSession,
        status: Status | None = None,
        kind: Kind | None = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> ReportPage:
        return await service.my_reports(
            session, state.storage, request.user.user_id, status, kind, cursor, limit
        )

    @get("/{report_id:uuid}", summary="One of my reports with photos and public timeline")
    async def detail(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> ReportDetail:
        return await service.report_detail(session, state.storage, request.user.user_id, report_id)

    @post("/{report_id:uuid}/withdraw", status_code=204, summary="Withdraw while still submitted")
    async def withdraw(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> None:
        await service.withdraw(session, request.user.user_id, report_id, state.clock.now())

    @post("/{report_id:uuid}/comments", status_code=204, summary="Add a comment while open")
    async def comment(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: CommentIn,
    ) -> None:
        await service.add_comment(
            session, request.user.user_id, report_id, data.body, state.clock.now()
        )

    @post("/{report_id:uuid}/photos", status_code=204, summary="Add uploaded photos while open")
    async def photos(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: PhotoIds,
    ) -> None:
        await service.add_photos(
            session,
            state.settings,
            request.user.user_id,
            report_id,
            data.photo_ids,
            state.clock.now(),
        )
