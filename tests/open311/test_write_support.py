"""What the write-side tests share: keys issued through the service, a loopback HTTP
server that serves media (port 8721, this helper's range), and the real arq worker in
burst mode with private addresses allowed for media (the loopback server is private)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest
from arq.worker import Worker

from app import policy
from app.core import db
from app.open311 import keys
from tests.complaints.imagegen import jpeg_phone_photo
from workers import main as worker_main

MEDIA_PORT = 8721
HOAN_KIEM = {"lat": "21.0288", "long": "105.8525"}


async def issue_key(app, name: str = "Ứng dụng thử") -> keys.KeyIssued:
    async with db.transaction(app.state.sessionmaker, None) as session:
        actor = policy.system_actor(datetime.now(UTC))
        return await keys.issue_key(
            session, actor, keys.KeyIn(name=name, contact="dev@example.test")
        )


def filing_form(api_key: str, **fields: str) -> dict[str, str]:
    form = {
        "api_key": api_key,
        "service_code": "roads",
        "description": "Ổ gà lớn giữa đường, xe máy dễ ngã khi trời mưa.",
        **HOAN_KIEM,
    }
    form.update(fields)
    return {k: v for k, v in form.items() if v is not None}


def media_worker(ctx: dict | None = None) -> Worker:
    """The project's worker (its functions, crons and start-up), fetching media from
    private addresses as only tests may."""
    cls = worker_main.WorkerSettings

    async def startup(ctx: dict) -> None:
        await cls.on_startup(ctx)
        ctx["settings"] = msgspec.structs.replace(ctx["settings"], open311_media_allow_private=True)

    return Worker(
        functions=cls.functions,
        cron_jobs=[dataclasses.replace(c, next_run=None) for c in cls.cron_jobs],
        on_startup=startup,
        on_shutdown=cls.on_shutdown,
        redis_settings=cls.redis_settings,
        queue_name=cls.queue_name,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        ctx=ctx or {},
    )


async def run_worker(worker: Worker | None = None) -> None:
    worker = worker or media_worker()
    try:
        await worker.main()
    finally:
        await worker.close()


PHOTO = jpeg_phone_photo(size=(900, 600))


class MediaServer:
    """Routes: /photo.jpg (a phone photo with EXIF), /redirect (→ /photo.jpg),
    /loop/N (redirects N more times), /to-file (a redirect to file://), /text (not an
    image), /big (declares more than the cap), /error (500), /gone (404). Records the
    Host header of each request."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hosts.append(self.headers.get("Host", ""))
                server.paths.append(self.path)
                if self.path == "/photo.jpg":
                    self._send(200, "image/jpeg", PHOTO)
                elif self.path == "/redirect":
                    self._redirect("/photo.jpg")
                elif self.path.startswith("/loop/"):
                    left = int(self.path.rsplit("/", 1)[1])
                    self._redirect(f"/loop/{left - 1}" if left > 0 else "/photo.jpg")
                elif self.path == "/to-file":
                    self._redirect("file:///etc/passwd")
                elif self.path == "/text":
                    self._send(200, "text/html", b"<html>not a picture</html>")
                elif self.path == "/big":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(10**9))
                    self.end_headers()
                elif self.path == "/error":
                    self._send(500, "text/plain", b"down")
                else:
                    self._send(404, "text/plain", b"gone")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", MEDIA_PORT), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{MEDIA_PORT}{path}"


_SERVER: list[MediaServer] = []


@pytest.fixture(scope="session")
def media_server() -> MediaServer:
    """One server for the run, whichever modules import this fixture (a daemon thread,
    gone with the process)."""
    if not _SERVER:
        server = MediaServer()
        server.thread.start()
        _SERVER.append(server)
    return _SERVER[0]
