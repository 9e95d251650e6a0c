"""GeoReport v2, the read side, for conformance: discovery, services, a service definition,
requests (one and many, every parameter) and mySociety's servicerequestupdates, in JSON
and XML. JSON answers are validated against the Open311 project's published schemas
(tests/open311/schemas/README.md); each XML answer is parsed with the standard library and
compared field by field with the JSON one. Reports are filed, routed, answered, resolved
and moderated through the real API and a real worker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from sqlalchemy import text

from app.core.calendar import TIMEZONE
from app.core.clock import Clock
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.complaints.factories import HOAN_KIEM, file_with_photo
from tests.routing.conftest import run_worker
from tests.routing.test_deadlines import act

ROOT = "/open311/v2"
SCHEMAS = Path(__file__).parent / "schemas"
REQUEST_FIELDS = [
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
    "long", "media_url",
]  # fmt: skip
UPDATE_FIELDS = [
    "update_id", "service_request_id", "status", "updated_datetime", "description", "media_url"
]  # fmt: skip


# ---------------------------------------------------------------- helpers


def _registry() -> Registry:
    resources = []
    for folder in ("georeport-v2", "written-here"):
        for path in (SCHEMAS / folder).glob("*.json"):
            resources.append((path.name, Resource.opaque(json.loads(path.read_text()))))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def valid(schema: str, document) -> None:
    """``document`` satisfies the named schema (formats checked: date-time)."""
    validator = Draft7Validator(
        {"$ref": schema}, registry=REGISTRY, format_checker=Draft7Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def xml_value(element: ElementTree.Element):
    """An XML element read back as the JSON value it stands for (the Spark convention:
    text, nested objects, lists of items)."""
    children = list(element)
    if element.tag in ("attributes", "values", "endpoints", "formats") and not children:
        return []
    if not children:
        return element.text or ""
    if all(child.tag == children[0].tag for child in children) and element.tag in (
        "attributes", "values", "endpoints", "formats",
    ):  # fmt: skip
        return [xml_value(child) for child in children]
    return {child.tag: xml_value(child) for child in children}


def as_xml_text(value) -> object:
    """How a JSON value reads in our XML: null as empty, booleans and numbers as text."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list):
        return [as_xml_text(v) for v in value]
    if isinstance(value, dict):
        return {k: as_xml_text(v) for k, v in value.items()}
    return str(value)


def unsigned(row: dict) -> dict:
    """A row with its media URL's signature left out: two answers a second apart sign the
    same photo with different expiry times."""
    media = row.get("media_url")
    return {**row, "media_url": urlsplit(media).path} if media else row


def same_in_xml(xml_body: bytes, root: str, item: str | None, json_value) -> None:
    """The XML answer holds exactly the JSON answer's fields, in order, value by value."""
    assert xml_body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    tree = ElementTree.fromstring(xml_body)
    assert tree.tag == root
    if item is None:
        assert [c.tag for c in tree] == list(json_value)
        assert xml_value(tree) == as_xml_text(json_value)
        return
    assert [c.tag for c in tree] == [item] * len(json_value)
    for element, expected in zip(tree, json_value, strict=True):
        assert [c.tag for c in element] == list(expected)
        assert unsigned({c.tag: xml_value(c) for c in element}) == as_xml_text(unsigned(expected))


async def both(client, path: str, **params):
    """The JSON and the XML answer to one read."""
    as_json = await client.get(f"{ROOT}/{path}.json", params=params)
    as_xml = await client.get(f"{ROOT}/{path}.xml", params=params)
    return as_json, as_xml


def error_of(response, status: int, *words: str) -> str:
    """An error in the spec's shape (JSON or XML, as asked), naming what is wrong."""
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("text/xml"):
        tree = ElementTree.fromstring(response.content)
        assert tree.tag == "errors" and [e.tag for e in tree] == ["error"]
        code, description = tree.find("error/code").text, tree.find("error/description").text
        assert code == str(status)
    else:
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        valid("errors.json", body)
        [error] = body
        assert error["code"] == status
        description = error["description"]
    for word in words:
        assert word in description, (word, description)
    return description


def hanoi_w3c(value: datetime) -> str:
    return value.astimezone(TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S+07:00")


def w3c(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reference_changed(app) -> None:
    """What the reference data's NOTIFY does in every process, without waiting for it."""
    app.state.reference.invalidate()


@pytest.fixture
async def order_questions(app):
    """Questions on the public order category (none in the reference data): a list, a
    number and a retired one; removed afterwards."""
    values = [
        {"key": "day", "name_vi": "Ban ngày", "name_en": "Daytime"},
        {"key": "night", "name_vi": "Ban đêm", "name_en": "At night"},
    ]
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM category_attributes WHERE category_code = 'public-order'")
        )
        await conn.execute(
            text(
                "INSERT INTO category_attributes (category_code, code, position, datatype,"
                " required, description_vi, description_en, datatype_description_vi,"
                " datatype_description_en, values) VALUES"
                " ('public-order', 'when', 20, 'singlevaluelist', true, 'Tiếng ồn vào lúc nào?',"
                "  'When is the noise?', NULL, NULL, CAST(:values AS jsonb)),"
                " ('public-order', 'decibels', 10, 'number', false, 'Độ ồn đo được',"
                "  'Measured loudness', 'Số đo dB, ví dụ 85', 'Decibels, e.g. 85', '[]'),"
                " ('public-order', 'retired', 5, 'string', false, 'Câu hỏi cũ', 'Old question',"
                "  NULL, NULL, '[]')"
            ),
            {"values": json.dumps(values)},
        )
        await conn.execute(
            text(
                "UPDATE category_attributes SET active = false"
                " WHERE category_code = 'public-order' AND code = 'retired'"
            )
        )
    await reference_changed(app)
    yield
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM category_attributes WHERE category_code = 'public-order'")
        )
    await reference_changed(app)


@pytest.fixture
def worker_clock():
    """The worker's clock: the real time (the reports are filed at the real time)."""
    return Clock()


async def ward_officer(client, app) -> dict:
    area = (await client.get("/api/v1/areas/lookup", params=HOAN_KIEM)).json()["code"]
    return await sign_in_staff(client, app, [("officer", f"ubnd-{area}")])


async def requests_json(client, **params) -> list[dict]:
    response = await client.get(f"{ROOT}/requests.json", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    valid("requests.json", body)
    return body


# ---------------------------------------------------------------- discovery


async def test_discovery_names_the_endpoint_in_both_formats(client, settings):
    as_json, as_xml = await both(client, "discovery")
    assert as_json.status_code == as_xml.status_code == 200
    assert as_json.headers["content-type"] == "application/json; charset=utf-8"
    assert as_xml.headers["content-type"] == "text/xml; charset=utf-8"
    assert as_json.headers["cache-control"] == "public, max-age=300"
    document = as_json.json()
    valid("discovery.json", document)
    [endpoint] = document["endpoints"]
    assert endpoint == {
        "specification": "http://wiki.open311.org/GeoReport_v2",
        "url": "http://testserver.local/open311/v2",  # from the request: no setting given
        "changeset": document["changeset"],
        "type": "production",
        "formats": ["text/xml", "application/json"],
    }
    assert settings.open311_contact_email in document["contact"]
    assert settings.open311_contact_email in document["key_service"]
    same_in_xml(as_xml.content, "discovery", None, document)
    tree = ElementTree.fromstring(as_xml.content)
    assert [f.text for f in tree.findall("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]


# ---------------------------------------------------------------- services


async def test_services_are_the_active_categories_in_the_language_asked(
    client, app, order_questions
):
    snapshot = await app.state.reference.current()
    active = [c for c in snapshot.categories.values() if c.active]
    async with app.state.engine.connect() as conn:
        asking = set(
            (
                await conn.scalars(
                    text("SELECT DISTINCT category_code FROM category_attributes WHERE active")
                )
            ).all()
        )
    as_json, as_xml = await both(client, "services")
    assert as_json.status_code == 200 and as_json.headers["cache-control"] == "public, max-age=300"
    assert "Accept-Language" in as_json.headers["vary"]
    services = as_json.json()
    valid("services.json", services)
    assert [s["service_code"] for s in services] == [c.code for c in active]
    for service, category in zip(services, active, strict=True):
        assert service["service_name"] == category.name_vi  # Vietnamese by default
        assert service["type"] == "realtime"
        assert service["metadata"] is (category.code in asking)
        assert category.name_en in service["keywords"] and category.code in service["keywords"]
        assert str(category.deadline_working_days) in service["description"]
        assert service["group"]
    order = next(s for s in services if s["service_code"] == "public-order")
    assert order["metadata"] is True and order["description"].startswith("An ninh")
    same_in_xml(as_xml.content, "services", "service", services)

    english = (await client.get(f"{ROOT}/services.json", params={"locale": "en-GB"})).json()
    assert [s["service_name"] for s in english] == [c.name_en for c in active]
    by_header = await client.get(
        f"{ROOT}/services.xml", headers={"Accept-Language": "en-US,en;q=0.8,vi;q=0.5"}
    )
    names = [e.text for e in ElementTree.fromstring(by_header.content).iter("service_name")]
    assert names == [c.name_en for c in active]
    # the parameter wins over the header
    vi = await client.get(
        f"{ROOT}/services.json", params={"locale": "vi"}, headers={"Accept-Language": "en"}
    )
    assert vi.json()[0]["service_name"] == active[0].name_vi


async def test_a_category_without_active_questions_has_no_metadata(client, app, order_questions):
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE category_attributes SET active = false WHERE category_code = 'public-order'"
            )
        )
    await reference_changed(app)
    services = (await client.get(f"{ROOT}/services.json")).json()
    assert next(s for s in services if s["service_code"] == "public-order")["metadata"] is False
    definition = (await client.get(f"{ROOT}/services/public-order.json")).json()
    assert definition == {"service_code": "public-order", "attributes": []}


async def test_an_inactive_category_is_not_a_service(client, app):
    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE categories SET active = false WHERE code = 'other'"))
    await reference_changed(app)
    try:
        services = (await client.get(f"{ROOT}/services.json")).json()
        assert "other" not in [s["service_code"] for s in services]
        for fmt in ("json", "xml"):
            error_of(await client.get(f"{ROOT}/services/other.{fmt}"), 404, "other")
    finally:
        async with app.state.engine.begin() as conn:
            await conn.execute(text("UPDATE categories SET active = true WHERE code = 'other'"))
        await reference_changed(app)


# ---------------------------------------------------------------- service definition


async def test_a_service_definition_lists_the_active_questions_in_order(client, order_questions):
    as_json, as_xml = await both(client, "services/public-order")
    assert as_json.status_code == 200 and as_json.headers["cache-control"] == "public, max-age=300"
    definition = as_json.json()
    valid("service-definition.json", definition)
    assert definition == {
        "service_code": "public-order",
        "attributes": [
            {
                "variable": True,
                "code": "decibels",
                "datatype": "number",
                "required": False,
                "datatype_description": "Số đo dB, ví dụ 85",
                "order": 1,
                "description": "Độ ồn đo được",
                "values": [],
            },
            {
                "variable": True,
                "code": "when",
                "datatype": "singlevaluelist",
                "required": True,
                "datatype_description": None,
                "order": 2,
                "description": "Tiếng ồn vào lúc nào?",
                "values": [{"key": "day", "name": "Ban ngày"}, {"key": "night", "name": "Ban đêm"}],
            },
        ],
    }
    same_in_xml(as_xml.content, "service_definition", None, definition)
    tree = ElementTree.fromstring(as_xml.content)
    assert [v.findtext("name") for v in tree.findall("attributes/attribute/values/value")] == [
        "Ban ngày",
        "Ban đêm",
    ]
    english = (
        await client.get(f"{ROOT}/services/public-order.json", params={"locale": "en"})
    ).json()
    assert [a["description"] for a in english["attributes"]] == [
        "Measured loudness",
        "When is the noise?",
    ]
    assert english["attributes"][1]["values"][1] == {"key": "night", "name": "At night"}


async def test_an_unknown_service_is_a_404_in_the_format_asked(client):
    for fmt in ("json", "xml"):
        error_of(await client.get(f"{ROOT}/services/no-such-thing.{fmt}"), 404, "no-such-thing")
    error_of(await client.get(f"{ROOT}/services/noise"), 404, "noise")  # no format suffix
    error_of(await client.get(f"{ROOT}/services/noise.html"), 404)


# ---------------------------------------------------------------- requests


async def test_a_report_as_a_service_request_shows_what_the_public_sees(
    client, app, caplog, worker_clock
):
    resident = await sign_in_resident(client, caplog)
    await client.patch(
        "/api/v1/me", json={"full_name": "Nguyễn Thị Hoa"}, headers=resident["headers"]
    )
    officer = await ward_officer(client, app)
    filed = await file_with_photo(client, resident["headers"], category_code="roads")
    await run_worker(worker_clock)
    reply = await act(client, officer["headers"], filed, "replies", body="Phường sẽ vá trong tuần.")
    assert reply.status_code == 200, reply.text
    note = await act(client, officer["headers"], filed, "notes", body="Nội bộ: gọi nhà thầu.")
    assert note.status_code == 200, note.text
    # the resident's own comment is public on the timeline, but theirs: never an answer
    await client.post(
        f"/api/v1/reports/{filed['id']}/comments",
        json={"body": "Tôi ở số 12, gọi 0912000111"},
        headers=resident["headers"],
    )

    as_json, as_xml = await both(client, f"requests/{filed['code']}")
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["cache-control"] == "public, max-age=60"
    body = as_json.json()
    valid("requests.json", body)
    [request] = body
    async with app.state.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT r.created_at, r.updated_at, r.due_at, u.name_vi, ST_Y(r.location),"
                    " ST_X(r.location) FROM reports r JOIN units u ON u.id = r.unit_id"
                    " WHERE r.code = :code"
                ),
                {"code": filed["code"]},
            )
        ).one()
    assert list(request) == REQUEST_FIELDS
    assert {k: v for k, v in request.items() if k != "media_url"} == {
        "service_request_id": filed["code"],
        "status": "open",
        "status_notes": "Phường sẽ vá trong tuần.",  # the latest public answer, not the note
        "service_name": "Đường sá, ổ gà, hè phố",
        "service_code": "roads",
        "description": "Ổ gà lớn giữa đường, xe máy dễ ngã khi trời mưa.",
        "agency_responsible": row.name_vi,
        "service_notice": "Đơn vị có trách nhiệm xử lý trong 5 ngày làm việc kể từ khi tiếp nhận.",
        "requested_datetime": hanoi_w3c(row.created_at),
        "updated_datetime": hanoi_w3c(row.updated_at),
        "expected_datetime": hanoi_w3c(row.due_at),
        "address": "Phố Đinh Tiên Hoàng",
        "address_id": None,
        "zipcode": None,
        "lat": row[4],
        "long": row[5],
    }
    assert request["requested_datetime"].endswith("+07:00")
    # the photo, signed, readable by anyone holding the URL
    media = urlsplit(request["media_url"])
    assert media.scheme == "http" and "sig=" in media.query
    photo = await client.get(f"{media.path}?{media.query}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    # signed once, handed out again while it has half its life left (10 minutes)
    again = (await client.get(f"{ROOT}/requests/{filed['code']}.json")).json()[0]
    assert again["media_url"] == request["media_url"]
    expires = int(dict(p.split("=") for p in media.query.split("&"))["expires"])
    assert 540 <= expires - datetime.now(UTC).timestamp() <= 600
    # nobody's personal data, nor the internal note
    for secret in (resident["phone"], "Nguyễn Thị Hoa", "0912000111", "Nội bộ", "reporter"):
        assert secret not in as_json.text and secret not in as_xml.text
    same_in_xml(as_xml.content, "service_requests", "request", body)

    english = (
        await client.get(f"{ROOT}/requests/{filed['code']}.json", params={"locale": "en"})
    ).json()[0]
    assert english["service_name"] == "Roads, potholes and pavements"
    assert english["service_notice"].startswith("The unit responsible")
    # the code as people type it
    lower = await client.get(f"{ROOT}/requests/{filed['code'].lower().replace('-', '')}.json")
    assert [unsigned(r) for r in lower.json()] == [unsigned(r) for r in body]


async def test_resolved_hidden_and_withdrawn_reports(client, app, caplog, worker_clock):
    resident = await sign_in_resident(client, caplog)
    officer = await ward_officer(client, app)
    admin = await sign_in_staff(client, app, [("admin", None)])
    fixed = await file_with_photo(client, resident["headers"])
    hidden = await file_with_photo(client, resident["headers"], category_code="waste")
    withdrawn = await file_with_photo(client, resident["headers"])
    gone = await client.post(
        f"/api/v1/reports/{withdrawn['id']}/withdraw", headers=resident["headers"]
    )
    assert gone.status_code == 204, gone.text
    await run_worker(worker_clock)
    assert (await act(client, officer["headers"], fixed, "accept")).status_code == 200
    done = await act(client, officer["headers"], fixed, "resolve", answer="Đã vá xong ổ gà.")
    assert done.status_code == 200, done.text
    hide = await client.post(
        f"/api/v1/moderation/reports/{hidden['id']}/hide-text",
        json={"reason": "Lời lẽ xúc phạm"},
        headers=admin["headers"],
    )
    assert hide.status_code == 204, hide.text
    photo = (
        await client.get(f"/api/v1/reports/{hidden['id']}", headers=resident["headers"])
    ).json()["photos"][0]
    hide_photo = await client.post(
        f"/api/v1/moderation/photos/{photo['id']}/hide",
        json={"reason": "Có mặt người"},
        headers=admin["headers"],
    )
    assert hide_photo.status_code == 204, hide_photo.text
    codes = ",".join(r["code"] for r in (fixed, hidden, withdrawn))
    found = {
        r["service_request_id"]: r for r in await requests_json(client, service_request_id=codes)
    }
    assert set(found) == {fixed["code"], hidden["code"]}  # a withdrawn report is not public
    assert found[fixed["code"]]["status"] == "closed"  # resolved: closed for Open311
    assert found[fixed["code"]]["status_notes"] == "Đã vá xong ổ gà."
    assert found[hidden["code"]]["description"] is None
    assert found[hidden["code"]]["address"] is None
    assert found[hidden["code"]]["media_url"] is None
    for fmt in ("json", "xml"):
        error_of(
            await client.get(f"{ROOT}/requests/{withdrawn['code']}.{fmt}"), 404, withdrawn["code"]
        )
        error_of(await client.get(f"{ROOT}/requests/ZZZZ-ZZZZ.{fmt}"), 404, "ZZZZ-ZZZZ")


async def test_requests_filters_window_status_codes_and_pages(client, app, caplog, worker_clock):
    start = datetime.now(UTC) - timedelta(seconds=1)
    resident = await sign_in_resident(client, caplog)
    officer = await ward_officer(client, app)
    filed = []
    for category in ("roads", "waste", "roads", "noise", "roads"):
        filed.append(await file_with_photo(client, resident["headers"], category_code=category))
    await run_worker(worker_clock)
    for report in filed[:2]:  # one roads, one waste closed
        assert (await act(client, officer["headers"], report, "accept")).status_code == 200
        resolved = await act(client, officer["headers"], report, "resolve", answer="Đã xử lý xong.")
        assert resolved.status_code == 200, resolved.text
    codes = [r["code"] for r in filed]
    window = {"start_date": w3c(start)}  # end: 90 days later; only this test's reports

    every = await requests_json(client, **window)
    assert [r["service_request_id"] for r in every] == codes[::-1]  # newest first
    roads = await requests_json(client, service_code="roads", **window)
    assert [r["service_request_id"] for r in roads] == [codes[4], codes[2], codes[0]]
    two = await requests_json(client, service_code="roads,noise", **window)
    assert [r["service_request_id"] for r in two] == [codes[4], codes[3], codes[2], codes[0]]
    assert await requests_json(client, service_code="no-such-code", **window) == []
    closed = await requests_json(client, status="closed", **window)
    assert [r["service_request_id"] for r in closed] == [codes[1], codes[0]]
    opened = await requests_json(client, status="open", **window)
    assert [r["service_request_id"] for r in opened] == [codes[4], codes[3], codes[2]]
    assert len(await requests_json(client, status="open,closed", **window)) == 5
    mixed = await requests_json(client, status="open", service_code="roads", **window)
    assert [r["service_request_id"] for r in mixed] == [codes[4], codes[2]]
    # a window that ends before this test's reports, and one given by its end only
    before = await requests_json(client, end_date=w3c(start))
    assert not set(codes) & {r["service_request_id"] for r in before}
    by_end = await requests_json(client, end_date=w3c(datetime.now(UTC) + timedelta(minutes=1)))
    assert set(codes) <= {r["service_request_id"] for r in by_end}
    # the default window (the last 90 days) holds them too
    assert set(codes) <= {r["service_request_id"] for r in await requests_json(client)}
    # the same instant in another offset is the same window
    plus7 = start.astimezone(TIMEZONE).isoformat()
    assert [r["service_request_id"] for r in await requests_json(client, start_date=plus7)] == [
        r["service_request_id"] for r in every
    ]
    # pages: disjoint, in order, the last one short, past the end empty
    pages = [
        await requests_json(client, page=str(n), page_size="2", **window) for n in (1, 2, 3, 4)
    ]
    assert [[r["service_request_id"] for r in p] for p in pages] == [
        [codes[4], codes[3]],
        [codes[2], codes[1]],
        [codes[0]],
        [],
    ]
    # service_request_id overrides every other parameter
    overridden = await requests_json(
        client,
        service_request_id=f"{codes[3]}, {codes[0]}",
        status="closed",
        service_code="waste",
        end_date=w3c(start),
        page_size="1",
        start_date="not a date",  # not even read
    )
    assert {r["service_request_id"] for r in overridden} == {codes[3], codes[0]}
    # a parameter given twice reads as its comma list
    response = await client.get(
        f"{ROOT}/requests.json",
        params=[("service_code", "waste"), ("service_code", "noise"), *window.items()],
    )
    assert [r["service_request_id"] for r in response.json()] == [codes[3], codes[1]]
    # empty parameters are as if not given
    empty = await requests_json(client, service_code="", status="", page="", **window)
    assert len(empty) == 5
    # XML holds the same, field by field
    as_xml = await client.get(f"{ROOT}/requests.xml", params=window)
    same_in_xml(as_xml.content, "service_requests", "request", every)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_bad_parameters_are_400s_naming_the_parameter(client, fmt):
    url = f"{ROOT}/requests.{fmt}"
    now = datetime.now(UTC)
    cases = [
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-13-01T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-11-01T00:00:00"}, "time zone"),  # no zone
        ({"start_date": w3c(now - timedelta(days=91)), "end_date": w3c(now)}, "90 days"),
        ({"start_date": w3c(now), "end_date": w3c(now - timedelta(days=1))}, "after end_date"),
        ({"status": "pending"}, "status 'pending'"),
        ({"status": "open,resolved"}, "status 'resolved'"),
        ({"page_size": "1001"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"service_request_id": ",".join(f"AAAA-{i:04d}" for i in range(1001))}, "1000"),
    ]
    for params, named in cases:
        error_of(await client.get(url, params=params), 400, named)
    for params, named in cases[:5]:
        if "status" in params or "page" in params:
            continue
        error_of(await client.get(f"{ROOT}/servicerequestupdates.{fmt}", params=params), 400, named)
    # exactly 90 days is allowed
    ok = await client.get(
        url, params={"start_date": w3c(now - timedelta(days=90)), "end_date": w3c(now)}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_jurisdiction_id_is_checked_on_every_read(client, settings, fmt):
    ours = settings.open311_jurisdiction_id
    paths = ["discovery", "services", "services/roads", "requests", "servicerequestupdates"]
    for path in paths:
        url = f"{ROOT}/{path}.{fmt}"
        error_of(await client.get(url, params={"jurisdiction_id": "sfgov.org"}), 404, "sfgov.org")
        assert (await client.get(url, params={"jurisdiction_id": ours})).status_code == 200
        assert (await client.get(url, params={"jurisdiction_id": ours.upper()})).status_code == 200
        assert (await client.get(url, params={"jurisdiction_id": ""})).status_code == 200
    error_of(
        await client.get(f"{ROOT}/requests/ZZZZ-ZZZZ.{fmt}", params={"jurisdiction_id": "x.org"}),
        404,
        "x.org",
    )


async def test_unknown_resources_are_404s(client):
    for path in ("reports.json", "requests", "requests.csv", "service.xml", "discovery.html"):
        error_of(await client.get(f"{ROOT}/{path}"), 404, path)


# ---------------------------------------------------------------- updates


async def test_updates_follow_a_report_to_closed(client, app, caplog, worker_clock):
    start = datetime.now(UTC) - timedelta(seconds=1)
    resident = await sign_in_resident(client, caplog)
    officer = await ward_officer(client, app)
    filed = await file_with_photo(client, resident["headers"])
    await run_worker(worker_clock)
    steps = [
        ("replies", {"body": "Đã nhận, sẽ cử người kiểm tra."}),
        ("notes", {"body": "Nội bộ: ưu tiên thấp."}),
        ("accept", {}),
        ("resolve", {"answer": "Đã vá xong."}),
    ]
    for action, body in steps:
        response = await act(client, officer["headers"], filed, action, **body)
        assert response.status_code == 200, response.text
    await client.post(
        f"/api/v1/reports/{filed['id']}/comments",
        json={"body": "Cảm ơn, số nhà tôi 12"},
        headers=resident["headers"],
    )
    as_json, as_xml = await both(client, "servicerequestupdates", start_date=w3c(start))
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["cache-control"] == "public, max-age=60"
    updates = [u for u in as_json.json() if u["service_request_id"] == filed["code"]]
    valid("service-request-updates.json", as_json.json())
    assert [list(u) for u in updates] == [UPDATE_FIELDS] * len(updates)
    assert [(u["status"], u["description"]) for u in updates] == [
        ("open", ""),  # routed to the ward (the system's change of status)
        ("open", "Đã nhận, sẽ cử người kiểm tra."),
        ("open", ""),  # accepted
        ("closed", "Đã vá xong."),  # resolved
    ]
    ids = [int(u["update_id"]) for u in updates]
    assert ids == sorted(ids)
    times = [datetime.fromisoformat(u["updated_datetime"]) for u in updates]
    assert times == sorted(times) and all(u["updated_datetime"].endswith("+07:00") for u in updates)
    assert all(u["media_url"] == "" for u in updates)
    for secret in ("Nội bộ", "số nhà tôi", resident["phone"]):
        assert secret not in as_json.text and secret not in as_xml.text
    same_in_xml(as_xml.content, "service_requests_updates", "request_update", as_json.json())

    # paged, and a window that ends before them
    first = await client.get(
        f"{ROOT}/servicerequestupdates.json",
        params={"start_date": w3c(start), "page_size": "1", "page": "2"},
    )
    assert first.json() == [as_json.json()[1]]
    before = await client.get(f"{ROOT}/servicerequestupdates.json", params={"end_date": w3c(start)})
    assert filed["code"] not in before.text


async def test_a_client_can_follow_its_report_by_id_and_updates(client, app, caplog, worker_clock):
    """What the issue's 'done when' asks of the read side: a report's status, then its
    updates, until closed, with the specification's field names (both formats)."""
    resident = await sign_in_resident(client, caplog)
    officer = await ward_officer(client, app)
    filed = await file_with_photo(client, resident["headers"], category_code="waste")
    start = datetime.now(UTC) - timedelta(seconds=1)
    await run_worker(worker_clock)
    for fmt in ("json", "xml"):
        response = await client.get(f"{ROOT}/requests/{filed['code']}.{fmt}")
        assert response.status_code == 200
    assert (await act(client, officer["headers"], filed, "accept")).status_code == 200
    assert (
        await act(client, officer["headers"], filed, "resolve", answer="Đã thu gom.")
    ).status_code == 200
    [request] = (await client.get(f"{ROOT}/requests/{filed['code']}.json")).json()
    assert request["status"] == "closed" and request["status_notes"] == "Đã thu gom."
    xml = ElementTree.fromstring((await client.get(f"{ROOT}/requests/{filed['code']}.xml")).content)
    assert xml.findtext("request/status") == "closed"
    updates = ElementTree.fromstring(
        (
            await client.get(f"{ROOT}/servicerequestupdates.xml", params={"start_date": w3c(start)})
        ).content
    )
    mine = [u for u in updates if u.findtext("service_request_id") == filed["code"]]
    assert [u.findtext("status") for u in mine][-1] == "closed"
    assert uuid.UUID(filed["id"])  # the internal id never leaves: the code is the id
    assert filed["id"] not in str((await client.get(f"{ROOT}/requests.json")).text)
