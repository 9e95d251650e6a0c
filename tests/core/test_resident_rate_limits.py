"""Filing and photo uploads are limited per resident (issue 17, item 5): a resident past
REPORT_RATE_PER_RESIDENT / PHOTO_RATE_PER_RESIDENT gets 429 problem+json with
Retry-After; other residents are not affected."""

from __future__ import annotations

import uuid

import msgspec

from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import report_body, upload
from tests.conftest import running


def limited_app(settings):
    from app.main import create_app

    return create_app(
        msgspec.structs.replace(
            settings,
            report_rate_per_resident="2/hour",
            photo_rate_per_resident="3/hour",
            redis_prefix=f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}",
        )
    )


async def file_one(http, headers):
    photo = await upload(http, headers)
    assert photo.status_code == 201, photo.text
    return await http.post(
        "/api/v1/reports", json=report_body([photo.json()["id"]]), headers=headers
    )


async def test_filing_is_limited_per_resident(settings, database, caplog):
    application = limited_app(settings)
    async with running(application) as http:
        first = await sign_in_resident(http, caplog)
        filed = [await file_one(http, first["headers"]) for _ in range(3)]
        assert [r.status_code for r in filed] == [201, 201, 429], filed[-1].text
        refused = filed[2]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        other = await sign_in_resident(http, caplog)
        assert (await file_one(http, other["headers"])).status_code == 201


async def test_photo_uploads_are_limited_per_resident(settings, database, caplog):
    application = limited_app(settings)
    async with running(application) as http:
        resident = await sign_in_resident(http, caplog)
        statuses = [(await upload(http, resident["headers"])).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        other = await sign_in_resident(http, caplog)
        assert (await upload(http, other["headers"])).status_code == 201
