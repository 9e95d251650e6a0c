"""Push preferences: the API (defaults, replace, refusals), a muted kind that reaches the
inbox but no device, quiet hours that hold a push until 06:00 Hanoi time while an urgent
announcement goes at once — through a real arq worker, the real firebase-admin SDK and
the FCM stand-in."""

from __future__ import annotations

import dataclasses
from datetime import UTC, time

import pytest
from arq import cron
from sqlalchemy import select

from app.notifications import jobs as notification_jobs
from app.notifications.models import Notification
from app.notifications.preferences import QuietHours
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.notifications.conftest import (
    ANNOUNCEMENTS,
    INBOX,
    PREFERENCES,
    deliveries,
    notice_about,
    notification,
    register_device,
    routed_report,
    user_id,
    write_notices,
)
from tests.notifications.factories import wards
from tests.routing.conftest import hanoi
from tests.standins.fcm import FcmStandin, fcm_standin  # noqa: F401  (the fixture)

KINDS = [
    "report_routed",
    "report_transferred",
    "report_extended",
    "report_resolved",
    "report_answered",
    "report_info_requested",
    "report_merged",
    "report_assigned",
    "report_reminder",
    "report_overdue",
    "report_escalated",
    "report_extension_requested",
    "dossier_status",
    "dossier_supplement",
    "dossier_due_changed",
    "dossier_result_ready",
    "announcement",
    "announcement_urgent",
]


def kinds_sent(fcm: FcmStandin, token: str) -> list[str]:
    return [r.json()["message"]["data"]["kind"] for r in fcm.sends_to(token)]


def release_cron():
    """A fresh cron each run (arq keeps a cron's next run on the object)."""
    return [cron(notification_jobs.release_deferred_pushes, second=0, run_at_startup=True)]


async def test_defaults_replace_and_read_back(inbox, caplog):
    resident = await sign_in_resident(inbox, caplog)
    headers = resident["headers"]

    r = await inbox.get(PREFERENCES, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "muted_kinds": [],
        "quiet_hours": {"start": "22:00", "end": "06:00"},
        "time_zone": "Asia/Ho_Chi_Minh",
        "kinds": KINDS,
        "urgent_kinds": ["announcement_urgent"],
        "updated_at": None,
    }

    body = {
        "muted_kinds": ["announcement", "report_reminder", "announcement"],
        "quiet_hours": {"start": "23:30", "end": "07:15"},
    }
    r = await inbox.put(PREFERENCES, json=body, headers=headers)
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["muted_kinds"] == ["report_reminder", "announcement"]  # deduplicated
    assert saved["quiet_hours"] == {"start": "23:30", "end": "07:15"}
    assert saved["updated_at"] is not None
    assert (await inbox.get(PREFERENCES, headers=headers)).json() == saved

    # off, then on again with another window
    off = await inbox.put(
        PREFERENCES, json={"muted_kinds": [], "quiet_hours": None}, headers=headers
    )
    assert off.status_code == 200 and off.json()["quiet_hours"] is None
    assert (await inbox.get(PREFERENCES, headers=headers)).json()["quiet_hours"] is None
    on = {"muted_kinds": [], "quiet_hours": {"start": "12:00", "end": "13:30"}}
    assert (await inbox.put(PREFERENCES, json=on, headers=headers)).json()["quiet_hours"] == {
        "start": "12:00",
        "end": "13:30",
    }


async def test_staff_have_preferences_too(inbox, app):
    staff = await sign_in_staff(inbox, app, [("officer", "so-xay-dung")])
    body = {"muted_kinds": ["report_reminder"], "quiet_hours": None}
    r = await inbox.put(PREFERENCES, json=body, headers=staff["headers"])
    assert r.status_code == 200 and r.json()["muted_kinds"] == ["report_reminder"]


async def test_unknown_kinds_bad_times_and_empty_windows_are_refused_and_change_nothing(
    inbox, caplog
):
    resident = await sign_in_resident(inbox, caplog)
    headers = {**resident["headers"], "Accept-Language": "en"}
    window = {"start": "22:00", "end": "06:00"}

    r = await inbox.put(
        PREFERENCES,
        json={"muted_kinds": ["report_routed", "weather", "spam"], "quiet_hours": window},
        headers=headers,
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "notification_kind_unknown"
    assert problem["detail"] == "Unknown notification kind: weather, spam."
    assert problem["errors"] == [
        {"field": "muted_kinds[1]", "message": "weather", "source": "body"},
        {"field": "muted_kinds[2]", "message": "spam", "source": "body"},
    ]
    assert problem["allowed"] == KINDS

    for start, end in (("24:00", "06:00"), ("7:00", "06:00"), ("22:00", "06:60"), ("2200", "x")):
        r = await inbox.put(
            PREFERENCES,
            json={"muted_kinds": [], "quiet_hours": {"start": start, "end": end}},
            headers=headers,
        )
        assert r.status_code == 400, (start, end, r.text)
        assert r.json()["code"] == "validation_failed"

    r = await inbox.put(
        PREFERENCES,
        json={"muted_kinds": [], "quiet_hours": {"start": "22:00", "end": "22:00"}},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["code"] == "quiet_hours_empty"

    for body in (
        {"muted_kinds": []},  # PUT replaces: quiet_hours must be given (null: off)
        {"muted_kinds": [], "quiet_hours": None, "sound": "off"},
        {"muted_kinds": "announcement", "quiet_hours": None},
    ):
        r = await inbox.put(PREFERENCES, json=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["code"] == "validation_failed"

    assert (await inbox.get(PREFERENCES, headers=headers)).json()["updated_at"] is None
    assert (await inbox.get(PREFERENCES)).status_code == 401
    assert (await inbox.put(PREFERENCES, json={"muted_kinds": []})).status_code == 401


async def test_a_muted_kind_reaches_the_inbox_and_no_device(
    app, inbox, caplog, clock, fcm_standin, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    token = await register_device(inbox, resident["headers"], "android")
    r = await inbox.put(
        PREFERENCES,
        json={"muted_kinds": ["report_routed"], "quiet_hours": None},
        headers=resident["headers"],
    )
    assert r.status_code == 200, r.text
    clock.set(hanoi("2026-11-25 10:00"))

    filed = await routed_report(inbox, resident, run_worker)  # routing tells the reporter

    assert fcm_standin.send_requests == []  # no wire request at all
    [routed] = (await inbox.get(INBOX, headers=resident["headers"])).json()["items"]
    assert routed["kind"] == "report_routed" and routed["report_code"] == filed["code"]
    assert (await notification(app, routed["id"])).push_status == "muted"
    assert await deliveries(app, routed["id"]) == {}

    # another kind still goes out
    resolved = dataclasses.replace(notice_about(filed), kind="report_resolved")
    [nid] = await write_notices(app, [resolved], clock.now())
    await run_worker()
    assert kinds_sent(fcm_standin, token) == ["report_resolved"]
    assert (await notification(app, nid)).push_status == "sent"


async def test_quiet_hours_hold_a_push_until_six_and_an_urgent_announcement_goes_now(
    app, inbox, caplog, clock, session, fcm_standin, run_worker
):
    [ward] = await wards(session, 1)
    resident = await sign_in_resident(inbox, caplog)
    headers = resident["headers"]
    r = await inbox.patch("/api/v1/me", json={"home_area_code": ward}, headers=headers)
    assert r.status_code == 200, r.text
    token = await register_device(inbox, headers, "ios")
    admin = await sign_in_staff(inbox, app, [("admin", None)])  # tokens at the real time

    clock.set(hanoi("2026-11-24 23:10"))  # in the default quiet hours, 22:00–06:00
    filed = await routed_report(inbox, resident, run_worker)
    for urgent in (True, False):
        body = {
            "texts": {"vi": {"title": "Cảnh báo ngập", "body": "Nước dâng trên phố."}},
            "area_codes": [ward],
            "urgent": urgent,
        }
        r = await inbox.post(ANNOUNCEMENTS, json=body, headers=admin["headers"])
        assert r.status_code == 202, r.text
    await run_worker()

    # the urgent one now; the routed report and the ordinary announcement wait
    assert kinds_sent(fcm_standin, token) == ["announcement_urgent"]
    rows = {
        n.kind: n
        for n in await session.scalars(
            select(Notification).where(Notification.user_id == await user_id(inbox, headers))
        )
    }
    assert set(rows) == {"report_routed", "announcement", "announcement_urgent"}
    assert rows["announcement_urgent"].push_status == "sent"
    six = hanoi("2026-11-25 06:00")
    for kind in ("report_routed", "announcement"):
        assert (rows[kind].push_status, rows[kind].push_after) == ("pending", six)
        assert await deliveries(app, rows[kind].id) == {}
    assert rows["report_routed"].data["report_code"] == filed["code"]

    clock.set(hanoi("2026-11-25 05:59"))  # not yet
    await run_worker(cron_jobs=release_cron())
    assert kinds_sent(fcm_standin, token) == ["announcement_urgent"]

    clock.set(six)
    await run_worker(cron_jobs=release_cron())
    assert sorted(kinds_sent(fcm_standin, token)) == [
        "announcement",
        "announcement_urgent",
        "report_routed",
    ]
    for kind in ("report_routed", "announcement"):
        held = await notification(app, rows[kind].id)
        assert (held.push_status, held.push_after) == ("sent", None)
        [row] = (await deliveries(app, held.id)).values()
        assert row.sent_at == six

    # released once: running the release again sends nothing more
    await run_worker(cron_jobs=release_cron())
    assert len(fcm_standin.sends_to(token)) == 3


async def test_a_window_of_ones_own_and_quiet_hours_off(
    app, inbox, caplog, clock, fcm_standin, run_worker
):
    resident = await sign_in_resident(inbox, caplog)
    headers = resident["headers"]
    token = await register_device(inbox, headers, "android")
    lunch = {"muted_kinds": [], "quiet_hours": {"start": "12:00", "end": "13:30"}}
    assert (await inbox.put(PREFERENCES, json=lunch, headers=headers)).status_code == 200

    clock.set(hanoi("2026-11-25 12:45"))
    filed = await routed_report(inbox, resident, run_worker)
    [held] = (await inbox.get(INBOX, headers=headers)).json()["items"]
    assert (await notification(app, held["id"])).push_after == hanoi("2026-11-25 13:30")
    assert fcm_standin.send_requests == []

    clock.set(hanoi("2026-11-25 23:00"))  # past 13:30: released, and 23:00 is not quiet
    await run_worker(cron_jobs=release_cron())
    assert kinds_sent(fcm_standin, token) == ["report_routed"]

    # off: at 03:00 a push goes at once
    off = {"muted_kinds": [], "quiet_hours": None}
    assert (await inbox.put(PREFERENCES, json=off, headers=headers)).status_code == 200
    clock.set(hanoi("2026-11-26 03:00"))
    [nid] = await write_notices(app, [notice_about(filed, 2)], clock.now())
    await run_worker()
    assert kinds_sent(fcm_standin, token) == ["report_routed", "report_routed"]
    assert (await notification(app, nid)).push_after is None


@pytest.mark.parametrize(
    ("window", "at", "until"),
    [
        ((22, 6), "2026-11-24 23:10", "2026-11-25 06:00"),
        ((22, 6), "2026-11-24 22:00", "2026-11-25 06:00"),
        ((22, 6), "2026-11-25 00:00", "2026-11-25 06:00"),
        ((22, 6), "2026-11-25 05:59", "2026-11-25 06:00"),
        ((22, 6), "2026-11-25 06:00", None),  # half-open: over at 06:00 sharp
        ((22, 6), "2026-11-25 21:59", None),
        ((12, 13), "2026-11-25 12:30", "2026-11-25 13:00"),
        ((12, 13), "2026-11-25 13:00", None),
        ((12, 13), "2026-11-25 11:59", None),
        ((12, 13), "2026-11-25 23:00", None),
    ],
)
def test_quiet_window_ends_in_hanoi_time(window, at, until):
    quiet = QuietHours(time(window[0]), time(window[1]))
    expected = hanoi(until).astimezone(UTC) if until else None
    assert quiet.until(hanoi(at)) == expected
    assert quiet.until(hanoi(at).astimezone(UTC)) == expected  # whatever zone it is given in
    assert expected is None or expected.tzinfo == UTC
