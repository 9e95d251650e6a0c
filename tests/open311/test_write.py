"""POST requests and GET tokens (GeoReport v2, the write side): a third-party app files
with its key, attributes and a media_url, in JSON and in XML; the real worker routes the
report and attaches the photo (EXIF gone); every error in the specification's shape;
nothing half-written; the submitter's contact only for the unit's managers."""

from __future__ import annotations

import io
import uuid
from xml.etree import ElementTree

import pytest
from PIL import Image
from sqlalchemy import text

from app.open311 import keys
from tests.accounts.factories import sign_in_staff
from tests.complaints.imagegen import COMMENT_MARKER, XMP_MARKER
from tests.open311.test_write_support import (
    filing_form,
    issue_key,
    media_server,  # noqa: F401 (a fixture)
    run_worker,
)

ROOT = "/open311/v2"
SUBMITTER = {
    "email": "lan.nguyen@example.test",
    "first_name": "Lan",
    "last_name": "Nguyễn",
    "phone": "0912345678",
    "device_id": "device-7f3a",
    "account_id": "acct-42",
}


def errors_of(response, fmt: str = "json") -> list[tuple[int, str]]:
    if fmt == "xml":
        assert response.headers["content-type"] == "text/xml; charset=utf-8"
        root = ElementTree.fromstring(response.content)
        assert root.tag == "errors"
        return [(int(e.findtext("code")), e.findtext("description")) for e in root]
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return [(e["code"], e["description"]) for e in response.json()]


async def count(session, sql: str, **params) -> int:
    return (await session.execute(text(sql), params)).scalar_one()


async def written(session) -> tuple[int, int, int]:
    """Reports, Open311 filings and filing audit rows."""
    return (
        await count(session, "SELECT count(*) FROM reports"),
        await count(session, "SELECT count(*) FROM open311_filings"),
        await count(
            session, "SELECT count(*) FROM audit_log WHERE action = 'open311.report_filed'"
        ),
    )


async def test_an_app_files_with_attributes_and_a_photo_in_json(app, client, session, media_server):
    issued = await issue_key(app)
    form = filing_form(
        issued.key,
        service_code="street-lighting",
        description="Đèn đường không sáng cả tuần nay ở đầu ngõ.",
        address_string="Đầu ngõ 12 phố Hàng Bài",
        media_url=media_server.url("/redirect", host="localhost"),
        **{"attribute[pole_number]": "HK-0123", "attribute[lamp_state]": "off"},
        **SUBMITTER,
    )
    r = await client.post(f"{ROOT}/requests.json", data=form)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    [answer] = r.json()
    assert set(answer) == {"service_request_id", "token", "service_notice", "account_id"}
    assert isinstance(answer["service_request_id"], str) and answer["account_id"] == "acct-42"
    assert "3 ngày làm việc" in answer["service_notice"]  # street lighting: 3 days, vi
    code = answer["service_request_id"]

    row = (
        await session.execute(
            text(
                "SELECT r.id, r.status, r.kind, r.attributes, r.open311_key_id, r.address_text,"
                " r.filed_by_staff_id, f.email, f.phone, f.media_state"
                " FROM reports r JOIN open311_filings f ON f.report_id = r.id WHERE r.code = :c"
            ),
            {"c": code},
        )
    ).one()
    assert str(row.id) == answer["token"]
    assert (row.status, row.kind, row.filed_by_staff_id) == ("submitted", "complaint", None)
    assert row.attributes == {"pole_number": "HK-0123", "lamp_state": "off"}
    assert row.open311_key_id == issued.record.id
    assert row.address_text == "Đầu ngõ 12 phố Hàng Bài"
    assert (row.email, row.phone, row.media_state) == (SUBMITTER["email"], "0912345678", "pending")

    await run_worker()  # routes the report, fetches the photo through a redirect

    after = (
        await session.execute(
            text(
                "SELECT r.status, r.unit_id, f.media_state, f.media_attempts,"
                " (SELECT count(*) FROM report_events e WHERE e.report_id = r.id"
                "   AND e.kind = 'photos_added') AS added"
                " FROM reports r JOIN open311_filings f ON f.report_id = r.id WHERE r.code = :c"
            ),
            {"c": code},
        )
    ).one()
    assert after.status == "assigned" and after.unit_id is not None
    assert (after.media_state, after.media_attempts, after.added) == ("attached", 1, 1)
    # the media request went to the address checked, naming the host the app gave
    assert f"localhost:{media_server.httpd.server_port}" in media_server.hosts

    [photo] = (
        await session.execute(
            text("SELECT display_key, width, height FROM report_photos WHERE report_id = :id"),
            {"id": row.id},
        )
    ).all()
    stored = await app.state.storage.get(photo.display_key)
    assert b"Exif" not in stored and XMP_MARKER.encode() not in stored
    assert COMMENT_MARKER not in stored
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and not image.getexif()
    assert (photo.width, photo.height) == (600, 900)  # orientation 6, stored upright

    # GET tokens/{token}: the request id for the token, in both formats
    token = answer["token"]
    r = await client.get(f"{ROOT}/tokens/{token}.json")
    assert r.status_code == 200 and r.json() == [{"service_request_id": code, "token": token}]
    r = await client.get(f"{ROOT}/tokens/{token}.xml", params={"jurisdiction_id": "hanoi.gov.vn"})
    request = ElementTree.fromstring(r.content).find("request")
    assert (request.findtext("service_request_id"), request.findtext("token")) == (code, token)


async def test_an_app_files_in_xml_with_a_multivaluelist_in_english(
    app, client, session, media_server
):
    issued = await issue_key(app)
    body = (
        "&".join(
            f"{k}={v}"
            for k, v in filing_form(
                issued.key,
                service_code="waste",
                description="Rubbish+and+debris+piled+on+the+pavement",
                media_url=media_server.url("/photo.jpg"),
                locale="en",
            ).items()
        )
        + "&attribute[waste_kinds][]=household&attribute[waste_kinds][]=bulky"
    )
    r = await client.post(
        f"{ROOT}/requests.xml",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    assert r.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ElementTree.fromstring(r.content)
    assert root.tag == "service_requests"
    [request] = root
    assert request.tag == "request"
    assert [child.tag for child in request] == [
        "service_request_id",
        "token",
        "service_notice",
        "account_id",
    ]
    assert "3 working days" in request.findtext("service_notice")
    assert request.find("account_id").text is None  # <account_id/>
    code = request.findtext("service_request_id")
    stored = await session.scalar(
        text("SELECT attributes FROM reports WHERE code = :c"), {"c": code}
    )
    assert stored == {"waste_kinds": ["household", "bulky"]}
    await run_worker()
    state = await session.scalar(
        text(
            "SELECT f.media_state FROM open311_filings f JOIN reports r ON r.id = f.report_id"
            " WHERE r.code = :c"
        ),
        {"c": code},
    )
    assert state == "attached"


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_missing_unknown_or_revoked_key_is_a_403(app, client, session, fmt):
    issued = await issue_key(app)
    before = await count(session, "SELECT count(*) FROM reports")
    form = filing_form(issued.key)
    for api_key, said in ((None, "api_key is required"), ("o311_nope", "unknown or revoked")):
        r = await client.post(f"{ROOT}/requests.{fmt}", data={**form, "api_key": api_key})
        assert r.status_code == 403
        [(code, description)] = errors_of(r, fmt)
        assert code == 403 and said in description
    async with app.state.sessionmaker() as s, s.begin():
        from app import policy
        from app.core.clock import Clock

        await keys.revoke_key(s, policy.system_actor(Clock().now()), issued.record.id)
    r = await client.post(f"{ROOT}/requests.{fmt}", data=form)
    assert r.status_code == 403 and errors_of(r, fmt)[0][0] == 403
    assert await count(session, "SELECT count(*) FROM reports") == before


ERROR_CASES = [
    # (fields changed, status, words the description carries)
    ({"service_code": None}, 400, "service_code is required"),
    ({"service_code": "no-such-service"}, 404, "service_code 'no-such-service' not found"),
    ({"lat": None, "long": None}, 400, "a location is required: lat and long, address_string"),
    # Dịch Vọng Hậu (Cầu Giấy) was split between two wards in 2025: which one?
    (
        {"lat": None, "long": None, "address_string": "Phường Dịch Vọng Hậu, Quận Cầu Giấy"},
        400,
        "address_string matches places in several wards",
    ),
    ({"lat": None, "long": None, "address_string": "Nowhere Street, Atlantis"}, 400, "matches no"),
    ({"lat": None, "long": None, "address_id": "999999"}, 400, "address_id matches no place"),
    ({"lat": None, "long": None, "address_id": "-3"}, 400, "address_id must be an id"),
    ({"long": None}, 400, "lat and long must both be given"),
    ({"lat": "91"}, 400, "lat must be a number from -90 to 90"),
    ({"lat": "10.7769", "long": "106.7009"}, 400, "outside the city"),  # Ho Chi Minh City
    ({"description": "x" * 4001}, 400, "description is longer than 4,000 characters"),
    ({"description": None}, 400, "description is required"),
    ({"jurisdiction_id": "sfgov.org"}, 404, "jurisdiction_id 'sfgov.org' not found"),
    ({"attribute[pothole_size]": "enormous"}, 400, "attribute[pothole_size] must be one of"),
    ({"attribute[colour]": "red"}, 400, "attribute[colour] is not an attribute of service roads"),
    ({"attribute[pothole_size][]": "small"}, 400, None),  # allowed: one value, list syntax
    ({"media_url": "ftp://example.test/a.jpg"}, 400, "media_url must be an http or https URL"),
    ({"email": "a" * 300}, 400, "email is longer than 254 characters"),
    ({"nickname": "x"}, 400, "nickname is not a parameter of POST requests"),
    ({"description": "Có ký tự \x00 lạ trong mô tả"}, 400, "description contains a NUL"),
]


@pytest.mark.parametrize(("fields", "status", "said"), ERROR_CASES)
async def test_bad_input_is_named_and_nothing_is_written(
    app, client, session, fields, status, said
):
    issued = await issue_key(app)
    before = (
        await count(session, "SELECT count(*) FROM reports"),
        await count(session, "SELECT count(*) FROM open311_filings"),
        await count(
            session, "SELECT count(*) FROM audit_log WHERE action = 'open311.report_filed'"
        ),
    )
    r = await client.post(f"{ROOT}/requests.json", data=filing_form(issued.key, **fields))
    if said is None:
        assert r.status_code == 200, r.text
        return
    assert r.status_code == status, r.text
    [(code, description)] = errors_of(r)
    assert code == status and said in description, description
    after = (
        await count(session, "SELECT count(*) FROM reports"),
        await count(session, "SELECT count(*) FROM open311_filings"),
        await count(
            session, "SELECT count(*) FROM audit_log WHERE action = 'open311.report_filed'"
        ),
    )
    assert after == before


async def test_a_required_attribute_and_a_numbers_type_are_checked_in_xml(app, client, session):
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.xml", data=filing_form(issued.key, service_code="trees-parks")
    )
    assert r.status_code == 400
    assert errors_of(r, "xml") == [(400, "attribute[blocking_road] is required")]
    r = await client.post(
        f"{ROOT}/requests.xml",
        data=filing_form(
            issued.key, service_code="drainage-flooding", **{"attribute[water_depth_cm]": "deep"}
        ),
    )
    assert errors_of(r, "xml") == [(400, "attribute[water_depth_cm] must be a number")]
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(
            issued.key,
            service_code="drainage-flooding",
            **{"attribute[water_depth_cm]": "35"},
        ),
    )
    assert r.status_code == 200, r.text
    code = r.json()[0]["service_request_id"]
    assert await session.scalar(
        text("SELECT attributes FROM reports WHERE code = :c"), {"c": code}
    ) == {"water_depth_cm": 35}
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(
            issued.key, service_code="trees-parks", **{"attribute[blocking_road]": "yes"}
        ),
    )
    assert r.status_code == 200, r.text


async def test_several_problems_are_named_together(app, client):
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, lat="abc", description="short", media_url="nope"),
    )
    [(code, description)] = errors_of(r)
    assert code == 400
    for said in ("lat must be a number", "description is required", "media_url must be"):
        assert said in description


async def test_an_unknown_token_is_a_404(client):
    for token in (str(uuid.uuid4()), "not-a-token"):
        r = await client.get(f"{ROOT}/tokens/{token}.xml")
        assert r.status_code == 404
        [(code, description)] = errors_of(r, "xml")
        assert code == 404 and "not found" in description


async def test_the_filing_is_audited_with_the_keys_id_and_the_key_marked_used(app, client, session):
    issued = await issue_key(app)
    r = await client.post(f"{ROOT}/requests.json", data=filing_form(issued.key, **SUBMITTER))
    code = r.json()[0]["service_request_id"]
    audit = (
        await session.execute(
            text(
                "SELECT actor_id, actor_kind, ip, details::text AS details FROM audit_log"
                " WHERE action = 'open311.report_filed' AND object_id = :c"
            ),
            {"c": code},
        )
    ).one()
    assert audit.actor_kind == "open311" and audit.actor_id is None
    assert str(audit.ip) == "203.0.113.7"
    assert str(issued.record.id) in audit.details
    for value in SUBMITTER.values():  # no personal data in the audit row
        assert value not in audit.details
    used = await session.scalar(
        text("SELECT last_used_at FROM open311_keys WHERE id = :id"), {"id": issued.record.id}
    )
    assert used is not None


async def test_the_submitters_contact_is_for_the_units_managers_only(app, client, session, caplog):
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, description="Ổ gà sâu trước cổng trường học.", **SUBMITTER),
    )
    code = r.json()[0]["service_request_id"]
    report_id = r.json()[0]["token"]
    await run_worker()  # routed to the ward committee of Hoàn Kiếm
    unit = await session.scalar(
        text("SELECT u.code FROM reports r JOIN units u ON u.id = r.unit_id WHERE r.code = :c"),
        {"c": code},
    )

    # public views: the street feed, the map, the public report page and Open311's own
    public = [
        await client.get(f"/api/v1/public/reports/{code}"),
        await client.get(
            "/api/v1/public/reports",
            params={"bbox": "105.84,21.02,105.86,21.04", "zoom": 17},
        ),
        await client.get(f"{ROOT}/requests/{code}.json"),
        await client.get(f"{ROOT}/requests/{code}.xml"),
        await client.get(f"{ROOT}/tokens/{report_id}.json"),
    ]
    assert all(response.status_code == 200 for response in public), [
        (response.url, response.status_code) for response in public
    ]
    assert code in public[1].text  # the feed does show the report
    for response in public:
        for value in SUBMITTER.values():
            assert value not in response.text
    for value in SUBMITTER.values():
        assert value not in caplog.text

    officer = await sign_in_staff(client, app, [("officer", unit)])
    seen = await client.get(f"/api/v1/console/reports/{report_id}", headers=officer["headers"])
    assert seen.status_code == 200, seen.text
    detail = seen.json()
    assert detail["reporter"] is None and detail["third_party"] is True
    assert detail["attributes"] == {}
    manager = await sign_in_staff(client, app, [("manager", unit)])
    seen = await client.get(f"/api/v1/console/reports/{report_id}", headers=manager["headers"])
    assert seen.json()["reporter"] == {
        "name": "Lan Nguyễn",
        "phone": "0912345678",
        "email": "lan.nguyen@example.test",
    }
    assert seen.headers["cache-control"] == "no-store"
    viewed = await count(
        session,
        "SELECT count(*) FROM audit_log WHERE action = 'report.reporter_contact_viewed'"
        " AND object_id = :c",
        c=code,
    )
    assert viewed == 1


async def test_staff_see_the_answers_on_the_report(app, client, session):
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, **{"attribute[pothole_size]": "large"}),
    )
    report_id = r.json()[0]["token"]
    admin = await sign_in_staff(client, app, [("admin", None)])
    seen = await client.get(f"/api/v1/console/reports/{report_id}", headers=admin["headers"])
    assert seen.json()["attributes"] == {"pothole_size": "large"}


async def test_the_console_page_shows_the_answers_and_the_third_party_mark(app, client):
    from tests.web.test_pages import browser_for

    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(
            issued.key,
            service_code="waste",
            **{"attribute[waste_kinds][]": ["household", "bulky"]},
        ),
    )
    assert r.status_code == 200, r.text
    browser = await browser_for(app, [("dispatcher", None)])
    page = await browser.get(f"/console/reports/{r.json()[0]['token']}")
    assert page.status_code == 200, page.text
    assert "Gửi qua ứng dụng bên thứ ba (tính riêng)" in page.text
    assert "Thông tin bổ sung" in page.text
    assert "<dt>waste_kinds</dt><dd>household, bulky</dd>" in page.text


async def test_an_app_files_by_address_alone_at_the_wards_point_marked_approximate(
    app, client, session
):
    """No lat/long: address_string (old-style, no accents) or address_id from the city's
    address search; the report is filed at the ward's point, location approximate."""
    issued = await issue_key(app)
    search = await client.get(
        "/api/v1/places/address-search", params={"q": "so 5 pho Hang Bac, quan Hoan Kiem"}
    )
    [place, *_] = search.json()["candidates"]
    filed = []
    for fields in (
        {"address_string": "so 5 pho Hang Bac, phuong Hang Bac, quan Hoan Kiem"},
        {"address_id": str(place["id"])},
    ):
        form = filing_form(issued.key, lat=None, long=None, **fields)
        r = await client.post(f"{ROOT}/requests.xml", data=form)
        assert r.status_code == 200, r.text
        code = ElementTree.fromstring(r.content).find("request/service_request_id").text
        row = (
            await session.execute(
                text(
                    "SELECT a.code, r.location_approximate, r.address_text,"
                    " ST_Y(r.location::geometry), ST_X(r.location::geometry)"
                    " FROM reports r JOIN areas a ON ST_Covers(a.geom, r.location::geometry)"
                    " WHERE r.code = :code"
                ),
                {"code": code},
            )
        ).one()
        filed.append(row)
    assert {row[0] for row in filed} == {place["area_code"]}
    assert all(row[1] is True for row in filed)
    assert filed[0][2] == "so 5 pho Hang Bac, phuong Hang Bac, quan Hoan Kiem"
    assert filed[1][3:] == pytest.approx((place["lat"], place["lon"]), abs=1e-6)


async def test_a_submitters_contact_is_erased_after_the_retention_past_the_reports_end(
    app, client, session
):
    """Storage limitation (Decree 13): the contact served the unit while the report was
    handled. Past OPEN311_CONTACT_RETENTION_DAYS after the report ended it is erased by
    the daily job; an open report's, or one that ended lately, stays."""
    from datetime import UTC, datetime, timedelta

    from app.core.clock import FixedClock
    from tests.routing.conftest import worker_for

    issued = await issue_key(app)
    ids = {}
    for name in ("ended_long_ago", "ended_lately", "open_long"):
        r = await client.post(f"{ROOT}/requests.json", data=filing_form(issued.key, **SUBMITTER))
        assert r.status_code == 200, r.text
        ids[name] = uuid.UUID(r.json()[0]["token"])
    now = datetime.now(UTC)
    days = app.state.settings.open311_contact_retention_days
    for name, status, ago in (
        ("ended_long_ago", "closed", days + 1),
        ("ended_lately", "rejected", days - 1),
        ("open_long", "in_progress", days + 30),
    ):
        await session.execute(
            text("UPDATE reports SET status = :s, updated_at = :u WHERE id = :id"),
            {"s": status, "u": now - timedelta(days=ago), "id": ids[name]},
        )
    await session.commit()

    await app.state.redis.enqueue_job("purge_open311_contacts")
    worker = worker_for(FixedClock(now))
    worker.cron_jobs = []
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0

    rows = {
        row.report_id: row
        for row in (
            await session.execute(
                text(
                    "SELECT report_id, email, phone, first_name, last_name, device_id,"
                    " account_id FROM open311_filings WHERE report_id = ANY(:ids)"
                ),
                {"ids": list(ids.values())},
            )
        ).all()
    }
    assert tuple(rows[ids["ended_long_ago"]])[1:] == (None,) * 6
    for kept in ("ended_lately", "open_long"):
        assert rows[ids[kept]].email == SUBMITTER["email"], kept
        assert rows[ids[kept]].phone == SUBMITTER["phone"], kept
    # the report itself stays, and the public still sees it
    r = await client.get(f"{ROOT}/requests/{(await code_of(session, ids['ended_long_ago']))}.json")
    assert r.status_code == 200


async def code_of(session, report_id) -> str:
    return (
        await session.execute(text("SELECT code FROM reports WHERE id = :id"), {"id": report_id})
    ).scalar_one()
