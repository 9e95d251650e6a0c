"""Serves the local-disk store's signed URLs: ``GET /files/{key}?expires=&sig=``.

Only used when photos live on local disk (no S3/MinIO endpoint); with S3 the phone
fetches presigned URLs from the bucket directly and this route answers 404.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import BinaryIO

from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from app.core.errors import Forbidden, NotFound
from app.core.storage import LocalDiskStorage, content_type_for, validate_key

CHUNK_SIZE = 64 * 1024


def verify_signed_url(
    storage: LocalDiskStorage, key: str, expires: str | None, sig: str | None
) -> int:
    """Seconds the URL stays valid; Forbidden when the signature is wrong or has expired.

    The signature is checked first, so an expiry is only reported for a URL we issued."""
    if not expires or not sig or not expires.isascii() or not expires.isdigit():
        raise Forbidden("signed_url_invalid")
    expires_at = int(expires)
    if not storage.signature_matches(key, expires_at, sig):
        raise Forbidden("signed_url_invalid")
    remaining = expires_at - int(storage.clock())
    if remaining <= 0:
        raise Forbidden("signed_url_expired")
    return remaining


def _open(path: os.PathLike[str]) -> tuple[BinaryIO, int]:
    fh = open(path, "rb")  # noqa: SIM115 - closed by _chunks once streamed
    try:
        return fh, os.fstat(fh.fileno()).st_size
    except BaseException:
        fh.close()
        raise


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    # a sync generator: Litestar pulls each chunk in a worker thread
    with fh:
        while chunk := fh.read(CHUNK_SIZE):
            yield chunk


@get("/files/{key:path}", include_in_schema=False, cache=False)
async def serve_file(
    request: Request,
    key: FromPath[str],
    expires: FromQuery[str | None] = None,
    sig: FromQuery[str | None] = None,
) -> Stream:
    """A stored photo, for whoever holds a signed URL; no bearer token needed."""
    storage = request.app.state.get("storage")
    if not isinstance(storage, LocalDiskStorage):
        raise NotFound()
    key = key.lstrip("/")
    try:
        validate_key(key)
    except ValueError:  # we never sign such a key
        raise Forbidden("signed_url_invalid") from None
    remaining = verify_signed_url(storage, key, expires, sig)
    try:
        # an open file survives a concurrent delete, so what we found is what we send
        fh, size = await asyncio.to_thread(_open, storage.path_for(key))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound() from None
    return Stream(
        _chunks(fh),
        media_type=content_type_for(key),
        headers={
            "Content-Length": str(size),
            "Cache-Control": f"private, max-age={remaining}",
            "X-Content-Type-Options": "nosniff",
        },
    )
