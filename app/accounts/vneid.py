"""VNeID sign-in: an OpenID Connect relying party for the authorization-code flow with PKCE.

A resident who verifies with VNeID (Vietnam's national digital identity) reaches identity
level 2. This module is the client only: it discovers the configured issuer, builds the
authorization URL, redeems the code at the token endpoint (``client_secret_basic``) and
verifies the returned ID token against the issuer's published keys. It knows no HTTP
framework and no database; the caller keeps ``state``, ``nonce`` and the PKCE verifier
between the redirect and the callback, and stores what it needs from ``VneidIdentity``.

One ``VneidClient`` is meant to live as long as the process: it caches the discovery
document and the issuer's keys (by ``kid``; an unknown ``kid`` triggers one refetch, so
key rotation needs no restart).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import date
from typing import Any, Self
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import jwt
import msgspec

from app.core.errors import BadRequest, ServiceUnavailable, Unprocessable
from app.settings import Settings

log = logging.getLogger("city.vneid")

SCOPE = "openid profile citizen_id"
ALLOWED_ALGORITHMS = ("RS256", "ES256")  # never "none", never HS* (the secret is shared)
CLOCK_LEEWAY_SECONDS = 60
DISCOVERY_TTL_SECONDS = 24 * 3600
_CITIZEN_ID = re.compile(r"[0-9]{12}")  # used with fullmatch: ASCII digits only, no newline
_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PARTIAL_DATE = re.compile(r"[0-9]{4}|0000-[0-9]{2}-[0-9]{2}")  # OIDC Core 5.1 forms


# --- errors ------------------------------------------------------------------------------


class VneidCodeInvalid(BadRequest):
    """The token endpoint refused the authorization code (used, expired, wrong verifier)."""

    code = "vneid_code_invalid"


class VneidTokenInvalid(BadRequest):
    """The ID token failed verification (signature, issuer, audience, time, nonce).

    A 400 rather than a 401: the resident's own session with the app is fine, and mobile
    clients read a 401 as "sign in again"."""

    code = "vneid_token_invalid"


class VneidUnavailable(ServiceUnavailable):
    """The issuer cannot be reached, answers 5xx, or is misconfigured on our side."""

    code = "vneid_unavailable"


class VneidClaimsInvalid(Unprocessable):
    """The verified token lacks a usable citizen ID, subject or name."""

    code = "vneid_claims_invalid"


# --- data --------------------------------------------------------------------------------


class VneidIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Who VNeID says the resident is. Holds the full citizen ID: hash it, keep the last
    digits, and never log it."""

    subject: str
    citizen_id: str
    full_name: str
    birth_date: date | None = None
    identity_level: str | None = None

    def __repr__(self) -> str:  # keep the citizen ID and name out of logs and tracebacks
        return f"VneidIdentity(subject={self.subject!r}, citizen_id=…{self.citizen_id[-4:]})"


class ProviderMetadata(msgspec.Struct, frozen=True):
    """The parts of the issuer's discovery document this client relies on."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_signing_alg_values_supported: list[str] = msgspec.field(default_factory=list)
    code_challenge_methods_supported: list[str] | None = None


class _TokenResponse(msgspec.Struct):
    id_token: str
    token_type: str = "Bearer"


class _TokenError(msgspec.Struct):
    error: str = "unknown"
    error_description: str | None = None


def new_pkce() -> tuple[str, str]:
    """A fresh PKCE pair (RFC 7636): ``(code_verifier, S256 code_challenge)``."""
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --- client ------------------------------------------------------------------------------


class VneidClient:
    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._issuer = settings.oidc_issuer
        self._client_id = settings.oidc_client_id
        self._client_secret = settings.oidc_client_secret
        self._redirect_uri = settings.oidc_redirect_uri
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        self._metadata: ProviderMetadata | None = None
        self._metadata_fetched_at = 0.0
        self._keys: dict[str | None, dict[str, Any]] = {}  # kid -> JWK (None: the key sans kid)
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # discovery ---------------------------------------------------------------------------

    async def discover(self) -> ProviderMetadata:
        """The issuer's discovery document, fetched once and kept for a day."""
        fresh = time.monotonic() - self._metadata_fetched_at < DISCOVERY_TTL_SECONDS
        if self._metadata is not None and fresh:
            return self._metadata
        async with self._lock:
            fresh = time.monotonic() - self._metadata_fetched_at < DISCOVERY_TTL_SECONDS
            if self._metadata is None or not fresh:
                self._metadata = await self._fetch_metadata()
                self._metadata_fetched_at = time.monotonic()
        return self._metadata

    async def _fetch_metadata(self) -> ProviderMetadata:
        if not self._issuer:
            log.error("vneid_not_configured")
            raise VneidUnavailable()
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self._get(url, "discovery")
        try:
            metadata = msgspec.json.decode(response.content, type=ProviderMetadata)
        except msgspec.ValidationError as exc:
            log.error("vneid_discovery_malformed", extra={"reason": str(exc)})
            raise VneidUnavailable() from exc
        if metadata.issuer != self._issuer:
            # OIDC Discovery 4.3: the document must name exactly the issuer we asked.
            log.error(
                "vneid_issuer_mismatch",
                extra={"configured": self._issuer, "advertised": metadata.issuer},
            )
            raise VneidUnavailable()
        if metadata.code_challenge_methods_supported is not None and (
            "S256" not in metadata.code_challenge_methods_supported
        ):
            log.error("vneid_no_pkce_s256")
            raise VneidUnavailable()
        return metadata

    # authorization -----------------------------------------------------------------------

    async def authorization_url(self, state: str, nonce: str, code_challenge: str) -> str:
        """Where to send the resident's browser to sign in with VNeID."""
        metadata = await self.discover()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": self._redirect_uri,
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = metadata.authorization_endpoint
        return f"{endpoint}{'&' if urlsplit(endpoint).query else '?'}{query}"

    # code exchange -----------------------------------------------------------------------

    async def exchange(self, code: str, code_verifier: str, nonce: str) -> VneidIdentity:
        """Redeem an authorization code and return the verified identity."""
        metadata = await self.discover()
        id_token = await self._redeem(metadata, code, code_verifier)
        claims = await self._verify(metadata, id_token, nonce)
        return _identity_from(claims)

    async def _redeem(self, metadata: ProviderMetadata, code: str, code_verifier: str) -> str:
        # client_secret_basic: RFC 6749 2.3.1 form-encodes both parts before base64.
        credentials = f"{quote_plus(self._client_id)}:{quote_plus(self._client_secret)}"
        basic = base64.b64encode(credentials.encode()).decode("ascii")
        try:
            response = await self._http.post(
                metadata.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self._redirect_uri,
                    "code_verifier": code_verifier,
                },
                headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("vneid_unreachable", extra={"step": "token", "reason": repr(exc)})
            raise VneidUnavailable() from exc
        if response.status_code >= 500:
            log.warning(
                "vneid_server_error", extra={"step": "token", "status": response.status_code}
            )
            raise VneidUnavailable()
        if response.status_code != 200:
            error = _token_error(response)
            if error.error == "invalid_grant":
                raise VneidCodeInvalid()
            # invalid_client, unauthorized_client, invalid_request...: our configuration or
            # our request is wrong, not the resident's code. Ops must see it.
            log.error(
                "vneid_token_refused",
                extra={
                    "status": response.status_code,
                    "error": error.error,
                    "description": error.error_description,
                },
            )
            raise VneidUnavailable()
        try:
            return msgspec.json.decode(response.content, type=_TokenResponse).id_token
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            log.error("vneid_token_response_malformed", extra={"reason": str(exc)})
            raise VneidUnavailable() from exc

    # ID token verification ---------------------------------------------------------------

    async def _verify(self, metadata: ProviderMetadata, id_token: str, nonce: str) -> dict:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.InvalidTokenError as exc:
            raise _token_invalid("malformed_header") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise _token_invalid("algorithm_not_allowed", alg=str(alg))
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _token_invalid("malformed_kid")
        key = await self._signing_key(metadata, kid, alg)
        try:
            claims = jwt.decode(
                id_token,
                key,
                algorithms=[alg],
                audience=self._client_id,
                issuer=metadata.issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _token_invalid(type(exc).__name__) from exc
        # OIDC Core 3.1.3.7: several audiences need an authorized party, and it must be us.
        aud = claims["aud"]
        azp = claims.get("azp")
        if (isinstance(aud, list) and len(aud) > 1 and azp is None) or (
            azp is not None and azp != self._client_id
        ):
            raise _token_invalid("azp_mismatch")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(
            token_nonce.encode(), nonce.encode()
        ):
            raise _token_invalid("nonce_mismatch")
        return claims

    async def _signing_key(
        self, metadata: ProviderMetadata, kid: str | None, alg: str
    ) -> jwt.PyJWK:
        jwk = self._find_key(kid, alg)
        if jwk is None:
            # Unknown kid: the issuer may have rotated its keys. Refetch once.
            async with self._lock:
                jwk = self._find_key(kid, alg)
                if jwk is None:
                    await self._fetch_keys(metadata)
                    jwk = self._find_key(kid, alg)
        if jwk is None:
            raise _token_invalid("unknown_key", kid=str(kid))
        try:
            return jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError as exc:
            raise _token_invalid("unusable_key", kid=str(kid)) from exc

    def _find_key(self, kid: str | None, alg: str) -> dict[str, Any] | None:
        if kid is not None:
            candidates = [self._keys[kid]] if kid in self._keys else []
        else:  # no kid: acceptable only when exactly one published key fits the algorithm
            candidates = list(self._keys.values())
        fitting = [jwk for jwk in candidates if _key_fits(jwk, alg)]
        return fitting[0] if len(fitting) == 1 else None

    async def _fetch_keys(self, metadata: ProviderMetadata) -> None:
        response = await self._get(metadata.jwks_uri, "jwks")
        try:
            document = msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            log.error("vneid_jwks_malformed")
            raise VneidUnavailable() from exc
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            log.error("vneid_jwks_malformed")
            raise VneidUnavailable()
        published: dict[str | None, dict[str, Any]] = {}
        for jwk in keys:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            kid = jwk.get("kid")
            if kid is None and None in published:
                # several keys without kid: none of them can be picked safely ({} fits nothing)
                published[None] = {}
                continue
            if kid is None or isinstance(kid, str):
                published[kid] = jwk
        self._keys = published

    # plumbing ----------------------------------------------------------------------------

    async def _get(self, url: str, step: str) -> httpx.Response:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("vneid_unreachable", extra={"step": step, "reason": repr(exc)})
            raise VneidUnavailable() from exc
        if response.status_code != 200:
            level = logging.WARNING if response.status_code >= 500 else logging.ERROR
            log.log(level, "vneid_bad_status", extra={"step": step, "status": response.status_code})
            raise VneidUnavailable()
        return response


def _key_fits(jwk: dict[str, Any], alg: str) -> bool:
    if jwk.get("alg") not in (None, alg):
        return False
    if alg == "RS256":
        return jwk.get("kty") == "RSA"
    if alg == "ES256":
        return jwk.get("kty") == "EC" and jwk.get("crv") == "P-256"
    return False


def _token_error(response: httpx.Response) -> _TokenError:
    try:
        return msgspec.json.decode(response.content, type=_TokenError)
    except msgspec.DecodeError:
        return _TokenError(error=f"http_{response.status_code}")


def _token_invalid(reason: str, **details: str) -> VneidTokenInvalid:
    log.warning("vneid_token_invalid", extra={"reason": reason, **details})
    return VneidTokenInvalid()


def _identity_from(claims: dict[str, Any]) -> VneidIdentity:
    subject = claims.get("sub")
    citizen_id = claims.get("citizen_id")
    full_name = claims.get("name")
    # The CCCD number is a string: an integer would have lost its leading zero.
    if not isinstance(citizen_id, str) or not _CITIZEN_ID.fullmatch(citizen_id):
        raise _claims_invalid("citizen_id")
    if not isinstance(subject, str) or not subject:
        raise _claims_invalid("sub")
    if not isinstance(full_name, str) or not full_name.strip():
        raise _claims_invalid("name")
    level = claims.get("acr", claims.get("ial"))
    if isinstance(level, bool) or (level is not None and not isinstance(level, str | int)):
        level = None  # unusable assurance claim: treat as absent
    return VneidIdentity(
        subject=subject,
        citizen_id=citizen_id,
        full_name=full_name.strip(),
        birth_date=_birth_date(claims.get("birthdate")),
        identity_level=None if level is None else str(level),
    )


def _birth_date(value: Any) -> date | None:
    """OIDC ``birthdate``: YYYY-MM-DD; a year alone or 0000-MM-DD is valid but not a date.

    The claim is optional, so an unreadable one is dropped (and logged) rather than
    blocking a resident who cannot correct what VNeID holds."""
    if value is None:
        return None
    if isinstance(value, str):
        if _FULL_DATE.fullmatch(value) and not value.startswith("0000"):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        elif _PARTIAL_DATE.fullmatch(value):
            return None
    log.warning("vneid_birthdate_unreadable")
    return None


def _claims_invalid(claim: str) -> VneidClaimsInvalid:
    log.warning("vneid_claims_invalid", extra={"claim": claim})
    return VneidClaimsInvalid()
