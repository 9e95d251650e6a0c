"""Limits that stop attackers without locking people out (issue 17, item 5; item 15).

Staff sign-in counts failures only and slows an address down instead of locking the
account; OTP codes are spent per (code, client address), so a stranger can neither kill
a resident's live code nor use up the resident's daily code requests."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import httpx
import msgspec
import pytest

from app.core.clock import FixedClock
from tests.accounts.factories import STAFF_PASSWORD, create_staff, new_phone, sent_code
from tests.conftest import running

WARD = "ubnd-00004"
LOGIN = "/api/v1/auth/staff/login"


def from_address(app, address: str) -> httpx.AsyncClient:
    """A client whose TCP peer is ``address`` (no proxy in between)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://testserver.local",
    )


@pytest.fixture
async def fixed_clock(app):
    real = app.state.clock
    clock = FixedClock(real.now())
    app.state.clock = clock
    yield clock
    app.state.clock = real


async def test_correct_staff_sign_ins_are_never_limited(client, app):
    email = await create_staff(app, [("officer", WARD)])
    for _ in range(15):
        r = await client.post(LOGIN, json={"email": email, "password": STAFF_PASSWORD})
        assert r.status_code == 200, r.text


async def test_an_address_that_fails_is_slowed_down_and_others_are_not(client, app, fixed_clock):
    email = await create_staff(app, [("officer", WARD)])
    attacker = from_address(app, "198.51.100.66")
    wrong = {"email": email, "password": "guess"}
    assert [(await attacker.post(LOGIN, json=wrong)).status_code for _ in range(3)] == [401] * 3
    slowed = await attacker.post(LOGIN, json=wrong)
    assert slowed.status_code == 429 and slowed.json()["code"] == "login_slowed_down"
    assert slowed.headers["retry-after"] == "1"
    # the staff member at the office signs in meanwhile
    office = from_address(app, "192.0.2.10")
    ok = await office.post(LOGIN, json={"email": email, "password": STAFF_PASSWORD})
    assert ok.status_code == 200
    # the delay grows with each further failure: 1, 2, 4 ... seconds
    waits = []
    for _ in range(3):
        fixed_clock.advance(timedelta(seconds=int(slowed.headers["retry-after"])))
        assert (await attacker.post(LOGIN, json=wrong)).status_code == 401
        slowed = await attacker.post(LOGIN, json=wrong)
        assert slowed.status_code == 429
        waits.append(int(slowed.headers["retry-after"]))
    assert waits == [2, 4, 8]
    # and a right password from the slowed address works once it has waited: no lock
    fixed_clock.advance(timedelta(seconds=8))
    assert (
        await attacker.post(LOGIN, json={**wrong, "password": STAFF_PASSWORD})
    ).status_code == 200


async def test_nobody_can_keep_an_account_locked_out(client, app, fixed_clock):
    """Many addresses guessing at admin@ (past STAFF_LOGIN_ACCOUNT_FAILURES): each is
    slowed from its first failure, the capped delay holds, and the admin, from an address
    without failures, signs in at once."""
    settings = app.state.settings
    email = await create_staff(app, [("admin", None)])
    wrong = {"email": email, "password": "guess"}
    for i in range(settings.staff_login_account_failures):
        bot = from_address(app, f"203.0.113.{100 + i}")
        assert (await bot.post(LOGIN, json=wrong)).status_code == 401
    bot = from_address(app, "203.0.113.100")
    r = await bot.post(LOGIN, json=wrong)
    assert r.status_code == 429 and int(r.headers["retry-after"]) <= 1
    fresh_bot = from_address(app, "198.51.100.200")
    assert (await fresh_bot.post(LOGIN, json=wrong)).status_code == 401
    assert (await fresh_bot.post(LOGIN, json=wrong)).status_code == 429
    admin = from_address(app, "192.0.2.20")
    assert (
        await admin.post(LOGIN, json={"email": email, "password": STAFF_PASSWORD})
    ).status_code == 200
    # the slowest address never waits more than STAFF_LOGIN_MAX_DELAY_SECONDS
    for _ in range(10):
        fixed_clock.advance(timedelta(seconds=settings.staff_login_max_delay_seconds))
        assert (await bot.post(LOGIN, json=wrong)).status_code == 401
    r = await bot.post(LOGIN, json=wrong)
    assert int(r.headers["retry-after"]) == settings.staff_login_max_delay_seconds


async def request_code(http, phone: str):
    return await http.post("/api/v1/auth/otp", json={"phone": phone})


async def verify(http, phone: str, code: str):
    return await http.post(
        "/api/v1/auth/otp/verify",
        json={"phone": phone, "code": code},
        headers={"Accept-Language": "en"},
    )


async def test_a_stranger_cannot_kill_a_residents_live_code(client, app, caplog):
    caplog.set_level(logging.INFO, logger="city.sms")
    phone = new_phone()
    resident = from_address(app, "192.0.2.50")
    sent = await request_code(resident, phone)
    code = sent_code(caplog, sent.json()["phone"])
    stranger = from_address(app, "198.51.100.77")
    guesses = [g for g in ("000000", "111111", "222222", "333333", "444444", "555555") if g != code]
    answers = [(await verify(stranger, phone, g)).json()["code"] for g in guesses[:5]]
    assert answers == ["otp_invalid"] * 4 + ["otp_too_many_attempts"]
    # the stranger is done with this code, even if they now guessed right ...
    assert (await verify(stranger, phone, code)).json()["code"] == "otp_spent"
    # ... and the resident's code still works from the resident's phone
    assert (await verify(resident, phone, code)).status_code == 200


async def test_a_stranger_cannot_use_up_a_residents_code_requests(client, app):
    phone = new_phone()
    stranger = from_address(app, "198.51.100.78")
    assert [(await request_code(stranger, phone)).status_code for _ in range(4)] == [
        202,
        202,
        202,
        429,
    ]
    resident = from_address(app, "192.0.2.51")
    assert (await request_code(resident, phone)).status_code == 202


async def test_wrong_codes_are_limited_per_address(settings, database):
    """A fresh app whose per-address verify limit is 3 failures: a fourth wrong code from
    the same address, whatever the phone, is refused before it is even checked."""
    strict = msgspec.structs.replace(
        settings,
        otp_verify_failures_per_ip="3/minute",
        redis_prefix=f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}",
    )
    from app.main import create_app

    application = create_app(strict)
    async with running(application):
        guesser = from_address(application, "198.51.100.90")
        phones = [new_phone() for _ in range(4)]
        for phone in phones:
            assert (await request_code(guesser, phone)).status_code == 202
        # (000000 might be a real code: one in a million)
        statuses = [(await verify(guesser, p, "000000")).status_code for p in phones[:3]]
        assert statuses == [400, 400, 400]
        fourth = await verify(guesser, phones[3], "000000")
        assert fourth.status_code == 429 and fourth.json()["code"] == "rate_limited"
        assert int(fourth.headers["retry-after"]) > 0


async def test_guessing_from_many_addresses_spends_the_code_for_everyone(
    settings, database, caplog
):
    """OTP_MAX_ATTEMPTS_PER_CODE bounds a distributed guesser: then the code is spent
    everywhere, and says so."""
    caplog.set_level(logging.INFO, logger="city.sms")
    strict = msgspec.structs.replace(
        settings,
        otp_max_attempts_per_code=3,
        redis_prefix=f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}",
    )
    from app.main import create_app

    application = create_app(strict)
    async with running(application):
        phone = new_phone()
        resident = from_address(application, "192.0.2.60")
        sent = await request_code(resident, phone)
        code = sent_code(caplog, sent.json()["phone"])
        wrong = "000000" if code != "000000" else "111111"
        answers = [
            (await verify(from_address(application, f"198.51.100.{i}"), phone, wrong)).json()
            for i in range(1, 4)
        ]
        assert [a["code"] for a in answers] == [
            "otp_invalid",
            "otp_invalid",
            "otp_too_many_attempts",
        ]
        assert answers[0]["detail"] == "The code is wrong. 2 attempts left."
        spent = await verify(resident, phone, code)
        assert spent.status_code == 400 and spent.json()["code"] == "otp_spent"
