"""Photo storage on both backends: local disk, and S3 through the real minio client
against moto's S3 server on loopback. Signed URLs are fetched over HTTP for real."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import AsyncTestClient

from app.accounts.models import User
from app.complaints.models import ReportPhoto
from app.core import db
from app.core.errors import EXCEPTION_HANDLERS, PROBLEM_JSON, Conflict
from app.core.files_api import serve_file
from app.core.storage import (
    LocalDiskStorage,
    S3Storage,
    Storage,
    StorageNotFound,
    StorageUnavailable,
    make_storage,
    validate_key,
)
from app.settings import Settings
from tests.standins.s3 import ACCESS_KEY, REGION, SECRET_KEY, s3_endpoint  # noqa: F401
from workers import housekeeping

SIGNING_SECRET = "test-signing-secret"
BASE_URL = "http://testserver.local"  # AsyncTestClient's own base URL
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(200_000) + b"\xff\xd9"  # spans several chunks


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_key(name: str = "display.jpg") -> str:
    return f"photos/2026/11/{uuid.uuid4()}/{name}"


def s3_settings(endpoint: str, bucket: str) -> Settings:
    return Settings(
        s3_endpoint=endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        s3_bucket=bucket,
        s3_region=REGION,
        s3_secure=False,
        signed_url_ttl_seconds=300,
    )


def new_bucket() -> str:
    return f"photos-{uuid.uuid4().hex[:20]}"


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        backend: Storage = LocalDiskStorage(tmp_path / "store", SIGNING_SECRET, BASE_URL)
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        backend = S3Storage(s3_settings(endpoint, new_bucket()))
    await backend.ensure_ready()
    yield backend


def files_app(storage: object) -> Litestar:
    return Litestar(
        route_handlers=[serve_file],
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"storage": storage}),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local(tmp_path: Path, clock: Clock) -> LocalDiskStorage:
    root = tmp_path / "store"
    root.mkdir()
    return LocalDiskStorage(root, SIGNING_SECRET, BASE_URL, clock=clock)


@pytest.fixture
async def files_client(local: LocalDiskStorage) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=files_app(local)) as client:
        yield client


# round trips, both backends ----------------------------------------------------


async def test_put_get_delete_round_trip(storage: Storage) -> None:
    key = new_key()
    await storage.put(key, JPEG, "image/jpeg")
    assert await storage.get(key) == JPEG

    await storage.delete(key)
    with pytest.raises(StorageNotFound) as caught:
        await storage.get(key)
    assert isinstance(caught.value, KeyError)
    assert caught.value.key == key


async def test_put_replaces_the_object(storage: Storage) -> None:
    key = new_key("thumb.webp")
    await storage.put(key, b"first", "image/webp")
    await storage.put(key, b"second", "image/webp")
    assert await storage.get(key) == b"second"


async def test_get_of_a_missing_key_is_not_found(storage: Storage) -> None:
    with pytest.raises(StorageNotFound):
        await storage.get(new_key())


async def test_delete_is_idempotent(storage: Storage) -> None:
    key = new_key()
    await storage.delete(key)  # never existed
    await storage.put(key, b"x", "image/jpeg")
    await storage.delete(key)
    await storage.delete(key)
    with pytest.raises(StorageNotFound):
        await storage.get(key)


async def test_delete_many(storage: Storage) -> None:
    keep, gone1, gone2 = new_key("keep.jpg"), new_key("a.jpg"), new_key("b.png")
    for key in (keep, gone1, gone2):
        await storage.put(key, key.encode(), "image/jpeg")

    await storage.delete_many([gone1, gone2, new_key("never-stored.jpg")])
    await storage.delete_many([])

    assert await storage.get(keep) == keep.encode()
    for key in (gone1, gone2):
        with pytest.raises(StorageNotFound):
            await storage.get(key)


BAD_KEYS = [
    "../x",
    "photos/../../etc/passwd",
    "photos/..",
    "/photos/a.jpg",
    "photos//a.jpg",
    "photos/./a.jpg",
    "photos/a.jpg/",
    "photos/ảnh.jpg",
    "photos/a b.jpg",
    "photos/a.jpg?x=1",
    "photos\\a.jpg",
    "",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_unsafe_keys_are_rejected(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(key)
    with pytest.raises(ValueError):
        await storage.put(key, b"x", "image/jpeg")
    with pytest.raises(ValueError):
        await storage.get(key)
    with pytest.raises(ValueError):
        await storage.delete(key)
    with pytest.raises(ValueError):
        await storage.delete_many([new_key(), key])
    with pytest.raises(ValueError):
        await storage.signed_url(key)


async def test_a_rejected_key_in_a_batch_deletes_nothing(storage: Storage) -> None:
    key = new_key()
    await storage.put(key, b"x", "image/jpeg")
    with pytest.raises(ValueError):
        await storage.delete_many([key, "../x"])
    assert await storage.get(key) == b"x"


async def test_signed_url_ttl_must_be_positive(storage: Storage) -> None:
    for ttl in (0, -5, 8 * 24 * 3600):
        with pytest.raises(ValueError):
            await storage.signed_url(new_key(), ttl)


async def test_a_stable_signed_url_is_the_same_all_window_and_works(storage: Storage) -> None:
    """``stable=True`` (issue 24): one URL per window, so a list naming photos keeps its
    ETag; it is a valid signed URL for at least the ttl asked for."""
    key = new_key()
    await storage.put(key, JPEG, "image/jpeg")
    first = await storage.signed_url(key, 600, stable=True)
    assert await storage.signed_url(key, 600, stable=True) == first
    if isinstance(storage, S3Storage):
        async with httpx.AsyncClient() as client:
            response = await client.get(first)
        assert "X-Amz-Expires=1200" in first
    else:
        expires = int(dict(p.split("=") for p in first.split("?")[1].split("&"))["expires"])
        assert 600 <= expires - time.time() <= 1200
        async with AsyncTestClient(app=files_app(storage)) as client:
            response = await client.get(first)
    assert response.status_code == 200 and response.content == JPEG


# signed URLs fetched over HTTP ---------------------------------------------------


async def test_signed_url_returns_the_bytes(storage: Storage) -> None:
    key = new_key()
    await storage.put(key, JPEG, "image/jpeg")
    url = await storage.signed_url(key, 120)

    if isinstance(storage, S3Storage):
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
            unsigned = await client.get(url.split("?")[0])
        assert unsigned.status_code == 403  # the bucket is private; the signature lets us in
    else:
        async with AsyncTestClient(app=files_app(storage)) as client:
            response = await client.get(url)
        max_age = int(response.headers["cache-control"].removeprefix("private, max-age="))
        assert 0 < max_age <= 120

    assert response.status_code == 200
    assert response.content == JPEG
    assert response.headers["content-type"] == "image/jpeg"


async def test_local_signed_url_shape(local: LocalDiskStorage, clock: Clock) -> None:
    key = new_key()
    url = await local.signed_url(key, 60)
    expires = int(clock.now) + 60
    assert url == f"{BASE_URL}/files/{key}?expires={expires}&sig={local.sign(key, expires)}"
    assert len(local.sign(key, expires)) == 64
    # the default ttl applies when none is given
    default = await local.signed_url(key)
    assert f"expires={int(clock.now) + local.default_ttl_seconds}&" in default


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.jpg", "image/jpeg"),
        ("a.JPEG", "image/jpeg"),
        ("a.png", "image/png"),
        ("a.webp", "image/webp"),
        ("a.bin", "application/octet-stream"),
    ],
)
async def test_local_file_is_served_with_its_type(
    local: LocalDiskStorage, files_client: AsyncTestClient, name: str, content_type: str
) -> None:
    key = new_key(name)
    await local.put(key, b"body", content_type)
    response = await files_client.get(await local.signed_url(key, 90))
    assert response.status_code == 200
    assert response.content == b"body"
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "private, max-age=90"
    assert response.headers["x-content-type-options"] == "nosniff"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.content[:300]
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"] and body["detail"] != code  # a message is registered for it
    return body


async def test_expired_local_url_is_403(
    local: LocalDiskStorage, files_client: AsyncTestClient, clock: Clock
) -> None:
    key = new_key()
    await local.put(key, JPEG, "image/jpeg")
    url = await local.signed_url(key, 60)

    clock.now += 59
    ok = await files_client.get(url)
    assert ok.status_code == 200
    assert ok.headers["cache-control"] == "private, max-age=1"

    clock.now += 1
    body = assert_problem(await files_client.get(url), 403, "signed_url_expired")
    assert "hết hạn" in str(body["detail"])  # Vietnamese by default
    english = await files_client.get(url, headers={"Accept-Language": "en"})
    assert "expired" in str(assert_problem(english, 403, "signed_url_expired")["detail"])


def tamperings(url: str, other_key: str) -> dict[str, str]:
    path, _, query = url.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&"))
    expires, sig = params["expires"], params["sig"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    key = path.split("/files/", 1)[1]
    return {
        "flipped signature": f"{path}?expires={expires}&sig={flipped}",
        "later expiry": f"{path}?expires={int(expires) + 3600}&sig={sig}",
        "other key": f"{path.replace(key, other_key)}?expires={expires}&sig={sig}",
        "no signature": f"{path}?expires={expires}",
        "no expiry": f"{path}?sig={sig}",
        "no query": path,
        "garbage expiry": f"{path}?expires=soon&sig={sig}",
        "non-ascii signature": f"{path}?expires={expires}&sig=%C3%A1{sig[2:]}",
        "uppercase signature": f"{path}?expires={expires}&sig={sig.upper()}",
        "signed by another secret": url.replace(
            sig, LocalDiskStorage(Path("."), "another-secret", BASE_URL).sign(key, int(expires))
        ),
    }


async def test_tampered_local_url_is_403(
    local: LocalDiskStorage, files_client: AsyncTestClient
) -> None:
    key, other = new_key(), new_key()
    await local.put(key, JPEG, "image/jpeg")
    await local.put(other, b"someone else's photo", "image/jpeg")
    url = await local.signed_url(key, 60)

    for what, bad_url in tamperings(url, other).items():
        response = await files_client.get(bad_url)
        assert response.status_code == 403, what
        assert_problem(response, 403, "signed_url_invalid")


async def test_traversal_through_the_files_route_is_refused(
    local: LocalDiskStorage, files_client: AsyncTestClient, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("not for phones")
    for path in (
        "/files/%2E%2E/secret.txt",
        "/files/photos/%2E%2E/%2E%2E/secret.txt",
        "/files/photos%2F..%2F..%2Fsecret.txt",
    ):
        response = await files_client.get(f"{path}?expires=9999999999&sig=00")
        assert b"not for phones" not in response.content
        assert_problem(response, 403, "signed_url_invalid")


async def test_signed_url_for_a_deleted_file_is_404(
    local: LocalDiskStorage, files_client: AsyncTestClient
) -> None:
    key = new_key()
    await local.put(key, JPEG, "image/jpeg")
    url = await local.signed_url(key, 60)
    await local.delete(key)
    assert_problem(await files_client.get(url), 404, "not_found")


async def test_files_route_is_404_when_photos_are_on_s3(
    s3_endpoint: str,  # noqa: F811
) -> None:
    s3 = S3Storage(s3_settings(s3_endpoint, new_bucket()))
    async with AsyncTestClient(app=files_app(s3)) as client:
        response = await client.get("/files/photos/a.jpg?expires=9999999999&sig=00")
    assert_problem(response, 404, "not_found")


# readiness and startup --------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def unprepared(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalDiskStorage(tmp_path / "not" / "yet", SIGNING_SECRET, BASE_URL)
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Storage(s3_settings(endpoint, new_bucket()))


async def test_check_fails_until_ensure_ready(unprepared: Storage) -> None:
    with pytest.raises(StorageUnavailable):
        await unprepared.check()
    await unprepared.ensure_ready()
    await unprepared.ensure_ready()  # idempotent
    await unprepared.check()
    key = new_key()
    await unprepared.put(key, b"x", "image/jpeg")
    assert await unprepared.get(key) == b"x"


async def test_local_check_fails_when_the_root_is_not_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.write_bytes(b"a file where the directory should be")
    storage = LocalDiskStorage(root, SIGNING_SECRET, BASE_URL)
    with pytest.raises(StorageUnavailable):
        await storage.check()
    with pytest.raises(OSError):
        await storage.ensure_ready()


async def test_local_check_fails_on_a_directory_nobody_can_write(tmp_path: Path) -> None:
    # procfs refuses new files even to root, so this holds whoever runs the tests
    storage = LocalDiskStorage(Path("/proc/self"), SIGNING_SECRET, BASE_URL)
    with pytest.raises(StorageUnavailable, match="not writable"):
        await storage.check()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_s3_check_fails_when_the_server_is_unreachable() -> None:
    s3 = S3Storage(s3_settings(f"127.0.0.1:{free_port()}", new_bucket()))
    with pytest.raises(Exception):  # noqa: B017 - urllib3's connection error, whichever it is
        await s3.check()


async def test_local_writes_leave_no_temporary_files(local: LocalDiskStorage) -> None:
    key = new_key()
    for body in (b"one", b"two", JPEG):
        await local.put(key, body, "image/jpeg")
    await local.check()
    assert sorted(p.name for p in local.path_for(key).parent.iterdir()) == ["display.jpg"]
    assert [p.name for p in local.root.iterdir()] == ["photos"]


# picking a backend -------------------------------------------------------------


def test_make_storage_picks_the_backend(tmp_path: Path) -> None:
    local = make_storage(
        Settings(storage_dir=str(tmp_path), secret_key="k", public_base_url="https://city.example/")
    )
    assert isinstance(local, LocalDiskStorage)
    assert local.root == tmp_path
    assert local.base_url == "https://city.example"

    s3 = make_storage(s3_settings("127.0.0.1:9", "city-photos"))
    assert isinstance(s3, S3Storage)
    assert s3.bucket == "city-photos"
    assert isinstance(local, Storage) and isinstance(s3, Storage)  # both meet the Protocol


# ---------------------------------------------------------------- transactions and orphans
# issue 17 item 8: no object outlives the transaction that wrote it, and objects no row
# refers to are purged once they are a day old


class Boom(Exception):
    pass


async def test_objects_put_in_a_rolled_back_transaction_are_deleted(storage: Storage, app) -> None:
    kept, dropped = new_key(), new_key()
    async with db.transaction(app.state.sessionmaker, None):
        await storage.put(kept, JPEG, "image/jpeg")
    assert await storage.get(kept) == JPEG
    with pytest.raises(Boom):
        async with db.transaction(app.state.sessionmaker, None):
            await storage.put(dropped, JPEG, "image/jpeg")
            assert await storage.get(dropped) == JPEG
            raise Boom
    with pytest.raises(StorageNotFound):
        await storage.get(dropped)
    # a domain error rolls back too; one that keeps its writes keeps its objects
    for keep_writes in (False, True):
        key = new_key()
        with pytest.raises(Conflict):
            async with db.transaction(app.state.sessionmaker, None):
                await storage.put(key, JPEG, "image/jpeg")
                raise Conflict(keep_writes=keep_writes)
        if keep_writes:
            assert await storage.get(key) == JPEG
        else:
            with pytest.raises(StorageNotFound):
                await storage.get(key)
    assert await storage.get(kept) == JPEG


async def test_iter_older_than_lists_by_age(storage: Storage) -> None:
    keys = sorted(new_key() for _ in range(3))
    for key in keys:
        await storage.put(key, b"x", "image/jpeg")  # outside any transaction: just stored
    now = datetime.now(UTC)

    async def listed(cutoff: datetime) -> list[str]:
        return sorted(
            [k async for page in storage.iter_older_than("photos/", cutoff) for k in page]
        )

    assert await listed(now - timedelta(hours=1)) == []
    assert await listed(now + timedelta(minutes=5)) == keys


async def test_the_purge_deletes_day_old_objects_no_row_refers_to(storage: Storage, app) -> None:
    orphan, young_orphan, referenced = (uuid.uuid4() for _ in range(3))
    keys = {
        photo: [f"photos/2026/11/{photo}/display.jpg", f"photos/2026/11/{photo}/thumb.jpg"]
        for photo in (orphan, young_orphan, referenced)
    }
    foreign = "exports/2026/11/not-a-photo.bin"  # not a photo key: never judged
    for key in [*keys[orphan], *keys[referenced], foreign]:
        await storage.put(key, b"x", "image/jpeg")
    now = datetime.now(UTC)
    async with db.transaction(app.state.sessionmaker, None) as session:
        owner = User(kind="resident", locale="vi")
        session.add(owner)
        await session.flush()
        display, thumb = keys[referenced]
        session.add(
            ReportPhoto(
                id=referenced, owner_id=owner.id, display_key=display, thumb_key=thumb,
                width=1, height=1, source_format="jpeg", sha256=b"\0" * 32,
                created_at=now, expires_at=now + timedelta(hours=24),
            )
        )  # fmt: skip

    async def purge(at: datetime, **age: timedelta) -> int:
        async with db.transaction(app.state.sessionmaker, None) as session:
            return await housekeeping.delete_orphaned_objects(session, storage, at, **age)

    # everything is younger than a day: nothing goes
    assert await purge(now) == 0
    assert await purge(now + timedelta(hours=23)) == 0
    for key in [*keys[orphan], *keys[referenced]]:
        assert await storage.get(key) == b"x"
    # a shorter minimum age stands in for the day (S3 keeps its own write times, to the
    # second): an orphan written just now stays, the older one goes
    await asyncio.sleep(2.1)
    for key in keys[young_orphan]:
        await storage.put(key, b"x", "image/jpeg")
    assert await purge(datetime.now(UTC), min_age=timedelta(seconds=1)) == 2
    for key in keys[orphan]:
        with pytest.raises(StorageNotFound):
            await storage.get(key)
    for key in [*keys[young_orphan], *keys[referenced], foreign]:
        assert await storage.get(key) == b"x"
    # and a day on, the young orphan goes too
    assert await purge(datetime.now(UTC) + timedelta(days=1, minutes=1)) == 2
    for key in [*keys[referenced], foreign]:
        assert await storage.get(key) == b"x"
