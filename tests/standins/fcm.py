"""Firebase Cloud Messaging on loopback, speaking the real wire protocol of FCM HTTP v1.

Two endpoints, enough for the real ``firebase-admin`` SDK to send through it:

- ``POST /token``: Google's OAuth 2.0 token endpoint for service accounts. It takes the
  JWT-bearer grant (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and a signed
  ``assertion``), checks the RS256 signature against the key of a service account written
  by :meth:`FcmStandin.write_service_account`, the issuer, the audience (always Google's
  ``https://oauth2.googleapis.com/token``) and the scope, and answers
  ``{"access_token", "expires_in", "token_type"}``.
- ``POST /v1/projects/{project}/messages:send``: checks the bearer token and validates the
  body as FCM does (known keys only, exactly one target, string-only ``data``, no reserved
  data keys, ``validate_only``), then answers ``{"name": "projects/{p}/messages/<id>"}``.

Both speak HTTP/1.1 with keep-alive, served by an asyncio server (uvloop's loop if
installed, requests parsed by httptools) in a background thread: cheap enough per request
that a benchmark measures the client, not the stand-in.

``FcmStandin(tls=True)`` serves HTTPS instead, with a certificate for ``127.0.0.1``,
``localhost`` and ``fcm.test`` signed by a CA of its own (:attr:`FcmStandin.ca_file`, to
trust). ``FcmStandin(delay=0.03)`` holds every answer that long before writing it: the
round trip to real FCM (≈ 30 ms from Hanoi), so a client with N requests in flight tops
out near N ÷ delay, as it would there.

Every request is recorded (:attr:`FcmStandin.requests`, with its protocol and the
client's port). :meth:`FcmStandin.fail` scripts answers per device token with FCM v1's
real error JSON (``UNREGISTERED``, ``INVALID_ARGUMENT``, ``QUOTA_EXCEEDED`` with
``Retry-After``, ``UNAVAILABLE``, ``INTERNAL``, ``SENDER_ID_MISMATCH``,
``THIRD_PARTY_AUTH_ERROR``).

Test modules use the fixture with::

    from tests.standins.fcm import fcm_standin  # noqa: F401

One server runs per test session (started on first use); ``fcm_standin`` resets it before
and after every test.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime as dt
import ipaddress
import json
import secrets
import socket
import ssl
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools
import jwt
import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

try:
    import uvloop
except ImportError:  # asyncio's own loop then
    uvloop = None  # type: ignore[assignment]

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# FCM accepts either scope; firebase-admin asks for both (and more).
FCM_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
ACCESS_TOKEN_TTL_SECONDS = 3600
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# errorCode -> (HTTP status, google.rpc status, message), as FCM v1 answers them.
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'.",
    ),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}

_MESSAGE_KEYS = {
    "name", "data", "notification", "android", "webpush", "apns", "fcm_options",
    "token", "topic", "condition", "fid",
}  # fmt: skip
_TARGETS = ("token", "topic", "condition", "fid")
_NOTIFICATION_KEYS = {"title", "body", "image"}
_ANDROID_KEYS = {
    "collapse_key", "priority", "ttl", "restricted_package_name", "data", "notification",
    "fcm_options", "direct_boot_ok", "bandwidth_constrained_ok", "restricted_satellite_ok",
}  # fmt: skip
_ANDROID_NOTIFICATION_KEYS = {
    "title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key",
    "body_loc_args", "title_loc_key", "title_loc_args", "channel_id", "ticker", "sticky",
    "event_time", "local_only", "notification_priority", "default_sound",
    "default_vibrate_timings", "default_light_settings", "vibrate_timings", "visibility",
    "notification_count", "light_settings", "image", "proxy",
}  # fmt: skip
_APNS_KEYS = {"headers", "payload", "fcm_options", "live_activity_token"}
_RESERVED_DATA_KEYS = {"from", "notification", "message_type"}
# UTF-8 JSON as FCM takes it (no NaN, no UTF-16); DecodeError is a ValueError
_decode_json = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived on the wire, and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int
    response: dict[str, Any]  # the JSON answered
    response_headers: dict[str, str]
    received_at: float = 0.0  # time.monotonic() when it was answered
    http_version: str = "HTTP/1.1"  # the only protocol spoken
    client_port: int = 0  # the client's end of the connection it came on

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None


@dataclass
class _Script:
    error_code: str
    remaining: int | None  # None: forever
    retry_after: str | None


@dataclass
class _ServiceAccount:
    client_email: str
    project_id: str
    key_id: str
    public_key: rsa.RSAPublicKey


@dataclass
class _Issued:
    client_email: str
    project_id: str
    expires_at: float
    scopes: set[str] = field(default_factory=set)


class FcmStandin:
    """The stand-in server. ``token_uri`` and ``send_url_template`` are what the SDK is
    pointed at (``send_url_template`` has FCM's ``{0}`` placeholder for the project id).

    ``tls``: HTTPS with a certificate signed by the stand-in's own CA (``ca_file``).
    ``delay``: seconds every answer waits before it is written (an added round trip)."""

    def __init__(self, *, tls: bool = False, delay: float = 0.0) -> None:
        self.delay = delay
        self.ca_file: str | None = None  # the CA to trust, with tls
        ssl_context = None
        if tls:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="fcm-standin-")
            ca_file, ssl_context = make_tls(Path(self._tls_dir.name))
            self.ca_file = str(ca_file)
        self._server = _Server(self, ssl_context)  # listening from here on, answering from start()
        host, port = self._server.address
        self.port = port
        self.base_url = f"{'https' if tls else 'http'}://{host}:{port}"
        self.token_uri = f"{self.base_url}/token"
        self.send_url_template = f"{self.base_url}/v1/projects/{{0}}/messages:send"
        self._lock = threading.Lock()
        self._accounts: dict[str, _ServiceAccount] = {}  # by client_email
        self.reset()

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> FcmStandin:
        self._server.start()
        return self

    def stop(self) -> None:
        """Close the server and every connection, and wait for its thread to end."""
        self._server.stop()

    def reset(self) -> None:
        """Forget requests, scripts and issued tokens (service accounts stay known)."""
        with self._lock:
            self.requests: list[RecordedRequest] = []
            self._scripts: dict[str, _Script] = {}
            self._issued: dict[str, _Issued] = {}
            self._token_failure: tuple[int, dict[str, Any]] | None = None
            self.delivered: list[dict[str, Any]] = []  # messages accepted, not validate_only

    # scripting ---------------------------------------------------------------------------

    def fail(
        self,
        token: str,
        error_code: str,
        *,
        times: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Answer sends to ``token`` with FCM's error ``error_code`` (a key of
        ``FCM_ERRORS``) ``times`` times, or forever. ``QUOTA_EXCEEDED`` carries
        ``Retry-After`` (default ``"60"``); others only if ``retry_after`` is given."""
        if error_code not in FCM_ERRORS:
            raise ValueError(f"unknown FCM error code {error_code!r}")
        if error_code == "QUOTA_EXCEEDED" and retry_after is None:
            retry_after = "60"
        with self._lock:
            self._scripts[token] = _Script(error_code, times, retry_after)

    def fail_token_requests(self, status: int = 400, error: str = "invalid_grant") -> None:
        """Refuse every grant from now on, as Google does (``invalid_grant`` for a revoked
        or deleted key, ``temporarily_unavailable`` for an outage)."""
        with self._lock:
            self._token_failure = (status, {"error": error, "error_description": error})

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (as if it expired)."""
        with self._lock:
            self._issued.clear()

    # service accounts --------------------------------------------------------------------

    def write_service_account(
        self,
        path: Path,
        *,
        project_id: str = "city-app-test",
        token_uri: str | None = None,
    ) -> Path:
        """Write a service-account JSON file with a freshly generated RSA key that this
        stand-in trusts. ``token_uri`` defaults to the stand-in's own ``/token``."""
        info = self.make_service_account(project_id=project_id, token_uri=token_uri)
        path.write_text(json.dumps(info, indent=2))
        return path

    def make_service_account(
        self, *, project_id: str = "city-app-test", token_uri: str | None = None
    ) -> dict[str, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        name = f"firebase-adminsdk-{secrets.token_hex(3)}"
        client_email = f"{name}@{project_id}.iam.gserviceaccount.com"
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with self._lock:
            self._accounts[client_email] = _ServiceAccount(
                client_email, project_id, key_id, key.public_key()
            )
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri or self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + client_email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }

    # what arrived ------------------------------------------------------------------------

    @property
    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/token"]

    @property
    def send_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/messages:send")]

    def sends_to(self, token: str) -> list[RecordedRequest]:
        """Send requests whose message targets ``token``."""
        out = []
        for request in self.send_requests:
            try:
                message = request.json().get("message") or {}
            except ValueError:
                continue
            if message.get("token") == token:
                out.append(request)
        return out

    @property
    def issued_access_tokens(self) -> list[str]:
        return [r.response["access_token"] for r in self.token_requests if r.status == 200]

    # endpoints ---------------------------------------------------------------------------

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            failure = self._token_failure
        if failure is not None:
            return failure[0], failure[1], {}
        if form.get("grant_type") != JWT_BEARER_GRANT or not form.get("assertion"):
            return _grant_error("Invalid grant_type", "unsupported_grant_type")
        assertion = form["assertion"]
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}, {}
        account = self._accounts.get(str(unverified.get("iss")))
        if account is None:
            return _grant_error("Invalid grant: account not found", "invalid_grant")
        if header.get("kid") not in (None, account.key_id):
            return _grant_error("Invalid JWT Signature.", "invalid_grant")
        try:
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=account.client_email,
                options={"require": ["iat", "exp", "iss", "aud"]},
                leeway=30,
            )
        except jwt.InvalidSignatureError:
            return _grant_error("Invalid JWT Signature.", "invalid_grant")
        except jwt.PyJWTError as error:
            return _grant_error(f"Invalid JWT: {error}", "invalid_grant")
        if claims["exp"] - claims["iat"] > 3600:
            return _grant_error("Invalid JWT: lifetime > 1h", "invalid_grant")
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes:
            return _grant_error("Empty or missing scope not allowed.", "invalid_scope")
        access_token = "ya29.standin-" + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[access_token] = _Issued(
                account.client_email,
                account.project_id,
                time.time() + ACCESS_TOKEN_TTL_SECONDS,
                scopes,
            )
        body = {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_TTL_SECONDS,
            "token_type": "Bearer",
        }
        return 200, body, {}

    def send(
        self, project: str, bearer: str | None, raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            issued = self._issued.get(bearer or "")
        if issued is None or issued.expires_at < time.time():
            return _error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        if not issued.scopes & FCM_SCOPES:
            return _error(
                403, "PERMISSION_DENIED", "Request had insufficient authentication scopes."
            )
        if issued.project_id != project:
            return _error(
                403,
                "PERMISSION_DENIED",
                "Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                "(or it may not exist).",
            )
        try:
            body = _decode_json(raw)
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        violations = validate_send_body(body)
        if violations:
            return _error(
                400,
                "INVALID_ARGUMENT",
                violations[0][1],
                details=[
                    {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
                    {
                        "@type": BAD_REQUEST_TYPE,
                        "fieldViolations": [{"field": f, "description": d} for f, d in violations],
                    },
                ],
            )
        message = body["message"]
        target = message.get("token") or message.get("fid")
        scripted = self._take_script(target) if target else None
        if scripted is not None:
            return _fcm_error(scripted.error_code, scripted.retry_after)
        if not body.get("validate_only"):
            with self._lock:
                self.delivered.append(message)
        name = f"projects/{project}/messages/0:{time.time_ns()}%{secrets.token_hex(8)}"
        return 200, {"name": name}, {}

    def _take_script(self, token: str) -> _Script | None:
        with self._lock:
            script = self._scripts.get(token)
            if script is None:
                return None
            if script.remaining is not None:
                script.remaining -= 1
                if script.remaining <= 0:
                    del self._scripts[token]
            return script

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def validate_send_body(body: Any) -> list[tuple[str, str]]:
    """FCM's checks on a ``messages:send`` body, as (field, description) violations."""
    if not isinstance(body, dict):
        return [("", "Invalid JSON payload received. Expected an object.")]
    unknown = set(body) - {"message", "validate_only"}
    if unknown:
        name = min(unknown)
        return [(name, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')]
    if "validate_only" in body and not isinstance(body["validate_only"], bool):
        return [("validate_only", "Invalid value at 'validate_only' (TYPE_BOOL)")]
    message = body.get("message")
    if not isinstance(message, dict):
        return [("message", "Request contains an invalid argument. message is required.")]
    out: list[tuple[str, str]] = []
    out += _unknown_keys("message", message, _MESSAGE_KEYS)
    targets = [t for t in _TARGETS if t in message]
    if len(targets) != 1:
        out.append(("message", "Exactly one of token, topic or condition must be specified."))
    for target in targets:
        if not isinstance(message[target], str) or not message[target]:
            out.append((f"message.{target}", f"Invalid value at 'message.{target}'"))
    out += _string_map("message.data", message.get("data"))
    for key in (message.get("data") or {}) if isinstance(message.get("data"), dict) else {}:
        lowered = key.lower()
        if lowered in _RESERVED_DATA_KEYS or lowered.startswith(("google", "gcm")):
            out.append((f"message.data.{key}", f"Invalid data payload key: {key}"))
    notification = message.get("notification")
    if notification is not None:
        if not isinstance(notification, dict):
            out.append(("message.notification", "Invalid value at 'message.notification'"))
        else:
            out += _unknown_keys("message.notification", notification, _NOTIFICATION_KEYS)
            out += _strings("message.notification", notification)
    android = message.get("android")
    if android is not None:
        out += _validate_android(android)
    apns = message.get("apns")
    if apns is not None:
        out += _validate_apns(apns)
    return out


def _validate_android(android: Any) -> list[tuple[str, str]]:
    if not isinstance(android, dict):
        return [("message.android", "Invalid value at 'message.android'")]
    out = _unknown_keys("message.android", android, _ANDROID_KEYS)
    priority = android.get("priority")
    if priority is not None and str(priority).upper() not in ("HIGH", "NORMAL"):
        out.append(
            (
                "message.android.priority",
                f"Invalid value at 'message.android.priority' ({priority})",
            )
        )
    if "collapse_key" in android and not isinstance(android["collapse_key"], str):
        out.append(
            ("message.android.collapse_key", "Invalid value at 'message.android.collapse_key'")
        )
    out += _string_map("message.android.data", android.get("data"))
    notification = android.get("notification")
    if notification is not None:
        if not isinstance(notification, dict):
            out.append(("message.android.notification", "Invalid value"))
        else:
            out += _unknown_keys(
                "message.android.notification", notification, _ANDROID_NOTIFICATION_KEYS
            )
    return out


def _validate_apns(apns: Any) -> list[tuple[str, str]]:
    if not isinstance(apns, dict):
        return [("message.apns", "Invalid value at 'message.apns'")]
    out = _unknown_keys("message.apns", apns, _APNS_KEYS)
    headers = apns.get("headers")
    out += _string_map("message.apns.headers", headers)
    if isinstance(headers, dict) and headers.get("apns-priority", "10") not in ("1", "5", "10"):
        out.append(("message.apns.headers", "Invalid apns-priority"))
    payload = apns.get("payload")
    if payload is not None:
        if not isinstance(payload, dict) or not isinstance(payload.get("aps", {}), dict):
            out.append(("message.apns.payload", "Invalid APNs payload"))
        else:
            badge = payload.get("aps", {}).get("badge")
            if badge is not None and (not isinstance(badge, int) or badge < 0):
                out.append(("message.apns.payload.aps.badge", "Invalid badge"))
    return out


def _unknown_keys(where: str, obj: dict[str, Any], known: set[str]) -> list[tuple[str, str]]:
    if known.issuperset(obj):
        return []  # the usual case, without building a set
    return [
        (
            f"{where}.{key}",
            f"Invalid JSON payload received. Unknown name {key!r}: Cannot find field.",
        )
        for key in sorted(set(obj) - known)
    ]


def _string_map(where: str, value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [(where, f"Invalid value at '{where}'")]
    return [
        (f"{where}[{key}]", f"Invalid value at '{where}[{key}]' (TYPE_STRING), {val!r}")
        for key, val in value.items()
        if not isinstance(key, str) or not isinstance(val, str)
    ]


def _strings(where: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"{where}.{key}", f"Invalid value at '{where}.{key}' (TYPE_STRING)")
        for key, val in obj.items()
        if not isinstance(val, str)
    ]


def _grant_error(
    description: str, error: str = "invalid_grant"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 400, {"error": error, "error_description": description}, {}


def _error(
    status: int,
    rpc_status: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if details:
        error["details"] = details
    return status, {"error": error}, headers or {}


def _fcm_error(
    error_code: str, retry_after: str | None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    status, rpc_status, message = FCM_ERRORS[error_code]
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR_TYPE, "errorCode": error_code}]
    if error_code == "INVALID_ARGUMENT":
        details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": "message.token", "description": message}],
            }
        )
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return _error(status, rpc_status, message, details=details, headers=headers)


_BACKLOG = 1024  # send_each_async and the benchmarks open 100+ connections at once
_JSON_HEADERS = b"Content-Type: application/json; charset=UTF-8\r\nContent-Length: "
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_BAD_REQUEST = json.dumps(
    {"error": {"code": 400, "message": "Bad Request", "status": "INVALID_ARGUMENT"}}
).encode()


def _route(
    fcm: FcmStandin, method: str, path: str, headers: dict[str, str], raw: bytes
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The answer to one request (``headers`` with lower-case names)."""
    if method != "POST":
        return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Not Found"}}, {}
    content_type = headers.get("content-type", "").split(";")[0].strip()
    if path == "/token":
        if content_type != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request"}, {}
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        return fcm.token(form)
    parts = path.split("/")
    if (
        len(parts) == 5
        and parts[1] == "v1"
        and parts[2] == "projects"
        and parts[4] == "messages:send"
    ):
        if content_type != "application/json":
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        auth = headers.get("authorization", "")
        bearer = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        return fcm.send(parts[3], bearer, raw)
    return _error(404, "NOT_FOUND", "Not Found")


def _response(
    status: int,
    payload: bytes,
    headers: dict[str, str],
    *,
    close: bool = False,
    with_body: bool = True,
) -> bytes:
    """One HTTP/1.1 response, head and JSON body (none to a HEAD), as the bytes to write."""
    head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"")), _JSON_HEADERS]
    head.append(b"%d\r\n" % len(payload))
    for name, value in headers.items():
        head.append(f"{name}: {value}\r\n".encode("latin-1"))
    if close:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    if with_body:
        head.append(payload)
    return b"".join(head)


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 requests parsed by httptools and answered in the
    order they arrive, each as soon as its body is complete (the handling is synchronous,
    so pipelined requests cannot overtake each other). Keep-alive unless the client says
    ``Connection: close`` (or speaks HTTP/1.0); a request that does not parse gets a 400
    and the connection is closed."""

    def __init__(self, fcm: FcmStandin, connections: set[_Connection]) -> None:
        self._fcm = fcm
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client_port = 0
        self._out: list[bytes] = []  # answers to write once the data received is parsed
        self._closing = False
        self._upgrade = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._client_port = peer[1] if peer else 0
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._closing = True

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._closing = True  # refused in on_message_complete
        except httptools.HttpParserCallbackError as error:
            traceback.print_exception(error.__context__ or error)  # a bug here: say so
            self._closing = True
        except httptools.HttpParserError:
            if not self._closing:
                self._out.append(_response(400, _BAD_REQUEST, {}, close=True))
            self._closing = True
        transport = self._transport
        assert transport is not None
        if self._out:
            out, self._out = self._out, []
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self._closing:
            transport.close()

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()  # a client that does not read its answers

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    # httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._upgrade = self._parser.should_upgrade()  # CONNECT, or "Upgrade: h2c"
        if self._headers.get("expect", "").lower() == "100-continue":
            self._out.append(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._closing:
            return  # pipelined after "Connection: close", or the connection is gone
        if self._upgrade:  # no other protocol spoken here
            self._out.append(_response(400, _BAD_REQUEST, {}, close=True))
            self._closing = True
            return
        parser = self._parser
        method = parser.get_method().decode("latin-1")
        body = self._body
        raw = body[0] if len(body) == 1 else b"".join(body)
        headers = self._headers
        path = urlsplit(self._url.decode("latin-1")).path
        try:
            status, answer, extra = _route(self._fcm, method, path, headers, raw)
        except Exception:
            traceback.print_exc()  # a bug in the stand-in: say so, answer as FCM would
            status, answer, extra = _error(500, "INTERNAL", "Internal error encountered.")
        payload = json.dumps(answer).encode()
        self._fcm._record(
            RecordedRequest(
                method=method,
                path=path,
                headers=headers,
                body=raw,
                status=status,
                response=answer,
                response_headers=dict(extra),
                received_at=time.monotonic(),
                client_port=self._client_port,
            )
        )
        if not parser.should_keep_alive():
            self._closing = True
        answer_bytes = _response(
            status, payload, extra, close=self._closing, with_body=method != "HEAD"
        )
        if self._fcm.delay > 0:  # the round trip: written later, in order (one timer each)
            assert self._transport is not None
            closing = self._closing
            self._closing = False  # closed after the late write, not now
            asyncio.get_running_loop().call_later(
                self._fcm.delay, self._write_late, answer_bytes, closing
            )
            return
        self._out.append(answer_bytes)

    def _write_late(self, data: bytes, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if close:
            self.close()


class _Server:
    """The asyncio server of one :class:`FcmStandin`, on its own event loop (uvloop's if
    installed) in a daemon thread. The listening socket is bound and listening from
    construction on, so the stand-in's URLs are known before it starts."""

    def __init__(self, fcm: FcmStandin, ssl_context: ssl.SSLContext | None = None) -> None:
        self._fcm = fcm
        self._ssl = ssl_context
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(_BACKLOG)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._run, name="fcm-standin", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self._connections: set[_Connection] = set()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise RuntimeError("the FCM stand-in did not start") from self._failure

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(_resolve, stopping)
            except RuntimeError:
                pass  # the loop closed meanwhile
            self._thread.join(timeout=5)
        self.sock.close()

    def _run(self) -> None:
        loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        loop.set_exception_handler(_quiet_exception_handler)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as error:
            if self._ready.is_set():
                traceback.print_exc()
            self._failure = error  # reported by start() if it failed to start
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = loop.create_future()
        server = await loop.create_server(
            lambda: _Connection(self._fcm, self._connections),
            sock=self.sock,
            backlog=_BACKLOG,
            ssl=self._ssl,
        )
        self._ready.set()
        await self._stopping
        server.close()
        for connection in list(self._connections):
            connection.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=2)


def make_tls(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate it signs for ``127.0.0.1``, ``localhost`` and
    ``fcm.test``: the CA's PEM file (to trust) and the server's SSL context."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FCM stand-in test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fcm.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("fcm.test"),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["http/1.1"])
    return ca_file, context


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if isinstance(context.get("exception"), ConnectionError | ssl.SSLError):
        return  # a client closed its connection mid-way, or did not trust the certificate
    loop.default_exception_handler(context)


_shared: FcmStandin | None = None
_shared_tls: FcmStandin | None = None
_shared_lock = threading.Lock()


def shared_standin() -> FcmStandin:
    """The session's stand-in, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FcmStandin().start()
            atexit.register(_shared.stop)
        return _shared


@pytest.fixture
def fcm_standin() -> Iterator[FcmStandin]:
    """The session's FCM stand-in, with no requests, scripts or tokens at the start of
    every test."""
    standin = shared_standin()
    standin.reset()
    yield standin
    standin.reset()


def shared_tls_standin() -> FcmStandin:
    """The session's HTTPS stand-in (``tls=True``), started on first use."""
    global _shared_tls
    with _shared_lock:
        if _shared_tls is None:
            _shared_tls = FcmStandin(tls=True).start()
            atexit.register(_shared_tls.stop)
        return _shared_tls


@pytest.fixture
def fcm_tls_standin() -> Iterator[FcmStandin]:
    """The session's HTTPS FCM stand-in (its CA in ``ca_file``), reset around every test."""
    standin = shared_tls_standin()
    standin.reset()
    yield standin
    standin.reset()
