"""Push sending: the real firebase-admin SDK against the FCM stand-in over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import firebase_admin
import httpx
import jwt
import pytest
from firebase_admin import messaging

from app.core.push import (
    IN_FLIGHT,
    MAX_BATCH,
    MAX_RESPONSE_BYTES,
    FcmPushSender,
    LogPushSender,
    PushConfigError,
    PushMessage,
    UnavailablePushSender,
    fcm_proxy,
    https_proxy_for,
    make_push_sender,
    parse_retry_after,
    sdk_internals_problems,
    to_fcm_message,
)
from app.settings import Settings
from tests.standins.fcm import (
    GOOGLE_TOKEN_AUDIENCE,
    JWT_BEARER_GRANT,
    FcmStandin,
    fcm_standin,  # noqa: F401  (the fixture)
    fcm_tls_standin,  # noqa: F401  (the fixture)
    validate_send_body,
)

GOOGLE_FCM_URL = "https://fcm.googleapis.com/v1/projects/{0}/messages:send"
DEAD_TOKEN_URI = "http://127.0.0.1:9/token"  # nothing listens on the discard port


def push(token: str = "device-token-0001", **fields: object) -> PushMessage:
    values: dict[str, object] = {"title": "Phản ánh đã được xử lý", "body": "Chi tiết bên trong"}
    values.update(fields)
    return PushMessage(token=token, **values)  # type: ignore[arg-type]


@pytest.fixture
def make_settings(fcm_standin: FcmStandin, tmp_path: Path) -> Callable[..., Settings]:
    """Settings whose service account (fresh key, trusted by the stand-in) lives in
    tmp_path and whose FCM_URL points at the stand-in."""

    def make(*, project_id: str = "city-app-test", **overrides: str) -> Settings:
        path = tmp_path / f"service-account-{project_id}.json"
        fcm_standin.write_service_account(path, project_id=project_id)
        values = {"firebase_credentials_file": str(path), "fcm_url": fcm_standin.send_url_template}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def sender(make_settings: Callable[..., Settings]) -> AsyncIterator[FcmPushSender]:
    fcm = FcmPushSender(make_settings())
    yield fcm
    await fcm.close()


# -- what goes on the wire -----------------------------------------------------------------


async def test_message_arrives_with_token_notification_data_and_platform_options(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    message = push(
        data={"complaint_id": "0b6f", "kind": "resolved"},
        collapse_key="complaint-0b6f",
        badge=3,
    )

    [result] = await sender.send([message])

    [request] = fcm_standin.send_requests
    assert request.path == "/v1/projects/city-app-test/messages:send"
    assert request.status == 200
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-goog-api-format-version"] == "2"  # the SDK's FCM headers
    assert headers["x-firebase-client"].startswith("fire-admin-python/")
    assert "fire-admin/" in headers["x-goog-api-client"]  # the SDK's metrics header
    # bodies are read raw: FCM must not be invited to compress them
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"].startswith("city-push firebase-admin/")
    assert result.ok and not result.permanent and result.error_code is None
    assert result.message_id == request.response["name"]
    body = request.json()
    assert set(body) == {"message"}  # not validate_only
    wire = body["message"]
    assert wire["token"] == "device-token-0001"
    assert "fid" not in wire
    assert wire["notification"] == {"title": message.title, "body": message.body}
    assert wire["data"] == {"complaint_id": "0b6f", "kind": "resolved"}
    assert wire["android"] == {
        "priority": "high",
        "collapse_key": "complaint-0b6f",
        "notification": {"sound": "default"},
    }
    assert wire["apns"]["headers"] == {
        "apns-priority": "10",
        "apns-push-type": "alert",
        "apns-collapse-id": "complaint-0b6f",
    }
    assert wire["apns"]["payload"] == {"aps": {"badge": 3, "sound": "default"}}
    assert fcm_standin.delivered == [wire]


async def test_normal_priority_silent_push_clearing_the_badge(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    [result] = await sender.send([push(priority="normal", sound=None, badge=0)])

    assert result.ok
    wire = fcm_standin.send_requests[0].json()["message"]
    assert wire["android"] == {"priority": "normal"}
    assert wire["apns"]["headers"] == {"apns-priority": "5", "apns-push-type": "alert"}
    assert wire["apns"]["payload"] == {"aps": {"badge": 0}}
    assert "data" not in wire


def test_message_uses_the_token_target_without_deprecation_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fcm_message = to_fcm_message(push())
    encoded = messaging._MessagingService.encode_message(fcm_message)
    assert encoded["token"] == "device-token-0001"
    assert "fid" not in encoded


async def test_oauth_token_is_fetched_with_a_signed_grant_and_used_as_bearer(
    sender: FcmPushSender, fcm_standin: FcmStandin, make_settings: Callable[..., Settings]
) -> None:
    await sender.send([push("device-a"), push("device-b")])
    await sender.send([push("device-c")])

    [token_request] = fcm_standin.token_requests  # cached across sends
    assert token_request.status == 200
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = token_request.form()
    assert form["grant_type"] == JWT_BEARER_GRANT
    claims = jwt.decode(form["assertion"], options={"verify_signature": False})
    assert claims["aud"] == GOOGLE_TOKEN_AUDIENCE  # whatever token_uri says
    assert claims["iss"].endswith("@city-app-test.iam.gserviceaccount.com")
    assert "https://www.googleapis.com/auth/cloud-platform" in claims["scope"].split()
    [access_token] = fcm_standin.issued_access_tokens
    assert len(fcm_standin.send_requests) == 3
    assert all(r.bearer == access_token for r in fcm_standin.send_requests)
    assert all(r.status == 200 for r in fcm_standin.send_requests)


async def test_expired_access_token_is_refreshed_by_the_sdk(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    await sender.send([push()])
    fcm_standin.revoke_access_tokens()  # FCM now answers 401 to the cached token

    [result] = await sender.send([push()])

    assert result.ok
    assert len(fcm_standin.issued_access_tokens) == 2
    assert [r.status for r in fcm_standin.send_requests] == [200, 401, 200]


# -- the one place that points the SDK elsewhere --------------------------------------------


async def test_fcm_url_and_token_uri_from_settings_redirect_the_real_sdk(
    fcm_standin: FcmStandin, tmp_path: Path
) -> None:
    path = fcm_standin.write_service_account(
        tmp_path / "sa.json", project_id="redirected", token_uri=DEAD_TOKEN_URI
    )
    original_file = path.read_text()
    settings = Settings(
        firebase_credentials_file=str(path),
        fcm_url=fcm_standin.send_url_template,
        fcm_token_uri=fcm_standin.token_uri,
    )
    fcm = FcmPushSender(settings)
    try:
        assert fcm.send_url == fcm_standin.send_url_template.format("redirected")
        # Only this app's service was made with the override; the class keeps Google's URL.
        assert messaging._MessagingService.FCM_URL == GOOGLE_FCM_URL

        [result] = await fcm.send([push()])
    finally:
        await fcm.close()

    assert result.ok, result
    assert len(fcm_standin.token_requests) == 1  # not the dead token_uri in the file
    assert [r.path for r in fcm_standin.send_requests] == ["/v1/projects/redirected/messages:send"]
    assert path.read_text() == original_file
    assert json.loads(original_file)["token_uri"] == DEAD_TOKEN_URI


async def test_without_overrides_the_sdk_keeps_googles_send_url(
    make_settings: Callable[..., Settings],
) -> None:
    fcm = FcmPushSender(make_settings(fcm_url=""))
    try:
        assert fcm.send_url == GOOGLE_FCM_URL.format("city-app-test")
    finally:
        await fcm.close()


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:9099/v1/projects/city/messages:send",  # no {0}
        "http://127.0.0.1:9099/v1/projects/{project}/messages:send",
        "127.0.0.1:9099/v1/projects/{0}/messages:send",
    ],
)
def test_fcm_url_must_be_a_template_with_the_project_id(
    make_settings: Callable[..., Settings], template: str
) -> None:
    with pytest.raises(ValueError, match="FCM_URL"):
        FcmPushSender(make_settings(fcm_url=template))


async def test_senders_are_separate_named_apps(
    make_settings: Callable[..., Settings], fcm_standin: FcmStandin
) -> None:
    first = FcmPushSender(make_settings(project_id="project-one"))
    second = FcmPushSender(make_settings(project_id="project-two"))
    try:
        assert first.app_name != second.app_name
        assert firebase_admin.get_app(first.app_name) is not None

        [one] = await first.send([push("device-1")])
        await first.close()
        [two] = await second.send([push("device-2")])
    finally:
        await first.close()
        await second.close()

    assert one.ok and two.ok
    assert sorted(r.path for r in fcm_standin.send_requests) == [
        "/v1/projects/project-one/messages:send",
        "/v1/projects/project-two/messages:send",
    ]
    with pytest.raises(ValueError):
        firebase_admin.get_app(first.app_name)


# -- answers, per token ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fcm_error", "code", "permanent", "retry_after", "attempts"),
    [
        ("UNREGISTERED", "unregistered", True, None, 1),
        ("INVALID_ARGUMENT", "invalid_argument", True, None, 1),
        ("SENDER_ID_MISMATCH", "sender_id_mismatch", True, None, 1),
        ("QUOTA_EXCEEDED", "quota_exceeded", False, 42.0, 1),
        ("UNAVAILABLE", "unavailable", False, None, 1),
        ("INTERNAL", "internal", False, None, 1),
        # FCM answers 401 for our APNs credentials; the SDK's auth flow takes any 401 for
        # an expired token and refreshes and resends twice before giving up.
        ("THIRD_PARTY_AUTH_ERROR", "third_party_auth_error", False, None, 3),
    ],
)
async def test_fcm_errors_map_to_results_per_token(
    sender: FcmPushSender,
    fcm_standin: FcmStandin,
    fcm_error: str,
    code: str,
    permanent: bool,
    retry_after: float | None,
    attempts: int,
) -> None:
    fcm_standin.fail("bad-token", fcm_error, retry_after="42" if retry_after else None)

    results = await sender.send([push("good-before"), push("bad-token"), push("good-after")])

    assert [r.token for r in results] == ["good-before", "bad-token", "good-after"]
    good_before, bad, good_after = results
    assert good_before.ok and good_after.ok
    assert not bad.ok
    assert bad.message_id is None
    assert bad.error_code == code
    assert bad.permanent is permanent
    assert bad.retry_after == retry_after
    assert bad.retryable is (code in {"quota_exceeded", "unavailable", "internal"})
    assert len(fcm_standin.sends_to("bad-token")) == attempts


async def test_retry_after_is_reported_for_unavailable_too(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    fcm_standin.fail("busy", "UNAVAILABLE", retry_after="7")

    [result] = await sender.send([push("busy")])

    assert (result.error_code, result.retry_after, result.retryable) == ("unavailable", 7.0, True)


async def test_an_invalid_payload_is_not_blamed_on_the_token(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    [result] = await sender.send([push(data={"from": "reserved by FCM"})])

    assert fcm_standin.send_requests[0].status == 400
    assert result.error_code == "invalid_argument"
    assert result.permanent is False
    assert result.retryable is False


async def test_a_refused_service_account_fails_every_message_without_sending(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    fcm_standin.fail_token_requests(400, "invalid_grant")

    results = await sender.send([push("a"), push("b")])

    assert [(r.token, r.ok, r.error_code, r.permanent) for r in results] == [
        ("a", False, "unauthenticated", False),
        ("b", False, "unauthenticated", False),
    ]
    assert len(fcm_standin.token_requests) == 1
    assert fcm_standin.send_requests == []


# -- who retries ----------------------------------------------------------------------------


async def test_the_sdk_does_not_retry_by_default(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    fcm_standin.fail("flaky", "UNAVAILABLE", times=1)

    [result] = await sender.send([push("flaky")])

    assert result.error_code == "unavailable" and result.retryable
    assert len(fcm_standin.sends_to("flaky")) == 1  # the job layer retries, not the SDK


# -- batches --------------------------------------------------------------------------------


async def test_a_full_batch_of_500_keeps_its_order(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    tokens = [f"device-{i:04d}" for i in range(MAX_BATCH)]
    fcm_standin.fail("device-0250", "UNREGISTERED")

    results = await sender.send([push(t) for t in tokens])

    assert [r.token for r in results] == tokens
    assert [r.ok for r in results].count(False) == 1
    assert results[250].error_code == "unregistered"
    assert len(fcm_standin.send_requests) == MAX_BATCH
    assert len({r.message_id for r in results if r.ok}) == MAX_BATCH - 1


async def test_concurrent_callers_share_one_sender(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    first = [push(f"first-{i}") for i in range(120)]
    second = [push(f"second-{i}") for i in range(120)]

    one, two = await asyncio.gather(sender.send(first), sender.send(second))

    assert [r.token for r in one] == [m.token for m in first]
    assert [r.token for r in two] == [m.token for m in second]
    assert all(r.ok for r in one + two)
    assert len(fcm_standin.send_requests) == 240


async def test_connections_are_kept_alive_and_bounded_by_in_flight(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    batches = [[push(f"b{b}-{i}") for i in range(250)] for b in range(3)]

    results = await asyncio.gather(*(sender.send(batch) for batch in batches))
    [again] = await sender.send([push("later")])

    assert all(r.ok for batch in results for r in batch) and again.ok
    sends = fcm_standin.send_requests
    assert len(sends) == 751
    ports = {r.client_port for r in sends}
    assert len(ports) == IN_FLIGHT  # 750 requests on 100 connections, none opened twice
    assert sends[-1].client_port in ports  # the later send reused one of them
    assert {r.http_version for r in sends} == {"HTTP/1.1"}


async def test_concurrent_401s_share_one_new_access_token(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    await sender.send([push("warm-up")])
    fcm_standin.revoke_access_tokens()

    results = await sender.send([push(f"device-{i}") for i in range(50)])

    assert all(r.ok for r in results)
    assert len(fcm_standin.issued_access_tokens) == 2  # one refresh for 50 rejected sends
    retried = [r for r in fcm_standin.send_requests if r.status == 200][1:]
    assert len(retried) == 50
    assert {r.bearer for r in retried} == {fcm_standin.issued_access_tokens[1]}


async def test_fcm_unreachable_is_a_retryable_unavailable(
    fcm_standin: FcmStandin, make_settings: Callable[..., Settings]
) -> None:
    # FCM unreachable: a sender pointed at a port where nothing listens
    dead = FcmPushSender(make_settings(fcm_url="http://127.0.0.1:9/v1/projects/{0}/messages:send"))
    try:
        [result] = await dead.send([push("device-1")])
    finally:
        await dead.close()

    assert (result.ok, result.error_code, result.retryable) == (False, "unavailable", True)
    assert fcm_standin.send_requests == []  # the token came from the stand-in, no send


async def test_more_than_500_messages_are_refused_before_sending(
    sender: FcmPushSender, fcm_standin: FcmStandin
) -> None:
    too_many = [push(f"device-{i}") for i in range(MAX_BATCH + 1)]

    with pytest.raises(ValueError, match="500"):
        await sender.send(too_many)
    with pytest.raises(ValueError, match="500"):
        await LogPushSender().send(too_many)
    assert fcm_standin.requests == []


async def test_an_empty_batch_sends_nothing(sender: FcmPushSender, fcm_standin: FcmStandin) -> None:
    assert await sender.send([]) == []
    assert fcm_standin.requests == []


async def test_dry_run_sends_validate_only(
    make_settings: Callable[..., Settings], fcm_standin: FcmStandin
) -> None:
    fcm = FcmPushSender(make_settings(), dry_run=True)
    try:
        [result] = await fcm.send([push()])
    finally:
        await fcm.close()

    assert result.ok
    assert fcm_standin.send_requests[0].json()["validate_only"] is True
    assert fcm_standin.delivered == []


async def test_a_closed_sender_refuses_to_send(make_settings: Callable[..., Settings]) -> None:
    fcm = FcmPushSender(make_settings())
    await fcm.close()
    await fcm.close()  # idempotent

    with pytest.raises(RuntimeError):
        await fcm.send([push()])


# -- the log backend and the choice ---------------------------------------------------------


async def test_log_sender_reports_success_and_logs_no_body_or_data_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="city.push")
    message = push(
        "fcm-registration-token-ABC123",
        body="Nguyễn Văn A, 12 Hàng Bông",
        data={"complaint_id": "secret-value-42"},
        collapse_key="c1",
    )

    results = await LogPushSender().send([message, push("other-token-XYZ789")])

    assert [r.ok for r in results] == [True, True]
    assert all(r.message_id and r.message_id.startswith("log:") for r in results)
    assert len({r.message_id for r in results}) == 2
    records = [r for r in caplog.records if r.name == "city.push"]
    assert len(records) == 2
    first = records[0]
    assert first.token == "…ABC123"  # type: ignore[attr-defined]
    assert first.title == message.title  # type: ignore[attr-defined]
    assert first.data_keys == ["complaint_id"]  # type: ignore[attr-defined]
    logged = " ".join(str(value) for r in records for value in vars(r).values())
    assert "Nguyễn" not in logged and "Hàng Bông" not in logged
    assert "secret-value-42" not in logged
    assert "fcm-registration-token" not in logged


async def test_make_push_sender_picks_the_backend_from_settings(
    make_settings: Callable[..., Settings],
) -> None:
    assert isinstance(make_push_sender(Settings()), LogPushSender)

    fcm = make_push_sender(make_settings())
    try:
        assert isinstance(fcm, FcmPushSender)
    finally:
        await fcm.close()


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Mon, 05 Jan 2026 08:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Mon, 05 Jan 2026 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- the stand-in is as strict as FCM ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": {"token": "t"}, "dry_run": True}, "dry_run"),
        ({"message": {"token": "t", "topic": "news"}}, "message"),
        ({"message": {"notification": {"title": "x"}}}, "message"),
        ({"message": {"token": "t", "data": {"n": 1}}}, "message.data[n]"),
        ({"message": {"token": "t", "data": {"google.x": "1"}}}, "message.data.google.x"),
        ({"message": {"token": "t", "badge": 1}}, "message.badge"),
        (
            {"message": {"token": "t", "android": {"priority": "urgent"}}},
            "message.android.priority",
        ),
        ({"message": {"token": "t", "validate_only": True}}, "message.validate_only"),
        ({"message": {"token": "t"}, "validate_only": "yes"}, "validate_only"),
    ],
)
def test_standin_rejects_what_fcm_rejects(body: dict[str, object], field: str) -> None:
    assert field in [f for f, _ in validate_send_body(body)]


def test_standin_accepts_what_the_sdk_sends() -> None:
    encoded = messaging._MessagingService.encode_message(
        to_fcm_message(push(data={"k": "v"}, collapse_key="c", badge=1))
    )
    assert validate_send_body({"message": encoded, "validate_only": True}) == []


async def test_standin_refuses_sends_without_its_access_token(fcm_standin: FcmStandin) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            fcm_standin.send_url_template.format("city-app-test"),
            json={"message": {"token": "t"}},
            headers={"Authorization": "Bearer made-up"},
        )
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


# -- the SDK internals the sender relies on (firebase-admin is pinned to their minor) -------


def test_the_sdk_internals_the_sender_relies_on_are_as_expected() -> None:
    problems = sdk_internals_problems()

    assert problems == [], (
        f"firebase-admin {firebase_admin.__version__} changed internals that "
        f"app/core/push.py relies on: {problems}"
    )
    assert firebase_admin.__version__.startswith("7.7."), (
        f"firebase-admin {firebase_admin.__version__}: app/core/push.py was checked against "
        "7.7.x; read its internals again (sdk_internals_problems) and move the pin in "
        "pyproject.toml"
    )


def test_a_changed_sdk_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from firebase_admin import _http_client

    monkeypatch.setattr(messaging._MessagingService, "FCM_URL", None)
    monkeypatch.delattr(_http_client, "METRICS_HEADERS")

    problems = sdk_internals_problems()

    assert any("FCM_URL" in p for p in problems), problems
    assert any("METRICS_HEADERS" in p for p in problems), problems


# -- TLS: whom the sender trusts ------------------------------------------------------------


def _tls_settings(standin: FcmStandin, tmp_path: Path, **overrides: str) -> Settings:
    path = standin.write_service_account(tmp_path / "sa-tls.json")  # token_uri: https
    values = {"firebase_credentials_file": str(path), "fcm_url": standin.send_url_template}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_an_fcm_with_a_certificate_from_an_unknown_ca_is_not_trusted(
    fcm_tls_standin: FcmStandin, tmp_path: Path
) -> None:
    fcm = FcmPushSender(_tls_settings(fcm_tls_standin, tmp_path))
    try:
        [result] = await fcm.send([push()])
    finally:
        await fcm.close()

    assert (result.ok, result.error_code, result.retryable) == (False, "unavailable", True)
    assert fcm_tls_standin.requests == []  # nothing got past the TLS handshake


async def test_fcm_ca_file_is_trusted_for_the_send_and_the_token(
    fcm_tls_standin: FcmStandin, tmp_path: Path
) -> None:
    assert fcm_tls_standin.ca_file
    settings = _tls_settings(fcm_tls_standin, tmp_path, fcm_ca_file=fcm_tls_standin.ca_file)
    fcm = FcmPushSender(settings)
    try:
        results = await fcm.send([push("device-a"), push("device-b")])
    finally:
        await fcm.close()

    assert [r.ok for r in results] == [True, True]
    assert len(fcm_tls_standin.token_requests) == 1
    assert len(fcm_tls_standin.send_requests) == 2


async def test_ssl_cert_file_is_trusted_when_fcm_ca_file_is_not_set(
    fcm_tls_standin: FcmStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fcm_tls_standin.ca_file
    monkeypatch.setenv("SSL_CERT_FILE", fcm_tls_standin.ca_file)
    for name in ("SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    fcm = FcmPushSender(_tls_settings(fcm_tls_standin, tmp_path))
    try:
        [result] = await fcm.send([push()])
    finally:
        await fcm.close()

    assert result.ok, result
    assert len(fcm_tls_standin.send_requests) == 1


def test_a_missing_fcm_ca_file_is_a_configuration_error(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with pytest.raises(PushConfigError, match="FCM_CA_FILE"):
        FcmPushSender(make_settings(fcm_ca_file=str(tmp_path / "nowhere.pem")))


# -- proxies --------------------------------------------------------------------------------


class ConnectProxy:
    """An HTTP proxy on loopback that only tunnels (CONNECT), as egress proxies do; it
    records what it was asked, can refuse with 407, and sends ``route``'s hosts to
    127.0.0.1 (so ``fcm.test`` reaches the stand-in)."""

    def __init__(self, refuse: bool = False, route: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.route = route
        self.asked: list[bytes] = []

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
        if host in self.route:
            host = "127.0.0.1"
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


def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


async def test_fcm_is_reached_through_an_http_connect_proxy_with_its_credentials(
    fcm_tls_standin: FcmStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fcm_tls_standin.ca_file
    _no_proxy_env(monkeypatch)
    proxy = ConnectProxy(route=("fcm.test",))
    proxy_url = await proxy.start()
    monkeypatch.setenv("HTTPS_PROXY", proxy_url.replace("http://", "http://push%40city:s%3Acret@"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the token endpoint: direct
    settings = _tls_settings(
        fcm_tls_standin,
        tmp_path,
        fcm_url=f"https://fcm.test:{fcm_tls_standin.port}/v1/projects/{{0}}/messages:send",
        fcm_ca_file=fcm_tls_standin.ca_file,
    )
    fcm = FcmPushSender(settings)
    try:
        results = [await fcm.send([push(f"device-{i}")]) for i in range(3)]
    finally:
        await fcm.close()
        await proxy.stop()

    assert all(r.ok for [r] in results), results
    [asked] = proxy.asked  # one tunnel, kept alive for the three sends
    assert asked.startswith(f"CONNECT fcm.test:{fcm_tls_standin.port} HTTP/1.1\r\n".encode())
    # the credentials in the proxy's URL, percent-decoded, as Basic
    assert b"proxy-authorization: basic " in asked.lower()
    assert b"Basic cHVzaEBjaXR5OnM6Y3JldA==\r\n" in asked
    assert len(fcm_tls_standin.send_requests) == 3
    assert {r.headers["host"] for r in fcm_tls_standin.send_requests} == {
        f"fcm.test:{fcm_tls_standin.port}"
    }


async def test_an_https_fcm_is_reached_through_the_https_proxy_of_the_environment(
    make_settings: Callable[..., Settings], fcm_standin: FcmStandin, monkeypatch
) -> None:
    _no_proxy_env(monkeypatch)
    proxy = ConnectProxy(refuse=True)  # an egress proxy that says no
    monkeypatch.setenv("HTTPS_PROXY", await proxy.start())
    fcm = FcmPushSender(make_settings(fcm_url="https://fcm.test/v1/projects/{0}/messages:send"))
    try:
        [result] = await fcm.send([push("device-1")])
    finally:
        await fcm.close()
        await proxy.stop()

    assert (result.error_code, result.retryable) == ("unavailable", True)
    [asked] = proxy.asked
    assert asked.startswith(b"CONNECT fcm.test:443 HTTP/1.1\r\n")
    assert fcm_standin.send_requests == []


def test_the_proxy_comes_from_the_environment_for_https_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fcm = "https://fcm.googleapis.com/v1/projects/{0}/messages:send"
    _no_proxy_env(monkeypatch)
    assert https_proxy_for(fcm) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert https_proxy_for(fcm) == "http://proxy.internal:3128"
    assert https_proxy_for("http://127.0.0.1:9099/v1/projects/{0}/messages:send") is None
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.internal:3129")
    assert fcm_proxy(fcm) == "https://proxy.internal:3129"  # TLS to the proxy: spoken
    monkeypatch.setenv("NO_PROXY", "localhost,.googleapis.com")
    assert https_proxy_for(fcm) is None


async def test_a_socks_proxy_is_refused_with_a_logged_error_and_pushes_wait(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _no_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:pw@127.0.0.1:1080")
    caplog.set_level(logging.ERROR, logger="city.push")
    fcm_settings = make_settings(fcm_url="")  # Google's https URL: the proxy applies

    with pytest.raises(PushConfigError, match="socks5"):
        FcmPushSender(fcm_settings)
    sender = make_push_sender(fcm_settings)
    [held] = await sender.send([push()])

    assert isinstance(sender, UnavailablePushSender)
    assert (held.ok, held.error_code, held.retryable) == (False, "unavailable", True)
    [record] = [r for r in caplog.records if r.getMessage() == "push_sender_misconfigured"]
    assert "HTTPS_PROXY=socks5://127.0.0.1:1080" in record.reason  # type: ignore[attr-defined]
    assert "pw" not in record.reason  # type: ignore[attr-defined]


async def test_the_api_starts_and_serves_when_the_push_settings_cannot_work(
    make_settings: Callable[..., Settings], settings: Settings, tmp_path: Path
) -> None:
    import msgspec

    from app.main import create_app
    from tests.conftest import client_for

    fcm_settings = make_settings(fcm_ca_file=str(tmp_path / "nowhere.pem"))
    application = create_app(
        msgspec.structs.replace(
            settings,
            firebase_credentials_file=fcm_settings.firebase_credentials_file,
            fcm_ca_file=fcm_settings.fcm_ca_file,
        )
    )
    async with application.lifespan(), client_for(application) as client:
        response = await client.get("/health/live")
        push_sender = application.state.push

    assert response.status_code == 200
    assert isinstance(push_sender, UnavailablePushSender)
    assert "FCM_CA_FILE" in push_sender.reason


async def test_the_api_starts_and_serves_behind_a_socks_proxy(
    make_settings: Callable[..., Settings],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY=socks5://...: the push sender refuses it with a logged reason (pushes
    wait), and nothing else stops the API (the identity provider's httpx client needs
    socksio, installed with httpx[socks])."""
    import msgspec

    from app.main import create_app
    from tests.conftest import client_for

    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    fcm_settings = make_settings()
    application = create_app(
        msgspec.structs.replace(
            settings, firebase_credentials_file=fcm_settings.firebase_credentials_file
        )
    )
    async with application.lifespan(), client_for(application) as client:
        response = await client.get("/health/live")
        push_sender = application.state.push

    assert response.status_code == 200
    assert isinstance(push_sender, UnavailablePushSender)
    assert "socks" in push_sender.reason.lower()


# -- answers the sender must survive --------------------------------------------------------

FCM_OK = b'{"name": "projects/city-app-test/messages/0:1"}'


class FakeFcm:
    """A loopback HTTP/1.1 server for FCM's send endpoint that misbehaves on cue: each
    request (head and Content-Length body) goes to ``answer``, which writes an answer and
    says whether to keep the connection. Counts connections and requests."""

    def __init__(self, answer: Callable[[int, int, asyncio.StreamWriter], bool]) -> None:
        self.answer = answer  # (connection number, request number on it, writer) -> keep?
        self.connections = 0
        self.requests: list[bytes] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/projects/{{0}}/messages:send"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, count = self.connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                count += 1
                if not self.answer(connection, count, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


def _ok(writer: asyncio.StreamWriter, body: bytes = FCM_OK) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
    )


async def test_an_answer_past_the_size_limit_is_refused_as_unavailable(
    make_settings: Callable[..., Settings], fcm_standin: FcmStandin
) -> None:
    def huge(connection: int, count: int, writer: asyncio.StreamWriter) -> bool:
        if count == 1:  # declared too long
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_RESPONSE_BYTES + 1)
            )
            return False
        # endless, chunked: a broken middlebox
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 2):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        return False

    server = FakeFcm(huge)
    url = await server.start()
    fcm = FcmPushSender(make_settings(fcm_url=url, fcm_token_uri=fcm_standin.token_uri))
    try:
        [declared] = await fcm.send([push("device-1")])
        [endless] = await fcm.send([push("device-2")])
    finally:
        await fcm.close()
        await server.stop()

    assert (declared.error_code, declared.retryable) == ("unavailable", True)
    assert (endless.error_code, endless.retryable) == ("unavailable", True)


async def test_a_stale_kept_alive_connection_is_replaced_without_failing_the_send(
    make_settings: Callable[..., Settings], fcm_standin: FcmStandin
) -> None:
    def stale_after_one(connection: int, count: int, writer: asyncio.StreamWriter) -> bool:
        if connection == 1 and count == 2:
            return False  # closed under the second request, nothing answered
        _ok(writer)
        return True

    server = FakeFcm(stale_after_one)
    url = await server.start()
    fcm = FcmPushSender(make_settings(fcm_url=url, fcm_token_uri=fcm_standin.token_uri))
    try:
        [first] = await fcm.send([push("device-1")])
        [second] = await fcm.send([push("device-2")])
    finally:
        await fcm.close()
        await server.stop()

    assert first.ok and second.ok, (first, second)
    assert server.connections == 2  # the second send went again, on a new connection
    assert [b"device-2" in r for r in server.requests] == [False, True, True]
