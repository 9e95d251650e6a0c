"""tus 1.0.0 over the real app (issue 24 item 3): core, creation, creation-with-upload,
expiration, checksum and termination, each status the protocol's text names, nothing
half-stored, another resident's upload a 404, the finished upload a photo that files a
report, expired uploads purged by the worker's job."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from datetime import timedelta

import pytest
from arq.worker import Worker
from sqlalchemy import func, select

from app.complaints.models import ReportPhoto
from app.core.clock import FixedClock
from app.uploads.models import Upload, UploadChunk
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import phone_photo, report_body

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}
URL = "/api/v1/uploads"


async def create(client, headers, length: int, **extra) -> str:
    r = await client.post(
        URL + "/", headers={**headers, **TUS, "Upload-Length": str(length), **extra}
    )
    assert r.status_code == 201, r.text
    assert r.headers["tus-resumable"] == "1.0.0"
    assert r.headers["upload-expires"].endswith("GMT")
    return r.headers["location"]


async def send(client, headers, location: str, offset: int, data: bytes, **extra):
    return await client.patch(
        location,
        content=data,
        headers={**headers, **TUS, **STREAM, "Upload-Offset": str(offset), **extra},
    )


async def offset_of(client, headers, location: str) -> int:
    r = await client.head(location, headers={**headers, **TUS})
    assert r.status_code == 200, r.status_code
    return int(r.headers["upload-offset"])


async def stored_bytes(session, location: str) -> int:
    upload_id = uuid.UUID(location.rsplit("/", 1)[1])
    total = await session.scalar(
        select(func.coalesce(func.sum(func.length(UploadChunk.data)), 0)).where(
            UploadChunk.upload_id == upload_id
        )
    )
    await session.commit()
    return int(total)


async def test_options_names_version_extensions_size_and_checksums(client, settings):
    r = await client.options(URL + "/")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    }
    assert r.headers["tus-max-size"] == str(settings.photo_max_bytes)
    assert "sha1" in r.headers["tus-checksum-algorithm"].split(",")


async def test_upload_in_pieces_becomes_a_photo_that_files_a_report(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    photo = phone_photo()
    metadata = "filename " + base64.b64encode(b"pho.jpg").decode() + ",is_private"
    location = await create(client, me["headers"], len(photo), **{"Upload-Metadata": metadata})
    head = await client.head(location, headers={**me["headers"], **TUS})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["upload-offset"] == "0"
    assert head.headers["upload-length"] == str(len(photo))
    assert head.headers["upload-metadata"] == metadata
    assert head.headers["cache-control"] == "no-store"
    assert "photo-id" not in head.headers
    half = len(photo) // 2
    r = await send(client, me["headers"], location, 0, photo[:half])
    assert r.status_code == 204, r.text
    assert r.headers["upload-offset"] == str(half) and r.headers["tus-resumable"] == "1.0.0"
    assert r.headers["upload-expires"].endswith("GMT") and "photo-id" not in r.headers
    assert await offset_of(client, me["headers"], location) == half
    assert await stored_bytes(session, location) == half
    r = await send(client, me["headers"], location, half, photo[half:])
    assert r.status_code == 204, r.text
    assert r.headers["upload-offset"] == str(len(photo))
    photo_id = r.headers["photo-id"]
    # a completed upload keeps answering HEAD with its photo; its bytes are gone
    head = await client.head(location, headers={**me["headers"], **TUS})
    assert head.status_code == 200 and head.headers["photo-id"] == photo_id
    assert head.headers["upload-offset"] == head.headers["upload-length"] == str(len(photo))
    assert await stored_bytes(session, location) == 0
    row = await session.get(ReportPhoto, uuid.UUID(photo_id))
    assert row is not None and row.geotag is not None and row.source_format == "jpeg"
    filed = await client.post(
        "/api/v1/reports", json=report_body([photo_id]), headers=me["headers"]
    )
    assert filed.status_code == 201, filed.text
    mine = await client.get(f"/api/v1/reports/{filed.json()['id']}", headers=me["headers"])
    assert [p["id"] for p in mine.json()["photos"]] == [photo_id]


async def test_creation_with_upload_takes_the_first_bytes(client, caplog):
    me = await sign_in_resident(client, caplog)
    photo = phone_photo()
    r = await client.post(
        URL + "/",
        content=photo[:1000],
        headers={**me["headers"], **TUS, **STREAM, "Upload-Length": str(len(photo))},
    )
    assert r.status_code == 201, r.text
    assert r.headers["upload-offset"] == "1000"
    r = await send(client, me["headers"], r.headers["location"], 1000, photo[1000:])
    assert r.status_code == 204 and "photo-id" in r.headers


async def test_wrong_offset_is_409_and_changes_nothing(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 100)
    assert (await send(client, me["headers"], location, 0, b"a" * 40)).status_code == 204
    for wrong in (0, 39, 41, 100):
        r = await send(client, me["headers"], location, wrong, b"b" * 10)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "upload_offset_mismatch"
        assert r.headers["tus-resumable"] == "1.0.0"
    assert await offset_of(client, me["headers"], location) == 40
    assert await stored_bytes(session, location) == 40


async def test_wrong_content_type_is_415_and_missing_offset_400(client, caplog):
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 100)
    r = await client.patch(
        location,
        content=b"x" * 10,
        headers={
            **me["headers"],
            **TUS,
            "Content-Type": "application/octet-stream",
            "Upload-Offset": "0",
        },
    )
    assert r.status_code == 415 and r.json()["code"] == "upload_content_type"
    r = await client.patch(location, content=b"x", headers={**me["headers"], **TUS, **STREAM})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "upload-offset"
    assert await offset_of(client, me["headers"], location) == 0


async def test_other_tus_version_is_412_with_tus_version(client, caplog):
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 100)
    r = await client.patch(
        location,
        content=b"x" * 10,
        headers={**me["headers"], **STREAM, "Tus-Resumable": "0.2.2", "Upload-Offset": "0"},
    )
    assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
    assert r.json()["title"] == "Precondition Failed"
    assert r.json()["code"] == "tus_version_unsupported"
    r = await client.post(URL + "/", headers={**me["headers"], "Upload-Length": "10"})
    assert r.status_code == 412
    assert await offset_of(client, me["headers"], location) == 0


async def test_checksum_sha1_match_mismatch_and_unsupported(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 22)

    def sha1(data: bytes) -> str:
        return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()

    r = await send(
        client,
        me["headers"],
        location,
        0,
        b"hello world",
        **{"Upload-Checksum": sha1(b"hello world")},
    )
    assert r.status_code == 204 and r.headers["upload-offset"] == "11"
    r = await send(
        client,
        me["headers"],
        location,
        11,
        b"hello wxrld",
        **{"Upload-Checksum": sha1(b"hello world")},
    )
    assert r.status_code == 460 and r.json()["code"] == "upload_checksum_mismatch"
    assert r.json()["title"] == "Checksum Mismatch"
    assert await offset_of(client, me["headers"], location) == 11
    assert await stored_bytes(session, location) == 11
    r = await send(
        client, me["headers"], location, 11, b"hello world", **{"Upload-Checksum": "crc32 AAAAAA=="}
    )
    assert r.status_code == 400 and r.json()["code"] == "upload_checksum_unsupported"
    r = await send(
        client,
        me["headers"],
        location,
        11,
        b"hello world",
        **{"Upload-Checksum": "sha1 not base64!"},
    )
    assert r.status_code == 400 and r.json()["code"] == "upload_checksum_invalid"
    assert await stored_bytes(session, location) == 11


async def test_limits_at_creation(client, caplog, settings):
    me = await sign_in_resident(client, caplog)
    r = await client.post(
        URL + "/",
        headers={**me["headers"], **TUS, "Upload-Length": str(settings.photo_max_bytes + 1)},
    )
    assert r.status_code == 413 and r.json()["code"] == "photo_too_large"
    r = await client.post(URL + "/", headers={**me["headers"], **TUS})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "upload-length"
    r = await client.post(URL + "/", headers={**me["headers"], **TUS, "Upload-Length": "-1"})
    assert r.status_code == 400
    r = await client.post(
        URL + "/",
        headers={**me["headers"], **TUS, "Upload-Length": "10", "Upload-Metadata": "a b c"},
    )
    assert r.status_code == 400 and r.json()["code"] == "upload_metadata_invalid"
    for _ in range(settings.upload_open_per_resident):
        await create(client, me["headers"], 10)
    r = await client.post(URL + "/", headers={**me["headers"], **TUS, "Upload-Length": "10"})
    assert r.status_code == 429 and r.json()["code"] == "uploads_open_limit"
    assert r.headers["tus-resumable"] == "1.0.0"


async def test_past_the_length_is_413_and_nothing_kept(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 50)
    assert (await send(client, me["headers"], location, 0, b"a" * 30)).status_code == 204
    r = await send(client, me["headers"], location, 30, b"b" * 30)
    assert r.status_code == 413 and r.json()["code"] == "upload_past_length"
    assert await offset_of(client, me["headers"], location) == 30
    assert await stored_bytes(session, location) == 30

    async def chunked():  # no Content-Length: refused while it streams
        yield b"c" * 15
        yield b"d" * 15

    r = await client.patch(
        location,
        content=chunked(),
        headers={**me["headers"], **TUS, **STREAM, "Upload-Offset": "30"},
    )
    assert r.status_code == 413
    assert await offset_of(client, me["headers"], location) == 30
    assert await stored_bytes(session, location) == 30


async def test_bad_image_at_the_end_is_422_and_the_upload_failed(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 64)
    r = await send(client, me["headers"], location, 0, b"not a photo" + b"\0" * 53)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] in {"photo_unsupported_type", "photo_unreadable"}
    assert await stored_bytes(session, location) == 0
    r = await client.head(location, headers={**me["headers"], **TUS})
    assert r.status_code == 410 and "upload-offset" not in r.headers
    assert await session.scalar(select(func.count()).select_from(ReportPhoto)) is not None


async def test_another_residents_upload_is_404(client, caplog, app):
    me = await sign_in_resident(client, caplog)
    other = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 100)
    assert (await client.head(location, headers={**other["headers"], **TUS})).status_code == 404
    r = await send(client, other["headers"], location, 0, b"x" * 10)
    assert r.status_code == 404 and r.json()["code"] == "upload_not_found"
    assert (await client.delete(location, headers={**other["headers"], **TUS})).status_code == 404
    assert (await client.head(location, headers=TUS)).status_code == 401
    staff = await sign_in_staff(client, app, [("admin", None)])
    assert (await client.head(location, headers={**staff["headers"], **TUS})).status_code == 403
    assert await offset_of(client, me["headers"], location) == 0


async def test_termination_frees_the_upload(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 100)
    assert (await send(client, me["headers"], location, 0, b"x" * 10)).status_code == 204
    r = await client.delete(location, headers={**me["headers"], **TUS})
    assert r.status_code == 204 and r.headers["tus-resumable"] == "1.0.0"
    assert await stored_bytes(session, location) == 0
    assert (await client.head(location, headers={**me["headers"], **TUS})).status_code == 404
    assert (await send(client, me["headers"], location, 10, b"x")).status_code == 404
    # X-HTTP-Method-Override: a DELETE sent as POST
    location = await create(client, me["headers"], 100)
    r = await client.post(
        location, headers={**me["headers"], **TUS, "X-HTTP-Method-Override": "DELETE"}
    )
    assert r.status_code == 204
    assert (await client.head(location, headers={**me["headers"], **TUS})).status_code == 404


async def test_expired_upload_is_410_then_purged_by_the_worker(client, caplog, app, session):
    from workers import main as worker_main

    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 100)
    assert (await send(client, me["headers"], location, 0, b"x" * 10)).status_code == 204
    real = app.state.clock
    later = real.now() + timedelta(hours=app.state.settings.upload_ttl_hours, minutes=1)
    app.state.clock = FixedClock(later)
    try:
        assert (await client.head(location, headers={**me["headers"], **TUS})).status_code == 410
        r = await send(client, me["headers"], location, 10, b"x")
        assert r.status_code == 410 and r.json()["code"] == "upload_expired"
    finally:
        app.state.clock = real
    await app.state.redis.enqueue_job(
        "purge_expired_uploads", _job_id=f"purge-uploads:{uuid.uuid4().hex}"
    )
    cls = worker_main.WorkerSettings
    worker = Worker(
        functions=cls.functions,
        on_startup=cls.on_startup,
        on_shutdown=cls.on_shutdown,
        redis_settings=cls.redis_settings,
        queue_name=cls.queue_name,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        ctx={"clock": FixedClock(later)},
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    upload_id = uuid.UUID(location.rsplit("/", 1)[1])
    assert await session.get(Upload, upload_id) is None
    assert await stored_bytes(session, location) == 0
    assert (await client.head(location, headers={**me["headers"], **TUS})).status_code == 404


async def test_two_patches_at_once_one_is_409(client, caplog, session):
    """The first PATCH holds the upload while its body streams; a second one meanwhile is
    refused (409 upload_busy), and the first one's bytes all land."""
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 200)
    gate = asyncio.Event()

    async def slow():
        yield b"a" * 50
        await gate.wait()
        yield b"a" * 50

    first = asyncio.create_task(
        client.patch(
            location,
            content=slow(),
            headers={**me["headers"], **TUS, **STREAM, "Upload-Offset": "0"},
        )
    )
    for _ in range(100):  # until the first PATCH holds the lease
        await asyncio.sleep(0.02)
        row = await session.get(Upload, uuid.UUID(location.rsplit("/", 1)[1]))
        await session.commit()
        if row is not None and row.lease_token is not None:
            break
        session.expunge_all()
    second = await send(client, me["headers"], location, 0, b"b" * 50)
    assert second.status_code == 409 and second.json()["code"] == "upload_busy"
    gate.set()
    r = await first
    assert r.status_code == 204 and r.headers["upload-offset"] == "100"
    assert await stored_bytes(session, location) == 100


@pytest.mark.parametrize("method", ["head", "patch", "delete"])
async def test_unknown_upload_is_404(client, caplog, method):
    me = await sign_in_resident(client, caplog)
    r = await client.request(
        method.upper(),
        f"{URL}/{uuid.uuid4()}",
        headers={**me["headers"], **TUS, **STREAM, "Upload-Offset": "0"},
    )
    assert r.status_code == 404
    assert r.headers["tus-resumable"] == "1.0.0"


async def test_answers_are_never_compressed(client, caplog):
    """The compression middleware (brotli/gzip) leaves every tus answer alone: HEAD and
    PATCH carry no body, a problem stays plain, and no-store is kept."""
    me = await sign_in_resident(client, caplog)
    asks = {**me["headers"], **TUS, "Accept-Encoding": "br, gzip"}
    location = await create(client, asks, 4000)
    r = await send(client, asks, location, 0, b"x" * 3000)
    assert r.status_code == 204 and "content-encoding" not in r.headers
    r = await client.head(location, headers=asks)
    assert r.status_code == 200 and "content-encoding" not in r.headers
    assert r.headers["cache-control"] == "no-store"
    r = await send(client, asks, location, 5, b"x")
    assert r.status_code == 409 and "content-encoding" not in r.headers
    assert r.json()["code"] == "upload_offset_mismatch"


async def test_method_override_sends_a_patch_as_post(client, caplog):
    """X-HTTP-Method-Override (tus core): a client that cannot send PATCH posts it."""
    me = await sign_in_resident(client, caplog)
    location = await create(client, me["headers"], 100)
    r = await client.post(
        location,
        content=b"y" * 25,
        headers={
            **me["headers"],
            **TUS,
            **STREAM,
            "Upload-Offset": "0",
            "X-HTTP-Method-Override": "PATCH",
        },
    )
    assert r.status_code == 204 and r.headers["upload-offset"] == "25"
    r = await client.post(
        location, headers={**me["headers"], **TUS, "X-HTTP-Method-Override": "PUT"}
    )
    assert r.status_code == 400 and r.json()["code"] == "upload_header_invalid"
    assert await offset_of(client, me["headers"], location) == 25


async def test_refused_creation_with_upload_leaves_nothing(client, caplog, session):
    """creation-with-upload whose bytes are refused (checksum) answers 460 and keeps no
    upload: the client never got its URL."""
    me = await sign_in_resident(client, caplog)
    r = await client.post(
        URL + "/",
        content=b"hello world",
        headers={
            **me["headers"],
            **TUS,
            **STREAM,
            "Upload-Length": "100",
            "Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(b"other").digest()).decode(),
        },
    )
    assert r.status_code == 460 and r.json()["code"] == "upload_checksum_mismatch"
    assert r.json()["title"] == "Checksum Mismatch"
    assert "location" not in r.headers
    assert await session.scalar(select(func.count()).select_from(Upload)) == 0
    assert await session.scalar(select(func.count()).select_from(UploadChunk)) == 0
