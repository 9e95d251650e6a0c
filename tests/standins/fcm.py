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

Both speak HTTP/1.1, and HTTP/2 without TLS to a client that opens with HTTP/2's preface
(``FcmPushSender(cleartext_http2=True)``; real FCM is reached over HTTP/2).

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

import atexit
import json
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
    http_version: str = "HTTP/1.1"  # or "HTTP/2"
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
    pointed at (``send_url_template`` has FCM's ``{0}`` placeholder for the project id)."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fcm = self  # type: ignore[attr-defined]
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self.token_uri = f"{self.base_url}/token"
        self.send_url_template = f"{self.base_url}/v1/projects/{{0}}/messages:send"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fcm-standin", daemon=True
        )
        self._lock = threading.Lock()
        self._accounts: dict[str, _ServiceAccount] = {}  # by client_email
        self.reset()

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> FcmStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

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
            body = json.loads(raw)
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
        name = f"projects/{project}/messages/0:{time.time_ns()}%{uuid.uuid4().hex[:16]}"
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # send_each_async opens up to 100 connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client closed its keep-alive connection
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1, or HTTP/2 without TLS when the client opens with HTTP/2's preface ("h2c"
    with prior knowledge: ``FcmPushSender(cleartext_http2=True)``). Real FCM is reached
    over HTTP/2, and benchmarks should measure the client on that protocol."""

    protocol_version = "HTTP/1.1"
    server_version = "fcm-standin/1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    @property
    def fcm(self) -> FcmStandin:
        return self.server.fcm  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output

    def handle(self) -> None:
        # HTTP/2's connection preface starts "PRI * HTTP/2.0"; no HTTP/1.1 method is PRI.
        if self.rfile.peek(3)[:3] == b"PRI":
            self._handle_h2()
        else:
            super().handle()

    def do_GET(self) -> None:
        self._answer_h1(b"", *self._route("GET", self.path, {}, b""))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._answer_h1(raw, *self._route("POST", self.path, headers, raw))

    def _route(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The answer to one request (``headers`` with lower-case names)."""
        url = urlsplit(target)
        parts = url.path.split("/")
        if method != "POST":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Not Found"}}, {}
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if url.path == "/token":
            if content_type != "application/x-www-form-urlencoded":
                return 400, {"error": "invalid_request"}, {}
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            return self.fcm.token(form)
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
            return self.fcm.send(parts[3], bearer, raw)
        return _error(404, "NOT_FOUND", "Not Found")

    def _record(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        raw: bytes,
        status: int,
        body: dict[str, Any],
        response_headers: dict[str, str],
        http_version: str = "HTTP/1.1",
    ) -> bytes:
        """Record the exchange; the JSON payload to answer with."""
        self.fcm._record(
            RecordedRequest(
                method=method,
                path=urlsplit(target).path,
                headers=headers,
                body=raw,
                status=status,
                response=body,
                response_headers=dict(response_headers),
                received_at=time.monotonic(),
                http_version=http_version,
                client_port=self.client_address[1],
            )
        )
        return json.dumps(body).encode()

    def _answer_h1(
        self, raw: bytes, status: int, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        request_headers = {k.lower(): v for k, v in self.headers.items()}
        payload = self._record(self.command, self.path, request_headers, raw, status, body, headers)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _handle_h2(self) -> None:
        """One HTTP/2 connection: requests are answered in the order their streams end,
        one at a time (the handling is CPU-bound; a thread per stream would only contend
        for the GIL). Up to 100 concurrent streams, as FCM allows."""
        # h2 comes with firebase-admin (httpx[http2]); imported here so that plain
        # HTTP/1.1 use of the stand-in does not need it
        import h2.config
        import h2.connection
        import h2.events
        import h2.settings

        connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        connection.initiate_connection()
        connection.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100})
        self.wfile.write(connection.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        while True:
            try:
                data = self.rfile.read1(65536)
            except ConnectionError:
                return
            if not data:
                return
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = (dict(event.headers), bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1].extend(event.data)
                    connection.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    headers, raw = streams.pop(event.stream_id)
                    self._answer_h2(connection, event.stream_id, headers, bytes(raw))
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.wfile.write(connection.data_to_send())
                    return
            self.wfile.write(connection.data_to_send())

    def _answer_h2(
        self, connection: Any, stream_id: int, headers: dict[str, str], raw: bytes
    ) -> None:
        method = headers.get(":method", "")
        target = headers.get(":path", "")
        plain = {k: v for k, v in headers.items() if not k.startswith(":")}
        if ":authority" in headers:
            plain["host"] = headers[":authority"]
        status, body, response_headers = self._route(method, target, plain, raw)
        payload = self._record(method, target, plain, raw, status, body, response_headers, "HTTP/2")
        connection.send_headers(
            stream_id,
            [
                (":status", str(status)),
                ("content-type", "application/json; charset=UTF-8"),
                ("content-length", str(len(payload))),
                *((name.lower(), value) for name, value in response_headers.items()),
            ],
        )
        connection.send_data(stream_id, payload, end_stream=True)


_shared: FcmStandin | None = None
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
