"""Photo redaction (issue 22 item 5) over the JSON API on the real database and photo
store: staff of the report's unit black out rectangles; the public copy's pixels are
black inside them and unchanged outside (within JPEG's re-encoding noise), the thumbnail
is made again from it; the unredacted copy is kept for the unit's staff or deleted
(PHOTO_REDACTION_KEEPS_ORIGINAL); bad rectangles are a 400 naming which, and nothing is
written; a transaction that fails after the new copies were stored leaves no object."""

from __future__ import annotations

import io
import uuid

import httpx
import msgspec
import pytest
from PIL import Image, ImageChops, ImageStat
from sqlalchemy import select

from app.complaints import redaction
from app.complaints.models import ReportPhoto
from app.complaints.redaction import PhotoRedaction
from app.core import db
from app.core.audit import AuditEntry
from app.core.auth import decode_access_token
from app.core.storage import StorageNotFound
from app.policy import actor_for
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import HOAN_KIEM, file_with_photo
from tests.complaints.test_abuse_flags import map_snapshot_dropped  # noqa: F401 (fixture)
from tests.routing.conftest import clock, run_worker  # noqa: F401 (fixture)

FACE = {"x": 100, "y": 150, "width": 200, "height": 120}
PLATE = {"x": 320, "y": 700, "width": 160, "height": 64}


@pytest.fixture
async def filed(app, client, caplog, clock):
    """A complaint with one photo (600x900 upright), routed to Hoan Kiem's committee,
    and an officer of that committee."""
    resident = await sign_in_resident(client, caplog)
    report = await file_with_photo(client, resident["headers"])
    await run_worker(clock)
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    officer = await sign_in_staff(client, app, [("officer", f"ubnd-{area}")])
    async with app.state.sessionmaker() as s:
        photo = await s.scalar(
            select(ReportPhoto).where(ReportPhoto.report_id == uuid.UUID(report["id"]))
        )
    return {
        "report": report,
        "resident": resident,
        "officer": officer,
        "unit": f"ubnd-{area}",
        "photo": photo,
    }


async def fetch(client, url: str) -> bytes:
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as c:
        served = await c.get(url)
    assert served.status_code == 200, url
    return served.content


def image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def inside(r: dict, margin: int) -> tuple[int, int, int, int]:
    return (
        r["x"] + margin,
        r["y"] + margin,
        r["x"] + r["width"] - margin,
        r["y"] + r["height"] - margin,
    )


def brightest(im: Image.Image, box) -> int:
    return max(hi for _, hi in im.crop(box).getextrema())


def mean_difference(a: Image.Image, b: Image.Image, box) -> float:
    return max(ImageStat.Stat(ImageChops.difference(a.crop(box), b.crop(box))).mean)


async def public_photo(client, code: str) -> dict:
    r = await client.get(f"/api/v1/public/reports/{code}")
    assert r.status_code == 200
    return r.json()["photos"][0]


async def test_redacted_public_copy_is_black_inside_and_unchanged_outside(app, client, filed):
    code, photo = filed["report"]["code"], filed["photo"]
    assert (photo.width, photo.height) == (600, 900)
    before = image(await fetch(client, (await public_photo(client, code))["url"]))
    original_bytes = await app.state.storage.get(photo.display_key)
    for rect in (FACE, PLATE):  # not dark to begin with
        assert max(ImageStat.Stat(before.crop(inside(rect, 2))).mean) > 60, rect

    r = await client.post(
        f"/api/v1/moderation/photos/{photo.id}/redact",
        json={"rectangles": [FACE, PLATE]},
        headers=filed["officer"]["headers"],
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rectangles"] == 2 and out["original_kept"] is True
    assert (out["width"], out["height"]) == (600, 900)

    public = await public_photo(client, code)
    after = image(await fetch(client, public["url"]))
    assert after.size == before.size
    for rect in (FACE, PLATE):
        assert brightest(after, inside(rect, 2)) <= 24, rect  # black, JPEG's ringing aside
    # outside: a band well clear of the rectangles (JPEG blocks are 16 px), as before
    for box in ((0, 0, 600, 130), (0, 290, 600, 680), (0, 780, 600, 900)):
        assert mean_difference(after, before, box) < 2.0, box
    # the thumbnail is made again from the redacted image (600x900 -> 267x400)
    thumb = image(await fetch(client, public["thumbnail_url"]))
    assert max(thumb.size) == 400
    scale = thumb.width / 600
    face_in_thumb = tuple(round(v * scale) for v in inside(FACE, 6))
    assert brightest(thumb, face_in_thumb) <= 32
    # the resident's own view shows the redacted copy too
    mine = await client.get(
        f"/api/v1/reports/{filed['report']['id']}", headers=filed["resident"]["headers"]
    )
    assert (
        brightest(image(await fetch(client, mine.json()["photos"][0]["url"])), inside(FACE, 2))
        <= 24
    )

    # the unredacted copy, for the unit's staff: the very bytes shown before
    kept = await client.get(
        f"/api/v1/moderation/photos/{photo.id}/original", headers=filed["officer"]["headers"]
    )
    assert kept.status_code == 200 and kept.headers["cache-control"] == "no-store"
    assert await fetch(client, kept.json()["url"]) == original_bytes
    # the old thumbnail is gone from the store
    with pytest.raises(StorageNotFound):
        await app.state.storage.get(photo.thumb_key)

    # a second redaction starts from the original with every rectangle so far
    second = {"x": 0, "y": 0, "width": 50, "height": 50}
    r = await client.post(
        f"/api/v1/moderation/photos/{photo.id}/redact",
        json={"rectangles": [second]},
        headers=filed["officer"]["headers"],
    )
    assert r.json()["rectangles"] == 3
    again = image(await fetch(client, (await public_photo(client, code))["url"]))
    for rect in (FACE, PLATE, second):
        assert brightest(again, inside(rect, 2)) <= 24
    async with app.state.sessionmaker() as s:
        row = await s.get(ReportPhoto, photo.id)
        entries = list(
            await s.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "photo.redacted", AuditEntry.object_id == str(photo.id)
                )
            )
        )
    assert row.display_key.endswith("/display-r2.jpg")
    with pytest.raises(StorageNotFound):  # the first redacted copy, no longer named
        await app.state.storage.get(row.display_key.replace("-r2", "-r1"))
    assert [e.details["rectangles"] for e in entries] == [[FACE, PLATE], [second]]
    assert all(e.actor_id is not None for e in entries)


async def test_who_may_redact_and_see_the_original(app, client, filed):
    photo = filed["photo"]
    path = f"/api/v1/moderation/photos/{photo.id}/redact"
    body = {"rectangles": [FACE]}
    other_unit = "ubnd-00004" if filed["unit"] != "ubnd-00004" else "ubnd-00070"
    elsewhere = await sign_in_staff(client, app, [("officer", other_unit)])
    for headers in (elsewhere["headers"], filed["resident"]["headers"]):
        assert (await client.post(path, json=body, headers=headers)).status_code == 403
    # not redacted yet: no original to show
    none_kept = await client.get(
        f"/api/v1/moderation/photos/{photo.id}/original", headers=filed["officer"]["headers"]
    )
    assert none_kept.status_code == 404 and none_kept.json()["code"] == "photo_original_not_kept"
    # a dispatcher redacts (city-wide) but does not see the unredacted copy
    dispatcher = await sign_in_staff(client, app, [("dispatcher", None)])
    assert (await client.post(path, json=body, headers=dispatcher["headers"])).status_code == 200
    original = f"/api/v1/moderation/photos/{photo.id}/original"
    assert (await client.get(original, headers=dispatcher["headers"])).status_code == 403
    assert (await client.get(original, headers=elsewhere["headers"])).status_code == 403
    assert (await client.get(original, headers=filed["officer"]["headers"])).status_code == 200
    missing = await client.post(
        f"/api/v1/moderation/photos/{uuid.uuid4()}/redact",
        json=body,
        headers=filed["officer"]["headers"],
    )
    assert missing.status_code == 404


async def test_bad_rectangles_are_a_400_naming_which_and_write_nothing(app, client, filed):
    photo = filed["photo"]
    path = f"/api/v1/moderation/photos/{photo.id}/redact"
    cases = [
        ([], "redaction_rectangles_missing", "rectangles"),
        ([FACE] * 21, "redaction_too_many_rectangles", "rectangles"),
        ([FACE, {**PLATE, "width": 0}], "redaction_rectangle_empty", "rectangles[1]"),
        ([{**FACE, "x": 500}], "redaction_rectangle_outside", "rectangles[0]"),
        ([{**FACE, "y": -1}], "redaction_rectangle_outside", "rectangles[0]"),
        ([FACE, {**PLATE, "height": 201}], "redaction_rectangle_outside", "rectangles[1]"),
    ]
    for rectangles, code, field in cases:
        r = await client.post(
            path, json={"rectangles": rectangles}, headers=filed["officer"]["headers"]
        )
        assert r.status_code == 400, r.text
        problem = r.json()
        assert problem["code"] == code and problem["errors"][0]["field"] == field
    outside = await client.post(
        path,
        json={"rectangles": [{**FACE, "x": 500}]},
        headers={**filed["officer"]["headers"], "Accept-Language": "en"},
    )
    assert outside.json()["detail"] == "Rectangle 1 is outside the photo (600 × 900 pixels)."
    # a field no rectangle has, a fraction: refused by the schema
    for bad in ({**FACE, "colour": "red"}, {**FACE, "x": 1.5}):
        r = await client.post(path, json={"rectangles": [bad]}, headers=filed["officer"]["headers"])
        assert r.status_code == 400
    async with app.state.sessionmaker() as s:
        row = await s.get(ReportPhoto, photo.id)
        assert await s.get(PhotoRedaction, photo.id) is None
    assert (row.display_key, row.thumb_key) == (photo.display_key, photo.thumb_key)
    folder = photo.display_key.rsplit("/", 1)[0]
    for name in ("display-r1.jpg", "thumb-r1.jpg"):
        with pytest.raises(StorageNotFound):
            await app.state.storage.get(f"{folder}/{name}")


async def test_without_keeping_the_original_it_is_deleted(app, client, filed):
    photo = filed["photo"]
    saved = app.state.settings
    app.state.settings = msgspec.structs.replace(saved, photo_redaction_keeps_original=False)
    try:
        r = await client.post(
            f"/api/v1/moderation/photos/{photo.id}/redact",
            json={"rectangles": [FACE]},
            headers=filed["officer"]["headers"],
        )
    finally:
        app.state.settings = saved
    assert r.status_code == 200 and r.json()["original_kept"] is False
    for key in (photo.display_key, photo.thumb_key):
        with pytest.raises(StorageNotFound):
            await app.state.storage.get(key)
    kept = await client.get(
        f"/api/v1/moderation/photos/{photo.id}/original", headers=filed["officer"]["headers"]
    )
    assert kept.status_code == 404
    # a later redaction works from the redacted copy
    r = await client.post(
        f"/api/v1/moderation/photos/{photo.id}/redact",
        json={"rectangles": [PLATE]},
        headers=filed["officer"]["headers"],
    )
    after = image(await fetch(client, (await public_photo(client, filed["report"]["code"]))["url"]))
    for rect in (FACE, PLATE):
        assert brightest(after, inside(rect, 2)) <= 24


async def test_a_failed_transaction_leaves_no_new_object_and_the_photo_as_it_was(app, filed):
    photo = filed["photo"]
    principal = decode_access_token(app.state.settings, filed["officer"]["access_token"])
    actor = await actor_for(principal, app.state.reference, app.state.clock.now())

    class Later(Exception):
        """Something after the redaction fails: the request's transaction rolls back."""

    with pytest.raises(Later):
        async with db.transaction(app.state.sessionmaker, app.state.redis) as session:
            await redaction.redact(
                session,
                app.state.storage,
                app.state.settings,
                actor,
                photo.id,
                redaction.RedactIn(rectangles=[redaction.Rectangle(**FACE)]),
            )
            raise Later
    folder = photo.display_key.rsplit("/", 1)[0]
    for name in ("display-r1.jpg", "thumb-r1.jpg"):
        with pytest.raises(StorageNotFound):
            await app.state.storage.get(f"{folder}/{name}")
    async with app.state.sessionmaker() as s:
        row = await s.get(ReportPhoto, photo.id)
        assert await s.get(PhotoRedaction, photo.id) is None
    assert (row.display_key, row.thumb_key) == (photo.display_key, photo.thumb_key)
    assert await app.state.storage.get(photo.display_key)  # still there
    assert await app.state.storage.get(photo.thumb_key)
