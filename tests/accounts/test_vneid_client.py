"""The VNeID client against a local OpenID Connect issuer, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest

from app.accounts.vneid import (
    VneidClaimsInvalid,
    VneidClient,
    VneidCodeInvalid,
    VneidIdentity,
    VneidTokenInvalid,
    VneidUnavailable,
    new_pkce,
)
from app.core import i18n
from app.core.errors import AppError
from app.settings import Settings, get_settings
from tests.standins.oidc import OidcIssuer, oidc_issuer  # noqa: F401

RESIDENT: dict[str, Any] = {
    "sub": "vneid-sub-0001",
    "name": "Nguyễn Thị Minh Khai",
    "citizen_id": "001190012345",
    "birthdate": "1990-05-17",
    "acr": "2",
}


def settings_for(issuer: OidcIssuer, **overrides: Any) -> Settings:
    values = {
        "oidc_issuer": issuer.issuer,
        "oidc_client_id": issuer.client_id,
        "oidc_client_secret": issuer.client_secret,
        "oidc_redirect_uri": issuer.redirect_uri,
        **overrides,
    }
    return msgspec.structs.replace(get_settings(), **values)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def client(oidc_issuer: OidcIssuer, http: httpx.AsyncClient) -> VneidClient:  # noqa: F811
    return VneidClient(settings_for(oidc_issuer), http)


def code_for(
    issuer: OidcIssuer, claims: dict[str, Any] = RESIDENT, nonce: str = "n-123"
) -> tuple[str, str]:
    """A fresh authorization code and the PKCE verifier that redeems it."""
    verifier, challenge = new_pkce()
    return issuer.issue_code(claims, nonce, challenge, issuer.redirect_uri), verifier


def assert_error(exc: AppError, status: int, code: str) -> None:
    assert (exc.status, exc.code) == (status, code)


# --- happy paths -------------------------------------------------------------------------


async def test_full_flow_through_authorize_returns_identity(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
    http: httpx.AsyncClient,
) -> None:
    verifier, challenge = new_pkce()
    url = await client.authorization_url("state-xyz", "nonce-abc", challenge)

    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{oidc_issuer.issuer}/authorize?")
    assert {k: v[0] for k, v in query.items()} == {
        "response_type": "code",
        "client_id": oidc_issuer.client_id,
        "redirect_uri": oidc_issuer.redirect_uri,
        "scope": "openid profile citizen_id",
        "state": "state-xyz",
        "nonce": "nonce-abc",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }

    oidc_issuer.login_as(RESIDENT)
    redirect = await http.get(url)  # the resident's browser, signing in at VNeID
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == oidc_issuer.redirect_uri
    back = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert back["state"] == "state-xyz"

    identity = await client.exchange(back["code"], verifier, "nonce-abc")

    assert identity == VneidIdentity(
        subject="vneid-sub-0001",
        citizen_id="001190012345",
        full_name="Nguyễn Thị Minh Khai",
        birth_date=date(1990, 5, 17),
        identity_level="2",
    )
    assert "001190012345" not in repr(identity)


async def test_optional_claims_may_be_absent_and_ial_stands_for_acr(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    claims = {"sub": "s-2", "name": "Trần Văn An", "citizen_id": "079085000001", "ial": 2}
    code, verifier = code_for(oidc_issuer, claims)

    identity = await client.exchange(code, verifier, "n-123")

    assert identity.birth_date is None
    assert identity.identity_level == "2"


async def test_discovery_and_keys_are_fetched_once(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    for _ in range(3):
        code, verifier = code_for(oidc_issuer)
        await client.exchange(code, verifier, "n-123")

    assert oidc_issuer.count("/.well-known/openid-configuration") == 1
    assert oidc_issuer.count("/jwks") == 1
    assert oidc_issuer.count("/token") == 3


async def test_rotated_key_is_fetched_once_more(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    code, verifier = code_for(oidc_issuer)
    await client.exchange(code, verifier, "n-123")
    oidc_issuer.rotate_key()

    code, verifier = code_for(oidc_issuer)
    identity = await client.exchange(code, verifier, "n-123")

    assert identity.subject == RESIDENT["sub"]
    assert oidc_issuer.count("/jwks") == 2


async def test_id_token_within_clock_leeway_is_accepted(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    oidc_issuer.misbehave(clock_skew=45)  # issuer's clock 45 s fast: iat in our future
    code, verifier = code_for(oidc_issuer)

    assert (await client.exchange(code, verifier, "n-123")).subject == RESIDENT["sub"]


def test_new_pkce_is_rfc7636_s256() -> None:
    verifier, challenge = new_pkce()

    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert new_pkce()[0] != verifier


# --- the code is refused -----------------------------------------------------------------


async def test_reused_code_is_refused(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    code, verifier = code_for(oidc_issuer)
    await client.exchange(code, verifier, "n-123")

    with pytest.raises(VneidCodeInvalid) as caught:
        await client.exchange(code, verifier, "n-123")
    assert_error(caught.value, 400, "vneid_code_invalid")


async def test_wrong_pkce_verifier_is_refused(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    code, _ = code_for(oidc_issuer)
    other_verifier, _ = new_pkce()

    with pytest.raises(VneidCodeInvalid) as caught:
        await client.exchange(code, other_verifier, "n-123")
    assert_error(caught.value, 400, "vneid_code_invalid")


async def test_code_issued_for_another_redirect_uri_is_refused(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    verifier, challenge = new_pkce()
    code = oidc_issuer.issue_code(RESIDENT, "n-123", challenge, "https://evil.example/cb")

    with pytest.raises(VneidCodeInvalid):
        await client.exchange(code, verifier, "n-123")


async def test_unknown_code_is_refused(client: VneidClient) -> None:
    verifier, _ = new_pkce()

    with pytest.raises(VneidCodeInvalid):
        await client.exchange("never-issued", verifier, "n-123")


async def test_wrong_client_secret_is_our_fault_not_the_residents(
    oidc_issuer: OidcIssuer,  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    client = VneidClient(settings_for(oidc_issuer, oidc_client_secret="wrong"), http)
    code, verifier = code_for(oidc_issuer)

    with pytest.raises(VneidUnavailable) as caught:
        await client.exchange(code, verifier, "n-123")
    assert_error(caught.value, 503, "vneid_unavailable")


# --- the ID token is rejected ------------------------------------------------------------


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        pytest.param({"audience": "another-client"}, "InvalidAudienceError", id="wrong-audience"),
        pytest.param(
            {"token_issuer": "https://evil.example"}, "InvalidIssuerError", id="wrong-iss"
        ),
        pytest.param({"expired": True}, "ExpiredSignatureError", id="expired"),
        pytest.param({"clock_skew": 600}, "ImmatureSignatureError", id="issued-in-the-future"),
        pytest.param({"bad_signature": True}, "InvalidSignatureError", id="bad-signature"),
        pytest.param({"unknown_kid": True}, "unknown_key", id="unknown-kid"),
        pytest.param({"algorithm": "none"}, "algorithm_not_allowed", id="alg-none"),
        pytest.param({"algorithm": "HS256"}, "algorithm_not_allowed", id="alg-hs256"),
        pytest.param({"nonce": "replayed-nonce"}, "nonce_mismatch", id="nonce-mismatch"),
        pytest.param({"omit_claims": ("nonce",)}, "nonce_mismatch", id="nonce-missing"),
        pytest.param({"omit_claims": ("exp",)}, "MissingRequiredClaimError", id="exp-missing"),
        pytest.param(
            {"claims": {"aud": ["other", "city-app-test"]}}, "azp_mismatch", id="multi-aud-no-azp"
        ),
        pytest.param({"claims": {"azp": "another-client"}}, "azp_mismatch", id="azp-mismatch"),
    ],
)
async def test_id_token_failing_verification_is_rejected(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
    caplog: pytest.LogCaptureFixture,
    misbehaviour: dict[str, Any],
    reason: str,
) -> None:
    oidc_issuer.misbehave(**misbehaviour)
    code, verifier = code_for(oidc_issuer)

    with pytest.raises(VneidTokenInvalid) as caught:
        await client.exchange(code, verifier, "n-123")
    assert_error(caught.value, 400, "vneid_token_invalid")
    logged = [r for r in caplog.records if r.getMessage() == "vneid_token_invalid"]
    assert [r.reason for r in logged] == [reason]


async def test_nonce_of_another_session_is_rejected(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    code, verifier = code_for(oidc_issuer, nonce="n-123")

    with pytest.raises(VneidTokenInvalid):
        await client.exchange(code, verifier, "n-456")


async def test_unknown_kid_refetches_keys_only_once(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    code, verifier = code_for(oidc_issuer)
    await client.exchange(code, verifier, "n-123")
    oidc_issuer.misbehave(unknown_kid=True)

    code, verifier = code_for(oidc_issuer)
    with pytest.raises(VneidTokenInvalid):
        await client.exchange(code, verifier, "n-123")
    assert oidc_issuer.count("/jwks") == 2


# --- the claims are unusable -------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"citizen_id": None}, id="missing"),
        pytest.param({"citizen_id": "00119001234"}, id="11-digits"),
        pytest.param({"citizen_id": "0011900123456"}, id="13-digits"),
        pytest.param({"citizen_id": "00119001234A"}, id="letter"),
        pytest.param({"citizen_id": "001190012345\n"}, id="trailing-newline"),
        pytest.param({"citizen_id": "００１１９００１２３４５"}, id="fullwidth-digits"),
        pytest.param({"citizen_id": 123190012345}, id="number-not-string"),
        pytest.param({"name": None}, id="name-missing"),
    ],
)
async def test_unusable_claims_are_rejected(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
    claims: dict[str, Any],
) -> None:
    resident = {**RESIDENT, **claims}
    resident = {k: v for k, v in resident.items() if v is not None}
    code, verifier = code_for(oidc_issuer, resident)

    with pytest.raises(VneidClaimsInvalid) as caught:
        await client.exchange(code, verifier, "n-123")
    assert_error(caught.value, 422, "vneid_claims_invalid")


async def test_citizen_id_dropped_by_the_issuer_is_rejected(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    oidc_issuer.misbehave(omit_claims=("citizen_id",))
    code, verifier = code_for(oidc_issuer)

    with pytest.raises(VneidClaimsInvalid):
        await client.exchange(code, verifier, "n-123")


async def test_unreadable_birthdate_is_dropped(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    code, verifier = code_for(oidc_issuer, {**RESIDENT, "birthdate": "17/05/1990"})

    assert (await client.exchange(code, verifier, "n-123")).birth_date is None


# --- the issuer is unavailable -----------------------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


async def test_issuer_down_is_unavailable(http: httpx.AsyncClient) -> None:
    client = VneidClient(
        msgspec.structs.replace(get_settings(), oidc_issuer=closed_port_url()), http
    )
    verifier, challenge = new_pkce()

    with pytest.raises(VneidUnavailable) as caught:
        await client.authorization_url("s", "n", challenge)
    assert_error(caught.value, 503, "vneid_unavailable")
    with pytest.raises(VneidUnavailable):
        await client.exchange("code", verifier, "n")


async def test_issuer_failing_after_discovery_is_unavailable(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    await client.discover()
    oidc_issuer.misbehave(server_error=503)
    code, verifier = code_for(oidc_issuer)

    with pytest.raises(VneidUnavailable):
        await client.exchange(code, verifier, "n-123")


async def test_issuer_5xx_on_discovery_is_unavailable_and_not_cached(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    oidc_issuer.misbehave(server_error=502)
    with pytest.raises(VneidUnavailable):
        await client.discover()

    oidc_issuer.reset()
    assert (await client.discover()).issuer == oidc_issuer.issuer


async def test_discovery_naming_another_issuer_is_refused(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    oidc_issuer.misbehave(discovery_issuer="https://evil.example")

    with pytest.raises(VneidUnavailable):
        await client.discover()


async def test_token_response_without_id_token_is_unavailable(
    oidc_issuer: OidcIssuer,  # noqa: F811
    client: VneidClient,
) -> None:
    oidc_issuer.misbehave(no_id_token=True)
    code, verifier = code_for(oidc_issuer)

    with pytest.raises(VneidUnavailable):
        await client.exchange(code, verifier, "n-123")


async def test_unconfigured_issuer_is_unavailable(http: httpx.AsyncClient) -> None:
    client = VneidClient(msgspec.structs.replace(get_settings(), oidc_issuer=""), http)

    with pytest.raises(VneidUnavailable):
        await client.discover()


async def test_client_owns_its_http_client_when_none_is_given(
    oidc_issuer: OidcIssuer,  # noqa: F811
) -> None:
    async with VneidClient(settings_for(oidc_issuer)) as client:
        code, verifier = code_for(oidc_issuer)
        assert (await client.exchange(code, verifier, "n-123")).subject == RESIDENT["sub"]


# --- messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["vneid_code_invalid", "vneid_token_invalid", "vneid_unavailable", "vneid_claims_invalid"],
)
def test_error_codes_have_vietnamese_and_english_messages(code: str) -> None:
    vi, en = i18n.translate(code, "vi"), i18n.translate(code, "en")

    assert vi != code and en != code and vi != en
    assert "VNeID" in vi and "VNeID" in en
