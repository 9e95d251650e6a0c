"""A file's lines get exactly what the same events pushed in a signed batch get (issue 19
item 2: "the same validation and per-line results"): one list of events is pushed to one
agency and imported as an NDJSON file into another (codes and ids apart), and every
event's outcome, refusal code and field agree."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from tests.accounts.factories import sign_in_staff
from tests.dossiers.test_imports import import_row, run_worker, upload


def events(a: Any, tag: str, third_party_code: str) -> list[Any]:
    """Events of every kind of outcome, built with the agency fixture's builders."""
    now = a.now()
    code = lambda n: f"{tag}-{n}"  # noqa: E731
    eid = lambda n: f"{tag}-e{n}"  # noqa: E731
    first = a.upsert(code(1), event_id=eid(1), at=now - timedelta(hours=5))
    return [
        first,
        a.progress(code(1), event_id=eid(2), status="processing", at=now - timedelta(hours=4)),
        first,  # the same id again: a duplicate
        # older than what the dossier shows: kept in the timeline only
        a.progress(
            code(1), event_id=eid(3), status="received", at=now - timedelta(hours=4, seconds=1)
        ),
        a.progress(code(1), event_id=eid(4), status="returned", at=now - timedelta(hours=3)),
        a.progress(code(2), event_id=eid(5), status="processing", at=now - timedelta(hours=3)),
        a.progress(code(1), event_id=eid(6), status_code="2", at=now - timedelta(hours=2)),
        a.progress(code(1), event_id=eid(7), status_code="77", at=now - timedelta(hours=2)),
        a.upsert(code(3), event_id=eid(8), at=now + timedelta(hours=2)),  # the future
        a.upsert(code(4), event_id=eid(9), at=now - timedelta(hours=1), procedure_name=None),
        {**a.upsert(code(5), event_id=eid(10)), "at": "25/11/2026"},
        {**a.upsert(code(6), event_id=eid(11)), "colour": "blue"},
        "not an event",
        a.progress(third_party_code, event_id=eid(12), status="processing", at=now),
        a.upsert(code(7), event_id=eid(13), at=now - timedelta(minutes=5), status="completed"),
        # older than what an earlier batch made the dossier show: the timeline only
        a.progress(code(8), event_id=eid(14), status="received", at=now - timedelta(hours=5)),
    ]


def earlier(a: Any, tag: str) -> list[Any]:
    """A batch received before: dossier 8 processing since four hours ago."""
    now = a.now()
    return [
        a.upsert(f"{tag}-8", event_id=f"{tag}-s1", at=now - timedelta(hours=6)),
        a.progress(
            f"{tag}-8", event_id=f"{tag}-s2", status="processing", at=now - timedelta(hours=4)
        ),
    ]


async def test_a_files_lines_get_what_the_same_events_pushed_get(
    app, client, agency, other_agency, ingest_clock
):
    tag = secrets.token_hex(3)
    # a dossier of a third agency, which neither may touch
    from tests.dossiers.conftest import register_agency

    third = await register_agency(app, client)
    third_code = f"Z{tag}-third"
    r = await third.post_events([third.upsert(third_code, at=third.now() - timedelta(hours=1))])
    assert r.json()["results"][0]["result"] == "applied"
    for a, prefix in ((agency, f"PA{tag}"), (other_agency, f"PB{tag}")):
        await a.map_status_codes({"2": "processing"})
        before = await a.post_events(earlier(a, prefix))
        assert [r["result"] for r in before.json()["results"]] == ["applied", "applied"]
    pushed = await agency.post_events(events(agency, f"PA{tag}", third_code))
    assert pushed.status_code == 200, pushed.text
    results = pushed.json()["results"]
    # the push exercised every outcome
    assert {r["result"] for r in results} == {"applied", "recorded", "duplicate", "refused"}

    lines = [json.dumps(e) for e in events(other_agency, f"PB{tag}", third_code)]
    staff = await sign_in_staff(client, app, [("manager", other_agency.unit_code)])
    r = await upload(client, staff["headers"], other_agency.code, "\n".join(lines).encode())
    assert r.status_code == 201, r.text
    await run_worker(ingest_clock)
    row = await import_row(app, r.json()["id"])
    detail = await client.get(
        f"{imports_path()}/{row.id}", params={"limit": 500}, headers=staff["headers"]
    )
    errors = {e["line"]: (e["code"], e["field"]) for e in detail.json()["errors"]}
    for line, result in enumerate(results, start=1):
        if result["result"] == "refused":
            assert errors.get(line) == (result["code"], result.get("field")), (line, result)
        else:
            assert line not in errors, (line, result, errors.get(line))
    counts = {k: sum(1 for r in results if r["result"] == k) for k in ("applied", "recorded")}
    assert row.accepted == counts["applied"] + counts["recorded"]
    assert row.duplicates == sum(1 for r in results if r["result"] == "duplicate")
    assert row.refused == sum(1 for r in results if r["result"] == "refused")


def imports_path() -> str:
    return "/api/v1/console/dossier-imports"
