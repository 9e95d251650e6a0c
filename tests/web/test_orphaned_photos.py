"""Issue 17 item 8: photos written to storage by a request whose transaction then rolls
back are deleted; the daily purge removes older objects no row refers to."""

from __future__ import annotations

from pathlib import Path

from tests.complaints.imagegen import jpeg_phone_photo
from tests.routing.conftest import clock  # noqa: F401 (fixture)
from tests.web.test_pages import browser_for, ward  # noqa: F401 (fixture)


def stored_files(app) -> set[Path]:
    root = Path(app.state.settings.storage_dir)
    return {p for p in root.rglob("*") if p.is_file()}


async def test_a_refused_resolution_leaves_none_of_its_photos_behind(app, client, ward):
    officer = await browser_for(app, [("officer", ward["unit"])])
    path = f"/console/reports/{ward['id']}"
    photo = jpeg_phone_photo((640, 480))
    before = stored_files(app)
    # 7 photos on a report still `assigned` (not accepted): refused after the uploads
    r = await officer.post_form(
        path,
        f"{path}/resolve",
        {"answer": "Đã thay bóng đèn mới, đường đã sáng."},
        files=[("photos", (f"p{i}.jpg", photo, "image/jpeg")) for i in range(7)],
    )
    assert r.status_code == 409, r.text[:300]
    assert stored_files(app) == before
