"""The inbox API: a signed-in user's own notifications, newest first, keyset pages,
unread count, mark read; another user's notification does not exist for them."""

from __future__ import annotations

from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.notifications.conftest import INBOX, insert_notifications, user_id


async def test_pages_newest_first_with_a_cursor_until_the_end(inbox, caplog, session):
    resident = await sign_in_resident(inbox, caplog)
    other = await sign_in_resident(inbox, caplog)
    mine = await insert_notifications(session, await user_id(inbox, resident["headers"]), 25)
    await insert_notifications(session, await user_id(inbox, other["headers"]), 3)

    first = await inbox.get(INBOX, headers=resident["headers"])
    assert first.status_code == 200, first.text
    page = first.json()
    assert [n["id"] for n in page["items"]] == mine[::-1][:20]  # default limit 20
    assert page["next_cursor"] == str(mine[5])
    newest = page["items"][0]
    assert newest["title"] == "Thông báo 24" and newest["body"] == "Nội dung 24"
    assert newest["report_code"] == "PA000024"
    assert newest["link"] == "cityapp://reports/24"
    assert newest["data"] == {"report_code": "PA000024", "link": "cityapp://reports/24"}
    assert newest["read_at"] is None and newest["kind"] == "report_routed"

    second = await inbox.get(
        INBOX, params={"cursor": page["next_cursor"]}, headers=resident["headers"]
    )
    assert [n["id"] for n in second.json()["items"]] == mine[::-1][20:]
    assert second.json()["next_cursor"] is None

    small = await inbox.get(INBOX, params={"limit": 25}, headers=resident["headers"])
    assert len(small.json()["items"]) == 25 and small.json()["next_cursor"] is None
    exact = await inbox.get(INBOX, params={"limit": 5}, headers=resident["headers"])
    assert [n["id"] for n in exact.json()["items"]] == mine[::-1][:5]


async def test_unread_filter_count_mark_one_and_mark_all(inbox, caplog, session):
    resident = await sign_in_resident(inbox, caplog)
    headers = resident["headers"]
    ids = await insert_notifications(session, await user_id(inbox, headers), 6)

    count = await inbox.get(f"{INBOX}/unread-count", headers=headers)
    assert count.status_code == 200 and count.json() == {"unread": 6}

    read = await inbox.post(f"{INBOX}/{ids[2]}/read", headers=headers)
    assert read.status_code == 200, read.text
    first_read_at = read.json()["read_at"]
    assert read.json()["id"] == ids[2] and first_read_at is not None
    again = await inbox.post(f"{INBOX}/{ids[2]}/read", headers=headers)
    assert again.status_code == 200 and again.json()["read_at"] == first_read_at
    assert (await inbox.get(f"{INBOX}/unread-count", headers=headers)).json() == {"unread": 5}

    unread = await inbox.get(INBOX, params={"unread": "true"}, headers=headers)
    assert [n["id"] for n in unread.json()["items"]] == [i for i in ids[::-1] if i != ids[2]]
    paged = await inbox.get(
        INBOX, params={"unread": "true", "limit": 2, "cursor": str(ids[4])}, headers=headers
    )
    assert [n["id"] for n in paged.json()["items"]] == [ids[3], ids[1]]
    assert paged.json()["next_cursor"] == str(ids[1])

    # everything up to what the app has shown; a newer one stays unread
    upto = await inbox.post(f"{INBOX}/read-all", params={"up_to_id": ids[4]}, headers=headers)
    assert upto.status_code == 200, upto.text
    assert upto.json() == {"marked": 4, "unread": 1}
    rest = await inbox.post(f"{INBOX}/read-all", headers=headers)
    assert rest.json() == {"marked": 1, "unread": 0}
    assert (await inbox.get(INBOX, params={"unread": True}, headers=headers)).json() == {
        "items": [],
        "next_cursor": None,
    }
    everything = (await inbox.get(INBOX, headers=headers)).json()["items"]
    assert all(n["read_at"] for n in everything)
    assert [n for n in everything if n["id"] == ids[2]][0]["read_at"] == first_read_at


async def test_another_users_notification_is_not_found_and_stays_unread(inbox, caplog, session):
    owner = await sign_in_resident(inbox, caplog)
    intruder = await sign_in_resident(inbox, caplog)
    [theirs] = await insert_notifications(session, await user_id(inbox, owner["headers"]), 1)
    await insert_notifications(session, await user_id(inbox, intruder["headers"]), 1)

    denied = await inbox.post(f"{INBOX}/{theirs}/read", headers=intruder["headers"])
    missing = await inbox.post(f"{INBOX}/{2**62}/read", headers=intruder["headers"])

    assert denied.status_code == missing.status_code == 404
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert denied.json()["code"] == missing.json()["code"] == "notification_not_found"
    assert denied.json()["detail"] == missing.json()["detail"]
    # mark-all and lists never touch or show someone else's
    await inbox.post(f"{INBOX}/read-all", headers=intruder["headers"])
    owners = (await inbox.get(INBOX, headers=owner["headers"])).json()["items"]
    assert [(n["id"], n["read_at"]) for n in owners] == [(theirs, None)]
    intruders = (await inbox.get(INBOX, headers=intruder["headers"])).json()["items"]
    assert theirs not in [n["id"] for n in intruders]


async def test_bad_cursor_limit_and_id_are_400_and_no_token_is_401(inbox, caplog):
    resident = await sign_in_resident(inbox, caplog)
    headers = {**resident["headers"], "Accept-Language": "en"}
    for cursor in ("abc", "0", "-5", "1.5", str(2**63), "١٢"):  # the last: Arabic digits
        r = await inbox.get(INBOX, params={"cursor": cursor}, headers=headers)
        assert r.status_code == 400, (cursor, r.text)
        problem = r.json()
        assert problem["code"] == "notification_cursor_invalid"
        assert problem["detail"] == "Invalid cursor."
        assert problem["errors"] == [{"field": "cursor", "message": "malformed", "source": "query"}]
    for limit in (0, 101, "x"):
        r = await inbox.get(INBOX, params={"limit": limit}, headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
    for bad in ("0", str(2**63)):
        r = await inbox.post(f"{INBOX}/{bad}/read", headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
    assert (await inbox.get(INBOX)).status_code == 401
    assert (await inbox.post(f"{INBOX}/read-all")).status_code == 401


async def test_staff_have_an_inbox_too(inbox, app, session):
    staff = await sign_in_staff(inbox, app, [("officer", "so-xay-dung")])
    ids = await insert_notifications(session, await user_id(inbox, staff["headers"]), 2)
    r = await inbox.get(INBOX, headers=staff["headers"])
    assert r.status_code == 200 and [n["id"] for n in r.json()["items"]] == ids[::-1]
