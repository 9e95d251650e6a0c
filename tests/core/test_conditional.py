"""Conditional requests (issue 24 item 1): a strong ETag on everything a client reads,
``If-None-Match`` → 304 with no body and the headers the 200 carries; after a change the
old ETag gets the new 200; another resource's ETag, or a malformed header, the 200."""

from __future__ import annotations

from litestar import Response, get
from litestar.config.compression import CompressionConfig
from litestar.testing import create_test_client

from app.core.conditional import (
    CONDITIONAL,
    ConditionalCompressionMiddleware,
    accepted_coding,
    body_etag,
    none_match,
    parse_if_none_match,
    variant_etag,
    weak_etag_without,
)
from app.core.storage import stable_window
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import HOAN_KIEM, file_with_photo
from tests.dossiers.factories import (
    T0,
    dossier_limits,  # noqa: F401 (fixture)
    make_agency,
    make_dossier,
    make_level2,
    new_citizen_id,
    set_status,
)
from tests.health.conftest import (
    cccd,
    extra_lines,
    generate,
    health,  # noqa: F401 (fixture)
    import_paths,
    verified_resident,
    write_ndjson,
)
from tests.notifications.conftest import insert_notifications

IDENTITY = {"Accept-Encoding": "identity"}
AROUND_HOAN_KIEM = "105.845,21.020,105.860,21.035"


def directives(response) -> set[str]:
    return {d.strip() for d in response.headers.get("cache-control", "").split(",")}


async def revalidated(client, url: str, headers: dict | None = None, weak=False, **params):
    """GET, then GET again with its ETag: 200, then 304 with the same ETag, no body, and
    the caching headers of the 200. Returns the 200."""
    headers = {**IDENTITY, **(headers or {})}
    first = await client.get(url, headers=headers, params=params)
    assert first.status_code == 200, (url, first.text)
    etag = first.headers["etag"]
    assert etag.startswith('W/"' if weak else '"') and etag.endswith('"'), etag
    again = await client.get(url, headers={**headers, "If-None-Match": etag}, params=params)
    assert again.status_code == 304, (url, again.status_code, again.text)
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "content-type" not in again.headers and "content-encoding" not in again.headers
    assert again.headers.get("cache-control") == first.headers.get("cache-control")
    assert again.headers.get("vary") == first.headers.get("vary")
    assert "accept-encoding" in first.headers["vary"].lower()
    # a list of tags with ours among them, and *, match too; weak comparison ignores W/
    opaque = etag.removeprefix("W/")
    for header in (f'"nope", {etag}', "*", opaque, f"W/{opaque}"):
        listed = await client.get(url, headers={**headers, "If-None-Match": header}, params=params)
        assert listed.status_code == 304, (url, header)
    # a malformed header, or a tag that is not ours: the normal 200
    for header in ('"unterminated', "no-quotes", '"someone-else"'):
        other = await client.get(url, headers={**headers, "If-None-Match": header}, params=params)
        assert other.status_code == 200 and other.headers["etag"] == etag, (url, header)
    return first


async def changed(client, url: str, old, headers: dict | None = None, **params):
    """After a change, the old ETag gets a 200 with a new ETag."""
    headers = {**IDENTITY, **(headers or {})}
    response = await client.get(
        url, headers={**headers, "If-None-Match": old.headers["etag"]}, params=params
    )
    assert response.status_code == 200, (url, response.status_code)
    assert response.headers["etag"] != old.headers["etag"]
    return response


# ------------------------------------------------------------------ the header rules


def test_if_none_match_parsing() -> None:
    assert parse_if_none_match("*") == (True, frozenset())
    assert parse_if_none_match('"a", W/"b" ,"c"') == (False, frozenset({'"a"', '"b"', '"c"'}))
    for malformed in ("", "a", '"a', '"a" b', 'W/ "a"', '"a""b"', ","):
        assert parse_if_none_match(malformed) is None, malformed
    assert none_match('W/"x"', '"x"') and none_match('"x"', 'W/"x"')
    assert not none_match('"x-gz"', '"x"') and not none_match("garbage", '"x"')


def test_the_live_feed_etag_leaves_out_as_of() -> None:
    etag_of = weak_etag_without(b"as_of")
    one = etag_of(b'{"features":[1],"as_of":"2026-12-05T09:00:00Z"}')
    assert one.startswith('W/"')
    assert one == etag_of(b'{"features":[1],"as_of":"2026-12-05T09:00:01.5Z"}')
    assert one != etag_of(b'{"features":[2],"as_of":"2026-12-05T09:00:00Z"}')


def test_each_content_coding_has_its_own_etag() -> None:
    base = body_etag(b'{"a":1}')
    assert base == body_etag(b'{"a":1}') != body_etag(b'{"a":2}')
    assert len(base) == 24  # 128 bits, base64url, quoted
    assert variant_etag(base, None) == base
    assert variant_etag(base, "gzip") == base[:-1] + '-gz"'
    assert variant_etag(base, "br") == base[:-1] + '-br"'
    assert variant_etag('"ref-1-units-vi"', "br") == '"ref-1-units-vi-br"'


def test_accept_encoding_is_negotiated_with_q_values() -> None:
    assert accepted_coding("gzip, deflate, br", brotli=True) == "br"
    assert accepted_coding("gzip, deflate, br", brotli=False) == "gzip"
    assert accepted_coding("br;q=0, gzip;q=0.5", brotli=True) == "gzip"
    assert accepted_coding("gzip;q=0", brotli=True) is None
    assert accepted_coding("identity", brotli=True) is None
    assert accepted_coding("*", brotli=True) == "gzip"  # the safer guess for "anything"
    assert accepted_coding("", brotli=True) is None


def test_stable_signed_url_windows() -> None:
    start, expires = stable_window(1_000_123.9, 600)
    assert start == 999_600 and expires == 1_000_800
    assert stable_window(start + 599, 600) == (start, expires)  # one URL all window
    for now in (start, start + 599.9):
        assert 600 <= expires - now <= 1200  # valid at least the ttl asked for


# ------------------------------------------------------------------ reference data


async def test_reference_data_is_public_and_versioned_by_the_snapshot(client) -> None:
    for url in ("/api/v1/categories", "/api/v1/units", "/api/v1/areas"):
        first = await revalidated(client, url)
        assert directives(first) == {"public", "max-age=300"}
        assert first.headers["etag"].startswith('"ref-')
    areas = (await client.get("/api/v1/areas")).json()
    one = await revalidated(client, f"/api/v1/areas/{areas[0]['code']}")
    assert directives(one) == {"public", "max-age=300"}
    found = await revalidated(client, "/api/v1/areas", q=areas[0]["name"][:4])
    assert found.headers["etag"] != (await client.get("/api/v1/areas")).headers["etag"]
    vi = await client.get("/api/v1/categories", headers={"Accept-Language": "vi"})
    en = await client.get("/api/v1/categories", headers={"Accept-Language": "en"})
    assert vi.headers["etag"] != en.headers["etag"]
    assert {"accept-language", "accept-encoding"} <= {
        v.strip().lower() for v in vi.headers["vary"].split(",")
    }
    # another resource's ETag is not this one's
    units = await client.get("/api/v1/units", headers=IDENTITY)
    crossed = await client.get(
        "/api/v1/categories", headers={**IDENTITY, "If-None-Match": units.headers["etag"]}
    )
    assert crossed.status_code == 200


async def test_reference_etag_follows_the_snapshot(app, client) -> None:
    from sqlalchemy import text

    before = await revalidated(client, "/api/v1/categories")
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE categories SET name_vi = name_vi || ' (mới)' WHERE code = 'roads'")
        )
    try:
        app.state.reference.invalidate()  # what the NOTIFY does, without waiting for it
        after = await changed(client, "/api/v1/categories", before)
        assert "(mới)" in after.text
    finally:
        async with app.state.engine.begin() as conn:
            await conn.execute(
                text("UPDATE categories SET name_vi = replace(name_vi, ' (mới)', '')")
            )
        app.state.reference.invalidate()


async def test_open311_services_and_definitions(client) -> None:
    for url in ("/open311/v2/services.json", "/open311/v2/services.xml"):
        first = await revalidated(client, url)
        assert directives(first) == {"public", "max-age=300"}
    code = (await client.get("/open311/v2/services.json")).json()[0]["service_code"]
    await revalidated(client, f"/open311/v2/services/{code}.json")


# ------------------------------------------------------------------ a resident's own data


async def test_my_reports_notifications_and_profile(app, client, caplog, session) -> None:
    me = await sign_in_resident(client, caplog)
    filed = await file_with_photo(client, me["headers"])
    profile = await revalidated(client, "/api/v1/me", me["headers"])
    assert "no-store" in directives(profile)
    mine = await revalidated(client, "/api/v1/reports/mine", me["headers"])
    assert "no-store" in directives(mine)
    detail = await revalidated(client, f"/api/v1/reports/{filed['id']}", me["headers"])
    assert "no-store" in directives(detail)
    nearby = await revalidated(
        client,
        "/api/v1/reports/nearby",
        me["headers"],
        lat=HOAN_KIEM["lat"],
        lon=HOAN_KIEM["lon"],
        category="roads",
    )
    inbox = await revalidated(client, "/api/v1/me/notifications", me["headers"])
    count = await revalidated(client, "/api/v1/me/notifications/unread-count", me["headers"])
    assert "no-store" in directives(inbox) and "no-store" in directives(count)

    # a status change: the list, the detail and the nearby list change
    withdrawn = await client.post(f"/api/v1/reports/{filed['id']}/withdraw", headers=me["headers"])
    assert withdrawn.status_code == 204
    await changed(client, "/api/v1/reports/mine", mine, me["headers"])
    await changed(client, f"/api/v1/reports/{filed['id']}", detail, me["headers"])
    await changed(
        client,
        "/api/v1/reports/nearby",
        nearby,
        me["headers"],
        lat=HOAN_KIEM["lat"],
        lon=HOAN_KIEM["lon"],
        category="roads",
    )
    # a new notification: the inbox and its count change
    await insert_notifications(session, me["user_id"], 1, push_status="sent")
    await changed(client, "/api/v1/me/notifications", inbox, me["headers"])
    await changed(client, "/api/v1/me/notifications/unread-count", count, me["headers"])
    renamed = await client.patch(
        "/api/v1/me", json={"full_name": "Lê Thị Hoa"}, headers=me["headers"]
    )
    assert renamed.status_code == 200
    await changed(client, "/api/v1/me", profile, me["headers"])

    # another resource's ETag: the 200
    crossed = await client.get(
        f"/api/v1/reports/{filed['id']}",
        headers={**me["headers"], **IDENTITY, "If-None-Match": mine.headers["etag"]},
    )
    assert crossed.status_code == 200


async def test_the_public_feed_and_a_public_report(client, caplog) -> None:
    me = await sign_in_resident(client, caplog)
    filed = await file_with_photo(client, me["headers"])
    # live points carry the instant they were read (as_of): a weak ETag without it
    feed = await revalidated(
        client, "/api/v1/public/reports", weak=True, bbox=AROUND_HOAN_KIEM, zoom=18
    )
    one = await revalidated(client, f"/api/v1/public/reports/{filed['code']}")
    assert "no-store" not in directives(feed) and "no-store" not in directives(one)
    supported = await client.post(
        "/api/v1/reports/supports",
        json={"code": filed["code"]},
        headers=(await sign_in_resident(client, caplog))["headers"],
    )
    assert supported.status_code == 200, supported.text
    await changed(client, f"/api/v1/public/reports/{filed['code']}", one)
    await file_with_photo(client, me["headers"])  # another report on the map
    await changed(client, "/api/v1/public/reports", feed, bbox=AROUND_HOAN_KIEM, zoom=18)


async def test_service_index_reads(client) -> None:
    await revalidated(client, "/api/v1/public/service-index")
    await revalidated(client, "/api/v1/public/service-index/agencies")


async def test_my_dossiers_and_the_public_lookup(app, client, caplog, dossier_limits) -> None:  # noqa: F811
    agency = await make_agency(app)
    citizen = new_citizen_id()
    made = await make_dossier(app, agency, citizen_id=citizen, received_at=T0)
    me = await sign_in_resident(client, caplog)
    await make_level2(app, me["user_id"], citizen)
    mine = await revalidated(client, "/api/v1/me/dossiers", me["headers"])
    assert "no-store" in directives(mine)
    detail = await revalidated(client, f"/api/v1/me/dossiers/{made.code}", me["headers"])
    public = await revalidated(client, f"/api/v1/public/dossiers/{made.code}")

    await set_status(app, made.id, "completed")  # the agency's next event
    await changed(client, "/api/v1/me/dossiers", mine, me["headers"])
    await changed(client, f"/api/v1/me/dossiers/{made.code}", detail, me["headers"])
    await changed(client, f"/api/v1/public/dossiers/{made.code}", public)


async def test_my_health_book(health, client, caplog, tmp_path, settings) -> None:  # noqa: F811
    app = health
    data = tmp_path / "fhir"
    data.mkdir()
    generated = generate(data, settings, count=2, seed=24)
    await import_paths(app, [data])
    me = await verified_resident(client, app, caplog, cccd(1))
    summary = await revalidated(client, "/api/v1/me/health", me["headers"])
    assert "no-store" in directives(summary)
    section = await revalidated(client, "/api/v1/me/health/sections/immunizations", me["headers"])

    more = tmp_path / "more"
    more.mkdir()
    write_ndjson(more / "extra.ndjson", extra_lines(generated.patients[0]["id"]))
    await import_paths(app, [more])  # a health import
    await changed(client, "/api/v1/me/health", summary, me["headers"])
    await changed(client, "/api/v1/me/health/sections/immunizations", section, me["headers"])


# ------------------------------------------------------------------ Last-Modified


def test_if_modified_since_against_a_handlers_last_modified() -> None:
    """A handler that sets Last-Modified gets If-Modified-Since answered (only when the
    request has no If-None-Match, which wins: RFC 9110 §13.2.2); a malformed date is
    ignored. Litestar's own app and test client around the project's middleware."""

    @get("/thing", opt=CONDITIONAL)
    async def thing() -> Response[dict]:
        return Response({"a": 1}, headers={"Last-Modified": "Sat, 05 Dec 2026 09:00:00 GMT"})

    config = CompressionConfig(
        backend="brotli", minimum_size=1024, middleware_class=ConditionalCompressionMiddleware
    )
    with create_test_client([thing], compression_config=config) as client:
        first = client.get("/thing")
        assert first.status_code == 200 and first.headers["last-modified"]
        same = client.get("/thing", headers={"If-Modified-Since": "Sat, 05 Dec 2026 09:00:00 GMT"})
        assert same.status_code == 304 and same.content == b""
        assert same.headers["last-modified"] == first.headers["last-modified"]
        later = client.get("/thing", headers={"If-Modified-Since": "Sun, 06 Dec 2026 00:00:00 GMT"})
        assert later.status_code == 304
        older = client.get("/thing", headers={"If-Modified-Since": "Fri, 04 Dec 2026 09:00:00 GMT"})
        assert older.status_code == 200
        assert client.get("/thing", headers={"If-Modified-Since": "yesterday"}).status_code == 200
        wins = client.get(
            "/thing",
            headers={"If-Modified-Since": "Sun, 06 Dec 2026 00:00:00 GMT", "If-None-Match": '"x"'},
        )
        assert wins.status_code == 200


async def test_the_openapi_document_says_so(app) -> None:
    paths = app.openapi_schema.paths
    for path in ("/api/v1/reports/mine", "/api/v1/categories", "/api/v1/me/dossiers"):
        operation = paths[path].get
        assert "304" in operation.responses, path
        assert "ETag" in operation.responses["200"].headers
        assert any(p.name == "If-None-Match" for p in operation.parameters)
    assert "304" not in paths["/api/v1/reports"].post.responses
    assert "304" not in paths["/api/v1/me/export"].get.responses  # not opted in
