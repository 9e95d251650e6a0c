"""Nearby and support before filing; rating and reopening after resolution; moderation;
the cron that deletes photos never filed."""

from __future__ import annotations

import uuid
from datetime import timedelta

from arq.worker import Worker
from sqlalchemy import func, select

from app.complaints import lifecycle
from app.complaints.models import Report, ReportPhoto
from app.core.audit import AuditEntry
from app.core.clock import FixedClock
from app.places.models import Unit
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import HOAN_KIEM, file_with_photo, upload


async def move(app, report_id: str, *targets: str, unit_code: str | None = None) -> None:
    """Walk a report through staff transitions with the project's own lifecycle code
    (routing and the console that do this come with later issues)."""
    async with app.state.sessionmaker() as s:
        report = await s.get(Report, uuid.UUID(report_id), with_for_update=True)
        if unit_code:
            report.unit_id = await s.scalar(select(Unit.id).where(Unit.code == unit_code))
        for target in targets:
            lifecycle.transition(
                s, report, target, actor_id=None, actor_kind="staff", now=app.state.clock.now()
            )
        await s.commit()


async def test_nearby_finds_open_reports_of_the_category_within_100m(client, caplog):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    params = {"lat": HOAN_KIEM["lat"] + 0.0005, "lon": HOAN_KIEM["lon"], "category": "roads"}
    near = (await client.get("/api/v1/reports/nearby", params=params, headers=me["headers"])).json()
    assert [n["code"] for n in near] == [created["code"]]
    assert 50 < near[0]["distance_m"] < 60
    far = {**params, "lat": HOAN_KIEM["lat"] + 0.002}
    assert (
        await client.get("/api/v1/reports/nearby", params=far, headers=me["headers"])
    ).json() == []
    other = {**params, "category": "waste"}
    assert (
        await client.get("/api/v1/reports/nearby", params=other, headers=me["headers"])
    ).json() == []


async def test_support_once_per_resident_not_own(client, caplog):
    alice = await sign_in_resident(client, caplog)
    bob = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, alice["headers"])
    body = {"code": created["code"]}
    r = await client.post("/api/v1/reports/supports", json=body, headers=bob["headers"])
    assert r.status_code == 200 and r.json()["supporters_count"] == 1
    again = await client.post("/api/v1/reports/supports", json=body, headers=bob["headers"])
    assert again.status_code == 409 and again.json()["code"] == "already_supported"
    own = await client.post("/api/v1/reports/supports", json=body, headers=alice["headers"])
    assert own.status_code == 409 and own.json()["code"] == "cannot_support_own"
    public = (await client.get(f"/api/v1/public/reports/{created['code']}")).json()
    assert public["supporters_count"] == 1
    missing = await client.post(
        "/api/v1/reports/supports", json={"code": "ZZZZ-ZZZZ"}, headers=bob["headers"]
    )
    assert missing.status_code == 404


async def test_rating_closes_or_allows_one_reopen(client, caplog, app):
    me = await sign_in_resident(client, caplog)
    happy = await file_with_photo(client, me["headers"])
    early = await client.post(
        f"/api/v1/reports/{happy['id']}/rating", json={"rating": "satisfied"}, headers=me["headers"]
    )
    assert early.status_code == 409 and early.json()["code"] == "not_resolved"
    await move(app, happy["id"], "assigned", "in_progress", "resolved")
    r = await client.post(
        f"/api/v1/reports/{happy['id']}/rating", json={"rating": "accept"}, headers=me["headers"]
    )
    assert r.status_code == 204
    detail = (await client.get(f"/api/v1/reports/{happy['id']}", headers=me["headers"])).json()
    assert detail["status"] == "closed"

    unhappy = await file_with_photo(client, me["headers"])
    await move(app, unhappy["id"], "assigned", "in_progress", "resolved")
    no_verdict = await client.post(f"/api/v1/reports/{unhappy['id']}/reopen", headers=me["headers"])
    assert no_verdict.status_code == 409 and no_verdict.json()["code"] == "reopen_not_allowed"
    r = await client.post(
        f"/api/v1/reports/{unhappy['id']}/rating",
        json={"rating": "not_satisfied", "comment": "Vẫn còn ổ gà"},
        headers=me["headers"],
    )
    assert r.status_code == 204
    twice = await client.post(
        f"/api/v1/reports/{unhappy['id']}/rating",
        json={"rating": "satisfied"},
        headers=me["headers"],
    )
    assert twice.status_code == 409 and twice.json()["code"] == "already_rated"
    assert (
        await client.post(f"/api/v1/reports/{unhappy['id']}/reopen", headers=me["headers"])
    ).status_code == 204
    detail = (await client.get(f"/api/v1/reports/{unhappy['id']}", headers=me["headers"])).json()
    assert detail["status"] == "reopened"
    # resolved again and again not satisfied: no second reopen
    await move(app, unhappy["id"], "assigned", "in_progress", "resolved")
    await client.post(
        f"/api/v1/reports/{unhappy['id']}/rating",
        json={"rating": "not_satisfied"},
        headers=me["headers"],
    )
    second = await client.post(f"/api/v1/reports/{unhappy['id']}/reopen", headers=me["headers"])
    assert second.status_code == 409 and second.json()["code"] == "reopen_not_allowed"


async def test_reopen_window_is_seven_days(client, caplog, app):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    await move(app, created["id"], "assigned", "in_progress", "resolved")
    await client.post(
        f"/api/v1/reports/{created['id']}/rating",
        json={"rating": "not_satisfied"},
        headers=me["headers"],
    )
    real = app.state.clock
    app.state.clock = FixedClock(real.now() + timedelta(days=8))
    try:
        late = await client.post(f"/api/v1/reports/{created['id']}/reopen", headers=me["headers"])
    finally:
        app.state.clock = real
    assert late.status_code == 409 and late.json()["code"] == "reopen_not_allowed"


async def test_moderation_hides_content_everywhere_and_is_audited(client, caplog, app, session):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    await move(app, created["id"], "assigned", unit_code="ubnd-00070")
    photo_id = (await client.get(f"/api/v1/reports/{created['id']}", headers=me["headers"])).json()[
        "photos"
    ][0]["id"]
    outsider = await sign_in_staff(client, app, [("officer", "ubnd-00004")])
    officer = await sign_in_staff(client, app, [("officer", "ubnd-00070")])
    denied = await client.post(
        f"/api/v1/moderation/photos/{photo_id}/hide",
        json={"reason": "ảnh có biển số xe"},
        headers=outsider["headers"],
    )
    assert denied.status_code == 403 and denied.json()["code"] == "not_your_report"
    resident = await client.post(
        f"/api/v1/moderation/photos/{photo_id}/hide", json={"reason": "xxx"}, headers=me["headers"]
    )
    assert resident.status_code == 403
    r = await client.post(
        f"/api/v1/moderation/photos/{photo_id}/hide",
        json={"reason": "ảnh có biển số xe"},
        headers=officer["headers"],
    )
    assert r.status_code == 204
    r = await client.post(
        f"/api/v1/moderation/reports/{created['id']}/hide-text",
        json={"reason": "lời lẽ xúc phạm"},
        headers=officer["headers"],
    )
    assert r.status_code == 204
    public = (await client.get(f"/api/v1/public/reports/{created['code']}")).json()
    assert public["photos"] == [] and public["description"] is None
    actions = set(
        await session.scalars(select(AuditEntry.action).where(AuditEntry.actor_kind == "staff"))
    )
    assert {"report.photo_hidden", "report.text_hidden"} <= actions


async def test_cron_deletes_photos_never_filed_with_their_objects(client, caplog, app, session):
    from workers import main as worker_main

    me = await sign_in_resident(client, caplog)
    kept = await file_with_photo(client, me["headers"])
    stray = (await upload(client, me["headers"])).json()
    row = await session.get(ReportPhoto, uuid.UUID(stray["id"]))
    keys = (row.display_key, row.thumb_key)
    await app.state.redis.enqueue_job(
        "purge_unattached_photos", _job_id=f"purge-photos:{uuid.uuid4().hex}"
    )
    cls = worker_main.WorkerSettings
    worker = Worker(
        functions=cls.functions,
        on_startup=cls.on_startup,
        on_shutdown=cls.on_shutdown,
        redis_settings=cls.redis_settings,
        queue_name=cls.queue_name,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        ctx={"clock": FixedClock(app.state.clock.now() + timedelta(hours=25))},
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    async with app.state.sessionmaker() as s:
        assert await s.get(ReportPhoto, uuid.UUID(stray["id"])) is None
        attached = await s.scalar(
            select(func.count())
            .select_from(ReportPhoto)
            .where(ReportPhoto.report_id == uuid.UUID(kept["id"]))
        )
    assert attached == 1
    import pytest

    from app.core.storage import StorageNotFound

    for key in keys:
        with pytest.raises(StorageNotFound):
            await app.state.storage.get(key)
