"""Resumable photo uploads with the tus 1.0.0 protocol (issue 24 item 3): thin controllers.

tus core (HEAD, PATCH, OPTIONS) and the extensions creation, creation-with-upload,
expiration, checksum (sha1, sha256, md5) and termination, at ``/api/v1/uploads``, for
residents (bearer token). Headers in, service calls, headers out; every error is
problem+json (a tus client reads its status). A finished upload answers its final PATCH
and every later HEAD with ``Photo-Id``: the id ``POST /reports`` takes in ``photo_ids``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from email.utils import format_datetime
from typing import cast

from litestar import Controller, MediaType, Request, delete, head, patch, post
from litestar.datastructures import ResponseHeader, State
from litestar.exceptions import InternalServerException
from litestar.params import FromPath
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from app.core import db
from app.core.auth import require_resident
from app.core.errors import AppError, BadRequest, FieldError
from app.policy import actor_of
from app.uploads import service
from app.uploads.service import UploadView

log = logging.getLogger("city.uploads")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,expiration,checksum,termination"
OFFSET_STREAM = "application/offset+octet-stream"
HEADER_DOCS = {
    "Tus-Resumable": "1.0.0, on every answer",
    "Location": "the new upload's URL",
    "Upload-Offset": "bytes the server holds; resume from here",
    "Upload-Length": "the upload's whole size",
    "Upload-Metadata": "as the client sent it at creation",
    "Upload-Expires": "RFC 9110 date after which an unfinished upload cannot be resumed",
    "Cache-Control": "no-store",
    "Photo-Id": "once complete: the photo id to file with a report (photo_ids)",
}
TUS_HEADERS = "tus_headers"  # scope state: the headers a handler answers with
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
EXPOSED = (
    "Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, Tus-Resumable, "
    "Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Photo-Id"
)


class PreconditionFailed(AppError):
    """A ``Tus-Resumable`` version this server does not speak (answered with Tus-Version)."""

    status = 412
    code = "tus_version_unsupported"


class UnsupportedMediaType(AppError):
    status = 415
    code = "upload_content_type"


class TusHeadersMiddleware:
    """Every answer of these routes carries ``Tus-Resumable`` (errors too), a 412 also
    ``Tus-Version``; an answer to HEAD never carries a body (an error's problem+json is
    dropped, its status kept), so a keep-alive connection stays in step."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = cast("HTTPScope", scope)["method"]
        is_head = method == "HEAD"
        options = _options_headers(scope) if method == "OPTIONS" else []

        async def send_tus(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"tus-resumable", TUS_VERSION.encode()))
                answered = scope.get("state", {}).get(TUS_HEADERS)
                if answered and message["status"] < 300:
                    headers += [(k.lower().encode(), v.encode()) for k, v in answered.items()]
                if message["status"] == 412:
                    headers.append((b"tus-version", TUS_VERSION.encode()))
                headers += options
                if is_head:
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                message["headers"] = headers
            elif message["type"] == "http.response.body" and is_head:
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_tus)


def _options_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """tus OPTIONS: the version, extensions, largest upload and checksum algorithms, on
    Litestar's own answer to OPTIONS (204 with Allow)."""
    settings = scope["app"].state.settings
    return [
        (b"tus-version", TUS_VERSION.encode()),
        (b"tus-extension", TUS_EXTENSIONS.encode()),
        (b"tus-max-size", str(settings.photo_max_bytes).encode()),
        (b"tus-checksum-algorithm", ",".join(service.CHECKSUM_ALGORITHMS).encode()),
        (b"access-control-expose-headers", EXPOSED.encode()),
    ]


def _check_version(request: Request) -> None:
    """tus: a request in another version is refused unprocessed (412)."""
    if request.method == "OPTIONS":
        return
    version = request.headers.get("tus-resumable")
    if version != TUS_VERSION:
        raise PreconditionFailed(params={"version": TUS_VERSION})


async def tus_before(request: Request) -> None:
    _check_version(request)


def _int_header(request: Request, name: str, *, required: bool) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        if required:
            raise BadRequest(
                "upload_header_invalid",
                params={"header": name},
                errors=[FieldError(field=name, message="missing", source="header")],
            )
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(
            "upload_header_invalid",
            params={"header": name},
            errors=[FieldError(field=name, message="not a non-negative integer", source="header")],
        )
    return int(raw)


def _headers(upload: UploadView) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset), "Cache-Control": "no-store"}
    if upload.state == "open":
        headers["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
    if upload.photo_id is not None:
        headers["Photo-Id"] = str(upload.photo_id)
    return headers


def _documented(*names: str) -> list[ResponseHeader]:
    """The tus headers an answer carries, for the OpenAPI document only (the middleware
    sets them)."""
    return [
        ResponseHeader(
            name=name, value="", description=HEADER_DOCS[name], documentation_only=True
        )  # value: only so the document types it a string
        for name in names
    ]


def _answer(request: Request, headers: dict[str, str]) -> None:
    """tus answers are a status and headers, never a body: the handlers return None (so
    the document says "no content") and leave their headers for ``TusHeadersMiddleware``."""
    request.scope["state"][TUS_HEADERS] = headers


def _location(upload_id: uuid.UUID) -> str:
    return f"/api/v1/uploads/{upload_id}"


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives. A client that goes away mid-body ends it early
    (Litestar raises on ``http.disconnect``; granian may also just end the stream): the
    service keeps what arrived and no answer can reach the client anyway."""
    try:
        async for data in request.stream():
            yield data
    except InternalServerException:
        log.info("upload body cut by the client", extra={"path": request.url.path})


async def _append(request: Request, state: State, upload_id: uuid.UUID) -> UploadView:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_STREAM:
        raise UnsupportedMediaType(params={"media_type": OFFSET_STREAM})
    offset = _int_header(request, "upload-offset", required=True)
    assert offset is not None
    patch_in = service.Patch(
        offset=offset,
        content_length=_int_header(request, "content-length", required=False),
        checksum=service.parse_checksum(request.headers.get("upload-checksum")),
    )
    return await service.append(
        state.sessionmaker,
        state.redis,
        state.settings,
        state.storage,
        await actor_of(request),
        upload_id,
        patch_in,
        _body(request),
        state.clock.now,
    )


class UploadController(Controller):
    """``/api/v1/uploads``: tus 1.0.0. Body size is bounded by the upload's own length
    (at most PHOTO_MAX_BYTES) as the body streams, so the framework's limit is off."""

    path = "/uploads"
    tags = ["uploads"]
    middleware = [TusHeadersMiddleware]
    before_request = tus_before  # type: ignore[assignment]  # a plain hook, not a method
    request_max_body_size = None
    # never compressed: PATCH/HEAD answers have no body, and a problem is small
    opt = {"no_compression": True}  # app.core.conditional.NO_COMPRESSION

    @post(
        "/",
        guards=[require_resident],
        security=BEARER,
        status_code=HTTP_201_CREATED,
        media_type=MediaType.TEXT,  # an empty body, not JSON's null
        response_headers=_documented(
            "Tus-Resumable", "Location", "Upload-Offset", "Upload-Expires", "Photo-Id"
        ),
        summary="tus creation: start a resumable photo upload",
        description=(
            "Headers `Tus-Resumable: 1.0.0`, `Upload-Length` (at most PHOTO_MAX_BYTES, "
            "else 413), optional `Upload-Metadata`. 201 with `Location` and "
            "`Upload-Expires`. With `Content-Type: application/offset+octet-stream` the "
            "body is the upload's first bytes (creation-with-upload; `Upload-Offset` in "
            "the answer). Counted against PHOTO_RATE_PER_RESIDENT (429); at most "
            "UPLOAD_OPEN_PER_RESIDENT unfinished uploads (429 `uploads_open_limit`)."
        ),
    )
    async def create(self, request: Request, state: State) -> None:
        length = _int_header(request, "upload-length", required=True)
        assert length is not None
        metadata = service.parse_metadata(request.headers.get("upload-metadata"))
        actor = await actor_of(request)
        await state.limiter.hit(
            state.settings.photo_rate_per_resident,
            "photo-upload",
            str(request.user.user_id),
            fail_open=True,  # as POST /photos: Redis down must not stop a report
        )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        first_bytes = None
        if content_type == OFFSET_STREAM and request.headers.get("content-length") != "0":
            # creation-with-upload: the first bytes come with the POST (headers read first)
            first_bytes = service.Patch(
                offset=0,
                content_length=_int_header(request, "content-length", required=False),
                checksum=service.parse_checksum(request.headers.get("upload-checksum")),
            )
        async with db.transaction(state.sessionmaker, state.redis) as session:
            upload = await service.create_upload(
                session, state.settings, actor, length, metadata, state.clock.now()
            )
        if first_bytes is not None:
            try:
                upload = await service.append(
                    state.sessionmaker,
                    state.redis,
                    state.settings,
                    state.storage,
                    actor,
                    upload.id,
                    first_bytes,
                    _body(request),
                    state.clock.now,
                )
            except AppError:
                # refused (checksum, past the length, a bad image): the client never got
                # its URL, so the upload goes too (nothing half-stored)
                async with db.transaction(state.sessionmaker, state.redis) as session:
                    await service.terminate(session, actor, upload.id)
                raise
        headers = _headers(upload)
        headers["Location"] = _location(upload.id)
        _answer(request, headers)

    @head(
        "/{upload_id:uuid}",
        guards=[require_resident],
        security=BEARER,
        summary="tus: where to resume (Upload-Offset) and, once complete, Photo-Id",
        response_headers=_documented(
            "Tus-Resumable",
            "Upload-Offset",
            "Upload-Length",
            "Upload-Metadata",
            "Upload-Expires",
            "Cache-Control",
            "Photo-Id",
        ),
        description=(
            "200 with `Upload-Offset`, `Upload-Length`, `Upload-Metadata` (as sent), "
            "`Upload-Expires` while unfinished, `Cache-Control: no-store`, and `Photo-Id` "
            "once the upload became a photo. 404 for an unknown upload or another "
            "resident's; 410 once expired or failed."
        ),
    )
    async def state_of(
        self, request: Request, state: State, session: db.DbSession, upload_id: FromPath[uuid.UUID]
    ) -> None:
        upload = await service.upload_state(session, await actor_of(request), upload_id)
        headers = _headers(upload)
        headers["Upload-Length"] = str(upload.length)
        if upload.metadata is not None:
            headers["Upload-Metadata"] = upload.metadata
        _answer(request, headers)

    @patch(
        "/{upload_id:uuid}",
        guards=[require_resident],
        security=BEARER,
        status_code=HTTP_204_NO_CONTENT,
        summary="tus: continue an upload at Upload-Offset",
        response_headers=_documented(
            "Tus-Resumable", "Upload-Offset", "Upload-Expires", "Photo-Id"
        ),
        description=(
            "`Content-Type: application/offset+octet-stream` (else 415), `Upload-Offset` "
            "equal to the upload's (else 409), optional `Upload-Checksum` (sha1, sha256, "
            "md5; 400 for another algorithm, 460 on a mismatch, the bytes discarded). "
            "Bytes past `Upload-Length`: 413, nothing of them kept. Another PATCH of the "
            "same upload still writing: 409 `upload_busy`. 204 with the new "
            "`Upload-Offset`; the last byte makes the photo (same pipeline as "
            "`POST /photos`) and the answer carries `Photo-Id`, a bad image is a 422 and "
            "the upload is marked failed."
        ),
    )
    async def append(self, request: Request, state: State, upload_id: FromPath[uuid.UUID]) -> None:
        upload = await _append(request, state, upload_id)
        _answer(request, _headers(upload))

    @post(
        "/{upload_id:uuid}",
        guards=[require_resident],
        security=BEARER,
        status_code=HTTP_204_NO_CONTENT,
        summary="tus X-HTTP-Method-Override: PATCH or DELETE sent as POST",
    )
    async def override(
        self, request: Request, state: State, upload_id: FromPath[uuid.UUID]
    ) -> None:
        method = request.headers.get("x-http-method-override", "").upper()
        if method == "PATCH":
            upload = await _append(request, state, upload_id)
            _answer(request, _headers(upload))
            return
        if method == "DELETE":
            async with db.transaction(state.sessionmaker, state.redis) as session:
                await service.terminate(session, await actor_of(request), upload_id)
            return
        raise BadRequest(
            "upload_header_invalid",
            params={"header": "X-HTTP-Method-Override"},
            errors=[FieldError(field="X-HTTP-Method-Override", message="invalid", source="header")],
        )

    @delete(
        "/{upload_id:uuid}",
        guards=[require_resident],
        security=BEARER,
        status_code=HTTP_204_NO_CONTENT,
        summary="tus termination: drop an upload and its received bytes",
    )
    async def terminate(
        self, request: Request, session: db.DbSession, upload_id: FromPath[uuid.UUID]
    ) -> None:
        await service.terminate(session, await actor_of(request), upload_id)
