"""Residents sign in with their phone number and a one-time code."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from app.accounts.models import OtpChallenge, RefreshToken, User
from app.core.clock import FixedClock
from tests.accounts.factories import new_phone, sent_code, sign_in_resident


async def test_first_sign_in_creates_a_level_1_resident(client, session, caplog):
    tokens = await sign_in_resident(client, caplog, phone="0912 345 678")
    assert tokens["token_type"] == "Bearer"
    me = await client.get("/api/v1/me", headers=tokens["headers"])
    assert me.status_code == 200
    body = me.json()
    assert body["phone"] == "+84912345678"
    assert body["kind"] == "resident"
    assert body["identity_level"] == 1


async def test_signing_in_again_reuses_the_account(client, caplog):
    phone = new_phone()
    first = await sign_in_resident(client, caplog, phone)
    second = await sign_in_resident(client, caplog, "+84" + phone[1:])
    assert first["user_id"] == second["user_id"]


async def test_code_is_stored_only_as_a_hash(client, session, caplog):
    caplog.set_level(logging.INFO, logger="city.sms")
    phone = new_phone()
    response = await client.post("/api/v1/auth/otp", json={"phone": phone})
    code = sent_code(caplog, response.json()["phone"])
    row = await session.scalar(select(OtpChallenge).where(OtpChallenge.phone == "+84" + phone[1:]))
    assert row is not None
    assert code.encode() not in row.code_hash and len(row.code_hash) == 32


async def test_invalid_phone_is_422_with_field_error(client):
    response = await client.post("/api/v1/auth/otp", json={"phone": "02412345678"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "phone_invalid"
    assert problem["errors"][0]["field"] == "phone"


async def test_wrong_code_counts_attempts_and_names_what_is_left(client, caplog, session):
    caplog.set_level(logging.INFO, logger="city.sms")
    phone = new_phone()
    sent = await client.post("/api/v1/auth/otp", json={"phone": phone})
    code = sent_code(caplog, sent.json()["phone"])
    wrong = "000000" if code != "000000" else "111111"
    response = await client.post(
        "/api/v1/auth/otp/verify",
        json={"phone": phone, "code": wrong},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "otp_invalid"
    assert "4 attempts left" in response.json()["detail"]
    attempts = await session.scalar(
        select(OtpChallenge.attempts).where(OtpChallenge.phone == sent.json()["phone"])
    )
    assert attempts == 1


async def test_brute_force_locks_the_code_after_five_tries(client, caplog):
    caplog.set_level(logging.INFO, logger="city.sms")
    phone = new_phone()
    sent = await client.post("/api/v1/auth/otp", json={"phone": phone})
    code = sent_code(caplog, sent.json()["phone"])
    wrong = [c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c != code]
    statuses = []
    for guess in wrong[:5]:
        r = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": guess})
        statuses.append((r.status_code, r.json()["code"]))
    assert statuses[:4] == [(400, "otp_invalid")] * 4
    assert statuses[4] == (429, "otp_too_many_attempts")
    # even the right code no longer works from here, and the answer says why (issue 17,
    # item 15: it used to say that no code was ever sent)
    r = await client.post(
        "/api/v1/auth/otp/verify",
        json={"phone": phone, "code": code},
        headers={"Accept-Language": "en"},
    )
    assert r.status_code == 400 and r.json()["code"] == "otp_spent"
    assert "Request a new code" in r.json()["detail"]
    assert "No code was sent" not in r.json()["detail"]
    vi = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": code})
    assert vi.json()["detail"].startswith("Mã xác thực này đã bị vô hiệu")


async def test_expired_code_is_refused(client, app, caplog):
    caplog.set_level(logging.INFO, logger="city.sms")
    phone = new_phone()
    sent = await client.post("/api/v1/auth/otp", json={"phone": phone})
    code = sent_code(caplog, sent.json()["phone"])
    real_clock = app.state.clock
    app.state.clock = FixedClock(real_clock.now() + timedelta(minutes=5, seconds=1))
    try:
        r = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": code})
    finally:
        app.state.clock = real_clock
    assert r.status_code == 400
    assert r.json()["code"] == "otp_expired"


async def test_a_new_code_replaces_the_old_one(client, caplog):
    caplog.set_level(logging.INFO, logger="city.sms")
    phone = new_phone()
    first = await client.post("/api/v1/auth/otp", json={"phone": phone})
    old = sent_code(caplog, first.json()["phone"])
    await client.post("/api/v1/auth/otp", json={"phone": phone})
    new = sent_code(caplog, first.json()["phone"])
    if old != new:
        r = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": old})
        assert r.status_code == 400
    r = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": new})
    assert r.status_code == 200


async def test_requests_are_rate_limited_per_phone(client, session):
    phone = new_phone()
    for _ in range(3):
        assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    r = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) > 0
    # the refused request wrote nothing
    count = await session.scalar(
        select(func.count())
        .select_from(OtpChallenge)
        .where(OtpChallenge.phone == "+84" + phone[1:])
    )
    assert count == 3


async def test_requests_are_rate_limited_per_ip(settings, database):
    """A fresh app whose per-IP limit is 2: the third phone from the same IP is refused."""
    import msgspec

    from app.main import create_app
    from tests.conftest import running

    strict = msgspec.structs.replace(
        settings, otp_rate_per_ip="2/minute", redis_prefix=settings.redis_prefix + ":ip"
    )
    application = create_app(strict)
    async with running(application) as other:
        codes = [
            (await other.post("/api/v1/auth/otp", json={"phone": new_phone()})).status_code
            for _ in range(3)
        ]
    assert codes == [202, 202, 429]


async def test_unknown_fields_and_bad_types_are_refused(client):
    r = await client.post("/api/v1/auth/otp", json={"phone": new_phone(), "admin": True})
    assert r.status_code == 400
    assert r.json()["code"] == "validation_failed"
    r = await client.post("/api/v1/auth/otp/verify", json={"phone": new_phone(), "code": "12ab56"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "code"
    r = await client.post(
        "/api/v1/auth/otp", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_errors_speak_vietnamese_by_default_and_english_on_request(client):
    vi = await client.post("/api/v1/auth/otp", json={"phone": "12345678"})
    en = await client.post(
        "/api/v1/auth/otp",
        json={"phone": "12345678"},
        headers={"Accept-Language": "en-US,en;q=0.9"},
    )
    assert vi.json()["detail"].startswith("Số điện thoại")
    assert en.json()["detail"].startswith("The phone number")
    assert vi.headers["content-language"] == "vi" and en.headers["content-language"] == "en"


async def test_verify_without_request_writes_no_account(client, session):
    phone = new_phone()
    r = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": "123456"})
    assert r.status_code == 400 and r.json()["code"] == "otp_not_requested"
    assert await session.scalar(select(User.id).where(User.phone == "+84" + phone[1:])) is None
    assert await session.scalar(select(func.count()).select_from(RefreshToken)) == 0
