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
    loaded JSON. Nothing else is patched, so encoding, auth and error mapping stay the
    SDK's. (The signed token request's audience stays Google's token endpoint whatever
    ``token_uri`` says.)

Which layer retries (firebase-admin 7.7, read from its source and checked on the wire)
    - ``send_each_async`` (what this module uses) sends through an httpx client whose
      transport retries HTTP 500 and 503 up to 4 more times with backoff 0, 1, 2, 4 s
      (≈ 7 s), ignores ``Retry-After``, and never retries 429, timeouts or connection
      errors. **This module turns that off** (a plain httpx transport): one HTTP
      attempt per message, and the caller's job layer retries with its own backoff, using
      ``PushResult.retry_after`` and ``PushResult.retryable``. ``FcmPushSender(...,
      retry_in_sdk=True)`` restores the SDK's behaviour.
    - The synchronous ``send``/``send_each`` (not used here) retry through urllib3:
      500/503 up to 4 times, and 413/429/503 *honouring* ``Retry-After`` (capped only by
      urllib3's 6 h), with the calling thread asleep.
    - Independently of that, the SDK's httpx auth flow answers every 401 by refreshing the
      OAuth token and resending, up to twice. So an expired or revoked access token heals
      itself, and FCM's ``THIRD_PARTY_AUTH_ERROR`` (a 401 about *our* APNs/web-push
      credentials) costs three sends and two token requests before it is reported.
    - google-auth retries the token endpoint itself (500, 503, 504, 408, 429 and OAuth
      ``temporarily_unavailable``-style errors; 3 attempts, exponential backoff from 1 s).

The SDK fetches OAuth tokens with blocking ``requests`` calls from inside the event loop;
:meth:`FcmPushSender.send` refreshes the token in a worker thread first so the loop
rarely blocks (only the 401 path above still refreshes inline).

The send path (issue 5; measured in docs/benchmarks.md)
    ``send_each_async`` encodes each message, then sends them all at once through the
    SDK's ``HttpxAsyncClient``, whose httpx client :class:`FcmPushSender` builds itself
    (still the SDK's wrapper, ``raise_for_status`` and error mapping):

    - at most ``IN_FLIGHT`` requests on the wire per sender, whoever calls
      (:class:`_InFlightLimit`), and as many pooled connections, all kept alive. The SDK's
      client allows 100 connections but keeps only 20 alive, and httpcore closes an idle
      connection whenever the pool holds more than 20 *in all*: over HTTP/1.1 nearly every
      request opened a new connection. Requests beyond the pool's size wait in httpcore's
      queue, which it re-scans against every connection on each state change
      (quadratic); so they wait in front of the pool instead.
    - no ``HttpxRetryTransport`` when the SDK does not retry (with ``max_retries=0`` it
      only deep-copied its config per request).
    - one google-auth ``Request`` for the OAuth flow (:class:`_SharedAuthFlow`); the
      SDK's flow builds a ``requests.Session`` per message just in case it has to refresh.

    One ``send`` is one ``send_each_async`` call (≤ 500 messages); concurrent callers
    share the in-flight window instead of taking turns chunk by chunk.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import firebase_admin
import google.auth.exceptions
import google.auth.transport.requests
import httpx
import msgspec
from firebase_admin import _http_client, _retry, credentials, exceptions, messaging

from app.settings import Settings

log = logging.getLogger("city.push")

MAX_BATCH = 500  # FCM's and send_each_async's limit per call
IN_FLIGHT = 100
"""Requests on the wire at once per sender, and the size of its connection pool. FCM
answers over HTTP/2 with up to 100 concurrent streams on the one connection httpcore
opens per origin (httpcore caps streams at 100 too), so fewer would leave FCM's round
trip (tens of milliseconds from Vietnam) idle: 100 in flight at 30 ms is ≈ 3,300/s. Over
HTTP/1.1 (a plain-HTTP proxy or stand-in) each one is a connection, and httpcore's pool
costs grow with connections (see the module docstring)."""

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

    ``retry_in_sdk=False`` (default) makes one HTTP attempt per message: retries belong to
    the job layer (see the module docstring). ``dry_run`` sends with ``validate_only``.
    ``cleartext_http2`` speaks HTTP/2 without TLS ("h2c", prior knowledge) to an
    ``http://`` FCM_URL, as the FCM stand-in can (benchmarks: the protocol real FCM is
    reached with); ``https://`` negotiates HTTP/2 by ALPN whatever this says.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        timeout_seconds: float = 30.0,
        retry_in_sdk: bool = False,
        dry_run: bool = False,
        cleartext_http2: bool = False,
    ) -> None:
        if not settings.firebase_credentials_file:
            raise ValueError("FcmPushSender needs FIREBASE_CREDENTIALS_FILE")
        if settings.fcm_url:
            _check_fcm_url(settings.fcm_url)
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
        self._http = _http_client.HttpxAsyncClient(
            credential=self._credential, timeout=timeout_seconds
        )
        if not isinstance(getattr(self._http, "_async_client", None), httpx.AsyncClient):
            raise TypeError("firebase-admin changed: HttpxAsyncClient._async_client is gone")
        self._auth_request = google.auth.transport.requests.Request()
        # The SDK's wrapper stays (request(), raise_for_status, error mapping); the httpx
        # client inside it is ours. The one the SDK made has opened no connection yet.
        self._http._async_client = httpx.AsyncClient(
            timeout=timeout_seconds,
            headers=self._http._async_client.headers,  # the SDK's metrics headers
            auth=_SharedAuthFlow(self._credential, self._auth_request),
            transport=_InFlightLimit(
                _transport(
                    retry_in_sdk,
                    http1=not (cleartext_http2 and self.send_url.startswith("http://")),
                ),
                IN_FLIGHT,
            ),
        )
        service._async_client = self._http
        self._refresh_lock = asyncio.Lock()
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
        self._auth_request.session.close()
        # delete_app closes the service with asyncio.run(): give it a thread of its own
        # (our client is closed already, so that is a no-op).
        await asyncio.to_thread(firebase_admin.delete_app, self._app)

    async def _ensure_access_token(self) -> Exception | None:
        """Fetch the OAuth token in a worker thread if it is missing or about to expire,
        rather than let the SDK fetch it with a blocking call on the event loop."""
        if self._credential.valid:
            return None
        async with self._refresh_lock:
            if self._credential.valid:
                return None
            try:
                await asyncio.to_thread(self._credential.refresh, self._auth_request)
            except google.auth.exceptions.GoogleAuthError as error:
                log.warning("push_auth_failed", extra={"error": str(error)})
                return error
        return None

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


def _transport(retry_in_sdk: bool, *, http1: bool) -> httpx.AsyncBaseTransport:
    """The pool under the SDK's client: ``IN_FLIGHT`` connections, all kept alive (httpx's
    default keeps 20 of 100); HTTP/2 where the server speaks it (FCM does). The SDK's
    retrying transport only when the SDK is to retry."""
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    if retry_in_sdk:
        return _retry.HttpxRetryTransport(
            retry=_http_client.DEFAULT_HTTPX_RETRY_CONFIG, limits=limits, http1=http1
        )
    return httpx.AsyncHTTPTransport(http1=http1, http2=True, limits=limits, retries=0)


class _InFlightLimit(httpx.AsyncBaseTransport):
    """At most ``limit`` requests through ``transport`` at once, each counted from sending
    it until its response is closed (when httpcore gives the connection back). With
    ``limit`` equal to the pool's size no request ever queues inside httpcore, whose queue
    costs O(queued × connections) per state change."""

    def __init__(self, transport: httpx.AsyncBaseTransport, limit: int) -> None:
        self._transport = transport
        self._slots = asyncio.Semaphore(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._slots.acquire()
        try:
            response = await self._transport.handle_async_request(request)
        except BaseException:
            self._slots.release()
            raise
        response.stream = _ReleasingStream(response.stream, self._slots.release)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that frees its in-flight slot once, when it is closed."""

    def __init__(self, stream: Any, release: Any) -> None:
        self._stream = stream
        self._release = release

    async def __aiter__(self) -> Any:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class _SharedAuthFlow(_http_client.GoogleAuthCredentialFlow):
    """The SDK's auth flow (the access token on every request; a 401 forces a refresh and
    a resend, twice at most), with one google-auth ``Request`` for every refresh instead of
    a new one (a ``requests.Session`` with its adapters) per message."""

    def __init__(
        self,
        credential: Any,
        auth_request: google.auth.transport.requests.Request,
    ) -> None:
        super().__init__(credential)
        self._auth_request = auth_request

    def auth_flow(self, request: httpx.Request) -> Any:
        original_headers = request.headers.copy()
        refreshes = 0
        while True:
            request.headers = original_headers.copy()
            self.apply_auth_headers(request, self._auth_request)
            response = yield request
            if (
                response.status_code not in self._refresh_status_codes
                or refreshes >= self._max_refresh_attempts
            ):
                return
            self._credential.refresh(self._auth_request)
            refreshes += 1


def to_fcm_message(message: PushMessage) -> messaging.Message:
    """The SDK's Message: notification, data, Android and APNs options, token target."""
    high = message.priority == "high"
    apns_headers = {"apns-priority": "10" if high else "5", "apns-push-type": "alert"}
    if message.collapse_key:
        apns_headers["apns-collapse-id"] = message.collapse_key
    fcm_message = messaging.Message(
        notification=messaging.Notification(title=message.title, body=message.body),
        data=dict(message.data) or None,
        android=messaging.AndroidConfig(
            priority=message.priority,
            collapse_key=message.collapse_key,
            notification=(
                messaging.AndroidNotification(sound=message.sound) if message.sound else None
            ),
        ),
        apns=messaging.APNSConfig(
            headers=apns_headers,
            payload=messaging.APNSPayload(
                aps=messaging.Aps(badge=message.badge, sound=message.sound)
            ),
        ),
    )
    # 7.7 deprecates Message(token=...) for fid=..., which the encoder puts on the wire
    # as "fid". Device registration tokens travel as "token", so set the attribute the
    # encoder reads without the constructor's DeprecationWarning.
    fcm_message.token = message.token
    return fcm_message


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
    if isinstance(error, google.auth.exceptions.TransportError):
        return "unavailable", False
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


def make_push_sender(settings: Settings) -> PushSender:
    """FCM when ``FIREBASE_CREDENTIALS_FILE`` is set, else the log backend."""
    if settings.firebase_credentials_file:
        return FcmPushSender(settings)
    return LogPushSender()
