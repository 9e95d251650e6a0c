"""Issue 18 item 4: one photo-claim rule (app.complaints.photo_claim) for every path that
claims uploaded photos — the resident's filing, photos a reporter adds later and the
photos staff attach to a resolution. Each path gets the same photos and must answer the
same: an expired upload and an unattached row without an expiry are refused (naming the
photo, nothing written), a geotag far from the report and a capture long before it are
flagged, a near and recent photo is not."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy import update

from app.complaints.models import ReportPhoto
from app.core.calendar import TIMEZONE
from app.core.clock import FixedClock
from tests.complaints.factories import file_with_photo, phone_photo, report_body, upload
from tests.routing.conftest import report_row, resident_now
from tests.routing.test_console_actions import photo_row, problem
from tests.routing.test_deadlines import act, routed_report

FAR = {"lat": 21.0700, "lon": 105.8100}  # about 6 km from Hoàn Kiếm, where reports are

Claim = Callable[[list[str]], Awaitable[httpx.Response]]
Upload = Callable[[bytes], Awaitable[httpx.Response]]


def exif_time(clock: FixedClock, days_before: int) -> datetime:
    """A capture time as a phone writes it: Hanoi wall-clock time, ``days_before`` the
    clock's now."""
    return clock.now().astimezone(TIMEZONE).replace(tzinfo=None) - timedelta(days=days_before)


async def set_expiry(app, photo_id: str, expires_at: datetime | None) -> None:
    async with app.state.sessionmaker.begin() as s:
        await s.execute(
            update(ReportPhoto)
            .where(ReportPhoto.id == uuid.UUID(photo_id))
            .values(expires_at=expires_at)
        )


async def assert_the_claim_rule(app, clock: FixedClock, upload_one: Upload, claim: Claim) -> None:
    stale_days = app.state.settings.photo_stale_days

    async def uploaded(data: bytes) -> str:
        r = await upload_one(data)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    expired = await uploaded(phone_photo(taken=exif_time(clock, 1)))
    await set_expiry(app, expired, clock.now() - timedelta(seconds=1))
    no_expiry = await uploaded(phone_photo(taken=exif_time(clock, 1)))
    await set_expiry(app, no_expiry, None)  # unattached with no expiry: not claimable
    for refused_id in (expired, no_expiry):
        refused = await claim([refused_id])
        body = problem(refused, 422, "photo_ids_invalid")
        assert body["errors"] == [{"field": "photo_ids", "message": refused_id, "source": "body"}]
        row = await photo_row(app, refused_id)
        assert (row.report_id, row.event_id) == (None, None)

    far_old = await uploaded(phone_photo(taken=exif_time(clock, stale_days + 30), **FAR))
    near_new = await uploaded(phone_photo(taken=exif_time(clock, 1)))
    claimed = await claim([far_old, near_new])
    assert claimed.status_code in (200, 201, 204), claimed.text
    flagged, plain = await photo_row(app, far_old), await photo_row(app, near_new)
    assert flagged.report_id is not None and flagged.report_id == plain.report_id
    assert (flagged.geotag_far, flagged.taken_long_before, flagged.expires_at) == (
        True,
        True,
        None,
    )
    assert (plain.geotag_far, plain.taken_long_before, plain.expires_at) == (False, False, None)
    assert plain.position == flagged.position + 1


async def test_the_residents_filing_claims_by_the_rule(app, client, caplog, clock):
    resident = await resident_now(client, caplog, clock)
    headers = resident["headers"]

    async def claim(ids: list[str]) -> httpx.Response:
        return await client.post("/api/v1/reports", json=report_body(ids), headers=headers)

    await assert_the_claim_rule(app, clock, lambda data: upload(client, headers, data), claim)


async def test_photos_added_later_are_claimed_by_the_rule(app, client, caplog, clock):
    resident = await resident_now(client, caplog, clock)
    headers = resident["headers"]
    filed = await file_with_photo(client, headers)

    async def claim(ids: list[str]) -> httpx.Response:
        return await client.post(
            f"/api/v1/reports/{filed['id']}/photos", json={"photo_ids": ids}, headers=headers
        )

    await assert_the_claim_rule(app, clock, lambda data: upload(client, headers, data), claim)


async def test_the_consoles_resolution_photos_are_claimed_by_the_rule(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    officer = r["officer"]["headers"]
    assert (await act(client, officer, r, "accept")).status_code == 200

    def upload_as_officer(data: bytes) -> Awaitable[httpx.Response]:
        return client.post(
            "/api/v1/console/photos",
            content=data,
            headers={**officer, "Content-Type": "image/jpeg"},
        )

    async def claim(ids: list[str]) -> httpx.Response:
        return await act(client, officer, r, "resolve", answer="Đã vá ổ gà.", photo_ids=ids)

    await assert_the_claim_rule(app, clock, upload_as_officer, claim)
    assert (await report_row(app, uuid.UUID(r["id"]))).status == "resolved"
