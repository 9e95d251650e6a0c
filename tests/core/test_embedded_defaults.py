"""The app picks its storage and SMS backends from settings: local disk and the log by
default, S3 (MinIO) and an HTTP SMS gateway when configured. The configured paths run
against servers on loopback that speak the real protocols."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import msgspec
import pytest

from app.core.storage import LocalDiskStorage, S3Storage
from tests.accounts.factories import new_phone
from tests.standins.s3 import ACCESS_KEY, REGION, SECRET_KEY, s3_endpoint  # noqa: F401


async def test_default_app_uses_local_disk(app):
    assert isinstance(app.state.storage, LocalDiskStorage)


async def test_app_with_s3_endpoint_stores_in_s3_and_is_ready(settings, client, s3_endpoint):  # noqa: F811
    from app.main import create_app
    from tests.conftest import running

    configured = msgspec.structs.replace(
        settings,
        s3_endpoint=s3_endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        s3_region=REGION,
        s3_bucket="city-app-ready-test",
    )
    application = create_app(configured)
    async with running(application) as s3_client:
        assert isinstance(application.state.storage, S3Storage)
        ready = await s3_client.get("/health/ready")
        assert ready.status_code == 200
        assert {c["name"]: c["ok"] for c in ready.json()["checks"]}["storage"] is True
        await application.state.storage.put("photos/t/x.jpg", b"\xff\xd8jpeg", "image/jpeg")
        url = await application.state.storage.signed_url("photos/t/x.jpg")
        async with httpx.AsyncClient() as http:
            fetched = await http.get(url)
        assert fetched.content == b"\xff\xd8jpeg"


class _Gateway(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Gateway.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def sms_gateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Gateway.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/sms", _Gateway.received
    server.shutdown()


async def test_http_sms_backend_posts_the_code_to_the_gateway(
    settings, client, sms_gateway, caplog
):
    from app.main import create_app
    from tests.conftest import running

    url, received = sms_gateway
    configured = msgspec.structs.replace(settings, sms_backend="http", sms_http_url=url)
    caplog.set_level(logging.INFO, logger="city.sms")
    application = create_app(configured)
    phone = new_phone()
    async with running(application) as http_client:
        r = await http_client.post("/api/v1/auth/otp", json={"phone": phone})
        assert r.status_code == 202
    assert len(received) == 1
    assert received[0]["to"] == "+84" + phone[1:]
    code = received[0]["text"].split("la ")[1][:6]
    assert code.isdigit()
    # nothing about this message reached the log backend
    assert not [rec for rec in caplog.records if rec.name == "city.sms"]
