"""Standard Webhooks on the ingest (issue 19 item 1): unsigned, badly signed, stale or
future-dated requests and unknown or inactive agencies are 401 problems (the last
three alike), a replay inside the window is the stored answer, and two secrets are valid
at once while an agency rotates (the old one refused once its overlap ends). Requests are
signed by the tests' signer (tests/dossiers/conftest.py), which the reference package
verifies; the clock is the app's injectable one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook

from app.core.audit import AuditEntry
from app.dossiers.models import AgencySecret
from tests.accounts.factories import sign_in_staff
from tests.dossiers.conftest import new_dossier_code, sign, signed_headers


async def batches(app) -> int:
    async with app.state.engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM dossier_ingest_batches"))


def test_the_tests_signer_is_what_the_reference_package_verifies():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"events": []}'
    headers = signed_headers(secret, body, datetime.now(UTC), "msg_p5jXN8AQM9LWM0D4loKWxJek")
    Webhook(secret).verify(body, headers)  # raises if not
    # and the example of the Standard Webhooks specification
    assert (
        sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code, body
    return body


async def test_unsigned_and_malformed_headers_are_401(app, client, agency):
    before = await batches(app)
    body = json.dumps({"events": [agency.upsert(new_dossier_code())]}).encode()
    url = f"/api/v1/ingest/agencies/{agency.code}/events"
    r = await client.post(url, content=body)
    problem(r, 401, "ingest_unsigned")
    good = signed_headers(agency.secret, body, agency.now())
    for broken in (
        {**good, "webhook-timestamp": "soon"},
        {**good, "webhook-id": "has space"},
        {**good, "webhook-signature": ""},
        {k: v for k, v in good.items() if k != "webhook-id"},
    ):
        r = await client.post(url, content=body, headers=broken)
        problem(r, 401, "ingest_unsigned")
    assert await batches(app) == before  # nothing written


async def test_a_bad_signature_an_unknown_and_an_inactive_agency_answer_alike(
    app, client, agency, other_agency
):
    before = await batches(app)
    event = agency.upsert(new_dossier_code())
    body = json.dumps({"events": [event]}).encode()
    # signed with another agency's secret
    wrong = await agency.post("events", body, secret=other_agency.secret)
    # the body changed after signing
    headers = signed_headers(agency.secret, body, agency.now())
    tampered = await client.post(
        f"/api/v1/ingest/agencies/{agency.code}/events",
        content=body.replace(b"dossier.upsert", b"dossier.progress"),
        headers=headers,
    )
    unknown = await agency.post("events", body, code="NO-SUCH-AGENCY")
    answers = [problem(r, 401, "ingest_signature_invalid") for r in (wrong, tampered, unknown)]
    assert len({(a["title"], a["detail"]) for a in answers}) == 1
    # deactivated by an admin: the same answer, even with its right secret
    admin = await sign_in_staff(client, app, [("admin", None)])
    r = await client.patch(
        f"/api/v1/admin/agencies/{agency.code}", json={"active": False}, headers=admin["headers"]
    )
    assert r.status_code == 200, r.text
    inactive = await agency.post("events", body)
    assert problem(inactive, 401, "ingest_signature_invalid")["detail"] == answers[0]["detail"]
    assert await batches(app) == before  # nothing written
    r = await client.patch(
        f"/api/v1/admin/agencies/{agency.code}", json={"active": True}, headers=admin["headers"]
    )
    assert (await agency.post("events", body)).status_code == 200


async def test_the_five_minute_window_on_the_apps_clock(app, agency, ingest_clock):
    now = agency.now()
    for delta in (timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)):
        r = await agency.post_events([agency.upsert(new_dossier_code())], at=now + delta)
        problem(r, 401, "ingest_timestamp_out_of_window")
    for delta in (timedelta(minutes=-4, seconds=-59), timedelta(minutes=4, seconds=59)):
        r = await agency.post_events([agency.upsert(new_dossier_code())], at=now + delta)
        assert r.status_code == 200, r.text
    # a captured request replayed: within the window it is the stored answer (nothing
    # applied twice); once the window has passed, 401
    event = agency.upsert(new_dossier_code())
    body = json.dumps({"events": [event]}).encode()
    headers = signed_headers(agency.secret, body, now, "captured-1")
    url = f"/api/v1/ingest/agencies/{agency.code}/events"
    first = await agency.client.post(url, content=body, headers=headers)
    assert first.json()["results"][0]["result"] == "applied"
    ingest_clock.advance(timedelta(minutes=3))
    again = await agency.client.post(url, content=body, headers=headers)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["results"] == first.json()["results"]
    ingest_clock.advance(timedelta(minutes=3))
    late = await agency.client.post(url, content=body, headers=headers)
    problem(late, 401, "ingest_timestamp_out_of_window")


async def test_rotation_two_secrets_valid_during_the_overlap_then_only_the_new(
    app, client, agency, ingest_clock, settings
):
    admin = await sign_in_staff(client, app, [("admin", None)])
    old = agency.secret
    r = await client.post(f"/api/v1/admin/agencies/{agency.code}/secrets", headers=admin["headers"])
    assert r.status_code == 201, r.text
    issued = r.json()
    new = issued["secret"]
    assert new.startswith("whsec_") and new != old
    overlap = timedelta(hours=settings.agency_secret_overlap_hours)
    assert datetime.fromisoformat(issued["previous_valid_until"]) == agency.now() + overlap
    # the secret is shown once: the agency's record lists ids and dates only
    detail = await client.get(f"/api/v1/admin/agencies/{agency.code}", headers=admin["headers"])
    assert new not in detail.text and old not in detail.text
    assert sorted(s["valid"] for s in detail.json()["secrets"]) == [True, True]
    # during the overlap: either secret, or both signatures in one header
    for secret in (old, new, [old, new]):
        r = await agency.post_events([agency.upsert(new_dossier_code())], secret=secret)
        assert r.status_code == 200, r.text
    # one wrong signature beside a right one is fine (an agency mid-switch)
    r = await agency.post_events([agency.upsert(new_dossier_code())], secret=[new, old])
    assert r.status_code == 200
    # after the overlap the old one is refused, the new one works
    ingest_clock.advance(overlap + timedelta(seconds=1))
    r = await agency.post_events([agency.upsert(new_dossier_code())], secret=old)
    problem(r, 401, "ingest_signature_invalid")
    r = await agency.post_events([agency.upsert(new_dossier_code())], secret=[old, new])
    assert r.status_code == 200
    r = await agency.post_events([agency.upsert(new_dossier_code())], secret=new)
    assert r.status_code == 200
    async with app.state.sessionmaker() as s:
        actions = list(
            await s.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.object_type == "agency", AuditEntry.object_id == agency.code
                )
            )
        )
    assert "agency.secret_issued" in actions


async def test_a_revoked_secret_stops_at_once(app, client, agency):
    admin = await sign_in_staff(client, app, [("admin", None)])
    r = await client.delete(
        f"/api/v1/admin/agencies/{agency.code}/secrets/{agency.secret_id}", headers=admin["headers"]
    )
    assert r.status_code == 204, r.text
    r = await agency.post_events([agency.upsert(new_dossier_code())])
    problem(r, 401, "ingest_signature_invalid")
    async with app.state.sessionmaker() as s:
        row = await s.get(AgencySecret, agency.secret_id)
    assert row.revoked_at == agency.now()
    async with app.state.sessionmaker() as s:
        entry = await s.scalar(
            select(AuditEntry).where(AuditEntry.action == "agency.secret_revoked")
        )
    assert entry.details == {"secret_id": str(agency.secret_id)}
    assert agency.secret not in json.dumps(entry.details)


@pytest.mark.parametrize("path", ["events", "portal"])
async def test_both_shapes_need_the_signature(app, client, agency, path):
    r = await client.post(f"/api/v1/ingest/agencies/{agency.code}/{path}", json={"events": []})
    problem(r, 401, "ingest_unsigned")
