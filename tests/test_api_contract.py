"""Contract test: the committed OpenAPI document (``openapi/openapi.json``) against the
real app, served by granian over real HTTP.

Schemathesis generates requests for every documented operation (examples, coverage and
fuzzing phases; valid and invalid inputs) and checks each answer: never a 5xx, a status
and body that the document describes, and the documented content type. Errors are
documented as the ``default`` response (``application/problem+json``), which also covers
the 429s that rate limits give while fuzzing.

Authentication is real: a resident and a city admin are created through the app's own
models and services, and their access tokens are minted with ``issue_access_token``.
Operations that end the caller's session (``DELETE /api/v1/me``, ``POST
/api/v1/auth/logout``) get a brand-new resident for every case, so they never revoke the
token the other operations use. VNeID calls go to the OIDC stand-in on loopback.

A second test walks the success paths fuzzing cannot reach (a real unit, an area, a
refresh token, a device id, a VNeID round trip, a one-time code read from the server's
log) and validates those answers against the document too.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from sqlalchemy import select, text

from app.accounts import service
from app.accounts.models import User
from app.core import db
from app.core.auth import Principal, RoleGrant, issue_access_token
from tests.conftest import USER_TABLES
from tests.standins.oidc import OidcIssuer, shared_issuer

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "openapi" / "openapi.json"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# generated cases per operation in the fuzzing phase; raise it for a deeper local run
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "15"))
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
ADMIN_PASSWORD = "correct horse battery staple"
# operations whose success ends the caller's session: each case gets its own resident
SESSION_ENDING = {("DELETE", "/api/v1/me"), ("POST", "/api/v1/auth/logout")}
# the known reference data (tests/places/test_reference_data.py)
KNOWN_UNIT = "ubnd-00070"
HANOI_POINT = {"lat": 21.0285, "lon": 105.8542}  # Hoàn Kiếm

schema = schemathesis.openapi.from_path(str(DOCUMENT))


# ---------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    base_url: str
    log_path: Path
    oidc: OidcIssuer

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # the server and its worker are in a process group of their own (started below)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def live_server(database: str, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """granian serving ``app.main:create_app`` on a free loopback port, configured by the
    environment conftest set up (this run's database, Redis prefix, secrets)."""
    oidc = shared_issuer(request.config)
    port = _free_port()
    env = {
        **os.environ,
        "OIDC_ISSUER": oidc.issuer,
        "OIDC_CLIENT_ID": oidc.client_id,
        "OIDC_CLIENT_SECRET": oidc.client_secret,
        "OIDC_REDIRECT_URI": oidc.redirect_uri,
    }
    log = tempfile.NamedTemporaryFile(prefix="city-granian-", suffix=".log", delete=False)
    log_path = Path(log.name)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            *"--interface asgi --factory app.main:create_app --host 127.0.0.1".split(),
            *("--port", str(port), "--workers", "1"),
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()  # the child holds its own descriptor
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", log_path=log_path, oidc=oidc)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last = "no answer"
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"granian exited with {process.returncode} before it was ready:\n"
                    + server.output(),
                    pytrace=False,
                )
            try:
                ready = httpx.get(f"{server.base_url}/health/ready", timeout=2)
                if ready.status_code == 200:
                    break
                last = f"{ready.status_code} {ready.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"granian not ready after {STARTUP_TIMEOUT_SECONDS:.0f} s ({last}):\n"
                    + server.output(),
                    pytrace=False,
                )
            time.sleep(0.2)
        yield server
    finally:
        _stop(process)
        if process.returncode not in (0, -signal.SIGTERM):
            sys.stderr.write(f"granian ended with {process.returncode}:\n{server.output()}\n")
        if os.environ.get("CONTRACT_KEEP_LOG"):
            sys.stderr.write(f"granian output kept in {log_path}\n")
        else:
            log_path.unlink(missing_ok=True)


# ---------------------------------------------------------------- accounts and tokens


class _BackgroundLoop:
    """An event loop in a thread of its own, so the synchronous tests can use the app's
    async database code without touching pytest-asyncio's session loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Actors:
    """Who calls the API: a resident and a city admin, both real rows in ``users``."""

    def __init__(self, settings, loop: _BackgroundLoop) -> None:
        self.settings = settings
        self._loop = loop
        self.engine = db.make_engine(settings)
        self.sessionmaker = db.make_sessionmaker(engine=self.engine)
        self.resident_id = self.new_resident()
        self.admin_email = f"contract-admin-{uuid.uuid4().hex[:8]}@city.test"
        self.admin_id = loop.run(self._create_admin())
        self.resident = self._bearer(self.resident_id, "resident", 1)
        self.admin = self._bearer(self.admin_id, "staff", 0, roles=(RoleGrant("admin", None),))

    def _bearer(
        self, user_id: uuid.UUID, kind: str, level: int, roles: tuple[RoleGrant, ...] = ()
    ) -> dict[str, str]:
        principal = Principal(
            user_id=user_id, kind=kind, identity_level=level, sid=uuid.uuid4(), roles=roles
        )
        return {"Authorization": f"Bearer {issue_access_token(self.settings, principal)}"}

    async def _create_admin(self) -> uuid.UUID:
        async with db.transaction(self.sessionmaker, None) as session:
            user = await service.create_staff(
                session, self.admin_email, "Quản trị hợp đồng", ADMIN_PASSWORD, [("admin", None)]
            )
            return user.id

    async def _create_resident(self) -> uuid.UUID:
        user_id = uuid.uuid4()
        async with db.transaction(self.sessionmaker, None) as session:
            phone = "+8491" + f"{uuid.uuid4().int % 10**8:08d}"
            session.add(
                User(id=user_id, kind="resident", phone=phone, identity_level=1, locale="vi")
            )
        return user_id

    def new_resident(self) -> uuid.UUID:
        return self._loop.run(self._create_resident())

    def throwaway_resident(self) -> dict[str, str]:
        """A new resident's token, for a call that may end its session or account."""
        return self._bearer(self.new_resident(), "resident", 1)

    def headers_for(self, method: str, path: str, secured: bool) -> dict[str, str]:
        if not secured:
            return {}
        if (method.upper(), path) in SESSION_ENDING:
            return self.throwaway_resident()
        if path.startswith("/api/v1/admin/"):
            return self.admin
        return self.resident

    async def unit_ids(self) -> set[uuid.UUID]:
        async with self.sessionmaker() as session:
            return set(await session.scalars(text("SELECT id FROM units")))

    async def remove_units_except(self, keep: set[uuid.UUID]) -> None:
        """Units are shared reference data: drop the ones POST /admin/units created."""
        async with self.engine.begin() as conn:
            ids = [i for i in (await conn.scalars(text("SELECT id FROM units"))) if i not in keep]
            if ids:
                await conn.execute(
                    text("UPDATE units SET parent_id = NULL WHERE id = ANY(:ids)"), {"ids": ids}
                )
                await conn.execute(text("DELETE FROM units WHERE id = ANY(:ids)"), {"ids": ids})

    async def empty_user_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(USER_TABLES)} CASCADE"))


@pytest.fixture(scope="module")
def actors(settings, live_server: LiveServer) -> Iterator[Actors]:
    loop = _BackgroundLoop()
    try:
        people = Actors(settings, loop)
        reference_units = loop.run(people.unit_ids())
        try:
            yield people
        finally:
            loop.run(people.remove_units_except(reference_units))
            loop.run(people.empty_user_tables())
            loop.run(people.engine.dispose())
    finally:
        loop.close()


def _secured(case) -> bool:
    return bool(case.operation.definition.raw.get("security"))


# ---------------------------------------------------------------- generated cases


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
def test_api_honours_its_openapi_document(case, live_server: LiveServer, actors: Actors) -> None:
    headers = actors.headers_for(case.method, case.path, _secured(case))
    try:
        case.call_and_validate(
            base_url=live_server.base_url, headers=headers, checks=CHECKS, timeout=15
        )
    except Exception:
        tail = "\n".join(live_server.output().splitlines()[-40:])
        sys.stderr.write(f"--- granian output (last 40 lines) ---\n{tail}\n")
        raise


# ---------------------------------------------------------------- chosen cases
# Success paths random inputs do not reach, validated against the document like the
# generated cases, plus the exact status each one must have.


def call(
    live_server: LiveServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **case_data: Any,
):
    """One request built from the document's operation, sent and validated."""
    case = schema[path][method].Case(**case_data)
    return case.call_and_validate(
        base_url=live_server.base_url, headers=headers or {}, checks=CHECKS, timeout=15
    )


def sent_code(live_server: LiveServer, phone_e164: str) -> str:
    """The code in the last SMS the log sender wrote (to the server's output) for a phone."""
    from app.accounts.sms import mask_phone

    to = f'"to": "{mask_phone(phone_e164)}"'
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the SMS goes out after the commit
        lines = [line for line in live_server.output().splitlines() if to in line]
        if lines:
            return re.search(r"la (\d{6})", lines[-1])[1]
        time.sleep(0.05)
    raise AssertionError(f"no SMS logged for {phone_e164}")


def test_places_answer_for_real_codes_and_points(live_server: LiveServer) -> None:
    areas = call(live_server, "GET", "/api/v1/areas", query={"q": "Hoàn Kiếm"})
    assert areas.status_code == 200 and areas.json(), areas.text
    code = areas.json()[0]["code"]
    area = call(live_server, "GET", "/api/v1/areas/{code}", path_parameters={"code": code})
    assert area.status_code == 200 and area.json()["code"] == code
    point = call(live_server, "GET", "/api/v1/areas/lookup", query=HANOI_POINT)
    assert point.status_code == 200 and point.json()["code"] == "00070", point.text
    units = call(live_server, "GET", "/api/v1/units", headers={"Accept-Language": "en"})
    assert units.status_code == 200 and KNOWN_UNIT in {u["code"] for u in units.json()}
    assert call(live_server, "GET", "/api/v1/categories").status_code == 200


def test_resident_signs_in_by_code_and_manages_devices(
    live_server: LiveServer, actors: Actors
) -> None:
    phone = "091" + f"{uuid.uuid4().int % 10**7:07d}"
    sent = call(live_server, "POST", "/api/v1/auth/otp", body={"phone": phone})
    assert sent.status_code == 202, sent.text
    e164 = sent.json()["phone"]
    code = sent_code(live_server, e164)
    verify = {"phone": phone, "code": code}
    tokens = call(live_server, "POST", "/api/v1/auth/otp/verify", body=verify)
    assert tokens.status_code == 200, tokens.text
    me = {"Authorization": f"Bearer {tokens.json()['access_token']}"}

    area = {"home_area_code": "00070", "full_name": "Trần Văn Bình", "locale": "en"}
    patched = call(live_server, "PATCH", "/api/v1/me", me, body=area)
    assert patched.status_code == 200 and patched.json()["home_area_code"] == "00070"

    device = {"token": "fcm:" + uuid.uuid4().hex * 2, "platform": "android"}
    created = call(live_server, "POST", "/api/v1/me/devices", me, body=device)
    assert created.status_code == 201, created.text
    again = call(live_server, "POST", "/api/v1/me/devices", me, body=device)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    listed = call(live_server, "GET", "/api/v1/me/devices", me)
    assert [d["id"] for d in listed.json()] == [created.json()["id"]]
    exported = call(live_server, "GET", "/api/v1/me/export", me)
    assert exported.status_code == 200 and exported.json()["sessions"], exported.text
    device_path = {"device_id": created.json()["id"]}
    removed = call(
        live_server, "DELETE", "/api/v1/me/devices/{device_id}", me, path_parameters=device_path
    )
    assert removed.status_code == 204
    gone = call(
        live_server, "DELETE", "/api/v1/me/devices/{device_id}", me, path_parameters=device_path
    )
    assert gone.status_code == 404

    refreshed = call(
        live_server,
        "POST",
        "/api/v1/auth/refresh",
        body={"refresh_token": tokens.json()["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    fresh = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert call(live_server, "POST", "/api/v1/auth/logout", fresh).status_code == 204
    # the session is over: its access tokens are refused at once
    assert call(live_server, "GET", "/api/v1/me", fresh).status_code == 401

    # a resident deletes their account
    doomed = actors.throwaway_resident()
    assert call(live_server, "DELETE", "/api/v1/me", doomed).status_code == 204
    assert call(live_server, "GET", "/api/v1/me", doomed).status_code == 401


def test_resident_reaches_identity_level_2_with_vneid(
    live_server: LiveServer, actors: Actors
) -> None:
    resident = actors.throwaway_resident()
    started = call(live_server, "POST", "/api/v1/auth/vneid/start", resident)
    assert started.status_code == 200, started.text
    cccd = f"{uuid.uuid4().int % 10**12:012d}"
    live_server.oidc.login_as({"sub": f"sub-{cccd}", "name": "Lê Thị Mai", "citizen_id": cccd})
    try:
        redirect = httpx.get(started.json()["authorization_url"], follow_redirects=False)
        assert redirect.status_code == 302, redirect.text
        back = parse_qs(urlsplit(redirect.headers["location"]).query)
        assert back["state"] == [started.json()["state"]]
        done = call(
            live_server,
            "POST",
            "/api/v1/auth/vneid/complete",
            resident,
            body={"state": back["state"][0], "code": back["code"][0]},
        )
    finally:
        live_server.oidc.reset()
    assert done.status_code == 200 and done.json()["identity_level"] == 2, done.text


def test_admin_signs_in_and_administers(live_server: LiveServer, actors: Actors) -> None:
    login = {"email": actors.admin_email, "password": ADMIN_PASSWORD}
    signed_in = call(live_server, "POST", "/api/v1/auth/staff/login", body=login)
    assert signed_in.status_code == 200, signed_in.text
    admin = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    staff = call(
        live_server,
        "GET",
        "/api/v1/admin/units/{unit_code}/staff",
        admin,
        path_parameters={"unit_code": KNOWN_UNIT},
    )
    assert staff.status_code == 200, staff.text
    unit = {
        "code": f"contract-{uuid.uuid4().hex[:8]}",
        "name_vi": "Đơn vị thử",
        "name_en": "Test unit",
        "kind": "utility",
        "parent_code": KNOWN_UNIT,
        "area_code": "00070",
    }
    created = call(live_server, "POST", "/api/v1/admin/units", admin, body=unit)
    assert created.status_code == 201, created.text
    taken = call(live_server, "POST", "/api/v1/admin/units", admin, body=unit)
    assert taken.status_code == 409, taken.text
    audit = call(live_server, "GET", "/api/v1/admin/audit", admin, query={"limit": 5})
    assert audit.status_code == 200 and audit.json()[0]["action"] == "unit.created"
    me = call(live_server, "GET", "/api/v1/me", admin)
    assert me.json()["roles"] == [{"role": "admin", "unit_id": None, "unit_code": None}]
    # staff accounts are not deleted by their owners
    assert call(live_server, "DELETE", "/api/v1/me", admin).status_code == 403


def test_text_postgresql_cannot_store_is_a_400_not_a_500(
    live_server: LiveServer, actors: Actors
) -> None:
    """U+0000 in any string that reaches a query: a problem naming the request, not a
    database error surfacing as 500 (found by the generated cases)."""
    nul = "a\x00b"
    answers = [
        call(live_server, "GET", "/api/v1/areas", query={"q": nul}),
        call(live_server, "GET", "/api/v1/areas/{code}", path_parameters={"code": nul}),
        call(
            live_server,
            "POST",
            "/api/v1/auth/staff/login",
            body={"email": "a\x00@city.test", "password": "x"},
        ),
        call(live_server, "PATCH", "/api/v1/me", actors.resident, body={"full_name": nul}),
        call(
            live_server,
            "GET",
            "/api/v1/admin/units/{unit_code}/staff",
            actors.admin,
            path_parameters={"unit_code": nul},
        ),
        call(
            live_server,
            "POST",
            "/api/v1/admin/units",
            actors.admin,
            body={"code": "nul-test", "name_vi": nul, "name_en": "Nul", "kind": "utility"},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 400, (answer.request.url, answer.text)
        assert answer.json()["code"] == "validation_failed"


# ---------------------------------------------------------------- the console's forms
# The console's pages are not in the document (they answer HTML), so schemathesis does not
# reach them: these cases post generated values (any text, U+0000, numbers past int64,
# bytes that are not UTF-8, a file that is not an image) to every form as a signed-in
# admin. Whatever the input, the answer is never a 5xx, and an error is an HTML page.

CSRF_FIELD = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
# form → its fields; {report} is a freshly filed report (or a random id), {notification}
# any integer
CONSOLE_FORMS: dict[str, tuple[str, ...]] = {
    "/console/reports/{report}/accept": (),
    "/console/reports/{report}/reply": ("body", "back"),
    "/console/reports/{report}/note": ("body",),
    "/console/reports/{report}/info_request": ("body",),
    "/console/reports/{report}/transfer": ("unit_code", "reason", "back"),
    "/console/reports/{report}/extension": ("due_date", "reason"),
    "/console/reports/{report}/extension_request": ("due_date", "reason"),
    "/console/reports/{report}/extension_decision": ("decision", "note"),
    "/console/reports/{report}/resolve": ("answer",),
    "/console/reports/{report}/reject": ("reason",),
    "/console/reports/{report}/merge": ("original_code",),
    "/console/reports/{report}/hide_text": ("reason",),
    "/console/reports/{report}/hide_photo": ("photo_id", "reason"),
    "/console/reports/{report}/no_such_action": ("body",),
    "/console/inbox/{notification}/open": (),
    "/console/inbox/read-all": ("up_to_id",),
    "/console/dispatch/route": (),
    # issue 22: response templates and bulk work, the second factor
    "/console/reports/{report}/template": ("template_id", "body", "back"),
    "/console/queue/bulk": ("codes", "action", "unit_code", "reason", "template_id", "back"),
    "/console/templates": (
        "title",
        "body_vi",
        "body_en",
        "unit_code",
        "category_code",
        "for_status",
        "target_status",
        "auto_on_status",
    ),
    "/console/two-factor": ("code", "recovery_code", "next"),
    "/console/two-factor/enrol": ("code", "next"),
    "/console/two-factor/recovery-codes": ("code", "next"),
    # issue 23: forms refused in place (their page again) - suspensions and the abuse flag
    "/console/moderation/suspensions": ("phone", "reason", "until"),
    "/console/moderation/reports/{report}/flag": ("reason_code", "back"),
}
EDGE_VALUES = [
    "", "\x00", "a\x00b", "-1", "0", str(2**63 - 1), str(2**63), str(2**70), "1e309", "NaN",
    "2026-02-30", "9999-12-31", "0001-01-01", "ubnd-00070", "evn-hanoi", "approve", "decline",
    "//evil.example/", "/console/queue?x=\x00", "x" * 20_000, "Đèn đường hỏng", "\ud7ff\ufffd",
]  # fmt: skip


def _form_value():
    return st.one_of(
        st.sampled_from(EDGE_VALUES),
        st.text(max_size=300),
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
    )


class ConsoleAdmin:
    """The contract admin signed in to the console: a cookie jar and a fresh CSRF token."""

    def __init__(self, live_server: LiveServer, actors: Actors) -> None:
        self.server = live_server
        self.actors = actors
        self.http = httpx.Client(base_url=live_server.base_url, timeout=15)
        form = self.http.get("/console/login")
        signed_in = self.http.post(
            "/console/login",
            data={
                "csrf": CSRF_FIELD.search(form.text)[1],
                "email": actors.admin_email,
                "password": ADMIN_PASSWORD,
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        page = self.http.get("/console/inbox")
        assert page.status_code == 200, page.text
        self.csrf = CSRF_FIELD.search(page.text)[1]

    def file_report(self) -> str:
        """A new petition by a new resident (filing is rate-limited per resident)."""
        resident = self.actors.throwaway_resident()
        body = {
            "kind": "petition",
            "category_code": "roads",
            "description": "Đèn đường hỏng trước số 12, tối không nhìn thấy gì.",
            "location": HANOI_POINT,
            "photo_ids": [],
        }
        filed = httpx.post(
            f"{self.server.base_url}/api/v1/reports", json=body, headers=resident, timeout=15
        )
        assert filed.status_code == 201, filed.text
        return filed.json()["id"]


@pytest.fixture(scope="module")
def console_admin(live_server: LiveServer, actors: Actors) -> Iterator[ConsoleAdmin]:
    admin = ConsoleAdmin(live_server, actors)
    try:
        yield admin
    finally:
        admin.http.close()


def _console_case(fields: tuple[str, ...]):
    return st.fixed_dictionaries(
        {
            "values": st.fixed_dictionaries({name: _form_value() for name in fields}),
            "real_report": st.booleans(),
            "notification": st.integers(min_value=-(2**70), max_value=2**70),
            "junk": st.one_of(st.none(), st.binary(min_size=1, max_size=40)),
            "upload": st.one_of(st.none(), st.binary(max_size=2000)),
        }
    )


def _check_page_answer(response: httpx.Response, form: str) -> None:
    assert response.status_code < 500, (form, response.status_code, response.text[:500])
    if response.status_code >= 400:
        kind = response.headers.get("content-type", "")
        assert kind.startswith("text/html"), (form, response.status_code, kind)


@pytest.mark.parametrize("form", sorted(CONSOLE_FORMS))
def test_console_forms_never_answer_5xx(
    form: str, live_server: LiveServer, console_admin: ConsoleAdmin
) -> None:
    def send(case: dict[str, Any], report: str | None = None) -> None:
        if report is None:
            report = console_admin.file_report() if case["real_report"] else str(uuid.uuid4())
        path = form.format(report=report, notification=case["notification"])
        values = {"csrf": console_admin.csrf, **case["values"]}
        try:
            if case["upload"] is not None and form.endswith("/resolve"):
                files = {"photos": ("photo.jpg", case["upload"], "image/jpeg")}
                response = console_admin.http.post(path, data=values, files=files)
            elif case["junk"] is not None:  # the form's bytes, then some that are not UTF-8
                body = urlencode(values, encoding="utf-8", errors="surrogatepass").encode()
                response = console_admin.http.post(
                    path,
                    content=body + b"&" + case["junk"],
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
            else:
                encoded = urlencode(values, encoding="utf-8", errors="surrogatepass")
                response = console_admin.http.post(
                    path,
                    content=encoded.encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
        except Exception:
            tail = "\n".join(live_server.output().splitlines()[-40:])
            sys.stderr.write(f"--- granian output (last 40 lines) ---\n{tail}\n")
            raise
        _check_page_answer(response, form)

    # every known edge value in every field first, then generated cases
    report = console_admin.file_report()
    ids = itertools.cycle([2**63, 2**70, -1, 0, 2**63 - 1])
    for value, notification in zip(EDGE_VALUES, ids, strict=False):
        fields = dict.fromkeys(CONSOLE_FORMS[form], value)
        case = {"values": fields, "notification": notification, "junk": None, "upload": None}
        send(case, report)

    @given(case=_console_case(CONSOLE_FORMS[form]))
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def post(case: dict[str, Any]) -> None:
        send(case)

    post()


def test_console_sign_in_form_never_answers_5xx(live_server: LiveServer) -> None:
    @given(email=_form_value(), password=_form_value(), next_=_form_value())
    @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None)
    def post(email: str, password: str, next_: str) -> None:
        with httpx.Client(base_url=live_server.base_url, timeout=15) as anonymous:
            form = anonymous.get("/console/login")
            values = {
                "csrf": CSRF_FIELD.search(form.text)[1],
                "email": email,
                "password": password,
                "next": next_,
            }
            encoded = urlencode(values, encoding="utf-8", errors="surrogatepass")
            response = anonymous.post(
                "/console/login",
                content=encoded.encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        _check_page_answer(response, "/console/login")

    post()
