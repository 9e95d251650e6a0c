"""The push sender's HTTP/1.1 pool against real loopback servers that misbehave on cue."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core.http1 import Http1Pool

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Given one request (head and body), write an answer; False closes the connection."""


class Server:
    """A loopback HTTP/1.1 server: reads each request (Content-Length bodies) and lets the
    test answer it. Counts connections and requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.url = ""

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Server:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=ssl_context, backlog=512
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if ssl_context else 'http'}://localhost:{port}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.answer(request, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        self._server.close()
        await self._server.wait_closed()


async def ok(request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    return True


def ok_after(seconds: float) -> Answer:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(seconds)
        writer.write(OK)
        return True

    return answer


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(answer: Answer = ok, ssl_context: ssl.SSLContext | None = None) -> Server:
        server = await Server(answer).start(ssl_context)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def test_requests_share_kept_alive_connections_up_to_the_pool_size(serve) -> None:
    server = await serve(ok_after(0.005))
    pool = Http1Pool(server.url, size=4)
    try:
        responses = await asyncio.gather(
            *(pool.request("POST", "/send", body=b'{"n":%d}' % i) for i in range(40))
        )
        again = await pool.request("POST", "/send", body=b"{}")
    finally:
        await pool.aclose()

    assert [r.status for r in responses] == [200] * 40 and again.status == 200
    assert responses[0].body == b'{"ok":true}'
    assert ("Content-Type", "application/json") in responses[0].headers
    assert server.connections == 4  # 41 requests, 4 connections, none opened twice
    host = server.url.removeprefix("http://")
    assert sorted(server.requests[:40]) == sorted(
        b"POST /send HTTP/1.1\r\nhost: %s\r\nuser-agent: city-push\r\n"
        b'content-length: %d\r\n\r\n{"n":%d}' % (host.encode(), len(str(i)) + 6, i)
        for i in range(40)
    )


async def test_a_chunked_answer_is_read_whole(serve) -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5\r\n{"a":\r\n4\r\ntrue\r\n1\r\n}\r\n0\r\n\r\n'
        )
        return True

    server = await serve(chunked)
    pool = Http1Pool(server.url, size=2)
    try:
        first = await pool.request("GET", "/")
        second = await pool.request("GET", "/")
    finally:
        await pool.aclose()

    assert first.body == second.body == b'{"a":true}'
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_not_used_again(serve) -> None:
    server = await serve()
    pool = Http1Pool(server.url, size=2)
    try:
        await pool.request("GET", "/")
        for writer in server.writers:  # the server's idle timeout
            writer.close()
        await asyncio.sleep(0.05)
        response = await pool.request("GET", "/")
    finally:
        await pool.aclose()

    assert response.status == 200
    assert server.connections == 2


async def test_connection_close_and_idle_expiry_mean_a_new_connection(serve) -> None:
    async def closing(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        return False

    closer = await serve(closing)
    pool = Http1Pool(closer.url, size=2)
    try:
        assert [(await pool.request("GET", "/")).body for _ in range(3)] == [b"{}"] * 3
    finally:
        await pool.aclose()
    assert closer.connections == 3

    server = await serve()
    pool = Http1Pool(server.url, size=2, idle_seconds=0.05)
    try:
        await pool.request("GET", "/")
        await pool.request("GET", "/")  # at once: reused
        await asyncio.sleep(0.1)
        await pool.request("GET", "/")  # idle too long: dropped before the server drops it
    finally:
        await pool.aclose()
    assert server.connections == 2


async def test_no_answer_in_time_is_a_read_timeout_and_the_pool_goes_on(serve) -> None:
    async def first_hangs(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/hang" in request:
            await asyncio.sleep(1)
        writer.write(OK)
        return True

    server = await serve(first_hangs)
    pool = Http1Pool(server.url, size=1)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await pool.request("GET", "/hang", read_timeout=0.05)
        response = await pool.request("GET", "/fine")
    finally:
        await pool.aclose()

    assert response.status == 200
    assert server.connections == 2  # the late answer's connection was closed, not reused


async def test_a_server_hanging_up_or_talking_nonsense_is_a_protocol_error(serve) -> None:
    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    async def nonsense(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SPDY/3 what\r\n\r\n")
        return True

    for answer, words in ((hang_up, "closed the connection"), (nonsense, "malformed")):
        server = await serve(answer)
        pool = Http1Pool(server.url, size=1)
        try:
            with pytest.raises(httpx.RemoteProtocolError, match=words):
                await pool.request("POST", "/", body=b"{}")
            assert pool.connections == 0
        finally:
            await pool.aclose()


async def test_nothing_listening_is_a_connect_error() -> None:
    pool = Http1Pool("http://127.0.0.1:9", size=1)
    with pytest.raises(httpx.ConnectError):
        await pool.request("GET", "/")
    await pool.aclose()


async def test_a_cancelled_caller_frees_its_slot_and_drops_its_connection(serve) -> None:
    server = await serve(ok_after(0.2))
    pool = Http1Pool(server.url, size=1)
    try:
        task = asyncio.create_task(pool.request("GET", "/slow"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        response = await pool.request("GET", "/next")  # the one slot is free again
    finally:
        await pool.aclose()

    assert response.body == b'{"ok":true}'
    assert server.connections == 2


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_verifies_the_server_and_speaks_http_1_1_over_tls(serve, tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_context.set_alpn_protocols(["http/1.1"])
    server = await serve(ssl_context=server_context)

    untrusting = Http1Pool(server.url, size=1)  # certifi's roots: our certificate is unknown
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await untrusting.request("GET", "/")
    await untrusting.aclose()

    trusting = Http1Pool(server.url, size=1, ssl_context=ssl.create_default_context(cafile=cert))
    try:
        responses = [await trusting.request("POST", "/send", body=b"{}") for _ in range(3)]
    finally:
        await trusting.aclose()

    assert [r.body for r in responses] == [b'{"ok":true}'] * 3
    assert server.connections == 1  # one kept-alive connection (the refused one never got past TLS)


class ConnectProxy:
    """An HTTP proxy on loopback that only tunnels (CONNECT), as egress proxies do; it
    records what it was asked and can refuse with 407."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.asked: list[bytes] = []
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.asked.append(head)
        method, authority, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if self.refuse or method != b"CONNECT":
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        host, port = authority.decode().rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def test_https_through_a_connect_proxy_and_a_refusing_one(serve, tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = await serve(ssl_context=server_context)
    port = server.url.rsplit(":", 1)[1]
    proxy, refusing = ConnectProxy(), ConnectProxy(refuse=True)
    proxy_url, refusing_url = await proxy.start(), await refusing.start()
    trust = ssl.create_default_context(cafile=cert)
    try:
        pool = Http1Pool(
            server.url,
            size=2,
            ssl_context=trust,
            proxy=proxy_url.replace("http://", "http://push%40city:s%3Acret@"),
        )
        try:
            responses = [await pool.request("POST", "/send", body=b"{}") for _ in range(3)]
        finally:
            await pool.aclose()
        blocked = Http1Pool(server.url, size=1, ssl_context=trust, proxy=refusing_url)
        with pytest.raises(httpx.ConnectError, match="407"):
            await blocked.request("GET", "/")
        await blocked.aclose()
    finally:
        await proxy.stop()
        await refusing.stop()

    assert [r.body for r in responses] == [b'{"ok":true}'] * 3
    [asked] = proxy.asked  # one tunnel, kept alive for all three requests
    assert asked.startswith(f"CONNECT localhost:{port} HTTP/1.1\r\n".encode())
    # the credentials in the proxy's URL, percent-decoded, as Basic
    assert b"proxy-authorization: Basic cHVzaEBjaXR5OnM6Y3JldA==\r\n" in asked
    assert server.connections == 1  # the origin saw one TLS connection, through the tunnel
    assert b"POST /send HTTP/1.1" in server.requests[0]


def test_the_proxy_comes_from_the_environment_for_https_only(monkeypatch) -> None:
    from app.core.push import https_proxy_for

    fcm = "https://fcm.googleapis.com/v1/projects/{0}/messages:send"
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert https_proxy_for(fcm) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert https_proxy_for(fcm) == "http://proxy.internal:3128"
    assert https_proxy_for("http://127.0.0.1:9099/v1/projects/{0}/messages:send") is None
    monkeypatch.setenv("NO_PROXY", "localhost,.googleapis.com")
    assert https_proxy_for(fcm) is None
    with pytest.raises(ValueError, match="CONNECT"):
        Http1Pool("http://fcm.test", size=1, proxy="http://proxy.internal:3128")


def test_only_http_urls_make_a_pool() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Http1Pool("ftp://example.com", size=1)
    assert Http1Pool("https://fcm.googleapis.com/v1/x", size=1).origin == (
        "https://fcm.googleapis.com"
    )
    assert Http1Pool("http://127.0.0.1:8080/", size=1).origin == "http://127.0.0.1:8080"


async def test_https_through_an_https_proxy_tls_inside_tls(serve, tmp_path) -> None:
    from tests.standins.fcm import make_tls

    origin_dir, proxy_dir = tmp_path / "origin", tmp_path / "proxy"
    origin_dir.mkdir()
    proxy_dir.mkdir()
    origin_ca, origin_context = make_tls(origin_dir)  # certificates for 127.0.0.1 and others
    proxy_ca, proxy_context = make_tls(proxy_dir)
    server = await serve(ssl_context=origin_context)
    port = server.url.rsplit(":", 1)[1]
    bundle = tmp_path / "bundle.pem"  # both CAs, as FCM_CA_FILE would hold them
    bundle.write_bytes(origin_ca.read_bytes() + proxy_ca.read_bytes())
    proxy = ConnectProxy()
    proxy._server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0, ssl=proxy_context)
    proxy_url = f"https://127.0.0.1:{proxy._server.sockets[0].getsockname()[1]}"
    pool = Http1Pool(
        f"https://localhost:{port}/",
        size=1,
        ssl_context=ssl.create_default_context(cafile=bundle),
        proxy=proxy_url,
    )
    try:
        responses = [await pool.request("POST", "/send", body=b"{}") for _ in range(2)]
    finally:
        await pool.aclose()
        await proxy.stop()

    assert [r.body for r in responses] == [b'{"ok":true}'] * 2
    [asked] = proxy.asked
    assert asked.startswith(f"CONNECT localhost:{port} HTTP/1.1\r\n".encode())
    assert server.connections == 1


def test_a_socks_proxy_makes_no_pool() -> None:
    with pytest.raises(ValueError, match="socks5://proxy.internal"):
        Http1Pool("https://fcm.test/", size=1, proxy="socks5://u:secret@proxy.internal:1080")
