"""Responses are gzipped for clients that accept it (residents on weak mobile links), and
not for those that do not."""

from __future__ import annotations

import gzip
import json


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
