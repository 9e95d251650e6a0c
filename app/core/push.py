"""Sending push notifications (thông báo đẩy): the mechanism, knowing nothing of why.

``PushSender.send`` takes up to 500 :class:`PushMessage` and answers one
:class:`PushResult` per message, in order. Two backends:

- :class:`LogPushSender`, the embedded default (no ``FIREBASE_CREDENTIALS_FILE``): logs
  each push (the token's last six characters, the title and the *names* of the data keys;
  never the body or data values) and answers success.
- :class:`FcmPushSender`: FCM HTTP v1 through the real ``firebase-admin`` SDK.

Pointing the SDK elsewhere
    ``firebase-admin`` has no emulator switch for messaging. :func:`_make_messaging_service`
    and :func:`load_credential` are the one place that redirects it: the send URL is the
    class attribute ``messaging._MessagingService.FCM_URL`` (a template formatted with the
    project id, read once when an app's messaging service is made), so it is set from
    ``FCM_URL`` only while *this* app's service is made and then put back; the OAuth token
    comes from the service account's ``token_uri``, replaced by ``FCM_TOKEN_URI`` in the
    loaded JSON. (The signed token request's audience stays Google's token endpoint
    whatever ``token_uri`` says.)

The send path (issue 5; measured in docs/benchmarks.md, "Push")
    ``messaging.send_each_async`` (≤ 500 messages per call) builds and encodes each
    message, sends them all at once through the SDK's ``HttpxAsyncClient`` and maps every
    answer, FCM's error JSON and ``Retry-After`` included, to a ``SendResponse``. Under that
    wrapper, in place of the ``httpx.AsyncClient`` it made, sits :class:`_FcmHttpClient`:
    an HTTP/1.1 keep-alive pool (:mod:`app.core.http1`) of ``IN_FLIGHT`` connections, at
    most that many requests on the wire per sender whoever calls. httpx cost a worker
    ≈ 650 µs of CPU per push over HTTP/2 and ≈ 1,500 µs over HTTP/1.1; the pool costs
    ≈ 25 µs, and a worker then spends ≈ 150 µs per push in all. The wrapper, the encoding
    and the error mapping stay the SDK's; the client does what the SDK's httpx client and
    auth flow did (headers, JSON, the access token, a new token and a resend on 401).

Trust, proxies, misconfiguration (issue 18)
    TLS trusts ``FCM_CA_FILE`` when set, else the system's store (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``) plus certifi's roots (:func:`fcm_ssl_context`); the token request
    trusts the same. ``HTTPS_PROXY`` may be ``http://`` or ``https://``; any other scheme,
    a bad ``FCM_URL`` or an unreadable ``FCM_CA_FILE`` is a :class:`PushConfigError`,
    which :func:`make_push_sender` logs (``push_sender_misconfigured``) and answers with
    an :class:`UnavailablePushSender`, so the API and the workers keep running. The pool
    was measured against aiohttp on TLS with a 30 ms round trip and kept (docs/benchmarks.md);
    firebase-admin is pinned to the minor release whose internals this module uses
    (:func:`sdk_internals_problems`, checked by a test).

Which layer retries
    - One HTTP attempt per message; the caller's job layer retries with its own backoff,
      using ``PushResult.retry_after`` and ``PushResult.retryable``. (The SDK's own httpx
      transport would retry 500 and 503 four times in ≈ 7 s ignoring ``Retry-After``.)
    - A 401 gets a new OAuth token and the message is sent again, twice at most, as the
      SDK's auth flow does. So an expired or revoked access token heals itself, and FCM's
      ``THIRD_PARTY_AUTH_ERROR`` (a 401 about *our* APNs/web-push credentials) costs three
      sends before it is reported; concurrent 401s share one token request.
    - google-auth retries the token endpoint itself (500, 503, 504, 408, 429 and OAuth
      ``temporarily_unavailable``-style errors; 3 attempts, exponential backoff from 1 s).

google-auth fetches tokens with blocking ``requests`` calls; this module always calls it
in a worker thread, so the event loop never waits on the token endpoint.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import inspect
import json
import logging
import os
import ssl
import threading
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import certifi
import firebase_admin
import google.auth.exceptions
import google.auth.transport.requests
import httpx
import msgspec
from firebase_admin import _http_client, credentials, exceptions, messaging

from app.core.http1 import Http1Pool
from app.settings import Settings

log = logging.getLogger("city.push")

MAX_BATCH = 500  # FCM's and send_each_async's limit per call
IN_FLIGHT = 100
"""Requests on the wire at once per sender, and the size of its pool of kept-alive
HTTP/1.1 connections. Against real FCM each request waits a round trip (tens of
milliseconds from Vietnam), so this caps a sender at ``IN_FLIGHT`` ÷ round trip (≈ 3,300/s
at 30 ms); against the loopback stand-in more connections only cost more CPU (200 and 400
were slower than 100, 50 too; docs/benchmarks.md)."""

MAX_RESPONSE_BYTES = 1 << 20
"""Longest FCM answer read (FCM's are under 1 KiB; an error with details a few KiB): a
longer one, or an endless one from a broken proxy, is a transport error, not memory."""

RETRYABLE_CODES = frozenset(
    {"quota_exceeded", "unavailable", "internal", "deadline_exceeded", "unknown"}
)
"""Codes worth trying again later (after ``retry_after`` when given)."""


class PushMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One notification to one device registration token."""

    token: str
    title: str
    body: str
    data: dict[str, str] = msgspec.field(default_factory=dict)
    collapse_key: str | None = None  # newer pushes with the same key replace older ones
    badge: int | None = None  # iOS app-icon badge; 0 clears it
    priority: Literal["high", "normal"] = "high"
    sound: str | None = "default"  # None: silent


class PushResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one :class:`PushMessage`.

    ``error_code`` is one of ``unregistered``, ``invalid_argument``, ``sender_id_mismatch``,
    ``quota_exceeded``, ``unavailable``, ``internal``, ``deadline_exceeded``,
    ``third_party_auth_error``, ``unauthenticated``, ``permission_denied``, ``unknown``.
    ``permanent`` means the token must be disabled (unregistered, sender mismatch, or an
    invalid argument FCM attributes to the token). ``retry_after`` is FCM's
    ``Retry-After`` in seconds, when it sent one.
    """

    token: str
    ok: bool
    message_id: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    permanent: bool = False

    @property
    def retryable(self) -> bool:
        return not self.ok and self.error_code in RETRYABLE_CODES


class PushSender(Protocol):
    async def send(self, messages: list[PushMessage]) -> list[PushResult]:
        """One result per message, same order; at most ``MAX_BATCH`` (else ValueError)."""
        ...

    async def close(self) -> None: ...


def _check_batch(messages: list[PushMessage]) -> None:
    if len(messages) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} push messages per call, got {len(messages)}")


def token_tail(token: str) -> str:
    """The last six characters: enough to match log lines, useless to send with."""
    return "…" + token[-6:]


class LogPushSender:
    """Embedded default: writes each push to the log and reports success. Logs the token's
    tail, the title and the data keys; never the body or data values (callers keep
    personal data out of titles)."""

    async def send(self, messages: list[PushMessage]) -> list[PushResult]:
        _check_batch(messages)
        results = []
        for message in messages:
            message_id = f"log:{uuid.uuid4().hex}"
            log.info(
                "push_sent",
                extra={
                    "backend": "log",
                    "token": token_tail(message.token),
                    "title": message.title,
                    "data_keys": sorted(message.data),
                    "collapse_key": message.collapse_key,
                    "badge": message.badge,
                    "priority": message.priority,
                    "message_id": message_id,
                },
            )
            results.append(PushResult(token=message.token, ok=True, message_id=message_id))
        return results

    async def close(self) -> None:
        return None


# -- the one place that points the real SDK at a configurable endpoint --------------------

_fcm_url_lock = threading.Lock()


def load_credential(settings: Settings) -> credentials.Certificate:
    """The service account from ``FIREBASE_CREDENTIALS_FILE``, with its ``token_uri``
    replaced by ``FCM_TOKEN_URI`` when that is set (the file is not changed)."""
    with open(settings.firebase_credentials_file, encoding="utf-8") as file:
        info = json.load(file)
    if settings.fcm_token_uri:
        info["token_uri"] = settings.fcm_token_uri
    return credentials.Certificate(info)


def _check_fcm_url(template: str) -> None:
    try:
        formatted = template.format("project-id-probe")
    except (IndexError, KeyError, ValueError) as error:
        raise ValueError(
            f"FCM_URL must be a template with {{0}} for the project id: {error}"
        ) from error
    if "project-id-probe" not in formatted or not formatted.startswith(("http://", "https://")):
        raise ValueError(
            "FCM_URL must be an http(s) URL template with {0} for the project id, e.g. "
            "http://127.0.0.1:9099/v1/projects/{0}/messages:send"
        )


class PushConfigError(ValueError):
    """The push sender cannot work with these settings (FCM_URL, FCM_CA_FILE, the proxy
    in the environment). :func:`make_push_sender` logs it and keeps the process running."""


def fcm_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Whom to trust for FCM and its token endpoint: ``FCM_CA_FILE`` alone when set (a
    TLS-inspecting proxy's CA, say); else the system's store, which honours
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, plus certifi's roots when neither is set (so
    Google's certificates verify on a host without a CA store)."""
    if settings.fcm_ca_file:
        try:
            return ssl.create_default_context(cafile=settings.fcm_ca_file)
        except (OSError, ssl.SSLError) as error:
            raise PushConfigError(f"FCM_CA_FILE {settings.fcm_ca_file!r}: {error}") from error
    context = ssl.create_default_context()
    if not (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")):
        context.load_verify_locations(certifi.where())
    return context


def _token_ca_bundle(settings: Settings) -> str | None:
    """What the token request (google-auth over ``requests``) trusts, as the send path
    does: ``FCM_CA_FILE``; else requests' own ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
    (None: requests reads them); else ``SSL_CERT_FILE``, which requests alone ignores."""
    if settings.fcm_ca_file:
        return settings.fcm_ca_file
    if os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
        return None
    return os.environ.get("SSL_CERT_FILE") or None


def fcm_proxy(send_url: str) -> str | None:
    """The proxy for ``send_url`` from the environment (:func:`https_proxy_for`), if it is
    one the sender speaks: ``http://`` (CONNECT) or ``https://`` (TLS to the proxy, then
    CONNECT). Any other scheme (socks) is a :class:`PushConfigError`."""
    proxy = https_proxy_for(send_url)
    if proxy is None:
        return None
    parts = urlsplit(proxy)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        where = f"{scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        raise PushConfigError(
            f"HTTPS_PROXY={where}: the push sender speaks to http:// and "
            "https:// proxies only; set an HTTP CONNECT proxy, or exempt FCM's host with "
            "NO_PROXY"
        )
    return proxy


def sdk_internals_problems() -> list[str]:  # noqa: C901 (independent checks, read in order)
    """What of firebase-admin's private internals this module relies on is missing or no
    longer looks as expected (empty: all is well). ``pyproject.toml`` pins firebase-admin
    to the minor release these were read from; ``tests/core/test_push.py`` fails naming
    each problem, so a new release is checked before it is allowed in."""
    problems: list[str] = []

    def source_of(obj: Any, name: str) -> str:
        try:
            return inspect.getsource(obj)
        except (OSError, TypeError):
            problems.append(f"{name}: no source to check")
            return ""

    service_class = getattr(messaging, "_MessagingService", None)
    if not isinstance(service_class, type):
        return ["firebase_admin.messaging._MessagingService is gone"]
    url = getattr(service_class, "FCM_URL", None)
    if not isinstance(url, str) or "{0}" not in url:
        problems.append("messaging._MessagingService.FCM_URL is not a str template with {0}")
    if not callable(getattr(messaging, "_get_messaging_service", None)):
        problems.append("messaging._get_messaging_service(app) is gone")
    init = source_of(
        getattr(service_class, "__init__", None), "messaging._MessagingService.__init__"
    )
    for needle, what in (
        ("self._fcm_url = _MessagingService.FCM_URL.format(", "reads FCM_URL when made"),
        ("self._async_client = _http_client.HttpxAsyncClient(", "holds an HttpxAsyncClient"),
    ):
        if init and needle not in init:
            problems.append(f"messaging._MessagingService.__init__ no longer {what}")
    send = source_of(
        getattr(service_class, "send_each_async", None),
        "messaging._MessagingService.send_each_async",
    )
    for needle in ("self._async_client.request(", "url=self._fcm_url", "except httpx.HTTPError"):
        if send and needle not in send:
            problems.append(f"messaging._MessagingService.send_each_async lacks {needle!r}")
    client_class = getattr(_http_client, "HttpxAsyncClient", None)
    if not isinstance(client_class, type):
        return [*problems, "firebase_admin._http_client.HttpxAsyncClient is gone"]
    client_init_function: Any = getattr(client_class, "__init__", None)  # every class has one
    parameters = inspect.signature(client_init_function).parameters
    if not {"credential", "timeout"} <= set(parameters):
        problems.append("_http_client.HttpxAsyncClient(credential=, timeout=) changed")
    client_init = source_of(client_init_function, "_http_client.HttpxAsyncClient.__init__")
    if client_init and "self._async_client = httpx.AsyncClient(" not in client_init:
        problems.append("_http_client.HttpxAsyncClient no longer holds _async_client (httpx)")
    request = source_of(
        getattr(client_class, "request", None), "_http_client.HttpxAsyncClient.request"
    )
    for needle in ("self._async_client.request(method, self.base_url + url", "raise_for_status()"):
        if request and needle not in request:
            problems.append(f"_http_client.HttpxAsyncClient.request lacks {needle!r}")
    if not callable(getattr(client_class, "aclose", None)):
        problems.append("_http_client.HttpxAsyncClient.aclose() is gone")
    if not isinstance(getattr(_http_client, "METRICS_HEADERS", None), dict):
        problems.append("_http_client.METRICS_HEADERS is not a dict")
    return problems


def _make_messaging_service(app: firebase_admin.App, fcm_url: str) -> Any:
    """Make ``app``'s messaging service now, reading ``FCM_URL`` from ``fcm_url`` if given.

    The class attribute is set only while this app's service is made (under a lock) and
    then restored, so other apps in the process keep Google's URL."""
    with _fcm_url_lock:
        original = messaging._MessagingService.FCM_URL
        if fcm_url:
            messaging._MessagingService.FCM_URL = fcm_url
        try:
            return messaging._get_messaging_service(app)
        finally:
            messaging._MessagingService.FCM_URL = original


class FcmPushSender:
    """FCM HTTP v1 through ``firebase-admin``, in its own *named* Firebase app.

    One HTTP attempt per message: retries belong to the job layer (see the module
    docstring). ``dry_run`` sends with ``validate_only``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        timeout_seconds: float = 30.0,
        dry_run: bool = False,
    ) -> None:
        if not settings.firebase_credentials_file:
            raise ValueError("FcmPushSender needs FIREBASE_CREDENTIALS_FILE")
        if settings.fcm_url:
            try:
                _check_fcm_url(settings.fcm_url)
            except ValueError as error:
                raise PushConfigError(str(error)) from error
        ssl_context = fcm_ssl_context(settings)
        proxy = fcm_proxy(settings.fcm_url or messaging._MessagingService.FCM_URL)
        self._dry_run = dry_run
        certificate = load_credential(settings)
        self.app_name = f"city-push-{uuid.uuid4().hex[:12]}"  # not the default app
        self._app = firebase_admin.initialize_app(
            certificate,
            options={"httpTimeout": timeout_seconds},
            name=self.app_name,
        )
        self.project_id: str = self._app.project_id
        self._credential = certificate.get_credential()
        try:
            service = _make_messaging_service(self._app, settings.fcm_url)
            # Our own httpx client in place of the service's, to choose its retry policy,
            # its pool and its auth flow (see the module docstring), and to close it on our
            # event loop (the SDK's close() calls asyncio.run(), which cannot run inside one).
            if not isinstance(
                getattr(service, "_async_client", None), _http_client.HttpxAsyncClient
            ):
                raise TypeError("firebase-admin changed: _MessagingService._async_client is gone")
        except BaseException:
            firebase_admin.delete_app(self._app)
            raise
        self.send_url: str = service._fcm_url
        self._requests = google.auth.transport.requests.Request()
        self._auth_request: Any = self._requests
        ca_bundle = _token_ca_bundle(settings)
        if ca_bundle:  # per request: requests' environment would win over the session's
            self._auth_request = functools.partial(self._requests, verify=ca_bundle)
        self._refresh_lock = asyncio.Lock()
        # The SDK's wrapper stays (request(), raise_for_status, error mapping); the client
        # inside it is ours: an HTTP/1.1 pool in place of httpx (see the module docstring).
        self._http = _http_client.HttpxAsyncClient(
            credential=self._credential, timeout=timeout_seconds
        )
        if not isinstance(getattr(self._http, "_async_client", None), httpx.AsyncClient):
            raise TypeError("firebase-admin changed: HttpxAsyncClient._async_client is gone")
        self._http._async_client = HTTP_CLIENT(
            self.send_url,
            credential=self._credential,
            refresh=self._refresh_access_token,
            # the SDK's own headers (x-goog-api-client), not httpx's defaults: its
            # "accept-encoding: gzip" would have FCM compress what this client reads raw
            default_headers=dict(_http_client.METRICS_HEADERS),
            timeout=timeout_seconds,
            ssl_context=ssl_context,
            proxy=proxy,
        )
        service._async_client = self._http
        self._closed = False

    async def send(self, messages: list[PushMessage]) -> list[PushResult]:
        _check_batch(messages)
        if not messages:
            return []
        if self._closed:
            raise RuntimeError("FcmPushSender is closed")
        fcm_messages = [to_fcm_message(m) for m in messages]
        failure = await self._ensure_access_token()
        if failure is not None:
            results = [_result_for_error(m.token, failure) for m in messages]
        else:
            results = await self._send_batch(messages, fcm_messages)
        self._log_batch(results)
        return results

    async def _send_batch(
        self, messages: list[PushMessage], fcm_messages: list[messaging.Message]
    ) -> list[PushResult]:
        """One ``send_each_async`` call for the whole batch: the SDK starts every request
        at once and the transport lets ``IN_FLIGHT`` of them (of all callers) go at a
        time, so the window stays full instead of draining at the end of each chunk."""
        try:
            batch = await messaging.send_each_async(
                fcm_messages, dry_run=self._dry_run, app=self._app
            )
        except exceptions.FirebaseError as error:  # the whole batch failed
            return [_result_for_error(m.token, error) for m in messages]
        return [
            PushResult(token=m.token, ok=True, message_id=r.message_id)
            if r.success
            else _result_for_error(m.token, r.exception)
            for m, r in zip(messages, batch.responses, strict=True)
        ]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._http.aclose()
        self._requests.session.close()
        # delete_app closes the service with asyncio.run(): give it a thread of its own
        # (our client is closed already, so that is a no-op).
        await asyncio.to_thread(firebase_admin.delete_app, self._app)

    async def _ensure_access_token(self) -> Exception | None:
        """Fetch the OAuth token in a worker thread if it is missing or about to expire,
        rather than let the SDK fetch it with a blocking call on the event loop."""
        if self._credential.valid:
            return None
        try:
            await self._refresh_access_token(None)
        except google.auth.exceptions.GoogleAuthError as error:
            log.warning("push_auth_failed", extra={"error": str(error)})
            return error
        return None

    async def _refresh_access_token(self, rejected: str | None) -> None:
        """A new access token, fetched in a worker thread: when the current one is not
        valid, or is ``rejected`` (FCM answered 401 to it). Concurrent callers wait for
        one refresh instead of each making their own."""
        async with self._refresh_lock:
            token = self._credential.token
            if self._credential.valid and (rejected is None or token != rejected):
                return  # someone else refreshed it meanwhile
            await asyncio.to_thread(self._credential.refresh, self._auth_request)

    @staticmethod
    def _log_batch(results: list[PushResult]) -> None:
        errors = Counter(r.error_code for r in results if not r.ok)
        log.info(
            "push_batch",
            extra={
                "backend": "fcm",
                "sent": len(results),
                "ok": len(results) - sum(errors.values()),
                "errors": dict(errors),
            },
        )


class _FcmHttpClient:
    """What the SDK's ``HttpxAsyncClient`` calls in place of its ``httpx.AsyncClient``:
    ``request(method, url, headers=, json=, timeout=)``, over an :class:`Http1Pool` of
    ``IN_FLIGHT`` connections to FCM's origin.

    It does what the SDK's httpx client and its auth flow did: the SDK's metrics headers,
    JSON encoding, the OAuth access token on every request, and on a 401 a new token and
    the request sent again, twice at most. Success answers a small response object with
    ``raise_for_status()`` and ``json()``; anything else answers a real ``httpx.Response``
    (built then), so ``raise_for_status()`` raises ``httpx.HTTPStatusError`` and the SDK
    maps FCM's error JSON, status and ``Retry-After`` exactly as before."""

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
        self._pool = Http1Pool(
            send_url,
            size=IN_FLIGHT,
            timeout=timeout,
            user_agent=f"city-push firebase-admin/{firebase_admin.__version__}",
            ssl_context=ssl_context,
            proxy=proxy,
        )
        self._credential = credential
        self._refresh = refresh
        self._default_headers = {
            "accept": "application/json",
            "accept-encoding": "identity",  # bodies are read as they come
            **{
                name.lower(): value
                for name, value in default_headers.items()
                if name.lower()
                not in ("host", "user-agent", "content-length", "authorization", "accept-encoding")
            },
        }
        self._auth_token: str | None = None
        self._auth_lines = b""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpx's signature, which the SDK calls)
    ) -> _FcmResponse | httpx.Response:
        if not url.startswith(self._pool.origin + "/"):
            raise httpx.UnsupportedProtocol(f"this client sends to {self._pool.origin} only")
        target = url[len(self._pool.origin) :]
        merged = {**self._default_headers, **{k.lower(): v for k, v in (headers or {}).items()}}
        merged["content-type"] = "application/json"
        lines = "".join(f"{name}: {value}\r\n" for name, value in merged.items()).encode()
        body = msgspec.json.encode(json)
        refreshes = 0
        while True:
            token = self._credential.token
            response = await self._pool.request(
                method.upper(),
                target,
                headers=lines + self._authorization(token),
                body=body,
                read_timeout=timeout,
            )
            if response.status != 401 or refreshes >= self.MAX_REFRESHES:
                break
            await self._refresh(token)
            refreshes += 1
        if 200 <= response.status < 300:
            return _FcmResponse(response.status, response.headers, response.body)
        return httpx.Response(
            response.status,
            headers=response.headers,
            content=response.body,
            request=httpx.Request(method.upper(), url),
        )

    def _authorization(self, token: str | None) -> bytes:
        """The credential's headers (``Authorization: Bearer …``), encoded once per token."""
        if token != self._auth_token or not self._auth_lines:
            auth: dict[str, str] = {}
            self._credential.apply(auth)
            self._auth_lines = "".join(f"{k}: {v}\r\n" for k, v in auth.items()).encode()
            self._auth_token = token
        return self._auth_lines

    async def aclose(self) -> None:
        await self._pool.aclose()


HTTP_CLIENT: Any = _FcmHttpClient
"""The client under the SDK's wrapper (a bench swaps in another to compare transports:
``bench/aiohttp_transport.py``)."""


def https_proxy_for(url: str) -> str | None:
    """``HTTPS_PROXY`` (or ``https_proxy``) for an ``https://`` URL whose host
    ``NO_PROXY`` does not exempt, as httpx and requests read them; otherwise None."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None
    proxy = urllib.request.getproxies_environment().get("https")
    # proxy_bypass_environment is in urllib.request but not in typeshed's stubs
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(parts.hostname or ""):
        return None
    return proxy


class _FcmResponse:
    """A 2xx answer, as much of ``httpx.Response`` as the SDK's send path uses."""

    __slots__ = ("_body", "_headers", "status_code")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = status
        self._headers = headers
        self._body = body

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self._headers)

    @property
    def content(self) -> bytes:
        return self._body

    def raise_for_status(self) -> _FcmResponse:
        return self

    def json(self) -> Any:
        return json.loads(self._body)


def to_fcm_message(message: PushMessage) -> messaging.Message:
    """The SDK's Message: notification, data, Android and APNs options, token target."""
    notification, android, apns = _fcm_options(
        message.title,
        message.body,
        message.priority,
        message.collapse_key,
        message.sound,
        message.badge,
    )
    fcm_message = messaging.Message(
        notification=notification,
        data=dict(message.data) or None,
        android=android,
        apns=apns,
    )
    # 7.7 deprecates Message(token=...) for fid=..., which the encoder puts on the wire
    # as "fid". Device registration tokens travel as "token", so set the attribute the
    # encoder reads without the constructor's DeprecationWarning.
    fcm_message.token = message.token
    return fcm_message


@functools.lru_cache(maxsize=4096)
def _fcm_options(
    title: str,
    body: str,
    priority: str,
    collapse_key: str | None,
    sound: str | None,
    badge: int | None,
) -> tuple[messaging.Notification, messaging.AndroidConfig, messaging.APNSConfig]:
    """The notification and platform options, made once for the messages that share them
    (an announcement's thousands differ only in token, badge and data). The SDK only
    reads them when it encodes a message, so messages may share them."""
    high = priority == "high"
    apns_headers = {"apns-priority": "10" if high else "5", "apns-push-type": "alert"}
    if collapse_key:
        apns_headers["apns-collapse-id"] = collapse_key
    return (
        messaging.Notification(title=title, body=body),
        messaging.AndroidConfig(
            priority=priority,
            collapse_key=collapse_key,
            notification=messaging.AndroidNotification(sound=sound) if sound else None,
        ),
        messaging.APNSConfig(
            headers=apns_headers,
            payload=messaging.APNSPayload(aps=messaging.Aps(badge=badge, sound=sound)),
        ),
    )


def _result_for_error(token: str, error: BaseException | None) -> PushResult:
    code, permanent = _classify(error)
    return PushResult(
        token=token,
        ok=False,
        error_code=code,
        retry_after=_retry_after(error),
        permanent=permanent,
    )


def _classify(error: BaseException | None) -> tuple[str, bool]:
    if isinstance(error, messaging.UnregisteredError):
        return "unregistered", True
    if isinstance(error, messaging.SenderIdMismatchError):
        return "sender_id_mismatch", True
    if isinstance(error, messaging.QuotaExceededError | exceptions.ResourceExhaustedError):
        return "quota_exceeded", False
    if isinstance(error, messaging.ThirdPartyAuthError):
        return "third_party_auth_error", False
    if isinstance(error, exceptions.InvalidArgumentError):
        return "invalid_argument", _blames_token(error)
    if isinstance(error, exceptions.UnavailableError):
        return "unavailable", False
    if isinstance(error, exceptions.InternalError):
        return "internal", False
    if isinstance(error, exceptions.DeadlineExceededError):
        return "deadline_exceeded", False
    if isinstance(error, exceptions.UnauthenticatedError):
        return "unauthenticated", False
    if isinstance(error, exceptions.PermissionDeniedError):
        return "permission_denied", False
    if isinstance(error, exceptions.FirebaseError) and error.cause is not None:
        return _classify(error.cause)
    if isinstance(error, google.auth.exceptions.RefreshError):
        return ("unavailable" if getattr(error, "retryable", False) else "unauthenticated"), False
    if isinstance(error, google.auth.exceptions.TransportError | httpx.TransportError):
        return "unavailable", False  # e.g. the connection closed before FCM answered
    return "unknown", False


def _blames_token(error: exceptions.FirebaseError) -> bool:
    """FCM answers INVALID_ARGUMENT for a malformed registration token and for a bad
    payload alike; only the first disables the token. FCM names the field at fault in a
    ``google.rpc.BadRequest`` detail, and says "registration token" in the message."""
    body = _error_body(error)
    for detail in body.get("details") or []:
        for violation in (detail or {}).get("fieldViolations") or []:
            if violation.get("field") in ("message.token", "message.fid"):
                return True
    return "registration token" in str(body.get("message", "")).lower()


def _error_body(error: exceptions.FirebaseError) -> dict[str, Any]:
    response = error.http_response
    if response is None:
        return {}
    try:
        parsed = response.json()
    except ValueError:
        return {}
    inner = parsed.get("error") if isinstance(parsed, dict) else None
    return inner if isinstance(inner, dict) else {}


def _retry_after(error: BaseException | None) -> float | None:
    response = getattr(error, "http_response", None)
    if response is None:
        return None
    return parse_retry_after(response.headers.get("Retry-After"))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class UnavailablePushSender:
    """In place of FCM when its settings cannot work (:class:`PushConfigError`): every
    message is ``unavailable`` (retryable), so pushes wait, and the reason is in the log at
    start-up and with every batch, while the process goes on serving."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def send(self, messages: list[PushMessage]) -> list[PushResult]:
        _check_batch(messages)
        if messages:
            log.error("push_unavailable", extra={"reason": self.reason, "held": len(messages)})
        return [PushResult(token=m.token, ok=False, error_code="unavailable") for m in messages]

    async def close(self) -> None:
        return None


def make_push_sender(settings: Settings) -> PushSender:
    """FCM when ``FIREBASE_CREDENTIALS_FILE`` is set, else the log backend. Settings FCM
    cannot work with (:class:`PushConfigError`) are logged and give an
    :class:`UnavailablePushSender`: the API and the workers keep running."""
    if settings.firebase_credentials_file:
        try:
            return FcmPushSender(settings)
        except PushConfigError as error:
            log.error("push_sender_misconfigured", extra={"reason": str(error)})
            return UnavailablePushSender(str(error))
    return LogPushSender()
