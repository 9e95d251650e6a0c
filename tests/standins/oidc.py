"""A VNeID-style OpenID Connect issuer on loopback, speaking the real wire protocol.

It serves discovery, a JWKS with a fresh RSA key, ``/authorize`` (redirects back with a
code for whoever the test "logged in" with ``login_as``) and ``/token``, which checks
``client_secret_basic``, single use of the code, ``redirect_uri`` and the PKCE verifier
before answering with an RS256-signed ID token. ``misbehave`` makes it issue the tokens a
broken or hostile issuer would.

Test modules use the fixture with::

    from tests.standins.oidc import oidc_issuer  # noqa: F401

One server runs per test session; ``oidc_issuer`` resets it after every test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "city-app-test"
REDIRECT_URI = "http://127.0.0.1:8000/api/v1/auth/vneid/callback"
CODE_TTL_SECONDS = 60
ID_TOKEN_TTL_SECONDS = 300
_Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, headers


@dataclass
class Misbehaviour:
    """What the issuer gets wrong. Everything off is an honest issuer."""

    audience: str | None = None  # aud to put in ID tokens instead of the client id
    token_issuer: str | None = None  # iss to put in ID tokens instead of the issuer
    discovery_issuer: str | None = None  # issuer to advertise in the discovery document
    expired: bool = False  # ID tokens expired ten minutes ago
    clock_skew: int = 0  # seconds added to iat/exp (the issuer's clock runs fast or slow)
    bad_signature: bool = False  # sign with a key not in the JWKS, under the published kid
    unknown_kid: bool = False  # sign with a key not in the JWKS, under a kid not in it
    algorithm: str | None = None  # "none" or "HS256" (keyed with the client secret)
    nonce: str | None = None  # nonce to put in ID tokens instead of the requested one
    omit_claims: tuple[str, ...] = ()  # e.g. ("citizen_id",)
    claims: dict[str, Any] = field(default_factory=dict)  # claims overridden in ID tokens
    server_error: int | None = None  # every endpoint answers with this status (e.g. 503)
    no_id_token: bool = False  # token response lacks id_token


@dataclass
class _Grant:
    claims: dict[str, Any]
    nonce: str
    code_challenge: str
    redirect_uri: str
    expires_at: float


class OidcIssuer:
    """The issuer. ``issuer``, ``client_id``, ``client_secret`` are what the relying party
    is configured with; ``requests`` lists ``(method, path)`` of every request served."""

    def __init__(self) -> None:
        self.client_id = CLIENT_ID
        self.client_secret = secrets.token_urlsafe(32)
        self.redirect_uri = REDIRECT_URI
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.oidc = self  # type: ignore[attr-defined]
        host, port = self._server.server_address[:2]
        self.issuer = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oidc-standin", daemon=True
        )
        self._lock = threading.Lock()
        self._original_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._original_kid = secrets.token_hex(8)
        self._other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.reset()

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> OidcIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Honest again: original key, no codes outstanding, nobody logged in."""
        with self._lock:
            self._key = self._original_key
            self._kid = self._original_kid
            self._grants: dict[str, _Grant] = {}
            self._login: dict[str, Any] | None = None
            self.misbehaviour = Misbehaviour()
            self.requests: list[tuple[str, str]] = []

    def misbehave(self, **options: Any) -> None:
        """Set fields of ``Misbehaviour``, e.g. ``misbehave(audience="someone-else")``."""
        with self._lock:
            for name, value in options.items():
                if not hasattr(self.misbehaviour, name):
                    raise TypeError(f"unknown misbehaviour {name!r}")
                setattr(self.misbehaviour, name, value)

    def rotate_key(self) -> str:
        """Publish a new signing key (and only it) under a new kid; return the kid."""
        with self._lock:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._kid = secrets.token_hex(8)
            return self._kid

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    # the resident's side -----------------------------------------------------------------

    def login_as(self, claims: dict[str, Any]) -> None:
        """The user who signs in at ``/authorize`` next (claims: sub, name, citizen_id...)."""
        with self._lock:
            self._login = dict(claims)

    def issue_code(
        self, claims: dict[str, Any], nonce: str, code_challenge: str, redirect_uri: str
    ) -> str:
        """Pre-register an authorization code, as if ``/authorize`` had just issued it."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                claims=dict(claims),
                nonce=nonce,
                code_challenge=code_challenge,
                redirect_uri=redirect_uri,
                expires_at=time.time() + CODE_TTL_SECONDS,
            )
        return code

    # endpoints ---------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.misbehaviour.discovery_issuer or self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "citizen_id"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "claims_supported": ["sub", "name", "birthdate", "citizen_id", "acr"],
        }

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
            jwk.update({"kid": self._kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def authorize(self, query: dict[str, str]) -> _Answer:
        """Answer to GET /authorize."""
        redirect_uri = query.get("redirect_uri")
        if query.get("client_id") != self.client_id or redirect_uri != self.redirect_uri:
            # never redirect to an unregistered URI (RFC 6749 4.1.2.1)
            return 400, {"error": "invalid_request"}, {}
        back: dict[str, str] = {}
        if "state" in query:
            back["state"] = query["state"]
        with self._lock:
            login = self._login
        if query.get("response_type") != "code":
            back["error"] = "unsupported_response_type"
        elif "openid" not in query.get("scope", "").split():
            back["error"] = "invalid_scope"
        elif query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            back["error"] = "invalid_request"
        elif login is None:
            back["error"] = "access_denied"
        else:
            back["code"] = self.issue_code(
                login, query.get("nonce", ""), query["code_challenge"], redirect_uri
            )
        return 302, {}, {"Location": f"{redirect_uri}?{urlencode(back)}"}

    def token(self, authorization: str | None, form: dict[str, str]) -> _Answer:
        """Answer to POST /token."""
        if not self._client_authenticated(authorization):
            return 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="vneid"'}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}, {}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # single use, even on failure
        verifier = form.get("code_verifier", "")
        if (
            grant is None
            or grant.expires_at < time.time()
            or form.get("redirect_uri") != grant.redirect_uri
            or not (43 <= len(verifier) <= 128)
            or _s256(verifier) != grant.code_challenge
        ):
            return 400, {"error": "invalid_grant"}, {}
        body: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_TTL_SECONDS,
            "scope": "openid profile citizen_id",
        }
        if not self.misbehaviour.no_id_token:
            body["id_token"] = self._id_token(grant)
        return 200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"}

    def _client_authenticated(self, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            return False
        client_id, sep, secret = decoded.partition(":")
        return (
            bool(sep)
            and unquote_plus(client_id) == self.client_id
            and secrets.compare_digest(unquote_plus(secret), self.client_secret)
        )

    def _id_token(self, grant: _Grant) -> str:
        bad = self.misbehaviour
        now = int(time.time()) + bad.clock_skew
        if bad.expired:
            now -= 3600
        claims: dict[str, Any] = {
            "iss": bad.token_issuer or self.issuer,
            "aud": bad.audience or self.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_TTL_SECONDS,
            "auth_time": now,
            "nonce": bad.nonce if bad.nonce is not None else grant.nonce,
            **grant.claims,
            **bad.claims,
        }
        for name in bad.omit_claims:
            claims.pop(name, None)
        with self._lock:
            key, kid = self._key, self._kid
        if bad.algorithm == "none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
        if bad.algorithm is not None:
            return jwt.encode(claims, self.client_secret, algorithm=bad.algorithm)
        if bad.bad_signature:
            key = self._other_key
        if bad.unknown_kid:
            key, kid = self._other_key, "not-published"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "oidc-standin/1"

    @property
    def oidc(self) -> OidcIssuer:
        return self.server.oidc  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.oidc.requests.append(("GET", url.path))
        if self._failing():
            return
        if url.path == "/.well-known/openid-configuration":
            self._json(200, self.oidc.discovery())
        elif url.path == "/jwks":
            self._json(200, self.oidc.jwks())
        elif url.path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self._json(*self.oidc.authorize(query))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        self.oidc.requests.append(("POST", url.path))
        if self._failing():
            return
        if url.path != "/token":
            self._json(404, {"error": "not_found"})
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/x-www-form-urlencoded":
            self._json(400, {"error": "invalid_request"})
            return
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        self._json(*self.oidc.token(self.headers.get("Authorization"), form))

    def _failing(self) -> bool:
        status = self.oidc.misbehaviour.server_error
        if status is None:
            return False
        self._json(status, {"error": "temporarily_unavailable"})
        return True

    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode() if body or status != 302 else b""
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


_shared: OidcIssuer | None = None


def shared_issuer(config: pytest.Config) -> OidcIssuer:
    """The one issuer of this test session, started on first use."""
    global _shared
    if _shared is None:
        _shared = OidcIssuer().start()
        config.add_cleanup(_stop_shared)
    return _shared


def _stop_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@pytest.fixture
def oidc_issuer(request: pytest.FixtureRequest) -> Iterator[OidcIssuer]:
    """The session's issuer, honest at the start of every test."""
    issuer = shared_issuer(request.config)
    issuer.reset()
    yield issuer
    issuer.reset()
