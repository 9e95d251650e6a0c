"""Staff two-factor sign-in, TOTP RFC 6238 (issue 22 item 3), through the JSON API on the
real database and Redis: enrolment read back as an authenticator app reads it, sign-in
with a code or a recovery code, replay, clock drift, the rate limits, the challenge's
life, the role that requires it, an admin's reset, RFC 6238's own test vectors and the
sealed seed."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import msgspec
import pyotp
import pytest
import segno
from sqlalchemy import select, text

from app.accounts import totp
from app.accounts.models import StaffRecoveryCode, StaffSecondFactor
from app.core.audit import AuditEntry
from app.core.clock import FixedClock
from app.core.sealed import SealBroken, seal, unseal
from tests.accounts.factories import STAFF_PASSWORD, create_staff

WARD = "ubnd-00004"
LOGIN = "/api/v1/auth/staff/login"
VERIFY = "/api/v1/auth/staff/second-factor"
ENROL = "/api/v1/auth/staff/second-factor/enrolment"
MINE = "/api/v1/me/second-factor"

# RFC 6238 Appendix B: the SHA-1 seed and its 8-digit codes at these Unix times
RFC_SEED = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


def from_address(app, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://testserver.local",
    )


def new_address() -> str:
    """An address of its own per test: the limits count per address in the run's Redis."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture
async def clock(app):
    real = app.state.clock
    # ten minutes back, at a step's first second: the access tokens issued on this clock
    # are checked against the real time (valid 15 minutes), and steps are whole
    start = int(real.now().timestamp()) // 30 * 30 - 600
    fixed = FixedClock(datetime.fromtimestamp(start, UTC))
    app.state.clock = fixed
    yield fixed
    app.state.clock = real


@pytest.fixture
def configure(app):
    """Change settings for one test (the app reads app.state.settings per request)."""
    original = app.state.settings

    def change(**values):
        app.state.settings = msgspec.structs.replace(app.state.settings, **values)

    yield change
    app.state.settings = original


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def password_step(http, email: str) -> httpx.Response:
    r = await http.post(LOGIN, json={"email": email, "password": STAFF_PASSWORD})
    assert r.status_code == 200, r.text
    return r


async def signed_in(http, email: str) -> dict:
    r = await password_step(http, email)
    assert "access_token" in r.json(), r.json()
    return r.json()


def authenticator(uri: str) -> pyotp.TOTP:
    """What an authenticator app makes of the enrolment's otpauth:// URI."""
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    return parsed


async def enrolled(http, email: str, clock) -> tuple[pyotp.TOTP, list[str], dict]:
    """A staff member (no role requiring it) enrols by choice; returns the app's TOTP,
    the recovery codes and the session used."""
    tokens = await signed_in(http, email)
    started = await http.post(f"{MINE}/enrolment", headers=bearer(tokens))
    assert started.status_code == 200, started.text
    app_totp = authenticator(started.json()["otpauth_uri"])
    confirmed = await http.post(
        f"{MINE}/enrolment/confirm",
        json={"code": app_totp.at(clock.now())},
        headers=bearer(tokens),
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(timedelta(seconds=30))  # the confirming step's code is spent
    return app_totp, confirmed.json()["recovery_codes"], tokens


async def second_step(http, email: str, **body) -> httpx.Response:
    challenge = (await password_step(http, email)).json()
    assert challenge["status"] == "second_factor_required", challenge
    return await http.post(VERIFY, json={"challenge_token": challenge["challenge_token"], **body})


async def audit_actions(app, user_email: str) -> list[str]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.action FROM audit_log a JOIN users u ON u.id = a.actor_id"
                " WHERE u.email = :email ORDER BY a.id"
            ),
            {"email": user_email},
        )
        return [r[0] for r in rows]


async def user_id_of(app, email: str) -> uuid.UUID:
    async with app.state.engine.connect() as conn:
        return (
            await conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email})
        ).scalar_one()


# ---------------------------------------------------------------- RFC 6238 vectors


@pytest.mark.parametrize(("unix_time", "code"), RFC_VECTORS)
def test_rfc_6238_vectors_verify_through_our_verifier(unix_time, code):
    """Appendix B's SHA-1 codes (8 digits) at their times, and not one step later."""
    at = datetime.fromtimestamp(unix_time, UTC)
    assert totp.matching_step(RFC_SEED, code, at, digits=8) == unix_time // 30
    assert totp.matching_step(RFC_SEED, code, at, digits=8, window=0) == unix_time // 30
    assert totp.matching_step(RFC_SEED, code, at + timedelta(seconds=60), digits=8) is None


async def test_rfc_6238_vectors_sign_in_through_the_api_at_the_apps_clock(app, client, clock):
    """The vectors' last six digits sign a staff member in at those times (the app's
    clock), their seed stored sealed as enrolment stores it."""
    email = await create_staff(app, [("officer", WARD)])
    _, _, _ = await enrolled(client, email, clock)
    settings = app.state.settings
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE staff_second_factors SET seed_sealed = :s, last_used_step = NULL"
                " WHERE user_id = (SELECT id FROM users WHERE email = :e)"
            ),
            {"s": seal(settings.data_encryption_key, totp.SEAL_PURPOSE, RFC_SEED), "e": email},
        )
    for unix_time, code in RFC_VECTORS:
        clock.set(datetime.fromtimestamp(unix_time, UTC))
        r = await second_step(client, email, code=code[-6:])
        assert r.status_code == 200, (unix_time, r.text)
        assert r.json()["access_token"]


# ---------------------------------------------------------------- enrolment


async def test_enrolment_end_to_end_as_an_authenticator_app_reads_it(app, client, clock, session):
    email = await create_staff(app, [("officer", WARD)])
    tokens = await signed_in(client, email)  # no factor, no role requiring one
    status = await client.get(MINE, headers=bearer(tokens))
    assert status.status_code == 200
    assert status.json() == {
        "active": False,
        "pending": False,
        "required": False,
        "confirmed_at": None,
        "recovery_codes_left": 0,
    }
    assert status.headers["cache-control"] == "no-store"

    started = await client.post(f"{MINE}/enrolment", headers=bearer(tokens))
    assert started.status_code == 200, started.text
    body = started.json()
    assert started.headers["cache-control"] == "no-store"
    # Google Authenticator's Key Uri Format: otpauth://totp/<issuer>:<account>?secret=&issuer=
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/iCity:{email}"
    query = parse_qs(uri.query)
    assert query["secret"] == [body["secret"]] and query["issuer"] == ["iCity"]
    assert len(base64.b32decode(body["secret"])) == 20  # 160 bits
    # the QR code is the URI's (segno draws the same modules for the same text)
    dark = re.compile(r'class="qrline"[^>]* d="([^"]+)"')
    expected = segno.make(body["otpauth_uri"], error="m").svg_inline(scale=5)
    assert dark.search(body["qr_svg"]).group(1) == dark.search(expected).group(1)
    assert body["qr_svg"].startswith('<svg role="img"') and "<title>iCity</title>" in body["qr_svg"]
    app_totp = authenticator(body["otpauth_uri"])
    assert (app_totp.digits, app_totp.interval, app_totp.digest().name) == (6, 30, "sha1")

    # a wrong code: 422 naming the field; the factor stays pending, nothing else written
    wrong = f"{(int(app_totp.at(clock.now())) + 1) % 10**6:06d}"
    r = await client.post(f"{MINE}/enrolment/confirm", json={"code": wrong}, headers=bearer(tokens))
    assert r.status_code == 422 and r.json()["code"] == "second_factor_enrolment_code_invalid"
    assert r.json()["errors"][0]["field"] == "code"
    assert (await client.get(MINE, headers=bearer(tokens))).json()["pending"] is True
    r = await client.post(
        f"{MINE}/enrolment/confirm", json={"code": "12ab56"}, headers=bearer(tokens)
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    # a password sign-in still gives tokens: a pending factor is no factor
    assert "access_token" in (await password_step(client, email)).json()

    # the app's current code turns it on; ten recovery codes, once
    r = await client.post(
        f"{MINE}/enrolment/confirm",
        json={"code": app_totp.at(clock.now())},
        headers=bearer(tokens),
    )
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    status = (await client.get(MINE, headers=bearer(tokens))).json()
    assert status["active"] and status["recovery_codes_left"] == 10
    assert "auth.second_factor_enrolled" in await audit_actions(app, email)
    # stored hashed: no code appears in the table
    hashes = (await session.scalars(select(StaffRecoveryCode.code_hash))).all()
    assert all(c.replace("-", "").encode() not in h for h in hashes for c in codes)

    # a second enrolment while one is active: 409, the active one untouched
    again = await client.post(f"{MINE}/enrolment", headers=bearer(tokens))
    assert again.status_code == 409 and again.json()["code"] == "second_factor_already_active"

    # from now on the password alone gives a challenge, and the app's code the session
    clock.advance(timedelta(seconds=30))
    challenge = await password_step(client, email)
    assert challenge.headers["cache-control"] == "no-store"
    assert challenge.json()["status"] == "second_factor_required"
    assert challenge.json()["next_step"] == VERIFY and challenge.json()["expires_in"] == 300
    assert "access_token" not in challenge.json()
    r = await client.post(
        VERIFY,
        json={
            "challenge_token": challenge.json()["challenge_token"],
            "code": app_totp.at(clock.now()),
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    me = await client.get("/api/v1/me", headers=bearer(r.json()))
    assert me.status_code == 200 and me.json()["email"] == email
    assert (await audit_actions(app, email))[-2:] == [
        "auth.sign_in_password",
        "auth.sign_in_second_factor",
    ]


async def test_the_seed_is_sealed_in_the_database(app, client, clock, session):
    email = await create_staff(app, [("officer", WARD)])
    app_totp, _, _ = await enrolled(client, email, clock)
    user_id = await user_id_of(app, email)
    stored = await session.scalar(
        select(StaffSecondFactor.seed_sealed).where(StaffSecondFactor.user_id == user_id)
    )
    assert stored.startswith("v1.") and app_totp.secret not in stored
    async with app.state.engine.connect() as conn:  # not anywhere in the row, any column
        row = (
            await conn.execute(
                text("SELECT row_to_json(f)::text FROM staff_second_factors f WHERE user_id = :u"),
                {"u": user_id},
            )
        ).scalar_one()
    assert app_totp.secret not in row and app_totp.secret.lower() not in row.lower()
    key = app.state.settings.data_encryption_key
    assert unseal(key, totp.SEAL_PURPOSE, stored) == app_totp.secret
    with pytest.raises(SealBroken):
        unseal(key, "agency-secret", stored)  # another purpose's key does not open it


# ---------------------------------------------------------------- sign-in


async def test_a_code_works_once(app, client, clock):
    client = from_address(app, new_address())  # its failures count for this address only
    email = await create_staff(app, [("officer", WARD)])
    app_totp, _, _ = await enrolled(client, email, clock)
    code = app_totp.at(clock.now())
    assert (await second_step(client, email, code=code)).status_code == 200
    replayed = await second_step(client, email, code=code)
    assert replayed.status_code == 401 and replayed.json()["code"] == "second_factor_code_used"
    assert replayed.headers["content-type"].startswith("application/problem+json")
    # the step before is older still: refused too; the next step's code works
    older = await second_step(client, email, code=app_totp.at(clock.now() - timedelta(seconds=30)))
    assert older.status_code == 401 and older.json()["code"] == "second_factor_code_used"
    clock.advance(timedelta(seconds=30))
    assert (await second_step(client, email, code=app_totp.at(clock.now()))).status_code == 200
    failures = [a for a in await audit_actions(app, email) if a == "auth.second_factor_failed"]
    assert len(failures) == 2


async def test_clock_drift_of_one_step_is_accepted_and_two_are_not(app, client, clock):
    client = from_address(app, new_address())  # its failures count for this address only
    email = await create_staff(app, [("officer", WARD)])
    app_totp, _, _ = await enrolled(client, email, clock)
    clock.advance(timedelta(minutes=5))
    now = clock.now()
    step = timedelta(seconds=30)
    # a phone two steps behind, then one behind, one ahead, two ahead (in that order:
    # each accepted step must be newer than the last)
    results = []
    for offset in (-2, -1, 1, 2):
        r = await second_step(client, email, code=app_totp.at(now + offset * step))
        results.append((offset, r.status_code, r.json().get("code")))
    assert results == [
        (-2, 401, "second_factor_invalid"),
        (-1, 200, None),
        (1, 200, None),
        (2, 401, "second_factor_invalid"),
    ]


async def test_recovery_codes_work_once_and_regenerating_replaces_them(app, client, clock):
    client = from_address(app, new_address())  # its failures count for this address only
    email = await create_staff(app, [("officer", WARD)])
    app_totp, codes, tokens = await enrolled(client, email, clock)
    r = await second_step(client, email, recovery_code=codes[0].upper())  # case does not matter
    assert r.status_code == 200, r.text
    again = await second_step(client, email, recovery_code=codes[0])
    assert again.status_code == 401 and again.json()["code"] == "recovery_code_used"
    wrong = await second_step(client, email, recovery_code="aaaaa-aaaaa")
    assert wrong.status_code == 401 and wrong.json()["code"] == "recovery_code_invalid"
    both = await second_step(client, email, code=app_totp.at(clock.now()), recovery_code=codes[1])
    assert both.status_code == 422 and both.json()["code"] == "second_factor_code_missing"
    neither = await second_step(client, email)
    assert neither.status_code == 422
    status = (await client.get(MINE, headers=bearer(tokens))).json()
    assert status["recovery_codes_left"] == 9

    # new codes for a current code; the old ones (used or not) stop working
    bad = await client.post(
        f"{MINE}/recovery-codes", json={"code": "000000"}, headers=bearer(tokens)
    )
    assert bad.status_code == 401 and bad.json()["code"] == "second_factor_invalid"
    r = await client.post(
        f"{MINE}/recovery-codes", json={"code": app_totp.at(clock.now())}, headers=bearer(tokens)
    )
    assert r.status_code == 200, r.text
    fresh = r.json()["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    old = await second_step(client, email, recovery_code=codes[1])
    assert old.status_code == 401 and old.json()["code"] == "recovery_code_invalid"
    assert (await second_step(client, email, recovery_code=fresh[0])).status_code == 200
    assert "auth.recovery_codes_regenerated" in await audit_actions(app, email)


async def test_the_challenge_expires_and_works_once(app, client, clock):
    client = from_address(app, new_address())  # its failures count for this address only
    email = await create_staff(app, [("officer", WARD)])
    app_totp, _, _ = await enrolled(client, email, clock)
    challenge = (await password_step(client, email)).json()["challenge_token"]
    clock.advance(timedelta(seconds=301))
    late = await client.post(
        VERIFY, json={"challenge_token": challenge, "code": app_totp.at(clock.now())}
    )
    assert late.status_code == 401 and late.json()["code"] == "second_factor_challenge_expired"

    challenge = (await password_step(client, email)).json()["challenge_token"]
    code = app_totp.at(clock.now())
    assert (
        await client.post(VERIFY, json={"challenge_token": challenge, "code": code})
    ).status_code == 200
    clock.advance(timedelta(seconds=30))
    spent = await client.post(
        VERIFY, json={"challenge_token": challenge, "code": app_totp.at(clock.now())}
    )
    assert spent.status_code == 401 and spent.json()["code"] == "second_factor_challenge_invalid"
    forged = await client.post(VERIFY, json={"challenge_token": "x" * 43, "code": "123456"})
    assert forged.status_code == 401 and forged.json()["code"] == "second_factor_challenge_invalid"


async def test_wrong_codes_are_limited_per_account_and_per_address(app, client, clock, configure):
    configure(
        staff_second_factor_failures_per_account="3/15minutes",
        staff_second_factor_failures_per_ip="5/15minutes",
    )
    first = await create_staff(app, [("officer", WARD)])
    second = await create_staff(app, [("officer", WARD)])
    first_totp, _, _ = await enrolled(client, first, clock)
    second_totp, _, _ = await enrolled(client, second, clock)
    attacker = from_address(app, new_address())

    # three wrong codes for the first account, then even the right one waits
    statuses = [(await second_step(attacker, first, code="000000")).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    limited = await second_step(attacker, first, code=first_totp.at(clock.now()))
    assert limited.status_code == 429 and limited.json()["code"] == "second_factor_rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 900
    elsewhere = from_address(app, new_address())
    assert (
        await second_step(elsewhere, first, code=first_totp.at(clock.now()))
    ).status_code == 429  # the account's limit holds from every address
    failed = [a for a in await audit_actions(app, first) if a == "auth.second_factor_failed"]
    assert len(failed) == 3

    # the address: two more failures on another account fill its five, then it waits
    assert (await second_step(attacker, second, code="000000")).status_code == 401
    assert (await second_step(attacker, second, code="000000")).status_code == 401
    blocked = await second_step(attacker, second, code=second_totp.at(clock.now()))
    assert blocked.status_code == 429 and blocked.headers["retry-after"]
    # while the second account, from its own address, signs in
    assert (
        await second_step(elsewhere, second, code=second_totp.at(clock.now()))
    ).status_code == 200


# ---------------------------------------------------------------- required by role


async def test_a_role_that_requires_it_gets_only_enrolment(app, client, clock, configure):
    configure(staff_totp_required_roles="manager,admin")
    email = await create_staff(app, [("manager", WARD)])
    r = await password_step(client, email)
    body = r.json()
    assert body["status"] == "second_factor_enrolment_required" and "access_token" not in body
    assert body["next_step"] == ENROL
    token = body["challenge_token"]
    # the enrolment token opens nothing else: not the code step, not the API
    r = await client.post(VERIFY, json={"challenge_token": token, "code": "123456"})
    assert r.status_code == 401 and r.json()["code"] == "second_factor_challenge_invalid"
    assert (await client.get(MINE, headers={"Authorization": f"Bearer {token}"})).status_code == 401

    started = await client.post(ENROL, json={"challenge_token": token})
    assert started.status_code == 200 and started.headers["cache-control"] == "no-store"
    app_totp = authenticator(started.json()["otpauth_uri"])
    wrong = await client.post(f"{ENROL}/confirm", json={"challenge_token": token, "code": "000000"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "code"
    done = await client.post(
        f"{ENROL}/confirm", json={"challenge_token": token, "code": app_totp.at(clock.now())}
    )
    assert done.status_code == 200, done.text
    assert len(done.json()["recovery_codes"]) == 10
    me = await client.get("/api/v1/me", headers=bearer(done.json()["tokens"]))
    assert me.status_code == 200 and me.json()["roles"][0]["role"] == "manager"
    # the token worked once
    again = await client.post(ENROL, json={"challenge_token": token})
    assert again.status_code == 401
    # next time: a code
    clock.advance(timedelta(seconds=30))
    assert (await second_step(client, email, code=app_totp.at(clock.now()))).status_code == 200

    # an officer is not required: the password is enough
    officer = await create_staff(app, [("officer", WARD)])
    assert "access_token" in (await password_step(client, officer)).json()


# ---------------------------------------------------------------- admin reset


async def test_an_admin_resets_a_colleagues_second_factor(app, client, clock):
    officer = await create_staff(app, [("officer", WARD)])
    _, _, officer_tokens = await enrolled(client, officer, clock)
    officer_id = await user_id_of(app, officer)
    admin = await signed_in(client, await create_staff(app, [("admin", None)]))
    manager = await signed_in(client, await create_staff(app, [("manager", WARD)]))
    path = f"/api/v1/admin/staff/{officer_id}/second-factor"

    # refused: a manager, and an admin for their own; nothing changes
    r = await client.delete(path, headers=bearer(manager))
    assert r.status_code == 403 and r.json()["code"] == "second_factor_reset_forbidden"
    admin_id = uuid.UUID(admin["user_id"])
    own = await client.delete(
        f"/api/v1/admin/staff/{admin_id}/second-factor", headers=bearer(admin)
    )
    assert own.status_code == 403 and own.json()["code"] == "second_factor_reset_forbidden"
    unknown = await client.delete(
        f"/api/v1/admin/staff/{uuid.uuid4()}/second-factor", headers=bearer(admin)
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "staff_member_not_found"
    assert (await client.get(MINE, headers=bearer(officer_tokens))).json()["active"] is True

    r = await client.delete(path, headers=bearer(admin))
    assert r.status_code == 204, r.text
    # the colleague's sessions are over at once; the factor and its codes are gone
    revoked = await client.get(MINE, headers=bearer(officer_tokens))
    assert revoked.status_code == 401 and revoked.json()["code"] == "token_revoked"
    async with app.state.engine.connect() as conn:
        left = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM staff_second_factors WHERE user_id = :u)"
                    " + (SELECT count(*) FROM staff_recovery_codes WHERE user_id = :u)"
                ),
                {"u": officer_id},
            )
        ).scalar_one()
        entry = (
            await conn.execute(
                select(AuditEntry.actor_id, AuditEntry.object_type, AuditEntry.object_id).where(
                    AuditEntry.action == "staff.second_factor_reset"
                )
            )
        ).one()
    assert left == 0
    assert entry == (admin_id, "user", str(officer_id))
    # a second reset: nothing to reset
    again = await client.delete(path, headers=bearer(admin))
    assert again.status_code == 404 and again.json()["code"] == "second_factor_not_found"
    # the officer signs in with the password again (no role requires it) and may re-enrol
    assert "access_token" in (await password_step(client, officer)).json()


async def test_the_operator_resets_the_last_admins_factor_from_the_command_line(
    app, client, clock, capsys
):
    """The one case the console cannot serve: the only admin lost their phone and codes.
    The CLI acts as the system through the same service: factor gone, sessions revoked,
    audited; an unknown address is refused with exit 1 and changes nothing."""
    import asyncio

    from app.cli import main

    admin = await create_staff(app, [("admin", None)])
    _, _, tokens = await enrolled(client, admin, clock)
    admin_id = await user_id_of(app, admin)

    with pytest.raises(SystemExit) as unknown:
        await asyncio.to_thread(main, ["staff-second-factor-reset", "nobody@example.test"])
    assert unknown.value.code == 1
    assert "staff_member_not_found" in capsys.readouterr().err
    assert (await client.get(MINE, headers=bearer(tokens))).json()["active"] is True

    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, ["staff-second-factor-reset", admin.upper()])
    assert done.value.code == 0
    assert "second factor removed" in capsys.readouterr().out
    revoked = await client.get(MINE, headers=bearer(tokens))
    assert revoked.status_code == 401 and revoked.json()["code"] == "token_revoked"
    async with app.state.engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT count(*) FROM staff_second_factors WHERE user_id = :u"),
                {"u": admin_id},
            )
        ).scalar_one()
        entry = (
            await conn.execute(
                select(AuditEntry.actor_kind, AuditEntry.object_id).where(
                    AuditEntry.action == "staff.second_factor_reset"
                )
            )
        ).one()
    assert left == 0
    assert entry == ("system", str(admin_id))
    # nothing left to reset: refused
    with pytest.raises(SystemExit) as again:
        await asyncio.to_thread(main, ["staff-second-factor-reset", admin])
    assert again.value.code == 1
    assert "second_factor_not_found" in capsys.readouterr().err


async def test_spent_and_expired_challenges_are_purged_a_day_later(app, client, clock):
    """The worker's purge of sign-in data (every 10 minutes) takes the password-to-code
    steps too, a day after they expired (kept that long for abuse investigations)."""
    from app.accounts.tasks import delete_expired_sign_in_data
    from app.core import db

    email = await create_staff(app, [("officer", WARD)])
    await enrolled(client, email, clock)
    await password_step(client, email)
    await password_step(client, email)
    user_id = await user_id_of(app, email)

    async def challenges() -> int:
        async with app.state.engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT count(*) FROM staff_sign_in_challenges WHERE user_id = :u"),
                    {"u": user_id},
                )
            ).scalar_one()

    assert await challenges() == 2
    for later, left in ((timedelta(hours=23), 2), (timedelta(days=1, minutes=10), 0)):
        async with db.transaction(app.state.sessionmaker, None) as session:
            await delete_expired_sign_in_data(session, clock.now() + later)
        assert await challenges() == left
