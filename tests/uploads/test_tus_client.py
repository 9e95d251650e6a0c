"""A third-party tus client from PyPI (``tuspy``, requests) against the API served by
granian on loopback (tests/live.py): a photo uploaded in chunks with sha1 checksums
becomes a photo id that files a report; a connection cut mid-PATCH by a TCP proxy is
resumed by tuspy itself (HEAD for the offset, PATCH from there) and completes with the
same bytes, resending none of what the server had received."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select
from tusclient import client as tus

from app.complaints.models import ReportPhoto
from app.uploads.models import Upload
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import report_body
from tests.complaints.imagegen import encode, make_exif, photo_like
from tests.live import free_port, live_server

PORTS = range(18500, 18600)  # this helper's range on the shared machine
CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def live_api(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(PORTS, tmp_path_factory.mktemp("uploads")) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """A camera-like JPEG of about a megabyte, geotagged at Hoan Kiem."""
    exif = make_exif(
        orientation=1, lat=21.0288, lon=105.8525, taken=datetime.now(), offset="+07:00"
    )
    data = encode(photo_like((2400, 1800)), "JPEG", exif=exif, quality=92)
    assert len(data) > 3 * CHUNK
    return data


class CuttingProxy:
    """A TCP proxy to the server that closes both sides of the first connection that
    forwards ``cut_after`` bytes from the client; others pass whole.
    Records how many body bytes of the cut request reached the server."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cut_done = False
        self.cut_body_bytes = 0
        self.body_bytes_total = 0  # every request body forwarded, for the resend count
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, ports: range) -> None:
        self.port = free_port(ports)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def upstream() -> None:
            forwarded, counted, head = 0, 0, b""
            header_len: int | None = None
            while data := await reader.read(16384):
                cut = not self.cut_done and forwarded + len(data) >= self.cut_after
                if cut:
                    self.cut_done = True
                    data = data[: self.cut_after - forwarded]
                up_writer.write(data)
                await up_writer.drain()
                forwarded += len(data)
                if header_len is None:
                    head += data
                    if b"\r\n\r\n" in head:
                        header_len = head.index(b"\r\n\r\n") + 4
                body = forwarded - (header_len or forwarded)
                self.body_bytes_total += body - counted
                counted = body
                if cut:
                    self.cut_body_bytes = body
                    break
            for w in (up_writer, writer):
                w.close()

        async def downstream() -> None:
            try:
                while data := await up_reader.read(16384):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)


def _uploader(creation_url: str, headers: dict[str, str], data: bytes, **options):
    client = tus.TusClient(creation_url, headers=headers)
    return client.uploader(file_stream=io.BytesIO(data), **options)


async def _settled(app, upload_id: uuid.UUID) -> Upload:
    """The upload once the cut PATCH has stored what it received and let go of it (the
    server may still be reading its socket when the client has given up)."""
    async with app.state.sessionmaker() as s:
        for _ in range(200):
            row = await s.get(Upload, upload_id)
            if row is not None and row.offset > 0 and row.lease_token is None:
                return row
            s.expunge_all()
            await asyncio.sleep(0.05)
    raise AssertionError("the cut PATCH stored nothing or never let go of the upload")


async def test_tuspy_uploads_in_chunks_and_the_photo_files_a_report(
    client, caplog, app, live_api, big_photo
):
    me = await sign_in_resident(client, caplog)
    uploader = _uploader(
        f"{live_api}/api/v1/uploads/",
        me["headers"],
        big_photo,
        chunk_size=CHUNK,
        metadata={"filename": "pho.jpg"},
        upload_checksum=True,  # sha1 per PATCH
        retries=0,
    )
    await asyncio.to_thread(uploader.upload)
    assert uploader.offset == len(big_photo)
    photo_id = uploader.request.response_headers["photo-id"]
    async with httpx.AsyncClient(base_url=live_api) as http:
        head = await http.head(uploader.url, headers={**me["headers"], "Tus-Resumable": "1.0.0"})
        assert head.status_code == 200 and head.headers["photo-id"] == photo_id
        filed = await http.post(
            "/api/v1/reports", json=report_body([photo_id]), headers=me["headers"]
        )
    assert filed.status_code == 201, filed.text
    async with app.state.sessionmaker() as s:
        photo = await s.get(ReportPhoto, uuid.UUID(photo_id))
        assert photo is not None and photo.report_id is not None
        assert photo.sha256 == hashlib.sha256(big_photo).digest()


async def test_a_cut_upload_resumes_with_tuspy_without_resending(
    client, caplog, app, live_api, big_photo
):
    me = await sign_in_resident(client, caplog)
    upstream_port = int(live_api.rsplit(":", 1)[1])
    proxy = CuttingProxy(upstream_port, cut_after=int(len(big_photo) * 0.6))
    await proxy.start(range(PORTS.start + 50, PORTS.stop))
    try:
        # create directly, then send the whole photo in one PATCH through the proxy
        creator = _uploader(f"{live_api}/api/v1/uploads/", me["headers"], big_photo, retries=0)
        location = await asyncio.to_thread(creator.create_url)
        upload_id = uuid.UUID(location.rsplit("/", 1)[1])
        proxied = location.replace(live_api, f"http://127.0.0.1:{proxy.port}")
        uploader = await asyncio.to_thread(  # it asks for the offset (HEAD) at once
            _uploader,
            f"http://127.0.0.1:{proxy.port}/api/v1/uploads/",
            me["headers"],
            big_photo,
            url=proxied,
            chunk_size=len(big_photo),  # everything in one PATCH, as the protocol advises
            retries=0,
        )
        with pytest.raises(Exception):  # noqa: B017 - tuspy's error for a dropped connection
            await asyncio.to_thread(uploader.upload)
        assert proxy.cut_done and 0 < proxy.cut_body_bytes < len(big_photo)
        row = await _settled(app, upload_id)
        kept = row.offset
        # every byte that reached the server was kept (at most a piece in flight lost)
        assert proxy.cut_body_bytes - CHUNK < kept <= proxy.cut_body_bytes
        # tuspy resumes from the server's offset (HEAD), through the proxy (now passing)
        resumed = await asyncio.to_thread(
            _uploader,
            f"http://127.0.0.1:{proxy.port}/api/v1/uploads/",
            me["headers"],
            big_photo,
            url=proxied,
            chunk_size=CHUNK,
            retries=0,
        )
        assert resumed.offset == kept
        await asyncio.to_thread(resumed.upload)
        resent = proxy.body_bytes_total - len(big_photo)  # sent twice
        assert 0 <= resent < CHUNK, resent
        assert resent == proxy.cut_body_bytes - kept
    finally:
        await proxy.close()
    photo_id = resumed.request.response_headers["photo-id"]
    async with app.state.sessionmaker() as s:
        photo = await s.get(ReportPhoto, uuid.UUID(photo_id))
        assert photo is not None and photo.sha256 == hashlib.sha256(big_photo).digest()
        state = await s.scalar(select(Upload.state).where(Upload.id == upload_id))
        assert state == "completed"
