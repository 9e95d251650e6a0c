"""A web console session is its own kind of sign-in session (issue 17, item 2): it lives
CONSOLE_SESSION_HOURS, not the app's 30 days, and /api/v1/auth/refresh refuses it, so a
stolen cookie cannot be traded for API tokens."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.accounts.models import RefreshToken
from app.core.clock import FixedClock
from tests.accounts.factories import STAFF_PASSWORD, create_staff
from tests.conftest import client_for

WARD = "ubnd-00004"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def console_sign_in(app, email: str):
    browser = client_for(app)
    form = await browser.get("/console/login")
    r = await browser.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "email": email, "password": STAFF_PASSWORD},
    )
    assert r.status_code == 303, r.text
    return browser, browser.cookies.get("city_console")


async def test_a_console_session_lives_console_session_hours(client, app, session):
    email = await create_staff(app, [("officer", WARD)])
    real = app.state.clock
    clock = FixedClock(real.now())
    app.state.clock = clock
    try:
        signed_in_at = clock.now()
        browser, _ = await console_sign_in(app, email)
        row = await session.scalar(select(RefreshToken))
        assert row.kind == "console"
        hours = app.state.settings.console_session_hours
        assert row.expires_at == signed_in_at + timedelta(hours=hours)

        clock.advance(timedelta(hours=hours) - timedelta(minutes=1))
        assert (await browser.get("/console/queue")).status_code == 200
        clock.advance(timedelta(minutes=2))
        late = await browser.get("/console/queue")
        assert late.status_code == 303 and late.headers["location"].startswith("/console/login")
    finally:
        app.state.clock = real


async def test_the_console_cookie_is_not_a_refresh_token(client, app, session):
    email = await create_staff(app, [("officer", WARD)])
    browser, cookie = await console_sign_in(app, email)
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": cookie})
    assert r.status_code == 401 and r.json()["code"] == "refresh_token_invalid"
    # refused, not spent: the console session itself goes on
    assert (await browser.get("/console/queue")).status_code == 200


async def test_an_app_refresh_token_is_not_a_console_cookie(client, app):
    email = await create_staff(app, [("officer", WARD)])
    tokens = (
        await client.post(
            "/api/v1/auth/staff/login", json={"email": email, "password": STAFF_PASSWORD}
        )
    ).json()
    browser = client_for(app)
    browser.cookies.set(
        "city_console", tokens["refresh_token"], domain="testserver.local", path="/console"
    )
    assert (await browser.get("/console/queue")).status_code == 303
