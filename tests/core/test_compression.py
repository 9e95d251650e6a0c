"""Responses are gzipped for clients that accept it (residents on weak mobile links), and
not for those that do not."""

from __future__ import annotations

import gzip
import json

import brotli


async def test_large_json_is_gzipped_when_the_client_accepts_it(client) -> None:
    async with client.stream(
        "GET", "/docs/openapi.json", headers={"Accept-Encoding": "gzip"}
    ) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    document = json.loads(gzip.decompress(raw))
    assert document["info"]["title"] == "City app API"
    assert len(raw) * 4 < len(gzip.decompress(raw))  # JSON shrinks well over 4×


async def test_no_compression_without_accept_encoding_or_for_small_bodies(client) -> None:
    plain = await client.get("/docs/openapi.json", headers={"Accept-Encoding": "identity"})
    small = await client.get("/health/live", headers={"Accept-Encoding": "gzip"})

    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert json.loads(plain.content)["info"]["title"] == "City app API"
    assert small.status_code == 200 and "content-encoding" not in small.headers
    assert len(small.content) < 1024


# ---- brotli, and compression under conditional requests (issue 24 items 1 and 4)


async def many_reports(client, caplog, count: int) -> dict:
    from tests.accounts.factories import sign_in_resident
    from tests.complaints.factories import report_body

    me = await sign_in_resident(client, caplog)
    for i in range(count):
        filed = await client.post(
            "/api/v1/reports",
            json=report_body([], kind="petition", description=f"Kiến nghị số {i} về vỉa hè."),
            headers=me["headers"],
        )
        assert filed.status_code == 201, filed.text
    return me


async def raw_get(client, url: str, headers: dict) -> tuple:
    async with client.stream("GET", url, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


async def test_gzip_and_brotli_decode_to_the_same_json(client, caplog) -> None:
    me = await many_reports(client, caplog, 8)
    url = "/api/v1/reports/mine"
    plain, plain_raw = await raw_get(client, url, {**me["headers"], "Accept-Encoding": "identity"})
    gz, gz_raw = await raw_get(client, url, {**me["headers"], "Accept-Encoding": "gzip"})
    br, br_raw = await raw_get(
        client, url, {**me["headers"], "Accept-Encoding": "gzip, deflate, br"}
    )
    assert len(plain_raw) > 1024 and "content-encoding" not in plain.headers
    assert gz.headers["content-encoding"] == "gzip" and br.headers["content-encoding"] == "br"
    assert json.loads(gzip.decompress(gz_raw)) == json.loads(plain_raw)
    assert json.loads(brotli.decompress(br_raw)) == json.loads(plain_raw)
    assert int(gz.headers["content-length"]) == len(gz_raw)
    assert int(br.headers["content-length"]) == len(br_raw)
    for response in (plain, gz, br):
        assert "accept-encoding" in response.headers["vary"].lower()
    # each representation its own strong ETag
    base = plain.headers["etag"]
    assert gz.headers["etag"] == base[:-1] + '-gz"'
    assert br.headers["etag"] == base[:-1] + '-br"'


async def test_a_304_is_not_compressed_and_names_the_representation(client, caplog) -> None:
    me = await many_reports(client, caplog, 8)
    url = "/api/v1/reports/mine"
    gz_headers = {**me["headers"], "Accept-Encoding": "gzip"}
    gz, _ = await raw_get(client, url, gz_headers)
    not_modified, raw = await raw_get(
        client, url, {**gz_headers, "If-None-Match": gz.headers["etag"]}
    )
    assert not_modified.status_code == 304 and raw == b""
    assert "content-encoding" not in not_modified.headers
    assert not_modified.headers["etag"] == gz.headers["etag"]
    assert "no-store" in not_modified.headers["cache-control"]
    assert "accept-encoding" in not_modified.headers["vary"].lower()
    # the gzip bytes' ETag does not validate the brotli representation, nor the plain one
    for coding in ("br", "identity"):
        other, other_raw = await raw_get(
            client,
            url,
            {**me["headers"], "Accept-Encoding": coding, "If-None-Match": gz.headers["etag"]},
        )
        assert other.status_code == 200 and other_raw
        assert other.headers["etag"] != gz.headers["etag"]


async def test_small_answers_are_not_compressed_but_vary(client, caplog) -> None:
    from tests.accounts.factories import sign_in_resident

    me = await sign_in_resident(client, caplog)
    count, raw = await raw_get(
        client, "/api/v1/me/notifications/unread-count", {**me["headers"], "Accept-Encoding": "br"}
    )
    assert count.status_code == 200 and len(raw) < 1024
    assert "content-encoding" not in count.headers
    assert count.headers["etag"].endswith('"') and "-br" not in count.headers["etag"]
    assert "accept-encoding" in count.headers["vary"].lower()
    assert json.loads(raw) == {"unread": 0}


async def test_reference_lists_and_open311_xml_in_brotli(client) -> None:
    for url in ("/api/v1/units", "/open311/v2/services.xml"):
        plain, plain_raw = await raw_get(client, url, {"Accept-Encoding": "identity"})
        br, br_raw = await raw_get(client, url, {"Accept-Encoding": "br"})
        assert br.headers["content-encoding"] == "br", url
        assert brotli.decompress(br_raw) == plain_raw
        assert br.headers["etag"] == plain.headers["etag"][:-1] + '-br"'
        again, raw = await raw_get(
            client, url, {"Accept-Encoding": "br", "If-None-Match": br.headers["etag"]}
        )
        assert again.status_code == 304 and raw == b""
        assert "public" in again.headers["cache-control"]


async def test_photos_are_streamed_as_they_are_and_the_export_decodes(client, caplog) -> None:
    """Already-compressed photos (/files, streamed) are never compressed again; the data
    export is JSON like the rest."""
    from tests.accounts.factories import sign_in_resident
    from tests.complaints.factories import file_with_photo

    me = await sign_in_resident(client, caplog)
    filed = await file_with_photo(client, me["headers"])
    detail = (await client.get(f"/api/v1/reports/{filed['id']}", headers=me["headers"])).json()
    url = detail["photos"][0]["url"].removeprefix("http://testserver.local")
    photo, raw = await raw_get(client, url, {"Accept-Encoding": "gzip, br"})
    assert photo.status_code == 200 and "content-encoding" not in photo.headers
    assert raw[:3] == b"\xff\xd8\xff" and int(photo.headers["content-length"]) == len(raw)
    export, raw = await raw_get(
        client, "/api/v1/me/export", {**me["headers"], "Accept-Encoding": "br"}
    )
    assert export.status_code == 200
    body = brotli.decompress(raw) if export.headers.get("content-encoding") == "br" else raw
    assert filed["code"] in json.loads(body).__repr__()
