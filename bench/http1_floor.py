"""A small HTTP/1.1 keep-alive client for one origin: what the push sender sends through.

Why not httpx (which firebase-admin brings) or aiohttp
    Measured on this project's 2-core VM (docs/benchmarks.md, "Push"), per request, CPU
    of the client alone against a loopback server: httpx ≈ 130 µs before touching the
    network (its client layer) and ≈ 1,480 µs over HTTP/1.1 with 100 connections (≈ 650 µs
    over HTTP/2, mostly h2 and httpcore); aiohttp ≈ 90-130 µs; this pool ≈ 25 µs. One
    worker process sending 5,000 pushes/s has 200 µs per push for everything (the SDK's
    message encoding alone is ≈ 35 µs), so only the last fits.

What it is
    ``size`` connections at most, each carrying one request at a time and kept alive for
    the next (idle ones are dropped after ``idle_seconds``, before a server's own idle
    timeout would close them under a request). Responses are parsed by ``httptools``
    (llhttp, the parser of Node.js; Content-Length, chunked, keep-alive rules). TLS for
    ``https://`` with the system's verification (certifi's roots), ALPN ``http/1.1``.
    ``proxy``: an ``http://`` proxy for an ``https://`` origin, through a CONNECT tunnel
    (TLS with the origin inside it). No redirects, cookies, compression or retries: the
    caller (the push sender) retries at its own layer, and FCM needs none of the rest.
    Responses must carry a Content-Length or be chunked (FCM's do); no HEAD requests.

Errors are httpx's exception types, which firebase-admin maps to its error codes
(``ConnectError`` → UNAVAILABLE, ``TimeoutException`` → DEADLINE_EXCEEDED; the push
sender counts the other transport errors as unavailable too). A request on a connection
the server closed is not sent again here, since a POST may have been acted on.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import httptools
import httpx


class Http1Response:
    """Status, headers (as received, names and values decoded as Latin-1) and body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Http1Pool:
    """Keep-alive HTTP/1.1 connections to the origin of ``base_url``; at most ``size``
    requests at once (the others wait for a connection, in order)."""

    def __init__(
        self,
        base_url: str,
        *,
        size: int,
        timeout: float = 30.0,
        idle_seconds: float = 50.0,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "city-push",
        proxy: str | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme = url.scheme
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        default_port = self.port == (443 if url.scheme == "https" else 80)
        authority = self.host if default_port else f"{self.host}:{self.port}"
        if ":" in self.host:  # an IPv6 literal
            authority = f"[{self.host}]" if default_port else f"[{self.host}]:{self.port}"
        self.origin = f"{self.scheme}://{authority}"
        self._host_header = f"host: {authority}\r\nuser-agent: {user_agent}\r\n".encode("latin-1")
        self.size = size
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context(cafile=certifi.where())
            self._ssl.set_alpn_protocols(["http/1.1"])
        self._proxy: tuple[str, int] | None = None
        self._proxy_auth: str | None = None  # Basic credentials from the proxy's URL
        if proxy:
            proxy_url = urlsplit(proxy)
            if url.scheme != "https" or proxy_url.scheme != "http" or not proxy_url.hostname:
                raise ValueError(
                    "a proxy is for https:// origins, through an http:// proxy's CONNECT: "
                    f"{proxy!r} for {base_url!r}"
                )
            self._proxy = (proxy_url.hostname, proxy_url.port or 80)
            if proxy_url.username is not None:
                credentials = f"{unquote(proxy_url.username)}:{unquote(proxy_url.password or '')}"
                self._proxy_auth = base64.b64encode(credentials.encode()).decode("ascii")
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Connection] = []  # most recently used last
        self._all: set[_Connection] = set()
        self._closed = False

    @property
    def connections(self) -> int:
        """Connections open now (busy or idle)."""
        return len(self._all)

    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: bytes = b"",
        body: bytes = b"",
        read_timeout: float | None = None,
    ) -> Http1Response:
        """Send one request and read its response. ``target`` is the path and query;
        ``headers`` are ready-made ``name: value\\r\\n`` lines (Host, User-Agent and
        Content-Length are added here). ``read_timeout`` (default: the pool's) bounds the
        wait for the answer once the request is written; connecting has its own bound,
        the pool's ``timeout``; waiting for a free connection has none."""
        if self._closed:
            raise RuntimeError("Http1Pool is closed")
        head = b"%s %s HTTP/1.1\r\n%scontent-length: %d\r\n%s\r\n" % (
            method.encode("ascii"),
            target.encode("ascii"),
            self._host_header,
            len(body),
            headers,
        )
        read_timeout = self.timeout if read_timeout is None else read_timeout
        async with self._slots:
            connection = self._take_idle() or await self._connect()
            try:
                response = await connection.exchange(head + body if body else head, read_timeout)
            except BaseException:  # an error, a timeout or a cancelled caller: the
                connection.close()  # answer, if it comes, would belong to no one
                raise
            if connection.reusable:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable and now - connection.idle_since < self.idle_seconds:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        try:
            connection = await asyncio.wait_for(self._open(), self.timeout)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(f"connecting to {self.origin} timed out") from error
        except OSError as error:  # refused, unreachable, TLS failure (ssl.SSLError)
            raise httpx.ConnectError(f"cannot connect to {self.origin}: {error}") from error
        self._all.add(connection)
        return connection

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._proxy is None:
            _, connection = await loop.create_connection(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self._ssl else None,
            )
            return connection
        # through an HTTP proxy: CONNECT host:port, then TLS with the origin in the tunnel
        transport, connection = await loop.create_connection(
            lambda: _Connection(self), *self._proxy
        )
        try:
            await connection.tunnel(self.host, self.port, self._proxy_auth)
            assert self._ssl is not None
            connection.tls(
                await loop.start_tls(transport, connection, self._ssl, server_hostname=self.host)
            )
        except BaseException:
            transport.close()
            raise
        return connection

    def _forget(self, connection: _Connection) -> None:
        self._all.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._all):
            connection.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks


class _Connection(asyncio.Protocol):
    """One connection; one request at a time."""

    def __init__(self, pool: Http1Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Http1Response] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._lost = False
        self._keep_alive = True
        self._tunnel: asyncio.Future[None] | None = None  # waiting for a proxy's answer
        self._tunnel_head = b""
        self.idle_since = 0.0

    @property
    def reusable(self) -> bool:
        return (
            self._keep_alive
            and not self._lost
            and self._transport is not None
            and not self._transport.is_closing()
        )

    async def exchange(self, request: bytes, read_timeout: float) -> Http1Response:
        assert self._transport is not None and self._waiter is None
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        # a timer on the future, cheaper than asyncio.timeout()'s task cancellation
        timer = loop.call_later(read_timeout, self._time_out, waiter)
        self._transport.write(request)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def tunnel(self, host: str, port: int, basic_auth: str | None = None) -> None:
        """Ask the proxy this connection goes to for a tunnel to ``host:port``."""
        assert self._transport is not None
        self._tunnel = asyncio.get_running_loop().create_future()
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        auth = f"proxy-authorization: Basic {basic_auth}\r\n" if basic_auth else ""
        self._transport.write(
            f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n{auth}\r\n".encode()
        )
        try:
            await self._tunnel
        finally:
            self._tunnel = None

    def tls(self, transport: Any) -> None:
        """Go on over the TLS transport ``loop.start_tls`` made inside the tunnel."""
        self._transport = transport

    def close(self) -> None:
        self._keep_alive = False
        self._pool._forget(self)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel_answer(data)
            return
        if self._waiter is None:  # bytes nobody asked for: the connection is unusable
            self._fail(httpx.RemoteProtocolError("unexpected data from the server"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as error:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._pool._forget(self)
        if self._tunnel is not None and not self._tunnel.done():
            self._tunnel.set_exception(ConnectionError("the proxy closed the connection"))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            message = "the server closed the connection before answering"
            waiter.set_exception(httpx.RemoteProtocolError(message if exc is None else str(exc)))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        response = Http1Response(
            self._parser.get_status_code(), self._headers, b"".join(self._body)
        )
        self._keep_alive = self._parser.should_keep_alive()
        self._headers = []
        self._body = []
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
            self._waiter = None  # a second response on the same request is an error

    def _tunnel_answer(self, data: bytes) -> None:
        """The proxy's answer to CONNECT: a status line and headers, no body; 2xx opens
        the tunnel (nothing may follow before our TLS hello)."""
        assert self._tunnel is not None
        if self._tunnel.done():
            return  # answered; the caller closes or goes on with TLS
        self._tunnel_head += data
        if b"\r\n\r\n" not in self._tunnel_head:
            if len(self._tunnel_head) > 16_384:
                self._tunnel.set_exception(ConnectionError("the proxy's answer is too long"))
            return
        head, _, rest = self._tunnel_head.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].startswith("2"):
            self._tunnel.set_exception(ConnectionError(f"the proxy refused: {status_line}"))
        elif rest:
            self._tunnel.set_exception(ConnectionError("the proxy sent bytes before TLS"))
        else:
            self._tunnel.set_result(None)

    # failures

    def _time_out(self, waiter: asyncio.Future[Http1Response]) -> None:
        if not waiter.done():
            waiter.set_exception(httpx.ReadTimeout("no answer in time"))
        self.close()  # a late answer would belong to no one

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()
