"""Test data for reports: photos uploaded through the real API."""

from __future__ import annotations

from datetime import datetime

from tests.complaints.imagegen import jpeg_phone_photo

HOAN_KIEM = {"lat": 21.0288, "lon": 105.8525}


def phone_photo(**exif) -> bytes:
    """A small phone-like JPEG (EXIF geotag at Hoan Kiem, taken recently)."""
    exif.setdefault("taken", datetime.now())
    return jpeg_phone_photo(size=(900, 600), **exif)


async def upload(client, headers, data: bytes | None = None, content_type="image/jpeg"):
    return await client.post(
        "/api/v1/photos",
        content=data if data is not None else phone_photo(),
        headers={**headers, "Content-Type": content_type},
    )


def report_body(photo_ids=(), **overrides) -> dict:
    body = {
        "kind": "complaint",
        "category_code": "roads",
        "description": "Ổ gà lớn giữa đường, xe máy dễ ngã khi trời mưa.",
        "location": dict(HOAN_KIEM),
        "address_text": "Phố Đinh Tiên Hoàng",
        "photo_ids": [str(p) for p in photo_ids],
    }
    body.update(overrides)
    return body


async def file_with_photo(client, headers, **overrides) -> dict:
    photo = await upload(client, headers)
    assert photo.status_code == 201, photo.text
    r = await client.post(
        "/api/v1/reports", json=report_body([photo.json()["id"]], **overrides), headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()
