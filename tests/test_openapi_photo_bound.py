"""The OpenAPI document states the photo bound the service enforces: PHOTOS_PER_REPORT,
6 by default, not a number of its own (issue 17, item 17)."""

from __future__ import annotations

import json
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def photo_ids(document: dict, schema: str = "ReportIn") -> dict:
    return document["components"]["schemas"][schema]["properties"]["photo_ids"]


def test_committed_document_allows_photos_per_report():
    for schema in ("ReportIn", "PhotoIds"):  # filing, and adding photos to a report later
        committed = photo_ids(json.loads(DOCUMENT.read_text()), schema)
        assert committed["maxItems"] == 6, schema
        assert "PHOTOS_PER_REPORT" in committed["description"], schema


async def test_served_document_follows_the_setting(client, settings):
    served = photo_ids((await client.get("/docs/openapi.json")).json())
    assert served["maxItems"] == settings.photos_per_report == 6
