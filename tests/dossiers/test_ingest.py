"""The agency ingest end to end (issue 19 items 1, 3): per-event results, idempotency of
batches (``webhook-id``) and of events (their ids), ordering by time and sequence, a
refused event alone, another agency's dossier, nothing half-written, the citizen ID only
hashed. Real app, PostgreSQL and Redis; requests signed by the test's own signer."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from app.core.security import keyed_hash
from app.dossiers.models import Dossier, DossierEvent, DossierSupplement, IngestBatch
from tests.dossiers.conftest import hanoi, new_dossier_code


async def dossier_row(app, code: str) -> Dossier | None:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(Dossier).where(Dossier.code == code))


async def timeline(app, code: str) -> list[DossierEvent]:
    async with app.state.sessionmaker() as s:
        return list(
            await s.scalars(
                select(DossierEvent)
                .join(Dossier, Dossier.id == DossierEvent.dossier_id)
                .where(Dossier.code == code)
                .order_by(DossierEvent.at, DossierEvent.seq, DossierEvent.id)
            )
        )


async def counts(app) -> dict[str, int]:
    async with app.state.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM dossiers), (SELECT count(*) FROM dossier_events),"
                    " (SELECT count(*) FROM dossier_supplements),"
                    " (SELECT count(*) FROM dossier_ingest_batches)"
                )
            )
        ).one()
    return dict(zip(("dossiers", "events", "supplements", "batches"), row, strict=True))


def results_of(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(r["id"], r["result"]) for r in response.json()["results"]]


async def test_a_first_upsert_creates_the_dossier_with_the_citizen_id_only_hashed(
    app, agency, settings
):
    code = new_dossier_code()
    event = agency.upsert(
        code,
        due_at=hanoi("2026-12-10 17:00"),
        received_at=hanoi("2026-11-25 09:00"),
        fees=[{"name": "Lệ phí cấp phiếu", "amount": 200000, "paid": True}],
        results=[{"name": "Phiếu lý lịch tư pháp số 1", "number": "LLTP-1"}],
        result_pickup="Bộ phận một cửa, 1 Tràng Thi",
    )
    r = await agency.post_events([event])
    assert results_of(r) == [(event["id"], "applied")]
    assert r.json()["counts"] == {"applied": 1, "recorded": 0, "duplicate": 0, "refused": 0}
    assert r.json()["replayed"] is False
    d = await dossier_row(app, code)
    assert d is not None
    assert d.agency_id == agency.id
    assert d.status == "received"
    assert d.applicant_id_hash == keyed_hash(settings.citizen_id_hash_key, "001099012345")
    assert d.applicant_id_last4 == "2345"
    assert d.procedure_code == "1.001234" and d.online is True
    assert d.due_at.isoformat() == "2026-12-10T10:00:00+00:00"
    assert d.received_at.isoformat() == "2026-11-25T02:00:00+00:00"
    assert d.fees == [{"name": "Lệ phí cấp phiếu", "amount": 200000, "paid": True}]
    assert d.results == [{"name": "Phiếu lý lịch tư pháp số 1", "number": "LLTP-1"}]
    # nowhere is the ID itself kept: not in the dossier, the timeline or the batch's record
    async with app.state.engine.connect() as conn:
        dumped = await conn.scalar(
            text(
                "SELECT concat((SELECT row_to_json(d)::text FROM dossiers d WHERE code = :c),"
                " (SELECT json_agg(e)::text FROM dossier_events e),"
                " (SELECT json_agg(b)::text FROM dossier_ingest_batches b))"
            ),
            {"c": code},
        )
    assert "001099012345" not in dumped
    [entry] = await timeline(app, code)
    assert (entry.kind, entry.from_status, entry.to_status, entry.applied) == (
        "upsert",
        None,
        "received",
        True,
    )
    assert entry.event_id == event["id"]


async def test_per_event_results_a_refused_event_alone_and_nothing_half_written(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(hours=2)
    created = agency.upsert(code, at=t)
    to_processing = agency.progress(code, at=t + timedelta(minutes=10), status="processing")
    impossible = agency.progress(code, at=t + timedelta(minutes=20), status="returned")
    unknown = agency.progress(new_dossier_code(), at=t, status="processing")
    bad_date = agency.progress(code, at="2026-13-45T00:00:00")
    bad_code = agency.progress("no spaces allowed", at=t)
    bad_id = {**agency.upsert(new_dossier_code(), at=t, citizen_id=None)}
    bad_id["dossier"]["applicant"]["citizen_id"] = "12345"
    missing = agency.upsert(new_dossier_code(), at=t)
    del missing["dossier"]["procedure_name"]
    before = await counts(app)
    r = await agency.post_events(
        [created, to_processing, impossible, unknown, bad_date, bad_code, bad_id, missing]
    )
    body = r.json()
    assert [x["result"] for x in body["results"]] == [
        "applied",
        "applied",
        "refused",
        "refused",
        "refused",
        "refused",
        "refused",
        "refused",
    ]
    refused = {x["id"]: x for x in body["results"] if x["result"] == "refused"}
    assert refused[impossible["id"]]["code"] == "event_transition_invalid"
    assert refused[impossible["id"]]["field"] == "status"
    assert "processing" in refused[impossible["id"]]["detail"]
    assert refused[unknown["id"]]["code"] == "event_dossier_unknown"
    assert (refused[bad_date["id"]]["code"], refused[bad_date["id"]]["field"]) == (
        "event_date_invalid",
        "at",
    )
    assert (refused[bad_code["id"]]["code"], refused[bad_code["id"]]["field"]) == (
        "event_field_invalid",
        "dossier_code",
    )
    assert refused[bad_id["id"]]["field"] == "dossier.applicant.citizen_id"
    assert "12345" not in json.dumps(body)  # the value is never echoed
    assert (refused[missing["id"]]["code"], refused[missing["id"]]["field"]) == (
        "event_field_missing",
        "dossier.procedure_name",
    )
    assert body["counts"] == {"applied": 2, "recorded": 0, "duplicate": 0, "refused": 6}
    # the refused events wrote nothing: one dossier, two timeline entries, one batch
    after = await counts(app)
    assert after["dossiers"] - before["dossiers"] == 1
    assert after["events"] - before["events"] == 2
    assert after["batches"] - before["batches"] == 1
    d = await dossier_row(app, code)
    assert d.status == "processing"
    # in English when asked
    r = await agency.post_events(
        [agency.progress(code, status="returned")], headers={"accept-language": "en"}
    )
    assert r.json()["results"][0]["detail"].startswith("A dossier cannot go from processing")


async def test_the_same_webhook_id_replays_the_answer_and_another_body_is_a_conflict(app, agency):
    code = new_dossier_code()
    events = [agency.upsert(code), agency.progress(code, status="processing", seq=1)]
    first = await agency.post_events(events, webhook_id="batch-0001")
    assert [x["result"] for x in first.json()["results"]] == ["applied", "applied"]
    before = await counts(app)
    again = await agency.post_events(events, webhook_id="batch-0001")
    assert again.status_code == 200
    assert again.json()["results"] == first.json()["results"]
    assert again.json()["replayed"] is True
    assert await counts(app) == before  # nothing applied twice, no second batch row
    other = await agency.post_events([agency.progress(code)], webhook_id="batch-0001")
    assert other.status_code == 409, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["code"] == "ingest_batch_conflict"
    assert await counts(app) == before
    # webhook-ids are per agency: the same id from nobody else's batch collides
    async with app.state.sessionmaker() as s:
        stored = await s.get(IngestBatch, (agency.id, "batch-0001"))
    assert stored.results["counts"]["applied"] == 2


async def test_event_ids_are_idempotent_per_agency(app, agency, other_agency):
    code = new_dossier_code()
    created = agency.upsert(code, event_id="evt-1")
    moved = agency.progress(code, status="processing", event_id="evt-2", seq=1)
    r = await agency.post_events([created, moved, moved])  # the repeat inside the batch
    assert results_of(r) == [("evt-1", "applied"), ("evt-2", "applied"), ("evt-2", "duplicate")]
    # another batch (another webhook-id) repeating them: duplicates, nothing changes
    before = await counts(app)
    r = await agency.post_events([created, moved])
    assert results_of(r) == [("evt-1", "duplicate"), ("evt-2", "duplicate")]
    assert r.json()["counts"]["duplicate"] == 2
    after = await counts(app)
    assert after["events"] == before["events"] and after["dossiers"] == before["dossiers"]
    # another agency may use the same event id for its own dossier
    mine = new_dossier_code()
    r = await other_agency.post_events([other_agency.upsert(mine, event_id="evt-1")])
    assert results_of(r) == [("evt-1", "applied")]


async def test_events_are_placed_by_time_and_sequence(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(hours=3)
    created = agency.upsert(code, at=t)
    completed = agency.progress(code, at=t + timedelta(hours=2), status="completed")
    processing = agency.progress(code, at=t + timedelta(hours=1), status="processing")
    # sent newest first within one batch: applied in time order, both moves made
    r = await agency.post_events([completed, processing, created])
    assert [x["result"] for x in r.json()["results"]] == ["applied", "applied", "applied"]
    d = await dossier_row(app, code)
    assert d.status == "completed"
    assert d.completed_at == t + timedelta(hours=2)
    assert [(e.from_status, e.to_status) for e in await timeline(app, code)] == [
        (None, "received"),
        ("received", "processing"),
        ("processing", "completed"),
    ]
    # an older event arriving late: recorded in the timeline, the status does not move
    late = agency.progress(code, at=t + timedelta(minutes=30), status="supplement_requested")
    r = await agency.post_events([late])
    assert results_of(r) == [(late["id"], "recorded")]
    d = await dossier_row(app, code)
    assert d.status == "completed"
    entries = await timeline(app, code)
    assert [(e.event_id, e.applied, e.to_status) for e in entries if e.event_id == late["id"]] == [
        (late["id"], False, "supplement_requested")
    ]
    # the same instant: the sequence decides; a lower one is older
    same_at = t + timedelta(hours=2)
    older = agency.progress(code, at=same_at, seq=0, status="returned")
    r = await agency.post_events([older])
    assert results_of(r) == [(older["id"], "recorded")]
    newer = agency.progress(code, at=same_at, seq=5, status="returned")
    r = await agency.post_events([newer])
    assert results_of(r) == [(newer["id"], "applied")]
    d = await dossier_row(app, code)
    assert (d.status, d.status_seq) == ("returned", 5)
    assert d.closed_at == same_at and d.returned_at == same_at


async def test_an_older_upsert_does_not_overwrite_newer_fields(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(hours=3)
    await agency.post_events(
        [
            agency.upsert(code, at=t, summary="first"),
            agency.upsert(code, at=t + timedelta(hours=2), status="processing", summary="newest"),
        ]
    )
    r = await agency.post_events([agency.upsert(code, at=t + timedelta(hours=1), summary="older")])
    assert r.json()["results"][0]["result"] == "recorded"
    assert (await dossier_row(app, code)).summary == "newest"
    # a newer one without a status applies its fields
    r = await agency.post_events(
        [agency.upsert(code, at=t + timedelta(hours=2, minutes=1), summary="newer still")]
    )
    assert r.json()["results"][0]["result"] == "applied"
    d = await dossier_row(app, code)
    assert (d.summary, d.status) == ("newer still", "processing")


async def test_another_agencys_dossier_is_refused(app, agency, other_agency):
    code = new_dossier_code()
    await agency.post_events([agency.upsert(code)])
    before = await counts(app)
    r = await other_agency.post_events(
        [other_agency.progress(code, status="processing"), other_agency.upsert(code)]
    )
    assert [(x["result"], x.get("code"), x.get("field")) for x in r.json()["results"]] == [
        ("refused", "event_other_agency", "dossier_code"),
        ("refused", "event_other_agency", "dossier_code"),
    ]
    assert (await dossier_row(app, code)).status == "received"
    after = await counts(app)
    assert after["events"] == before["events"] and after["dossiers"] == before["dossiers"]


async def test_supplements_due_dates_and_the_on_time_verdict(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(days=3)
    due = t + timedelta(days=1)
    new_due = t + timedelta(days=5)
    await agency.post_events([agency.upsert(code, at=t, due_at=due.isoformat())])
    ask = agency.progress(
        code,
        at=t + timedelta(hours=4),
        status="supplement_requested",
        supplement={
            "id": "bs-1",
            "needed": "Bản sao CCCD có chứng thực",
            "supply_by": (t + timedelta(days=2)).isoformat(),
            "old_due_at": due.isoformat(),
            "new_due_at": new_due.isoformat(),
        },
    )
    r = await agency.post_events([ask])
    assert results_of(r) == [(ask["id"], "applied")]
    d = await dossier_row(app, code)
    assert (d.status, d.due_at) == ("supplement_requested", new_due)
    async with app.state.sessionmaker() as s:
        [sup] = await s.scalars(
            select(DossierSupplement).where(DossierSupplement.dossier_id == d.id)
        )
    assert (sup.source_id, sup.needed, sup.old_due_at, sup.new_due_at) == (
        "bs-1",
        "Bản sao CCCD có chứng thực",
        due,
        new_due,
    )
    assert sup.supplied_at is None
    # the documents came: processing again, the request marked supplied
    back = agency.progress(code, at=t + timedelta(days=1, hours=1), status="processing")
    # the same request sent again in a later event is not a second request
    again = agency.progress(
        code, at=t + timedelta(days=1, hours=2), supplement={"id": "bs-1", "needed": "x"}
    )
    r = await agency.post_events([back, again])
    assert [x["result"] for x in r.json()["results"]] == ["applied", "applied"]
    async with app.state.sessionmaker() as s:
        sups = list(
            await s.scalars(select(DossierSupplement).where(DossierSupplement.dossier_id == d.id))
        )
    assert len(sups) == 1 and sups[0].supplied_at == t + timedelta(days=1, hours=1)
    # completed before the new due date: on time (against the old one it would be late)
    done = t + timedelta(days=2)
    await agency.post_events([agency.progress(code, at=done, status="completed")])
    d = await dossier_row(app, code)
    assert (d.status, d.finished_on_time, d.completed_at) == ("completed", True, done)


async def test_refused_with_a_reason_and_late_when_past_due(app, agency):
    late_code, refused_code = new_dossier_code(), new_dossier_code()
    t = agency.now() - timedelta(days=3)
    await agency.post_events(
        [
            agency.upsert(late_code, at=t, due_at=(t + timedelta(days=1)).isoformat()),
            agency.upsert(refused_code, at=t),
        ]
    )
    await agency.post_events(
        [
            agency.progress(late_code, at=t + timedelta(days=2), status="completed"),
            agency.progress(
                refused_code,
                at=t + timedelta(days=1),
                status="refused",
                refused_reason="Thiếu hồ sơ",
            ),
        ]
    )
    late = await dossier_row(app, late_code)
    assert (late.status, late.finished_on_time) == ("completed", False)
    ref = await dossier_row(app, refused_code)
    assert (ref.status, ref.refused_reason, ref.finished_on_time) == (
        "refused",
        "Thiếu hồ sơ",
        None,
    )
    assert ref.closed_at == t + timedelta(days=1)
    # final: nothing moves it any more
    r = await agency.post_events([agency.progress(refused_code, status="processing")])
    assert r.json()["results"][0]["code"] == "event_transition_invalid"


async def test_an_event_from_the_future_is_refused(app, agency):
    code = new_dossier_code()
    r = await agency.post_events([agency.upsert(code, at=agency.now() + timedelta(hours=1))])
    assert [(x["result"], x["code"], x["field"]) for x in r.json()["results"]] == [
        ("refused", "event_in_future", "at")
    ]
    assert await dossier_row(app, code) is None


async def test_status_codes_are_mapped_per_agency(app, agency, other_agency):
    await agency.map_status_codes({"1": "received", "2": "processing", "9": "completed"})
    code = new_dossier_code()
    t = agency.now() - timedelta(hours=1)
    await agency.post_events([agency.upsert(code, at=t)])
    r = await agency.post_events(
        [
            agency.progress(code, at=t + timedelta(minutes=1), status_code="2"),
            agency.progress(code, at=t + timedelta(minutes=2), status_code="77"),
        ]
    )
    body = r.json()["results"]
    assert body[0]["result"] == "applied"
    assert (body[1]["result"], body[1]["code"], body[1]["field"]) == (
        "refused",
        "event_status_code_unknown",
        "status_code",
    )
    assert (await dossier_row(app, code)).status == "processing"
    # the other agency has no mapping: its "2" means nothing
    other = new_dossier_code()
    await other_agency.post_events([other_agency.upsert(other, at=t)])
    r = await other_agency.post_events([other_agency.progress(other, status_code="2")])
    assert r.json()["results"][0]["code"] == "event_status_code_unknown"


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"not json", 400, "ingest_body_invalid"),
        (b'{"events": []}', 400, "ingest_body_invalid"),
        (b'{"items": [1]}', 400, "ingest_body_invalid"),
    ],
)
async def test_a_bad_envelope_is_a_400_after_the_signature(app, agency, body, status, code):
    before = await counts(app)
    r = await agency.post("events", body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert await counts(app) == before


async def test_oversize_before_any_write(app, agency, settings):
    before = await counts(app)
    too_many = [agency.progress(new_dossier_code()) for _ in range(501)]
    r = await agency.post_events(too_many)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "ingest_too_many_events"
    assert "500" in r.json()["detail"]
    huge = b'{"events": [' + b" " * settings.ingest_max_body_bytes + b"]}"
    r = await agency.post("events", huge)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await counts(app) == before
    # 500 is allowed
    r = await agency.post_events([agency.upsert(new_dossier_code()) for _ in range(500)])
    assert r.status_code == 200 and r.json()["counts"]["applied"] == 500
