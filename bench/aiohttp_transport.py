"""The push sender on aiohttp instead of the hand-written pool (``app/core/http1.py``):
kept for ``bench/push_fanout.py --transport aiohttp|both``, which measured both on TLS
with a 30 ms round trip (docs/benchmarks.md, "Push transport: aiohttp vs the
hand-written pool"). The pool won by more than 1.5x there, so the app does not use this.

It does what ``app.core.push._FcmHttpClient`` does (same headers, auth, 401 refresh,
error types, response objects, bounded bodies, one resend on a stale keep-alive) so the
comparison is like for like. ``install()`` makes new senders use it.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import firebase_admin
import httpx
import msgspec

import app.core.push
from app.core.push import IN_FLIGHT, MAX_RESPONSE_BYTES, _FcmResponse


def install() -> None:
    app.core.push.HTTP_CLIENT = AiohttpFcmClient


class AiohttpFcmClient:
    """What the SDK's ``HttpxAsyncClient`` calls in place of its ``httpx.AsyncClient``:
    ``request(method, url, headers=, json=, timeout=)``, over an ``aiohttp`` session with
    at most ``IN_FLIGHT`` kept-alive connections to FCM's origin.

    It does what the SDK's httpx client and its auth flow did: the SDK's metrics headers,
    JSON encoding, the OAuth access token on every request, and on a 401 a new token and
    the request sent again, twice at most. Success answers a small response object with
    ``raise_for_status()`` and ``json()``; anything else answers a real ``httpx.Response``,
    so the SDK maps FCM's error JSON, status and ``Retry-After`` exactly as before, and
    transport failures are raised as httpx's exception types, which it maps too.

    - TLS with :func:`fcm_ssl_context`; the proxy is :func:`fcm_proxy`'s, resolved once
      (aiohttp's ``trust_env`` would look it up in a thread on every request, and would
      silently go direct for an ``https://`` proxy).
    - Answers longer than ``MAX_RESPONSE_BYTES`` are refused.
    - A kept-alive connection the server closed under a request before any answer came
      (a stale keep-alive) is not a failure: the request goes once more on a new
      connection. FCM saw no answer go out, so at worst the device gets it twice.
    - Waiting for a free connection is not bounded (the SDK starts a whole batch at once);
      connecting and each read are, by ``timeout``."""

    MAX_REFRESHES = 2  # as the SDK's GoogleAuthCredentialFlow

    def __init__(
        self,
        send_url: str,
        *,
        credential: Any,
        refresh: Any,
        default_headers: dict[str, str],
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(send_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._ssl = ssl_context if parts.scheme == "https" else None
        self._proxy = proxy
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None  # made on the running loop
        self._credential = credential
        self._refresh = refresh
        self._default_headers = {
            "accept": "application/json",
            "accept-encoding": "identity",  # bodies are read as they come
            "user-agent": f"city-push firebase-admin/{firebase_admin.__version__}",
            **{
                name.lower(): value
                for name, value in default_headers.items()
                if name.lower()
                not in ("host", "user-agent", "content-length", "authorization", "accept-encoding")
            },
        }
        self._auth_token: str | None = None
        self._auth_header = ""

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=IN_FLIGHT,
            ssl=self._ssl if self._ssl is not None else True,
            keepalive_timeout=50,  # FCM keeps idle connections longer than this
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self._timeout, sock_read=self._timeout
            ),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpx's signature, which the SDK calls)
    ) -> _FcmResponse | httpx.Response:
        if not url.startswith(self.origin + "/"):
            raise httpx.UnsupportedProtocol(f"this client sends to {self.origin} only")
        merged = {**self._default_headers, **{k.lower(): v for k, v in (headers or {}).items()}}
        merged["content-type"] = "application/json"
        body = msgspec.json.encode(json)
        session = self._session or self._open()
        request_timeout = (
            None
            if timeout is None or timeout == self._timeout
            else aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        )
        refreshes = 0
        while True:
            token = self._credential.token
            merged["authorization"] = self._authorization(token)
            status, answer_headers, content = await self._exchange(
                session, method.upper(), url, merged, body, request_timeout
            )
            if status != 401 or refreshes >= self.MAX_REFRESHES:
                break
            await self._refresh(token)
            refreshes += 1
        if 200 <= status < 300:
            return _FcmResponse(status, answer_headers, content)
        return httpx.Response(
            status,
            headers=answer_headers,
            content=content,
            request=httpx.Request(method.upper(), url),
        )

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        limits: aiohttp.ClientTimeout | None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        options: dict[str, Any] = {"proxy": self._proxy} if self._proxy else {}
        if limits is not None:
            options["timeout"] = limits
        for attempt in (1, 2):
            try:
                async with session.request(
                    method, url, data=body, headers=headers, **options
                ) as response:
                    content = await _read_bounded(response, MAX_RESPONSE_BYTES)
                    return response.status, list(response.headers.items()), content
            except aiohttp.ClientConnectorError as error:  # refused, DNS, TLS, the proxy
                raise httpx.ConnectError(f"cannot connect to {self.origin}: {error}") from error
            except aiohttp.ClientHttpProxyError as error:  # the proxy refused the tunnel
                raise httpx.ConnectError(f"the proxy refused: {error}") from error
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as error:
                if attempt == 1:  # closed under the request before any answer: a stale
                    continue  # keep-alive; once more on a new connection
                raise httpx.RemoteProtocolError(
                    f"{self.origin} closed the connection before answering: {error}"
                ) from error
            except aiohttp.ConnectionTimeoutError as error:
                raise httpx.ConnectTimeout(f"connecting to {self.origin} timed out") from error
            except TimeoutError as error:
                raise httpx.ReadTimeout(f"no answer from {self.origin} in time") from error
            except aiohttp.ClientError as error:  # malformed answers, payload errors
                raise httpx.RemoteProtocolError(f"{self.origin}: {error!r}") from error
        raise AssertionError("unreachable")

    def _authorization(self, token: str | None) -> str:
        """The credential's ``Authorization`` value, worked out once per token."""
        if token != self._auth_token or not self._auth_header:
            auth: dict[str, str] = {}
            self._credential.apply(auth)
            self._auth_header = auth["authorization"]
            self._auth_token = token
        return self._auth_header

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refused past ``limit`` bytes (by Content-Length before reading)."""
    length = response.content_length
    if length is not None:
        if length > limit:
            raise httpx.RemoteProtocolError(f"an answer of {length} bytes (limit {limit})")
        return await response.read()
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise httpx.RemoteProtocolError(f"an answer over {limit} bytes")
    return bytes(body)
