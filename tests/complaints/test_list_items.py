"""Small answers (issue 24 item 4): a list item carries what the list screen shows - the
start of the text, the list-sized thumbnail - and the detail the rest."""

from __future__ import annotations

import io

from PIL import Image

from app.complaints.schemas import PREVIEW_CHARS, preview
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import phone_photo, report_body, upload


def test_preview_cuts_at_a_word_and_says_so() -> None:
    assert preview("Ổ gà lớn.") == "Ổ gà lớn."
    text = "Ổ gà lớn giữa đường " * 20
    cut = preview(text)
    assert len(cut) <= PREVIEW_CHARS and cut.endswith("…")
    assert text.startswith(cut[:-1]) and not cut[:-1].endswith(" ")
    assert preview("x" * 500) == "x" * (PREVIEW_CHARS - 1) + "…"  # no space: cut anyway
    assert preview(cut) == cut  # a preview stays itself


async def test_the_list_shows_a_preview_and_a_small_exif_free_thumbnail(client, caplog) -> None:
    me = await sign_in_resident(client, caplog)
    photo = (await upload(client, me["headers"], phone_photo())).json()
    long_text = "Ổ gà lớn giữa đường, xe máy dễ ngã khi trời mưa. " * 30
    filed = await client.post(
        "/api/v1/reports",
        json=report_body([photo["id"]], description=long_text.strip()),
        headers=me["headers"],
    )
    assert filed.status_code == 201, filed.text
    item = (await client.get("/api/v1/reports/mine", headers=me["headers"])).json()["items"][0]
    detail = (await client.get(f"/api/v1/reports/{item['id']}", headers=me["headers"])).json()
    assert detail["description"] == long_text.strip()
    assert item["description"] == preview(long_text.strip())
    assert len(item["description"]) <= PREVIEW_CHARS

    # the list points at the list-sized copy, not the display one
    assert item["thumbnail_url"] == detail["photos"][0]["thumbnail_url"]
    assert item["thumbnail_url"] != detail["photos"][0]["url"]
    thumb = await client.get(item["thumbnail_url"].removeprefix("http://testserver.local"))
    assert thumb.status_code == 200
    image = Image.open(io.BytesIO(thumb.content))
    assert max(image.size) <= 400
    assert not image.getexif() and "exif" not in image.info and "icc_profile" not in image.info
    display = await client.get(detail["photos"][0]["url"].removeprefix("http://testserver.local"))
    assert len(thumb.content) < len(display.content)
