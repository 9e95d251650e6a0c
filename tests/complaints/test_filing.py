"""Residents upload photos, then file a report with them, in two retry-safe steps."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
from PIL import Image
from sqlalchemy import func, select

from app.complaints.models import Report, ReportEvent, ReportPhoto
from app.core.clock import FixedClock
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import HOAN_KIEM, file_with_photo, phone_photo, report_body, upload
from tests.complaints.imagegen import other_formats, png_bomb


async def test_upload_strips_metadata_and_keeps_geotag_as_data(client, app, caplog, session):
    me = await sign_in_resident(client, caplog)
    r = await upload(client, me["headers"])
    assert r.status_code == 201, r.text
    photo = r.json()
    assert photo["has_geotag"] is True and photo["taken_at"] is not None
    assert photo["expires_at"] is not None
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as c:
        served = await c.get(photo["url"])
    assert served.status_code == 200
    assert b"Exif" not in served.content and b"xmp" not in served.content.lower()
    import io

    image = Image.open(io.BytesIO(served.content))
    assert image.format == "JPEG" and not image.getexif()
    # the phone photo was 900x600 with orientation 6: stored upright, 600x900
    assert (image.width, image.height) == (600, 900)
    row = await session.get(ReportPhoto, uuid.UUID(photo["id"]))
    assert row.geotag is not None and row.report_id is None


async def test_upload_refuses_other_formats_by_content(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    formats = other_formats()
    for name, data in formats.items():
        r = await upload(client, me["headers"], data, content_type="image/jpeg")
        assert r.status_code == 422, name
        assert r.json()["code"] in ("photo_unsupported_type", "photo_unreadable"), name
    assert await session.scalar(select(func.count()).select_from(ReportPhoto)) == 0


async def test_upload_limits_say_which_limit(client, app, caplog):
    me = await sign_in_resident(client, caplog)
    bomb = await upload(client, me["headers"], png_bomb(), content_type="image/png")
    assert bomb.status_code == 422 and bomb.json()["code"] == "photo_too_many_pixels"
    huge = b"\xff\xd8\xff" + b"\0" * (app.state.settings.photo_max_bytes + 10)
    r = await upload(client, me["headers"], huge)
    assert r.status_code == 413 and r.json()["code"] == "photo_too_large"
    empty = await upload(client, me["headers"], b"")
    assert empty.status_code == 422


async def test_file_a_complaint_with_a_photo(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    created = await file_with_photo(client, me["headers"])
    assert created["status"] == "submitted" and created["area_code"] == "00070"
    code = created["code"]
    assert len(code) == 9 and code[4] == "-"
    report = await session.get(Report, uuid.UUID(created["id"]))
    assert report.unit_id is None and report.due_at is None  # routing sets them
    photos = list(
        await session.scalars(select(ReportPhoto).where(ReportPhoto.report_id == report.id))
    )
    assert len(photos) == 1 and photos[0].expires_at is None and photos[0].geotag_far is False
    events = list(
        await session.scalars(select(ReportEvent).where(ReportEvent.report_id == report.id))
    )
    assert [(e.to_status, e.public) for e in events] == [("submitted", True)]


async def test_idempotency_key_returns_the_first_result(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    photo = (await upload(client, me["headers"])).json()
    headers = {**me["headers"], "Idempotency-Key": "submit-" + uuid.uuid4().hex}
    first = await client.post("/api/v1/reports", json=report_body([photo["id"]]), headers=headers)
    again = await client.post("/api/v1/reports", json=report_body([photo["id"]]), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await session.scalar(select(func.count()).select_from(Report)) == 1


async def test_a_far_geotag_and_an_old_photo_are_flagged_not_refused(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    far_old = phone_photo(lat=21.0700, lon=105.8100, taken=datetime.now() - timedelta(days=60))
    photo = (await upload(client, me["headers"], far_old)).json()
    r = await client.post("/api/v1/reports", json=report_body([photo["id"]]), headers=me["headers"])
    assert r.status_code == 201
    row = await session.get(ReportPhoto, uuid.UUID(photo["id"]))
    assert row.geotag_far is True and row.taken_long_before is True


async def test_bad_filings_write_nothing(client, caplog, session, app):
    me = await sign_in_resident(client, caplog)
    other = await sign_in_resident(client, caplog)
    photo = (await upload(client, me["headers"])).json()
    theirs = (await upload(client, other["headers"])).json()
    cases = [
        (report_body([photo["id"]], category_code="nope"), 422, "category_unknown"),
        (
            report_body([photo["id"]], location={"lat": 10.77, "lon": 106.70}),
            422,
            "location_outside_city",
        ),
        (report_body([]), 422, "photo_required"),
        (report_body([theirs["id"]]), 422, "photo_ids_invalid"),
        (report_body([str(uuid.uuid4())]), 422, "photo_ids_invalid"),
        (report_body([photo["id"]], description="x" * 4001), 400, "validation_failed"),
        (report_body([photo["id"]], kind="rumour"), 400, "validation_failed"),
        (report_body([photo["id"]], location={"lat": 91, "lon": 105}), 400, "validation_failed"),
        (
            {**report_body([photo["id"]]), "reporter_id": str(uuid.uuid4())},
            400,
            "validation_failed",
        ),
    ]
    for body, status, code in cases:
        r = await client.post("/api/v1/reports", json=body, headers=me["headers"])
        assert (r.status_code, r.json()["code"]) == (status, code), body
    too_many = [
        (await upload(client, me["headers"])).json()["id"]
        for _ in range(app.state.settings.photos_per_report + 1)
    ]
    r = await client.post("/api/v1/reports", json=report_body(too_many), headers=me["headers"])
    assert r.status_code == 422 and r.json()["code"] == "too_many_photos"
    assert await session.scalar(select(func.count()).select_from(Report)) == 0
    attached = await session.scalar(
        select(func.count()).select_from(ReportPhoto).where(ReportPhoto.report_id.is_not(None))
    )
    assert attached == 0


async def test_a_used_or_expired_photo_cannot_be_filed_again(client, caplog, app):
    me = await sign_in_resident(client, caplog)
    photo = (await upload(client, me["headers"])).json()
    r = await client.post("/api/v1/reports", json=report_body([photo["id"]]), headers=me["headers"])
    assert r.status_code == 201
    again = await client.post(
        "/api/v1/reports", json=report_body([photo["id"]]), headers=me["headers"]
    )
    assert again.status_code == 422 and again.json()["code"] == "photo_ids_invalid"
    late = (await upload(client, me["headers"])).json()
    real = app.state.clock
    app.state.clock = FixedClock(real.now() + timedelta(hours=25))
    try:
        expired = await client.post(
            "/api/v1/reports", json=report_body([late["id"]]), headers=me["headers"]
        )
    finally:
        app.state.clock = real
    assert expired.status_code == 422 and expired.json()["code"] == "photo_ids_invalid"


async def test_petitions_need_no_photo_and_staff_cannot_file(client, caplog, app):
    from tests.accounts.factories import sign_in_staff

    me = await sign_in_resident(client, caplog)
    r = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=me["headers"]
    )
    assert r.status_code == 201 and r.json()["kind"] == "petition"
    staff = await sign_in_staff(client, app, [("dispatcher", None)])
    r = await client.post(
        "/api/v1/reports", json=report_body([], kind="petition"), headers=staff["headers"]
    )
    assert r.status_code == 403


__all__ = ["HOAN_KIEM"]


async def test_concurrent_retries_with_one_key_file_one_report(client, caplog, session):
    """A phone on a weak connection fires the same submission twice at once: the second
    insert waits on the unique (reporter, key) index for the first transaction, inserts
    nothing once it has committed, and returns the first report."""
    import asyncio

    me = await sign_in_resident(client, caplog)
    photo = (await upload(client, me["headers"])).json()
    headers = {**me["headers"], "Idempotency-Key": "race-" + uuid.uuid4().hex}
    body = report_body([photo["id"]])
    first, second = await asyncio.gather(
        client.post("/api/v1/reports", json=body, headers=headers),
        client.post("/api/v1/reports", json=body, headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 201]
    assert first.json()["code"] == second.json()["code"]
    assert await session.scalar(select(func.count()).select_from(Report)) == 1


async def test_photos_keep_the_order_given(client, caplog, session):
    me = await sign_in_resident(client, caplog)
    ids = [(await upload(client, me["headers"])).json()["id"] for _ in range(3)]
    wanted = [ids[2], ids[0], ids[1]]
    r = await client.post("/api/v1/reports", json=report_body(wanted), headers=me["headers"])
    assert r.status_code == 201, r.text
    rows = await session.execute(
        select(ReportPhoto.id, ReportPhoto.position).where(
            ReportPhoto.report_id == uuid.UUID(r.json()["id"])
        )
    )
    assert sorted((pos, str(pid)) for pid, pos in rows) == list(enumerate(wanted))


async def test_a_refused_filing_can_be_retried_with_its_key(client, caplog, session):
    """A key names a submission that was filed: a refused attempt files nothing, so the
    corrected retry with the same key files the report."""
    me = await sign_in_resident(client, caplog)
    photo = (await upload(client, me["headers"])).json()
    headers = {**me["headers"], "Idempotency-Key": "fix-" + uuid.uuid4().hex}
    bad = await client.post(
        "/api/v1/reports", json=report_body([photo["id"]], category_code="nope"), headers=headers
    )
    assert bad.status_code == 422 and bad.json()["code"] == "category_unknown"
    good = await client.post("/api/v1/reports", json=report_body([photo["id"]]), headers=headers)
    again = await client.post("/api/v1/reports", json=report_body([photo["id"]]), headers=headers)
    assert (good.status_code, again.status_code) == (201, 200)
    assert again.json()["code"] == good.json()["code"]
    assert await session.scalar(select(func.count()).select_from(Report)) == 1


async def test_a_key_reused_with_another_body_is_refused(client, caplog, session):
    """The IETF Idempotency-Key draft: the same key with another body is a 422, never the
    first report in disguise; the same body (however its JSON is laid out) is a retry."""
    import json

    me = await sign_in_resident(client, caplog)
    photo = (await upload(client, me["headers"])).json()
    headers = {**me["headers"], "Idempotency-Key": "same-" + uuid.uuid4().hex}
    body = report_body([photo["id"]])
    first = await client.post("/api/v1/reports", json=body, headers=headers)
    assert first.status_code == 201
    # the same submission, keys in another order and other spacing: the first report
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    again = await client.post(
        "/api/v1/reports",
        content=reordered,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    for other in (
        report_body([photo["id"]], description="Một nội dung khác hẳn lần gửi đầu."),
        report_body([photo["id"]], category_code="nope"),  # would be refused on its own
        report_body([]),  # refused before the insert (no photo)
    ):
        r = await client.post("/api/v1/reports", json=other, headers=headers)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "idempotency_key_reused"
        assert r.headers["content-type"].startswith("application/problem+json")
    english = await client.post(
        "/api/v1/reports",
        json=report_body([photo["id"]], hide_identity=True),
        headers={**headers, "Accept-Language": "en"},
    )
    assert english.status_code == 422
    assert english.json()["detail"] == (
        "This Idempotency-Key was already used for a report with a different body."
    )
    assert await session.scalar(select(func.count()).select_from(Report)) == 1
