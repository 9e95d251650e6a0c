"""An S3-compatible server on loopback: moto's server mode, which the real ``minio``
client talks to over HTTP (signed requests, presigned URLs and all).

Test modules use the session fixture with::

    from tests.standins.s3 import s3_endpoint  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto.server import ThreadedMotoServer

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


@contextmanager
def run_s3_server() -> Iterator[str]:
    """Start moto's S3 server on 127.0.0.1 and a free port; yield ``host:port``."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # port 0: the OS picks a free port, no race with a probe socket
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with run_s3_server() as endpoint:
        yield endpoint
