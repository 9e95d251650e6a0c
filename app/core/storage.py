"""Object storage for photos (ảnh phản ánh): S3/MinIO in production, local disk embedded.

Both backends take the same keys, e.g. ``photos/2026/11/<uuid>/display.jpg``, and hand
out short-lived URLs a phone can GET without a bearer token. The S3 backend uses the real
``minio`` client (synchronous, so every call runs in a worker thread); the local-disk
backend signs its own URLs, served by ``app.core.files_api.serve_file``.

An object put inside a transaction boundary (``app.core.db.transaction``) belongs to that
transaction: if it rolls back, the object is deleted after the rollback, so a photo whose
row never committed leaves no file behind. ``iter_older_than`` lists objects by age for
the purge of objects no row refers to (``workers.housekeeping``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import itertools
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast, runtime_checkable

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from app.core import jobs
from app.settings import Settings

MAX_KEY_LENGTH = 1024  # S3's limit on an object name, in bytes
MAX_SIGNED_URL_TTL_SECONDS = 7 * 24 * 3600  # S3's limit on a presigned URL
_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion"})

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class StorageError(Exception):
    """The storage backend failed or is unusable."""


class StorageNotFound(StorageError, KeyError):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)

    def __str__(self) -> str:
        return f"no object stored under {self.key!r}"


class StorageUnavailable(StorageError):
    """The backend cannot be used: bucket or directory missing, not writable, unreachable."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise ValueError.

    Allowed: ``[A-Za-z0-9._/-]``, relative, no ``..``, no empty or ``.`` segment."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"storage key must be 1 to {MAX_KEY_LENGTH} characters")
    if not _KEY_CHARS.fullmatch(key):
        raise ValueError(f"storage key has characters outside [A-Za-z0-9._/-]: {key!r}")
    if key.startswith("/") or ".." in key:
        raise ValueError(f"storage key must be relative and must not contain '..': {key!r}")
    if any(part in ("", ".") for part in key.split("/")):
        raise ValueError(f"storage key has an empty or '.' segment: {key!r}")
    return key


def _delete_on_rollback(storage: Storage, key: str) -> None:
    """Inside a transaction boundary, the object goes if the transaction rolls back."""
    if jobs.current() is not None:
        jobs.after_rollback(lambda: storage.delete(key))


LIST_PAGE = 1000  # keys per page when listing (S3's own page size)
COPY_BLOCK = 1 << 20  # bytes per read when a file is copied into the store
S3_PART_SIZE = 16 << 20  # bytes per part of a multipart upload (S3: 5 MiB to 5 GiB)


def content_type_for(key: str) -> str:
    """The media type of a stored photo, from its extension."""
    return CONTENT_TYPES.get(os.path.splitext(key)[1].lower(), DEFAULT_CONTENT_TYPE)


def _check_ttl(ttl_seconds: int) -> int:
    if not 0 < ttl_seconds <= MAX_SIGNED_URL_TTL_SECONDS:
        raise ValueError(f"signed URL ttl must be 1..{MAX_SIGNED_URL_TTL_SECONDS} seconds")
    return ttl_seconds


def stable_window(now: float, ttl: int) -> tuple[int, int]:
    """``(window start, expiry)`` of a signed URL that stays the same for ``ttl``
    seconds: windows aligned on multiples of ``ttl``, each URL valid until the end of
    the next window, so between ``ttl`` and ``2 * ttl`` seconds from ``now``. A list
    that names photos then encodes to the same bytes, and keeps its ETag, for a whole
    window (app/core/conditional.py; issue 24 item 1)."""
    start = int(now) // ttl * ttl
    return start, start + 2 * ttl


@runtime_checkable
class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; StorageNotFound when nothing is stored under key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    async def put_file(self, key: str, source: IO[bytes], length: int, content_type: str) -> None:
        """Store ``length`` bytes read from ``source`` (a binary file at its start) without
        holding them in memory (large uploads: dossier imports, issue 19)."""
        ...

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end, b"" past it);
        StorageNotFound when nothing is stored under key. Streams a large object a block
        at a time and resumes where a reader stopped."""
        ...

    async def delete_many(self, keys: list[str]) -> None: ...

    def iter_older_than(self, prefix: str, cutoff: datetime) -> AsyncIterator[list[str]]:
        """Keys under ``prefix`` last written before ``cutoff``, a page at a time."""
        ...

    async def signed_url(
        self, key: str, ttl_seconds: int | None = None, *, stable: bool = False
    ) -> str:
        """A short-lived URL that lets anyone holding it GET the object; ``stable``: the
        same URL for a whole window (``stable_window``), valid ``ttl`` to ``2 * ttl``."""
        ...

    async def check(self) -> None:
        """Raise if the backend is unusable (readiness probe)."""
        ...

    async def ensure_ready(self) -> None:
        """Create the bucket or directory if missing; idempotent (startup)."""
        ...


class LocalDiskStorage:
    """Objects as files under ``root``; signed URLs point at ``{base_url}/files/{key}``."""

    def __init__(
        self,
        root: Path,
        secret_key: str,
        base_url: str,
        *,
        default_ttl_seconds: int = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret_key:
            raise ValueError("LocalDiskStorage needs a secret key to sign URLs")
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self.default_ttl_seconds = _check_ttl(default_ttl_seconds)
        self.clock = clock
        # a key of its own, so a URL signature can never stand in for another HMAC
        self._signing_key = hmac.new(
            secret_key.encode(), b"city-app/local-storage-url", hashlib.sha256
        ).digest()

    def path_for(self, key: str) -> Path:
        return self.root / validate_key(key)

    # signing -------------------------------------------------------------

    def sign(self, key: str, expires: int) -> str:
        """Hex HMAC-SHA256 of the key and its expiry (unix seconds)."""
        message = f"{validate_key(key)}\n{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def signature_matches(self, key: str, expires: int, sig: str) -> bool:
        """Constant-time comparison of ``sig`` with the expected signature."""
        return hmac.compare_digest(self.sign(key, expires).encode(), sig.encode())

    async def signed_url(
        self, key: str, ttl_seconds: int | None = None, *, stable: bool = False
    ) -> str:
        ttl = _check_ttl(self.default_ttl_seconds if ttl_seconds is None else ttl_seconds)
        expires = stable_window(self.clock(), ttl)[1] if stable else int(self.clock()) + ttl
        sig = self.sign(key, expires)
        return f"{self.base_url}/files/{validate_key(key)}?expires={expires}&sig={sig}"

    # objects -------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        # the type is implied by the key's extension when served
        await asyncio.to_thread(self._write_atomic, self.path_for(key), data)
        _delete_on_rollback(self, key)

    async def iter_older_than(self, prefix: str, cutoff: datetime) -> AsyncIterator[list[str]]:
        top = self.root / validate_key(prefix.rstrip("/")) if prefix.strip("/") else self.root
        limit = cutoff.timestamp()

        def _walk() -> list[str]:
            found = []
            for folder, _, names in os.walk(top):
                for name in names:
                    path = Path(folder, name)
                    key = path.relative_to(self.root).as_posix()
                    if name.startswith(".") or not _KEY_CHARS.fullmatch(key):
                        continue  # a write in progress (or a stray file): not an object
                    try:
                        if path.stat().st_mtime < limit:
                            found.append(key)
                    except FileNotFoundError:
                        continue
            return sorted(found)

        keys = await asyncio.to_thread(_walk)
        for start in range(0, len(keys), LIST_PAGE):
            yield keys[start : start + LIST_PAGE]

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StorageNotFound(key) from None

    async def put_file(self, key: str, source: IO[bytes], length: int, content_type: str) -> None:
        await asyncio.to_thread(self._copy_atomic, self.path_for(key), source, length)
        _delete_on_rollback(self, key)

    @staticmethod
    def _copy_atomic(path: Path, source: IO[bytes], length: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                left = length
                while left > 0:
                    block = source.read(min(left, COPY_BLOCK))
                    if not block:
                        raise StorageError(f"source ended {left} bytes short of {length}")
                    fh.write(block)
                    left -= len(block)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        path = self.path_for(key)

        def _read() -> bytes:
            with path.open("rb") as fh:
                fh.seek(offset)
                return fh.read(length)

        try:
            return await asyncio.to_thread(_read)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StorageNotFound(key) from None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._unlink, self.path_for(key))

    async def delete_many(self, keys: list[str]) -> None:
        paths = [self.path_for(key) for key in keys]  # validate every key before deleting any

        def _unlink_all() -> None:
            for path in paths:
                self._unlink(path)

        await asyncio.to_thread(_unlink_all)

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            pass

    # lifecycle -----------------------------------------------------------

    async def check(self) -> None:
        await asyncio.to_thread(self._probe)

    def _probe(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"storage directory {self.root} does not exist")
        try:
            with tempfile.TemporaryFile(dir=self.root, prefix=".probe-") as fh:
                fh.write(b"ok")
        except OSError as exc:
            raise StorageUnavailable(
                f"storage directory {self.root} is not writable: {exc}"
            ) from exc

    async def ensure_ready(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)


class S3Storage:
    """Objects in an S3 bucket (MinIO in production) through the real ``minio`` client."""

    def __init__(self, settings: Settings, *, bucket: str | None = None) -> None:
        self.bucket = bucket or settings.s3_bucket
        self.default_ttl_seconds = _check_ttl(settings.signed_url_ttl_seconds)
        # bounded waits and retries: a stuck MinIO must not pin worker threads for minutes
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            maxsize=20,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(
                total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            secure=settings.s3_secure,
            # a known region: presigning needs no round trip to ask the bucket's location
            region=settings.s3_region or None,
            http_client=http,
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        validate_key(key)
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )
        _delete_on_rollback(self, key)

    async def iter_older_than(self, prefix: str, cutoff: datetime) -> AsyncIterator[list[str]]:
        listing = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
        cutoff = cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=UTC)

        def _page() -> list[tuple[str, datetime | None]]:
            return [(o.object_name, o.last_modified) for o in itertools.islice(listing, LIST_PAGE)]

        while page := await asyncio.to_thread(_page):
            old = [name for name, at in page if at is not None and at < cutoff]
            if old:
                yield old

    async def get(self, key: str) -> bytes:
        validate_key(key)

        def _read() -> bytes:
            try:
                response = self.client.get_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING_OBJECT_CODES:
                    raise StorageNotFound(key) from None
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(_read)

    async def put_file(self, key: str, source: IO[bytes], length: int, content_type: str) -> None:
        validate_key(key)
        # minio sends a large object as a multipart upload, a part at a time
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            cast(BinaryIO, source),  # minio reads it; any binary file object will do
            length,
            content_type=content_type,
            part_size=S3_PART_SIZE,
        )
        _delete_on_rollback(self, key)

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        validate_key(key)
        if length <= 0:
            return b""

        def _read() -> bytes:
            try:
                response = self.client.get_object(self.bucket, key, offset=offset, length=length)
            except S3Error as exc:
                if exc.code in _MISSING_OBJECT_CODES:
                    raise StorageNotFound(key) from None
                if exc.code == "InvalidRange":  # at or past the end
                    return b""
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(_read)

    async def delete(self, key: str) -> None:
        validate_key(key)
        # S3 answers 204 for a missing key too
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)

    async def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            validate_key(key)
        if not keys:
            return

        def _remove() -> None:
            # remove_objects is lazy: nothing is deleted until its error iterator is consumed
            errors = list(
                self.client.remove_objects(self.bucket, [DeleteObject(key) for key in keys])
            )
            failed = [e for e in errors if e.code not in _MISSING_OBJECT_CODES]
            if failed:
                first = failed[0]
                raise StorageError(
                    f"{len(failed)} object(s) not deleted; first {first.name!r}: "
                    f"{first.code} {first.message}"
                )

        await asyncio.to_thread(_remove)

    async def signed_url(
        self, key: str, ttl_seconds: int | None = None, *, stable: bool = False
    ) -> str:
        validate_key(key)
        ttl = _check_ttl(self.default_ttl_seconds if ttl_seconds is None else ttl_seconds)
        if not stable:
            return await asyncio.to_thread(
                self.client.presigned_get_object, self.bucket, key, timedelta(seconds=ttl)
            )
        # signed as of the window's start: the same date, expiry and signature all window
        start, expires = stable_window(time.time(), ttl)
        return await asyncio.to_thread(
            self.client.presigned_get_object,
            self.bucket,
            key,
            timedelta(seconds=expires - start),
            request_date=datetime.fromtimestamp(start, UTC),
        )

    async def check(self) -> None:
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            raise StorageUnavailable(f"bucket {self.bucket!r} does not exist")

    async def ensure_ready(self) -> None:
        def _ensure() -> None:
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:  # another process made it first
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        await asyncio.to_thread(_ensure)


def make_storage(settings: Settings) -> Storage:
    """S3/MinIO when ``S3_ENDPOINT`` is set, else files under ``STORAGE_DIR``."""
    if settings.s3_endpoint:
        return S3Storage(settings)
    return LocalDiskStorage(
        Path(settings.storage_dir),
        settings.secret_key,
        settings.public_base_url,
        default_ttl_seconds=settings.signed_url_ttl_seconds,
    )
