"""The console's redaction page over HTTP (issue 22 item 5): a link from the report page,
the photo with its size and a form of numeric fields; posting it redacts the public copy
(audited); a half-filled row or a rectangle outside the photo is the 400 page naming it,
with nothing written; another unit's officer gets the 403 page."""

from __future__ import annotations

from sqlalchemy import func, select

from app.complaints.redaction import PhotoRedaction
from tests.complaints.test_abuse_flags import map_snapshot_dropped  # noqa: F401 (fixture)
from tests.complaints.test_redaction import (  # noqa: F401 (fixture)
    FACE,
    brightest,
    fetch,
    filed,
    image,
    inside,
    public_photo,
)
from tests.routing.conftest import clock  # noqa: F401 (fixture)
from tests.web.test_pages import browser_for


async def _redactions(app) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(PhotoRedaction))


async def test_staff_redact_a_photo_from_the_console(app, client, filed):
    photo = filed["photo"]
    officer = await browser_for(app, [("officer", filed["unit"])])
    report_page = await officer.get(f"/console/reports/{filed['report']['id']}")
    page_path = f"/console/moderation/photos/{photo.id}/redact"
    assert f'href="{page_path}"' in report_page.text

    page = await officer.get(page_path)
    assert page.status_code == 200
    assert "Ảnh rộng 600 và cao 900 điểm ảnh" in page.text
    assert 'id="x1" name="x1" type="number"' in page.text and 'for="h5"' in page.text

    row = {"x1": FACE["x"], "y1": FACE["y"], "w1": FACE["width"], "h1": FACE["height"]}
    # a row half filled, a rectangle outside the photo: the 400 page naming it, nothing written
    for data, words in (
        ({**row, "x2": "10", "y2": "10"}, "Hình chữ nhật 2 cần đủ bốn số nguyên"),
        ({**row, "x1": "550"}, "Hình chữ nhật 1 nằm ngoài ảnh (600 × 900 điểm ảnh)."),
        ({}, "Cần ít nhất một hình chữ nhật"),
    ):
        r = await officer.post_form(page_path, page_path, {k: str(v) for k, v in data.items()})
        assert r.status_code == 400 and words in r.text, r.text
    assert await _redactions(app) == 0

    r = await officer.post_form(page_path, page_path, {k: str(v) for k, v in row.items()})
    assert r.status_code == 303 and r.headers["location"] == f"{page_path}?done=redacted"
    done = await officer.get(r.headers["location"])
    assert "Đã che 1 hình chữ nhật." in done.text
    assert f'href="/console/moderation/photos/{photo.id}/original"' in done.text
    public = image(
        await fetch(client, (await public_photo(client, filed["report"]["code"]))["url"])
    )
    assert brightest(public, inside(FACE, 2)) <= 24
    # the unredacted copy: a redirect to its signed URL
    original = await officer.get(f"/console/moderation/photos/{photo.id}/original")
    assert original.status_code == 303 and "/files/" in original.headers["location"]

    other_unit = "ubnd-00004" if filed["unit"] != "ubnd-00004" else "ubnd-00070"
    elsewhere = await browser_for(app, [("officer", other_unit)])
    assert (await elsewhere.get(page_path)).status_code == 403
    r = await elsewhere.post_form("/console/queue", page_path, {k: str(v) for k, v in row.items()})
    assert r.status_code == 403
    assert (
        await elsewhere.get(f"/console/moderation/photos/{photo.id}/original")
    ).status_code == 403
    assert await _redactions(app) == 1
