"""Areas followed and announcements: the follow API; an announcement fanned out by a real
arq worker to a few hundred followers (home ward, followed, both, unfollowed), pushed
through the real firebase-admin SDK to the FCM stand-in once per device, with progress
and final counts; who may announce where; bad input; reruns and lost jobs."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from arq import cron
from sqlalchemy import func, select, text, update

from app import policy
from app.core import db
from app.core.audit import AuditEntry
from app.core.auth import Principal, RoleGrant
from app.core.jobs import qualified_job_id
from app.notifications import jobs as notification_jobs
from app.notifications.announcements import (
    ANNOUNCE_JOB,
    MAX_FOLLOWED_AREAS,
    create_announcement,
    fan_out_step,
    forget_user,
)
from app.notifications.models import Announcement, Notification
from app.notifications.schemas import AnnouncementIn, AnnouncementText, AnnouncementTexts
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.notifications.conftest import ANNOUNCEMENTS, FOLLOWED, PREFERENCES, user_id
from tests.notifications.factories import seed_followers, wards
from tests.routing.conftest import hanoi
from tests.standins.fcm import FcmStandin, fcm_standin  # noqa: F401  (the fixture)

DAYTIME = "2026-11-25 10:00"  # out of the default quiet hours
TEXTS = {
    "vi": {"title": "Lịch cắt điện", "body": "Phường tạm ngừng cấp điện từ 8:00 đến 11:00."},
    "en": {"title": "Power cut", "body": "No power in the ward from 8:00 to 11:00."},
}


def announcement(areas: list[str], **overrides) -> dict:
    return {"texts": TEXTS, "area_codes": areas, "urgent": False, **overrides}


async def announce(client, headers, areas: list[str], **overrides) -> dict:
    r = await client.post(ANNOUNCEMENTS, json=announcement(areas, **overrides), headers=headers)
    assert r.status_code == 202, r.text
    return r.json()


async def progress(client, headers, announcement_id: str) -> dict:
    r = await client.get(f"{ANNOUNCEMENTS}/{announcement_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def delivered_tokens(fcm: FcmStandin) -> Counter:
    return Counter(m["token"] for m in fcm.delivered)


# ------------------------------------------------------------------------- following


async def test_a_resident_follows_their_home_ward_and_the_areas_they_choose(inbox, caplog, session):
    home, other, third = await wards(session, 3)
    resident = await sign_in_resident(inbox, caplog)
    headers = resident["headers"]
    assert (await inbox.get(FOLLOWED, headers=headers)).json() == []  # no home ward yet

    await inbox.patch("/api/v1/me", json={"home_area_code": home}, headers=headers)
    [followed] = (await inbox.get(FOLLOWED, headers=headers)).json()
    assert followed["code"] == home and followed["home"] is True and followed["name"]

    r = await inbox.put(f"{FOLLOWED}/{other}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["code"] == other and r.json()["home"] is False
    again = await inbox.put(f"{FOLLOWED}/{other}", headers=headers)  # idempotent
    assert again.status_code == 200
    listed = (await inbox.get(FOLLOWED, headers=headers)).json()
    assert [(a["code"], a["home"]) for a in listed] == [(home, True), (other, False)]

    # unfollowing the home ward is remembered; following it again undoes that
    assert (await inbox.delete(f"{FOLLOWED}/{home}", headers=headers)).status_code == 204
    assert [a["code"] for a in (await inbox.get(FOLLOWED, headers=headers)).json()] == [other]
    assert (await inbox.put(f"{FOLLOWED}/{home}", headers=headers)).json()["home"] is True
    assert (await inbox.delete(f"{FOLLOWED}/{other}", headers=headers)).status_code == 204
    assert (await inbox.delete(f"{FOLLOWED}/{third}", headers=headers)).status_code == 204
    assert [a["code"] for a in (await inbox.get(FOLLOWED, headers=headers)).json()] == [home]

    # moving home moves the implicit follow
    await inbox.patch("/api/v1/me", json={"home_area_code": third}, headers=headers)
    listed = (await inbox.get(FOLLOWED, headers=headers)).json()
    assert [(a["code"], a["home"]) for a in listed] == [(third, True), (home, False)]


async def test_following_refuses_unknown_areas_staff_and_too_many(inbox, app, caplog, session):
    resident = await sign_in_resident(inbox, caplog)
    headers = {**resident["headers"], "Accept-Language": "en"}
    for method in (inbox.put, inbox.delete):
        r = await method(f"{FOLLOWED}/99999", headers=headers)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "area_not_found"
    r = await inbox.put(f"{FOLLOWED}/{'9' * 11}", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "validation_failed"

    codes = await wards(session, MAX_FOLLOWED_AREAS + 1)
    for code in codes[:MAX_FOLLOWED_AREAS]:
        assert (await inbox.put(f"{FOLLOWED}/{code}", headers=headers)).status_code == 200
    r = await inbox.put(f"{FOLLOWED}/{codes[-1]}", headers=headers)
    assert r.status_code == 409 and r.json()["code"] == "followed_areas_limit"
    assert r.json()["detail"] == f"You can follow at most {MAX_FOLLOWED_AREAS} areas."
    assert len((await inbox.get(FOLLOWED, headers=headers)).json()) == MAX_FOLLOWED_AREAS

    staff = await sign_in_staff(inbox, app, [("admin", None)])
    assert (await inbox.get(FOLLOWED, headers=staff["headers"])).status_code == 403
    assert (await inbox.get(FOLLOWED)).status_code == 401


# ------------------------------------------------------------------------- announcing


async def test_an_announcement_reaches_every_follower_once_with_progress_and_final_counts(
    app, inbox, caplog, clock, session, fcm_standin, run_worker
):
    ward, elsewhere = await wards(session, 2)
    home = await seed_followers(
        session, ward, 240, without_device_every=10, english_every=4
    )  # 24 without a device, 60 read English
    followed = await seed_followers(session, ward, 60, devices=2, follow_explicitly=True)
    bystanders = await seed_followers(session, elsewhere, 30)
    # five home residents also follow their ward explicitly: still one row each
    both = home.user_ids[1:6]
    await session.execute(
        text(
            "INSERT INTO area_follows (user_id, area_code, following, created_at)"
            " SELECT id, :ward, true, now() FROM unnest(CAST(:ids AS uuid[])) AS id"
        ),
        {"ward": ward, "ids": both},
    )
    # one unfollowed their home ward; one muted announcements
    unfollowed, muted = home.user_ids[7], home.user_ids[8]
    await session.execute(
        text(
            "INSERT INTO area_follows (user_id, area_code, following, created_at)"
            " VALUES (:id, :ward, false, now())"
        ),
        {"id": unfollowed, "ward": ward},
    )
    await session.execute(
        text(
            "INSERT INTO notification_preferences (user_id, muted_kinds, updated_at)"
            " VALUES (:id, '{announcement}', now())"
        ),
        {"id": muted},
    )
    await session.commit()
    admin = await sign_in_staff(inbox, app, [("admin", None)])
    clock.set(hanoi(DAYTIME))

    created = await announce(inbox, admin["headers"], [ward])
    aid = created["id"]
    assert created["status"] == "queued" and (created["recipients"], created["inbox_rows"]) == (
        0,
        0,
    )
    assert created["texts"] == TEXTS and created["area_codes"] == [ward]
    [audited] = await session.scalars(
        select(AuditEntry).where(AuditEntry.action == "announcement.created")
    )
    assert audited.object_id == aid and audited.details["areas"] == [ward]
    assert audited.actor_id == await user_id(inbox, admin["headers"])

    # one step by hand (as a worker would): the sender sees it moving
    async with db.transaction(app.state.sessionmaker, app.state.redis) as s:
        step = await fan_out_step(s, uuid.UUID(aid), clock.now(), 100)
    assert (step.recipients, step.inbox_rows, step.push_jobs, step.done) == (100, 100, 1, False)
    midway = await progress(inbox, admin["headers"], aid)
    assert midway["status"] == "sending"
    assert (midway["recipients"], midway["inbox_rows"]) == (100, 100)
    assert midway["push"]["pending"] == 100 and midway["devices"] is None
    assert midway["settled_at"] is None and midway["finished_at"] is None

    # the worker resumes at the cursor (the job POST enqueued) and pushes every batch
    await run_worker(announcement_batch=64)

    expected = (set(home.user_ids) - {unfollowed}) | set(followed.user_ids)
    rows = list(
        await session.execute(
            select(Notification.user_id, Notification.title, Notification.push_status).where(
                Notification.announcement_id == uuid.UUID(aid)
            )
        )
    )
    assert len(rows) == len(expected) == 299
    assert {r.user_id for r in rows} == expected  # each follower once
    english = {r.user_id: r.title for r in rows if r.user_id in home.english}
    assert set(english.values()) == {"Power cut"}
    assert {r.title for r in rows if r.user_id not in home.english} == {"Lịch cắt điện"}

    def tokens(user: uuid.UUID) -> list[str]:
        return home.tokens.get(user, []) + followed.tokens.get(user, [])

    devices_expected = [t for u in expected - {muted} for t in tokens(u)]
    sent = delivered_tokens(fcm_standin)
    assert sorted(sent) == sorted(devices_expected)  # every device of every follower…
    assert set(sent.values()) == {1}  # …once
    assert not set(sent) & set(bystanders.all_tokens + home.tokens[muted])
    first = followed.tokens[followed.user_ids[0]][0]
    [wire] = [m for m in fcm_standin.delivered if m["token"] == first]
    assert wire["notification"] == {"title": "Lịch cắt điện", "body": TEXTS["vi"]["body"]}
    assert wire["data"]["kind"] == "announcement" and wire["data"]["announcement_id"] == aid
    assert wire["android"]["priority"] == "normal"

    final = await progress(inbox, admin["headers"], aid)
    no_device = sum(1 for u in expected if not tokens(u))
    assert final["status"] == "done" and final["settled_at"] is not None
    assert (final["recipients"], final["inbox_rows"]) == (299, 299)
    assert final["push"] == {
        "pending": 0,
        "sent": 299 - no_device - 1,
        "failed": 0,
        "no_device": no_device,
        "muted": 1,
        "expired": 0,
    }
    assert final["devices"] == {"sent": len(devices_expected), "failed": 0, "skipped": 0}
    assert final == await progress(inbox, admin["headers"], aid)  # stored, final

    stored = await session.get(Announcement, uuid.UUID(aid))
    assert stored.push_counts["notifications"]["sent"] == final["push"]["sent"]


async def test_rerunning_or_racing_fan_outs_never_doubles_a_row_or_a_push(
    app, inbox, clock, session, fcm_standin, run_worker
):
    [ward] = await wards(session, 1)
    followers = await seed_followers(session, ward, 150)
    admin = await sign_in_staff(inbox, app, [("admin", None)])
    clock.set(hanoi(DAYTIME))
    aid = (await announce(inbox, admin["headers"], [ward]))["id"]
    redis = app.state.redis
    # a second job for the same announcement (a replay, another worker's reconciler)
    await redis.enqueue_job(ANNOUNCE_JOB, aid, _job_id=qualified_job_id(redis, f"again:{aid}"))

    worker = await run_worker(announcement_batch=20)  # both run, taking turns on the row

    assert worker.jobs_complete >= 2
    final = await progress(inbox, admin["headers"], aid)
    assert (final["status"], final["recipients"], final["inbox_rows"]) == ("done", 150, 150)
    assert sorted(delivered_tokens(fcm_standin)) == sorted(followers.all_tokens)

    # run again once done: nothing to do
    await redis.enqueue_job(ANNOUNCE_JOB, aid, _job_id=qualified_job_id(redis, f"third:{aid}"))
    # and even with the cursor lost (as if the fan-out started over): no row, no push twice
    await session.execute(
        update(Announcement)
        .where(Announcement.id == uuid.UUID(aid))
        .values(status="sending", cursor=None, settled_at=None, push_counts=None)
    )
    await session.commit()
    await redis.enqueue_job(ANNOUNCE_JOB, aid, _job_id=qualified_job_id(redis, f"fourth:{aid}"))
    await run_worker(announcement_batch=20)

    count = await session.scalar(
        select(func.count()).where(Notification.announcement_id == uuid.UUID(aid))
    )
    assert count == 150
    assert len(fcm_standin.delivered) == 150
    again = await progress(inbox, admin["headers"], aid)
    assert again["inbox_rows"] == 150 and again["push"]["sent"] == 150


async def test_the_reconciler_restarts_a_lost_fan_out_and_lost_push_batches(
    app, inbox, clock, session, fcm_standin, run_worker
):
    [ward] = await wards(session, 1)
    followers = await seed_followers(session, ward, 40)
    admin = await sign_in_staff(inbox, app, [("admin", None)])
    admin_id = await user_id(inbox, admin["headers"])
    principal = Principal(admin_id, "staff", 0, uuid.uuid4(), (RoleGrant("admin"),))
    clock.set(hanoi(DAYTIME))
    actor = await policy.actor_for(principal, app.state.reference, clock.now())
    body = AnnouncementIn(
        texts=AnnouncementTexts(vi=AnnouncementText(title="Tiêm chủng", body="Thứ Bảy.")),
        area_codes=[ward],
    )
    # written while Redis was away: no fan-out job; then one step whose push jobs are lost
    async with db.transaction(app.state.sessionmaker, None) as s:
        created = await create_announcement(s, actor, body, clock.now())
    async with db.transaction(app.state.sessionmaker, None) as s:
        await fan_out_step(s, created.id, clock.now(), 25)

    clock.set(hanoi(DAYTIME) + timedelta(minutes=2))
    await run_worker(
        cron_jobs=[cron(notification_jobs.reconcile_pushes, second=55, run_at_startup=True)],
        announcement_batch=10,
    )

    assert sorted(delivered_tokens(fcm_standin)) == sorted(followers.all_tokens)
    final = await progress(inbox, admin["headers"], str(created.id))
    assert (final["status"], final["inbox_rows"], final["push"]["sent"]) == ("done", 40, 40)


async def test_who_may_announce_where_and_bad_input_changes_nothing(app, inbox, caplog, session):
    ward, other = await wards(session, 2)
    manager = await sign_in_staff(inbox, app, [("manager", f"ubnd-{ward}")])
    colleague = await sign_in_staff(inbox, app, [("manager", f"ubnd-{ward}")])
    neighbour = await sign_in_staff(inbox, app, [("manager", f"ubnd-{other}")])
    officer = await sign_in_staff(inbox, app, [("officer", f"ubnd-{ward}")])
    department = await sign_in_staff(inbox, app, [("manager", "so-xay-dung")])
    admin = await sign_in_staff(inbox, app, [("admin", None)])
    resident = await sign_in_resident(inbox, caplog)
    en = {"Accept-Language": "en"}

    # a ward's manager: their ward only
    own = await announce(inbox, manager["headers"], [ward])
    for areas in ([other], [ward, other]):
        r = await inbox.post(
            ANNOUNCEMENTS, json=announcement(areas), headers={**manager["headers"], **en}
        )
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "announcement_area_forbidden"
        assert r.json()["detail"] == f"You may not announce to: {other}."
    r = await inbox.post(ANNOUNCEMENTS, json=announcement([ward]), headers=department["headers"])
    assert r.status_code == 403 and r.json()["code"] == "announcement_area_forbidden"
    for who in (officer, resident):
        r = await inbox.post(ANNOUNCEMENTS, json=announcement([ward]), headers=who["headers"])
        assert r.status_code == 403 and r.json()["code"] == "role_required"
    assert (await inbox.post(ANNOUNCEMENTS, json=announcement([ward]))).status_code == 401
    # an admin: anywhere, several areas at once, urgent
    city = await announce(inbox, admin["headers"], [ward, other, ward], urgent=True)
    assert city["area_codes"] == [ward, other] and city["urgent"] is True

    # unknown areas: 422 naming them
    r = await inbox.post(
        ANNOUNCEMENTS,
        json=announcement([ward, "99999", "00000"]),
        headers={**admin["headers"], **en},
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "announcement_area_unknown"
    assert r.json()["detail"] == "Unknown area: 99999, 00000."
    assert [e["field"] for e in r.json()["errors"]] == ["area_codes[1]", "area_codes[2]"]

    # empty, blank or over-long text; malformed bodies: 400
    vi = TEXTS["vi"]
    bad_texts = [
        {"vi": {**vi, "title": ""}},
        {"vi": {**vi, "body": ""}},
        {"vi": {**vi, "title": "   "}},
        {"vi": vi, "en": {"title": "Power cut", "body": " \n "}},
        {"vi": {**vi, "title": "T" * 121}},
        {"vi": {**vi, "body": "B" * 2001}},
        {"en": TEXTS["en"]},  # Vietnamese is required
        {"vi": {"title": "x"}},
    ]
    for texts in bad_texts:
        r = await inbox.post(
            ANNOUNCEMENTS, json=announcement([ward], texts=texts), headers=admin["headers"]
        )
        assert r.status_code == 400, (texts, r.text)
        assert r.json()["code"] in ("validation_failed", "announcement_text_blank")
    blank = await inbox.post(
        ANNOUNCEMENTS,
        json=announcement([ward], texts={"vi": {**vi, "title": " "}}),
        headers=admin["headers"],
    )
    assert blank.json()["errors"] == [
        {"field": "texts.vi.title", "message": "blank", "source": "body"}
    ]
    for body in (
        announcement([]),
        announcement([ward], channel="sms"),
        announcement(["0" * 11]),
        {"texts": TEXTS},
    ):
        r = await inbox.post(ANNOUNCEMENTS, json=body, headers=admin["headers"])
        assert r.status_code == 400, (body, r.text)
    # the limits themselves are fine
    longest = {"vi": {"title": "T" * 120, "body": "B" * 2000}}
    await announce(inbox, admin["headers"], [ward], texts=longest)

    rows = await session.scalar(select(func.count()).select_from(Announcement))
    audited = await session.scalar(
        select(func.count()).where(AuditEntry.action == "announcement.created")
    )
    assert rows == audited == 3  # only the accepted ones, each audit-logged

    # progress: the sender, their unit's managers and admins; others do not see it
    for who in (manager, colleague, admin):
        assert (await inbox.get(f"{ANNOUNCEMENTS}/{own['id']}", headers=who["headers"])).json()[
            "id"
        ] == own["id"]
    for who in (neighbour, department):
        r = await inbox.get(f"{ANNOUNCEMENTS}/{own['id']}", headers=who["headers"])
        assert r.status_code == 404 and r.json()["code"] == "announcement_not_found"
    r = await inbox.get(f"{ANNOUNCEMENTS}/{city['id']}", headers=manager["headers"])
    assert r.status_code == 404  # an admin's announcement, even to the manager's ward
    r = await inbox.get(f"{ANNOUNCEMENTS}/{uuid.uuid4()}", headers=admin["headers"])
    assert r.status_code == 404
    r = await inbox.get(f"{ANNOUNCEMENTS}/{own['id']}", headers=resident["headers"])
    assert r.status_code == 403


async def test_forgetting_a_user_erases_their_follows_and_preferences(app, inbox, caplog, session):
    ward, other = await wards(session, 2)
    resident = await sign_in_resident(inbox, caplog)
    headers = resident["headers"]
    await inbox.patch("/api/v1/me", json={"home_area_code": ward}, headers=headers)
    assert (await inbox.put(f"{FOLLOWED}/{other}", headers=headers)).status_code == 200
    assert (await inbox.delete(f"{FOLLOWED}/{ward}", headers=headers)).status_code == 204
    body = {"muted_kinds": ["announcement"], "quiet_hours": None}
    assert (await inbox.put(PREFERENCES, json=body, headers=headers)).status_code == 200
    me = await user_id(inbox, headers)

    async with db.transaction(app.state.sessionmaker, None) as s:
        await forget_user(s, me)

    kept = await session.scalar(
        text(
            "SELECT (SELECT count(*) FROM area_follows WHERE user_id = :id)"
            " + (SELECT count(*) FROM notification_preferences WHERE user_id = :id)"
        ),
        {"id": me},
    )
    assert kept == 0
    assert (await inbox.get(PREFERENCES, headers=headers)).json()["updated_at"] is None
