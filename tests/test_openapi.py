"""The committed OpenAPI document is the one the app generates (run `make openapi`)."""

from __future__ import annotations

from pathlib import Path

from app.cli import openapi_json

DOCUMENT = Path(__file__).parent.parent / "openapi" / "openapi.json"


def test_committed_openapi_is_current(settings):
    assert DOCUMENT.read_text() == openapi_json(), (
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    )


def test_every_operation_documents_its_problem_responses(settings):
    import json

    document = json.loads(openapi_json())
    assert "Problem" in json.dumps(document["components"]["schemas"])
