"""Resumable photo uploads: the tus 1.0 rules over PostgreSQL (issue 24 item 3).

Knows no HTTP: the controllers turn tus headers into these calls and the answers back
into headers. Where the bytes live and why:

- **PostgreSQL, in pieces committed as they arrive.** A PATCH body is read as it streams
  and written every ``UPLOAD_PIECE_BYTES`` (or every ``FLUSH_SECONDS`` when the link is
  slow), each piece in its own short transaction that also moves the upload's offset. A
  connection cut at 90 % keeps what had arrived, and any API process can answer the
  resumed HEAD/PATCH (nothing is kept in one process). Photos are at most
  ``PHOTO_MAX_BYTES``; the pieces are deleted once the photo is made, so the table only
  ever holds uploads in flight. (The object store would need a multipart upload per tus
  upload with 5 MB minimum parts, which does not fit 256 KB pieces.)
- **One writer at a time** without holding a transaction (or a pooled connection) open
  for the length of a slow body: a PATCH takes a lease on the row (``lease_token``,
  ``lease_until``, under ``SELECT … FOR UPDATE``); every piece it writes checks the token
  and the offset in its UPDATE and renews the lease. A second PATCH while the lease runs
  is a 409; a PATCH whose process died, or whose connection dropped without the server
  seeing it (no FIN), stops renewing and its lease lapses after ``UPLOAD_LEASE_SECONDS``:
  the next PATCH takes over, and the stalled one, should bytes still come, fails its next
  write (token mismatch) and keeps nothing more.
- **With ``Upload-Checksum`` a PATCH is all or nothing**: its bytes are held (at most
  the upload's length) until the body has ended and the digest matches.
- **The last byte** runs the photo through ``complaints.service.upload_photo`` (the same
  pipeline as ``POST /photos``: sniffing, bomb checks, HEIC, EXIF stripped) in the
  transaction that marks the upload completed and deletes its pieces; a bad image marks
  the upload failed (its pieces deleted) and the caller gets the pipeline's 422.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import policy
from app.complaints import service as complaints
from app.core import db, jobs
from app.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    FieldError,
    Gone,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unprocessable,
)
from app.core.storage import Storage
from app.settings import Settings
from app.uploads.models import Upload, UploadChunk

CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
FLUSH_SECONDS = 0.5  # on a slow link, write what arrived at least this often
# a PATCH that finds the upload held waits this long for it to be let go (the PATCH a
# client gave up on is usually still storing its last bytes) before answering 409
LEASE_WAIT_SECONDS = 2.0
METADATA_MAX_CHARS = 2048


class ChecksumMismatch(AppError):
    """tus checksum extension: the PATCH's bytes do not match ``Upload-Checksum``."""

    status = 460
    code = "upload_checksum_mismatch"


class UploadBusy(Conflict):
    """Another PATCH of the upload is still writing (or its lease has not lapsed)."""

    code = "upload_busy"


class UploadView(msgspec.Struct, frozen=True):
    """What HEAD and the answers to POST and PATCH say of an upload."""

    id: uuid.UUID
    length: int
    offset: int
    metadata: str | None
    state: str  # open | completed | failed
    photo_id: uuid.UUID | None
    expires_at: datetime


class Checksum(msgspec.Struct, frozen=True):
    algorithm: str
    digest: bytes


def _view(row: Upload) -> UploadView:
    return UploadView(
        id=row.id,
        length=row.length,
        offset=row.offset,
        metadata=row.metadata_header,
        state=row.state,
        photo_id=row.photo_id,
        expires_at=row.expires_at,
    )


# ---------------------------------------------------------------- header values


def parse_metadata(header: str | None) -> str | None:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be
    left out), keys unique, non-empty, without spaces or commas. Kept as sent, to be
    answered on HEAD; 400 ``upload_metadata_invalid`` otherwise."""
    if header is None or not header.strip():
        return None
    if len(header) > METADATA_MAX_CHARS or not header.isascii():
        raise _bad_metadata()
    keys: set[str] = set()
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not parts[0] or parts[0] in keys:
            raise _bad_metadata()
        keys.add(parts[0])
        if len(parts) == 2:
            try:
                base64.b64decode(parts[1], validate=True)
            except (binascii.Error, ValueError):
                raise _bad_metadata() from None
    return ",".join(pair.strip() for pair in header.split(","))


def _bad_metadata() -> BadRequest:
    return BadRequest(
        "upload_metadata_invalid",
        errors=[FieldError(field="Upload-Metadata", message="invalid", source="header")],
    )


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; an algorithm we do not offer
    is a 400 ``upload_checksum_unsupported`` (the tus text), a malformed value a 400."""
    if header is None:
        return None
    parts = header.strip().split(" ")
    if len(parts) != 2:
        raise BadRequest(
            "upload_checksum_invalid",
            errors=[FieldError(field="Upload-Checksum", message="invalid", source="header")],
        )
    algorithm, encoded = parts
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            "upload_checksum_unsupported",
            params={"algorithms": ",".join(CHECKSUM_ALGORITHMS)},
            errors=[FieldError(field="Upload-Checksum", message="unsupported", source="header")],
        )
    try:
        digest = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            "upload_checksum_invalid",
            errors=[FieldError(field="Upload-Checksum", message="invalid", source="header")],
        ) from None
    return Checksum(algorithm=algorithm, digest=digest)


# ---------------------------------------------------------------- creation


async def create_upload(
    session: AsyncSession,
    settings: Settings,
    actor: policy.Actor,
    length: int,
    metadata: str | None,
    now: datetime,
) -> UploadView:
    """A new upload of ``length`` bytes (tus creation). Over ``PHOTO_MAX_BYTES``: 413;
    ``UPLOAD_OPEN_PER_RESIDENT`` open uploads already: 429 ``uploads_open_limit``."""
    if not policy.may_create_upload(actor):
        raise NotFound("upload_not_found")
    owner_id = actor.user_id
    assert owner_id is not None
    if length > settings.photo_max_bytes:
        raise PayloadTooLarge(
            "photo_too_large", params={"max_mb": f"{settings.photo_max_bytes / 1_000_000:g}"}
        )
    if length == 0:
        raise Unprocessable(
            "photo_unreadable",
            errors=[FieldError(field="Upload-Length", message="empty", source="header")],
        )
    # one creation at a time per resident, so the cap holds under concurrent POSTs
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"uploads:{owner_id}", 0)))
    )
    open_count = await session.scalar(
        select(func.count())
        .select_from(Upload)
        .where(Upload.owner_id == owner_id, Upload.state == "open", Upload.expires_at > now)
    )
    if (open_count or 0) >= settings.upload_open_per_resident:
        raise TooManyRequests(
            "uploads_open_limit", params={"max": settings.upload_open_per_resident}
        )
    upload = Upload(
        id=uuid.uuid4(),
        owner_id=owner_id,
        length=length,
        offset=0,
        metadata_header=metadata,
        state="open",
        created_at=now,
        expires_at=now + timedelta(hours=settings.upload_ttl_hours),
    )
    session.add(upload)
    await session.flush()
    return _view(upload)


# ---------------------------------------------------------------- reading


async def _owned(
    session: AsyncSession, actor: policy.Actor, upload_id: uuid.UUID, *, lock: bool = False
) -> Upload:
    """The actor's upload, or 404 ``upload_not_found`` (someone else's reads as missing)."""
    query = select(Upload).where(Upload.id == upload_id)
    if lock:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None or not policy.may_use_upload(actor, row.owner_id):
        raise NotFound("upload_not_found")
    return row


def _ensure_live(row: Upload, now: datetime) -> None:
    """An open upload past its expiry cannot be resumed (410 ``upload_expired``, the
    tus expiration text: the server still knows it); a failed one neither."""
    if row.state == "failed":
        raise Gone("upload_failed", params={"reason": row.failure_code or ""})
    if row.state == "open" and row.expires_at <= now:
        raise Gone("upload_expired")


async def upload_state(
    session: AsyncSession, actor: policy.Actor, upload_id: uuid.UUID
) -> UploadView:
    """HEAD: the offset to resume from, the length, and, once complete, the photo id."""
    row = await _owned(session, actor, upload_id)
    _ensure_live(row, actor.now)
    return _view(row)


async def terminate(session: AsyncSession, actor: policy.Actor, upload_id: uuid.UUID) -> None:
    """tus termination: the upload and its received bytes go; later requests are 404.
    A photo the upload already became stays (it expires unfiled like any upload)."""
    await _owned(session, actor, upload_id, lock=True)
    await session.execute(delete(Upload).where(Upload.id == upload_id))


# ---------------------------------------------------------------- PATCH


class Patch(msgspec.Struct, frozen=True):
    """One PATCH as the controller read its headers."""

    offset: int
    content_length: int | None
    checksum: Checksum | None


async def append(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    settings: Settings,
    storage: Storage,
    actor: policy.Actor,
    upload_id: uuid.UUID,
    patch: Patch,
    body: AsyncIterator[bytes],
    clock: Callable[[], datetime],
) -> UploadView:
    """Apply a PATCH's bytes at ``patch.offset`` and return the upload as it then is.

    Each step is its own transaction (``db.transaction``): the lease, every piece, the
    release, the photo at the end. The body may end early (the client went away): what
    arrived is kept (without a checksum) and the offset says so. An empty PATCH at the
    end of an open upload makes the photo (the process stopped between the last piece
    and the photo)."""
    token, length = await _take_lease(sessionmaker, redis, settings, actor, upload_id, patch, clock)
    try:
        offset = await _receive(
            sessionmaker, redis, settings, upload_id, token, length, patch, body, clock
        )
    except BaseException:
        await _release(sessionmaker, redis, upload_id, token)
        raise
    async with db.transaction(sessionmaker, redis) as session:
        row = await _owned(session, actor, upload_id, lock=True)
        if row.lease_token != token:  # taken over after our lease lapsed
            raise UploadBusy()
        if offset < row.length:
            row.lease_token = None
            row.lease_until = None
            view = _view(row)
            return view
    return await _complete(sessionmaker, redis, settings, storage, actor, upload_id, token, clock)


async def _take_lease(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    settings: Settings,
    actor: policy.Actor,
    upload_id: uuid.UUID,
    patch: Patch,
    clock: Callable[[], datetime],
) -> tuple[uuid.UUID, int]:
    """The PATCH's lease on the upload, and the upload's length. A lease held by another
    PATCH is waited for up to ``LEASE_WAIT_SECONDS`` (polled, no transaction held), then
    409 ``upload_busy``; a client resuming right after a cut meets the PATCH it gave up on
    still storing what it received, and a 409 would cost it its whole body again."""
    give_up = time.monotonic() + LEASE_WAIT_SECONDS
    while True:
        try:
            return await _try_lease(sessionmaker, redis, settings, actor, upload_id, patch, clock())
        except UploadBusy:
            if time.monotonic() >= give_up:
                raise
            await asyncio.sleep(0.1)


async def _try_lease(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    settings: Settings,
    actor: policy.Actor,
    upload_id: uuid.UUID,
    patch: Patch,
    now: datetime,
) -> tuple[uuid.UUID, int]:
    async with db.transaction(sessionmaker, redis) as session:
        row = await _owned(session, actor, upload_id, lock=True)
        _ensure_live(row, now)
        if row.lease_until is not None and row.lease_until > now:
            raise UploadBusy()
        if row.state == "completed" or patch.offset != row.offset:
            raise Conflict(
                "upload_offset_mismatch",
                params={"offset": row.offset},
                errors=[FieldError(field="Upload-Offset", message="mismatch", source="header")],
            )
        if patch.content_length is not None and row.offset + patch.content_length > row.length:
            raise PayloadTooLarge("upload_past_length", params={"length": row.length})
        token = uuid.uuid4()
        row.lease_token = token
        row.lease_until = now + timedelta(seconds=settings.upload_lease_seconds)
        length = row.length
    return token, length


async def _release(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    upload_id: uuid.UUID,
    token: uuid.UUID,
) -> None:
    async with db.transaction(sessionmaker, redis) as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.lease_token == token)
            .values(lease_token=None, lease_until=None)
        )


async def _receive(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    settings: Settings,
    upload_id: uuid.UUID,
    token: uuid.UUID,
    length: int,
    patch: Patch,
    body: AsyncIterator[bytes],
    clock: Callable[[], datetime],
) -> int:
    """Read the body; write it in pieces (or, with a checksum, at once when verified).
    Returns the new offset. Nothing past the upload's length is ever written."""
    offset = patch.offset
    room = length - offset
    buffer = bytearray()
    hasher = CHECKSUM_ALGORITHMS[patch.checksum.algorithm]() if patch.checksum else None
    last_write = time.monotonic()
    async for data in body:
        if not data:
            continue
        if len(buffer) + len(data) > room:
            raise PayloadTooLarge("upload_past_length", params={"length": length})
        buffer += data
        if hasher is not None:
            hasher.update(data)
            continue
        if len(buffer) >= settings.upload_piece_bytes or (
            time.monotonic() - last_write >= FLUSH_SECONDS
        ):
            offset = await _write_piece(
                sessionmaker, redis, settings, upload_id, token, offset, bytes(buffer), clock
            )
            room -= len(buffer)
            buffer.clear()
            last_write = time.monotonic()
    if hasher is not None and patch.checksum is not None:
        if patch.content_length is not None and len(buffer) != patch.content_length:
            return offset  # the body was cut: it cannot be verified, nothing is kept
        if hasher.digest() != patch.checksum.digest:
            raise ChecksumMismatch()
    if buffer:
        offset = await _write_piece(
            sessionmaker, redis, settings, upload_id, token, offset, bytes(buffer), clock
        )
    return offset


async def _write_piece(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    settings: Settings,
    upload_id: uuid.UUID,
    token: uuid.UUID,
    offset: int,
    data: bytes,
    clock: Callable[[], datetime],
) -> int:
    """One piece in one transaction: the bytes and the offset move together, only for
    the lease holder at the offset it expects (a lapsed lease stops the PATCH: 409)."""
    async with db.transaction(sessionmaker, redis) as session:
        moved = await session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.lease_token == token, Upload.offset == offset)
            .values(
                offset=Upload.offset + len(data),
                lease_until=clock() + timedelta(seconds=settings.upload_lease_seconds),
            )
        )
        if db.rowcount(moved) != 1:
            raise UploadBusy()
        session.add(UploadChunk(upload_id=upload_id, start=offset, data=data))
    return offset + len(data)


async def _complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    settings: Settings,
    storage: Storage,
    actor: policy.Actor,
    upload_id: uuid.UUID,
    token: uuid.UUID,
    clock: Callable[[], datetime],
) -> UploadView:
    """The last byte arrived: the photo pipeline, then the upload completed and its pieces
    deleted, in one transaction. A bad image: the upload failed, the pipeline's error."""
    try:
        async with db.transaction(sessionmaker, redis) as session:
            row = await _owned(session, actor, upload_id, lock=True)
            if row.lease_token != token:
                raise UploadBusy()
            pieces = (
                await session.scalars(
                    select(UploadChunk.data)
                    .where(UploadChunk.upload_id == upload_id)
                    .order_by(UploadChunk.start)
                )
            ).all()
            data = b"".join(pieces)
            if len(data) != row.length:  # never: offset and pieces move together
                raise UploadBusy()
            photo = await complaints.upload_photo(
                session, settings, storage, row.owner_id, data, clock()
            )
            row.photo_id = photo.id
            row.state = "completed"
            row.lease_token = None
            row.lease_until = None
            # a completed upload answers HEAD with its photo until the photo would expire
            row.expires_at = max(row.expires_at, photo.expires_at or row.expires_at)
            await session.execute(delete(UploadChunk).where(UploadChunk.upload_id == upload_id))
            return _view(row)
    except (Unprocessable, PayloadTooLarge) as exc:
        async with db.transaction(sessionmaker, redis) as session:
            await session.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.lease_token == token)
                .values(state="failed", failure_code=exc.code, lease_token=None, lease_until=None)
            )
            await session.execute(delete(UploadChunk).where(UploadChunk.upload_id == upload_id))
        raise


# ---------------------------------------------------------------- purge (worker)


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    """Uploads past their expiry, with their pieces (one statement; the pieces go by
    ON DELETE CASCADE). A photo an upload became is not touched: unfiled photos have
    their own purge."""
    result = await session.execute(
        delete(Upload).where(
            Upload.expires_at <= now, or_(Upload.lease_until.is_(None), Upload.lease_until <= now)
        )
    )
    return db.rowcount(result)
