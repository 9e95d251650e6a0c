"""Push delivery through the real firebase-admin SDK to the FCM stand-in on loopback, run
by a real arq worker: the right devices, in the recipient's language, Android and APNs
options on the wire; dead tokens disabled for good; retryable errors retried later and
delivered once; a job run twice sends nothing twice."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from arq import cron
from sqlalchemy import text, update

from app.accounts.models import Device
from app.core import db
from app.core.jobs import qualified_job_id
from app.core.push import FcmPushSender
from app.notifications import jobs as notification_jobs
from app.notifications import preferences
from app.notifications.push import (
    PUSH_BATCH_JOB,
    PUSH_JOB,
    PushPolicy,
    pending_pushes,
    push_batch_job_id,
    push_data,
    push_job_id,
    push_notifications,
)
from tests.accounts.factories import sign_in_resident
from tests.notifications.conftest import (
    FAST,
    deliveries,
    device,
    insert_notifications,
    notice_about,
    notification,
    register_device,
    resident_with_devices,
    routed_report,
    user_id,
    write_notices,
)
from tests.routing.test_routing import file_petition
from tests.standins.fcm import FcmStandin, fcm_standin  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_default_quiet_hours(monkeypatch):
    """These tests are about delivery, whatever the hour they run at; quiet hours (on by
    default) are tested in test_preferences.py."""
    monkeypatch.setattr(preferences, "DEFAULT_QUIET_HOURS", None)


def messages_to(fcm: FcmStandin, token: str) -> list[dict]:
    return [r.json()["message"] for r in fcm.sends_to(token)]


async def test_a_routed_report_is_pushed_to_each_followers_active_devices_in_their_language(
    app, inbox, caplog, clock, session, fcm_standin, run_worker
):
    reporter, (android, ios) = await resident_with_devices(inbox, caplog, "android", "ios")
    r = await inbox.patch("/api/v1/me", json={"locale": "en"}, headers=reporter["headers"])
    assert r.status_code == 200, r.text
    gone = await register_device(inbox, reporter["headers"], "android")
    await session.execute(
        update(Device).where(Device.token == gone).values(disabled_at=clock.now())
    )
    await session.commit()
    supporter, (supporter_phone,) = await resident_with_devices(inbox, caplog, "android")
    bystander, (bystander_phone,) = await resident_with_devices(inbox, caplog, "ios")
    reporter_id = await user_id(inbox, reporter["headers"])
    # one older notification the reporter has not read: the badge counts it
    await insert_notifications(session, reporter_id, 1)

    filed = await file_petition(inbox, reporter["headers"])
    code = filed["code"]
    r = await inbox.post(
        "/api/v1/reports/supports", json={"code": code}, headers=supporter["headers"]
    )
    assert r.status_code == 200, r.text

    await run_worker()  # routes the report, writes the notifications, pushes them

    page = (await inbox.get("/api/v1/me/notifications", headers=reporter["headers"])).json()
    told = page["items"][0]
    assert told["kind"] == "report_routed" and told["report_code"] == code
    expected_data = {
        "link": f"cityapp://reports/{filed['id']}",
        "report_code": code,
        "kind": "report_routed",
        "notification_id": str(told["id"]),
    }
    for token in (android, ios):
        [wire] = messages_to(fcm_standin, token)
        assert wire["notification"] == {"title": told["title"], "body": told["body"]}
        assert wire["notification"]["title"].startswith(f"Your report {code} was sent to")
        assert wire["data"] == expected_data
        assert wire["android"] == {
            "priority": "high",
            "collapse_key": f"report-{code}",
            "notification": {"sound": "default"},
        }
        assert wire["apns"] == {
            "headers": {
                "apns-priority": "10",
                "apns-push-type": "alert",
                "apns-collapse-id": f"report-{code}",
            },
            "payload": {"aps": {"badge": 2, "sound": "default"}},
        }
    [to_supporter] = messages_to(fcm_standin, supporter_phone)
    assert to_supporter["notification"]["title"] == f"Phản ánh {code} đã được chuyển xử lý"
    assert to_supporter["apns"]["payload"]["aps"]["badge"] == 1
    assert messages_to(fcm_standin, gone) == messages_to(fcm_standin, bystander_phone) == []
    assert len(fcm_standin.delivered) == 3

    assert (await notification(app, told["id"])).push_status == "sent"
    rows = await deliveries(app, told["id"])
    assert set(rows) == {android, ios}  # none for the disabled device
    for token, row in rows.items():
        [request] = fcm_standin.sends_to(token)
        assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
        assert row.fcm_message_id == request.response["name"]
        assert row.sent_at == clock.now()


async def test_a_recipient_without_devices_is_no_device_and_nothing_is_sent(
    app, inbox, caplog, clock, fcm_standin, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    [nid] = await write_notices(app, [notice_about(filed)], clock.now())

    await run_worker()

    assert (await notification(app, nid)).push_status == "no_device"
    assert await deliveries(app, nid) == {}
    assert fcm_standin.send_requests == []


async def test_an_unregistered_token_disables_the_device_and_is_never_used_again(
    app, inbox, caplog, clock, fcm_standin, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    dead = await register_device(inbox, resident["headers"], "android")
    alive = await register_device(inbox, resident["headers"], "ios")
    fcm_standin.fail(dead, "UNREGISTERED")
    [first] = await write_notices(app, [notice_about(filed, 1)], clock.now())

    await run_worker()

    [refused] = fcm_standin.sends_to(dead)
    assert refused.status == 404
    assert refused.response["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    assert len(fcm_standin.sends_to(alive)) == 1
    gone = await device(app, dead)
    assert gone.disabled_at == clock.now() and gone.disabled_reason == "fcm:unregistered"
    rows = await deliveries(app, first)
    assert (rows[dead].status, rows[dead].last_error, rows[dead].attempts) == (
        "failed",
        "unregistered",
        1,
    )
    assert rows[alive].status == "sent"
    assert (await notification(app, first)).push_status == "sent"  # one device got it
    listed = (await inbox.get("/api/v1/me/devices", headers=resident["headers"])).json()
    active = {d["token_suffix"]: d["active"] for d in listed}
    assert active == {dead[-6:]: False, alive[-6:]: True}

    [second] = await write_notices(app, [notice_about(filed, 2)], clock.now())
    await run_worker()

    assert len(fcm_standin.sends_to(dead)) == 1  # never again
    assert len(fcm_standin.sends_to(alive)) == 2
    assert set(await deliveries(app, second)) == {alive}


async def test_a_device_disabled_while_its_delivery_waits_for_a_retry_is_skipped(
    app, inbox, caplog, clock, fcm_standin, fcm_settings, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    token = await register_device(inbox, resident["headers"], "android")
    first, second = await write_notices(
        app, [notice_about(filed, 1), notice_about(filed, 2)], clock.now(), enqueue=False
    )
    sender = FcmPushSender(fcm_settings)
    rng = random.Random(7)

    async def push(nid: int):
        return await push_notifications(
            lambda: db.transaction(app.state.sessionmaker, None),
            sender,
            [nid],
            clock.now(),
            policy=FAST,
            rng=rng,
        )

    try:
        fcm_standin.fail(token, "QUOTA_EXCEEDED", times=1, retry_after="30")
        waiting = await push(second)
        assert (waiting.retrying, waiting.sent, waiting.settled) == (1, 0, {})
        assert 30 <= waiting.retry_in <= 30 * 1.25
        fcm_standin.fail(token, "UNREGISTERED")
        dead = await push(first)
        assert (dead.failed, dead.devices_disabled, dead.settled) == (1, 1, {first: "failed"})

        skipped = await push(second)
    finally:
        await sender.close()

    assert (skipped.skipped, skipped.sent, skipped.retry_in) == (1, 0, None)
    assert skipped.settled == {second: "no_device"}
    assert len(fcm_standin.sends_to(token)) == 2  # the 429 and the 404, nothing after
    [row] = (await deliveries(app, second)).values()
    assert (row.status, row.attempts) == ("skipped", 1)
    assert row.last_error == "device_disabled: fcm:unregistered"


async def test_quota_exceeded_is_retried_after_retry_after_and_delivered_once(
    app, inbox, caplog, clock, fcm_standin, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    throttled = await register_device(inbox, resident["headers"], "android")
    fine = await register_device(inbox, resident["headers"], "ios")
    fcm_standin.fail(throttled, "QUOTA_EXCEEDED", times=1, retry_after="1")
    [nid] = await write_notices(app, [notice_about(filed)], clock.now())

    worker = await run_worker()

    assert worker.jobs_retried == 1
    refused, accepted = fcm_standin.sends_to(throttled)
    assert (refused.status, accepted.status) == (429, 200)
    assert refused.response_headers == {"Retry-After": "1"}
    assert accepted.received_at - refused.received_at >= 1.0  # not sooner than asked
    assert accepted.json() == refused.json()  # the same message
    assert len(fcm_standin.sends_to(fine)) == 1  # not sent again with the retry
    delivered = [m["token"] for m in fcm_standin.delivered]
    assert sorted(delivered) == sorted([throttled, fine])
    rows = await deliveries(app, nid)
    assert (rows[throttled].status, rows[throttled].attempts) == ("sent", 2)
    assert rows[throttled].last_error is None
    assert rows[throttled].fcm_message_id == accepted.response["name"]
    assert (rows[fine].status, rows[fine].attempts) == ("sent", 1)
    assert (await notification(app, nid)).push_status == "sent"


async def test_internal_errors_until_the_last_try_fail_the_delivery_with_the_reason(
    app, inbox, caplog, clock, fcm_standin, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    token = await register_device(inbox, resident["headers"], "android")
    fcm_standin.fail(token, "INTERNAL")
    [nid] = await write_notices(app, [notice_about(filed)], clock.now())

    worker = await run_worker(policy=FAST)  # 3 attempts, backoff 0.05 s, 0.1 s

    assert (worker.jobs_retried, worker.jobs_failed) == (2, 0)
    sends = fcm_standin.sends_to(token)
    assert [s.status for s in sends] == [500, 500, 500]  # one HTTP attempt per try
    assert sends[1].received_at - sends[0].received_at >= 0.05
    assert sends[2].received_at - sends[1].received_at >= 0.1
    [row] = (await deliveries(app, nid)).values()
    assert (row.status, row.attempts, row.sent_at) == ("failed", 3, None)
    assert row.last_error == "internal (gave up after 3 attempts)"
    assert (await notification(app, nid)).push_status == "failed"
    assert (await device(app, token)).disabled_at is None  # not the token's fault


async def test_a_job_run_twice_sends_nothing_twice(
    app, inbox, caplog, clock, fcm_standin, fcm_settings, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    token = await register_device(inbox, resident["headers"], "ios")
    [nid] = await write_notices(app, [notice_about(filed)], clock.now())
    redis = app.state.redis
    # notify() enqueued its batch job after the commit; the same id again is the same job
    batch_id = qualified_job_id(redis, push_batch_job_id([nid]))
    assert await redis.enqueue_job(PUSH_BATCH_JOB, [nid], _job_id=batch_id) is None

    await run_worker()
    assert len(fcm_standin.sends_to(token)) == 1
    before = await deliveries(app, nid)

    # a second job under another id (a replay, a reconciliation), and the service again
    await redis.enqueue_job(PUSH_JOB, nid, _job_id=qualified_job_id(redis, f"again:{nid}"))
    worker = await run_worker()
    sender = FcmPushSender(fcm_settings)
    try:
        outcome = await push_notifications(
            lambda: db.transaction(app.state.sessionmaker, None), sender, [nid], clock.now()
        )
    finally:
        await sender.close()

    assert worker.jobs_complete >= 1
    assert outcome.sent == outcome.retrying == 0 and outcome.settled == {}
    assert len(fcm_standin.sends_to(token)) == 1
    after = await deliveries(app, nid)
    assert after[token].attempts == before[token].attempts == 1
    assert after[token].fcm_message_id == before[token].fcm_message_id


async def test_reconciliation_pushes_what_lost_its_job_and_expires_the_stale(
    app, inbox, caplog, clock, session, fcm_standin, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    token = await register_device(inbox, resident["headers"], "android")
    written = clock.now()
    # written while Redis was away: no job
    [lost] = await write_notices(app, [notice_about(filed)], written, enqueue=False)
    [stale] = await insert_notifications(
        session,
        await user_id(inbox, resident["headers"]),
        1,
        push_status="pending",
        created_at=written - timedelta(days=2),
    )
    async with app.state.sessionmaker() as s:
        assert await pending_pushes(s, written + timedelta(seconds=30), 60) == []
        assert await pending_pushes(s, written + timedelta(seconds=61), 60) == [lost]

    clock.set(written + timedelta(minutes=2))
    await run_worker(
        cron_jobs=[cron(notification_jobs.reconcile_pushes, second=50, run_at_startup=True)]
    )

    [wire] = messages_to(fcm_standin, token)
    assert wire["data"]["notification_id"] == str(lost)
    assert (await notification(app, lost)).push_status == "sent"
    assert (await notification(app, stale)).push_status == "expired"
    assert len(fcm_standin.send_requests) == 1


def test_retry_delay_backs_off_with_jitter_and_honours_retry_after():
    policy = PushPolicy(backoff_base_seconds=10, backoff_max_seconds=60, jitter=0.25)
    rng = random.Random(1)
    for attempt, floor in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(floor <= d <= floor * 1.25 for d in delays)
        assert max(delays) - min(delays) > floor * 0.1  # spread, not one instant
    assert all(120 <= policy.delay(1, 120, rng) <= 150 for _ in range(50))
    assert all(20 <= policy.delay(2, 5, rng) <= 25 for _ in range(50))  # backoff is longer
    capped = PushPolicy(retry_after_max_seconds=100, jitter=0)
    assert capped.delay(1, 10_000, rng) == 100


def test_data_payload_is_strings_only_without_reserved_keys():
    data = push_data(
        42,
        "report_resolved",
        {
            "report_code": "PA1234567",
            "rate": True,
            "score": 4.5,
            "count": 3,
            "units": ["a", "b"],
            "none": None,
            "from": "x",
            "google.c.a": "x",
            "gcm.n": "x",
            "kind": "overridden",
        },
    )
    assert data == {
        "report_code": "PA1234567",
        "rate": "true",
        "score": "4.5",
        "count": "3",
        "units": '["a","b"]',
        "notification_id": "42",
        "kind": "report_resolved",
    }


# ------------------------------------------------------------------------- no transaction
# held across FCM's answer (issue 18 item 6)

IDLE_IN_TRANSACTION = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = 'city-app' AND state LIKE 'idle in transaction%'"
)
CLAIMED = text(
    "SELECT count(*) FROM notification_deliveries"
    " WHERE notification_id = :nid AND status = 'pending' AND claimed_until IS NOT NULL"
)


async def wait_for_send(fcm: FcmStandin, token: str, count: int = 1, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while len(fcm.sends_to(token)) < count:
        assert time.monotonic() < deadline, "the worker never sent"
        await asyncio.sleep(0.05)


async def test_no_transaction_is_open_while_a_push_waits_for_fcm(
    app, inbox, caplog, clock, fcm_standin, run_worker
):
    """Before: the push job held its transaction (and the deliveries' row locks) open
    across the whole FCM round trip: PostgreSQL showed the worker idle in transaction."""
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    token = await register_device(inbox, resident["headers"], "android")
    [nid] = await write_notices(app, [notice_about(filed)], clock.now(), enqueue=False)
    redis = app.state.redis
    await redis.enqueue_job(PUSH_JOB, nid, _job_id=qualified_job_id(redis, push_job_id(nid)))
    fcm_standin.delay = 1.5  # FCM slow to answer
    try:
        worker = asyncio.create_task(run_worker())
        await wait_for_send(fcm_standin, token)
        async with app.state.engine.connect() as probe:
            idle_in_transaction = await probe.scalar(IDLE_IN_TRANSACTION)
            # the claim is committed: visible from outside while the answer is awaited
            claimed = await probe.scalar(CLAIMED, {"nid": nid})
        await worker
    finally:
        fcm_standin.delay = 0.0
    assert idle_in_transaction == 0
    assert claimed == 1
    [row] = (await deliveries(app, nid)).values()
    assert (row.status, row.attempts, row.claimed_until) == ("sent", 1, None)
    assert (await notification(app, nid)).push_status == "sent"


async def drop_queued_crons(app) -> None:
    """The killed worker may have queued its own start-up crons (routing, sweeps, ...)
    that the push-only test worker does not run: a deployment's workers all know them,
    this test's does not, so they are taken off the queue rather than failed."""
    redis = app.state.redis
    queue = app.state.settings.queue_name
    for job in await redis.queued_jobs(queue_name=queue):
        if "cron:" in job.function and job.job_id:  # names may carry the queue prefix
            await redis.zrem(queue, job.job_id)
            await redis.delete(f"arq:job:{job.job_id}")


async def test_a_worker_killed_mid_send_never_resends_what_was_recorded_and_retries_the_rest(
    app, inbox, caplog, clock, session, fcm_standin, fcm_settings, run_worker
):
    """kill -9 of a worker process while FCM has not answered: the claimed rows stay
    pending and are sent again once the claim lapses; what was recorded sent is not."""
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    token = await register_device(inbox, resident["headers"], "android")
    [done] = await write_notices(app, [notice_about(filed, 1)], clock.now())
    await run_worker()  # pushed and recorded
    assert len(fcm_standin.sends_to(token)) == 1
    [pending] = await write_notices(app, [notice_about(filed, 2)], clock.now(), enqueue=False)
    # whatever the hour, the worker process must not hold it for quiet hours
    await session.execute(
        text(
            "INSERT INTO notification_preferences (user_id, quiet_hours, updated_at)"
            " VALUES (:u, false, now())"
        ),
        {"u": await user_id(inbox, resident["headers"])},
    )
    await session.commit()
    redis = app.state.redis
    both = [done, pending]
    await redis.enqueue_job(
        PUSH_BATCH_JOB, both, _job_id=qualified_job_id(redis, f"killed:{push_batch_job_id(both)}")
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORKER_JOB_TIMEOUT_SECONDS": "10",  # arq retries a dead worker's job 20 s later
        "FIREBASE_CREDENTIALS_FILE": fcm_settings.firebase_credentials_file,
        "FCM_URL": fcm_settings.fcm_url,
    }
    # FCM slow to answer (its token endpoint too): the kill comes while the send waits
    fcm_standin.delay = 3.0
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        await wait_for_send(fcm_standin, token, count=2)
        async with app.state.engine.connect() as probe:
            assert await probe.scalar(IDLE_IN_TRANSACTION) == 0
            assert await probe.scalar(CLAIMED, {"nid": pending}) == 1
        os.killpg(process.pid, signal.SIGKILL)  # kill -9, mid-send
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
        fcm_standin.delay = 0.0
    row = (await deliveries(app, pending))[token]
    assert (row.status, row.attempts) == ("pending", 0)  # sent, never recorded
    await drop_queued_crons(app)

    # later (the claim has lapsed): the reconciler's job and the killed job's retry
    clock.advance(timedelta(minutes=5))
    await run_worker(
        cron_jobs=[cron(notification_jobs.reconcile_pushes, second=50, run_at_startup=True)]
    )
    sent_ids = [m["data"]["notification_id"] for m in messages_to(fcm_standin, token)]
    assert sent_ids.count(str(done)) == 1  # recorded as sent: never again
    assert sent_ids.count(str(pending)) == 2  # unrecorded: sent again, once
    row = (await deliveries(app, pending))[token]
    assert (row.status, row.attempts, row.claimed_until) == ("sent", 1, None)
    assert (await notification(app, pending)).push_status == "sent"
    assert (await notification(app, done)).push_status == "sent"


async def test_rows_another_run_is_sending_are_left_alone_until_its_claim_lapses(
    app, inbox, caplog, clock, session, fcm_standin, fcm_settings, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    filed = await routed_report(inbox, resident, run_worker)
    token = await register_device(inbox, resident["headers"], "ios")
    [nid] = await write_notices(app, [notice_about(filed)], clock.now(), enqueue=False)
    sender = FcmPushSender(fcm_settings)

    async def push(now):
        return await push_notifications(
            lambda: db.transaction(app.state.sessionmaker, None), sender, [nid], now, policy=FAST
        )

    try:
        # another run claimed the row and is waiting on FCM (its lease: 100 s more)
        await session.execute(
            text(
                "INSERT INTO notification_deliveries (notification_id, device_id, created_at,"
                " claimed_until) SELECT :nid, d.id, now(), CAST(:until AS timestamptz)"
                " FROM devices d WHERE d.token = :token"
            ),
            {"nid": nid, "token": token, "until": clock.now() + timedelta(seconds=100)},
        )
        await session.commit()
        busy = await push(clock.now())
        assert (busy.sent, busy.settled) == (0, {})
        assert 99 <= busy.retry_in <= 100  # look again when that claim lapses
        assert fcm_standin.sends_to(token) == []
        later = await push(clock.now() + timedelta(seconds=101))  # it died: sent now, once
    finally:
        await sender.close()
    assert (later.sent, later.settled, later.retry_in) == (1, {nid: "sent"}, None)
    assert len(fcm_standin.sends_to(token)) == 1
