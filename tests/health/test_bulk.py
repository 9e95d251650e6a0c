"""The Bulk Data client (issue 20 item 1) against a stand-in FHIR server on loopback that
speaks the Bulk Data Access IG v2 protocol (tests/health/bulk_standin.py)."""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import text

from app import policy
from app.core import db
from app.health import runner, service
from tests.health.bulk_standin import TOKEN, BulkServer
from tests.health.conftest import generate, job_errors, job_row


@pytest.fixture
async def fhir_server(tmp_path, settings):
    generated = generate(tmp_path / "export", settings, count=3, seed=9)
    server = BulkServer(files={k: p.read_bytes() for k, p in generated.files.items()})
    server.generated = generated  # type: ignore[attr-defined]
    await server.start()
    yield server
    await server.stop()


def configured(settings, server: BulkServer, tmp_path, **overrides):
    return msgspec.structs.replace(
        settings,
        health_bulk_export_url=server.export_url,
        health_bulk_token=TOKEN,
        health_import_dir=str(tmp_path / "downloads"),
        **overrides,
    )


async def start_bulk(app, settings) -> object:
    async with db.transaction(app.state.sessionmaker, None) as session:
        job = await service.create_bulk_job(
            session, policy.system_actor(app.state.clock.now()), settings
        )
    return job.id


async def run_to_the_end(app, settings, job_id) -> list[str]:
    outcomes = []
    for _ in range(50):
        result = await runner.run_job(app.state.engine, settings, job_id)
        outcomes.append(result.outcome)
        if result.outcome in ("finished", "gone"):
            return outcomes
    raise AssertionError(outcomes)


async def test_an_export_is_kicked_off_polled_downloaded_imported_and_deleted(
    health, fhir_server, settings, tmp_path
):
    app = health
    conf = configured(settings, fhir_server, tmp_path)
    job_id = await start_bulk(app, conf)
    assert await run_to_the_end(app, conf, job_id) == ["finished"]
    job = await job_row(app, job_id)
    generated = fhir_server.generated
    total = sum(generated.counts.values())
    assert (job["status"], job["lines"], job["imported"], job["errors"]) == (
        "succeeded",
        total,
        total,
        0,
    )
    [kick] = fhir_server.requests("GET", "/fhir/Patient/$export")
    assert kick.headers["Prefer"] == "respond-async"
    assert kick.headers["Accept"] == "application/fhir+json"
    assert kick.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "_type=Patient" in kick.path
    polls = fhir_server.requests("GET", "/status/")
    assert len(polls) == fhir_server.polls_before_done + 1
    gaps = [b.at - a.at for a, b in zip(polls, polls[1:], strict=False)]
    assert all(gap >= fhir_server.retry_after * 0.95 for gap in gaps), gaps  # Retry-After
    downloads = fhir_server.requests("GET", "/files/")
    assert len(downloads) == len(generated.files)
    assert all(d.headers["Authorization"] == f"Bearer {TOKEN}" for d in downloads)
    [deleted] = fhir_server.requests("DELETE", "/status/")
    assert deleted.at > max(d.at for d in downloads)  # done with it only after downloading
    async with app.state.engine.connect() as conn:
        names = (
            (
                await conn.execute(
                    text(
                        "SELECT name FROM health_import_files WHERE job_id = :j ORDER BY position"
                    ),
                    {"j": job_id},
                )
            )
            .scalars()
            .all()
        )
    assert names[0].endswith("-Patient.ndjson")  # the patients first, whatever the order


async def test_a_slice_shorter_than_the_wait_resumes_polling_without_a_second_kick_off(
    health, fhir_server, settings, tmp_path
):
    app = health
    conf = configured(settings, fhir_server, tmp_path, health_import_slice_seconds=0)
    fhir_server.mode = "busy"  # a 429 with Retry-After first: waited out, not a failure
    job_id = await start_bulk(app, conf)
    result = await runner.run_job(app.state.engine, conf, job_id)
    assert (result.outcome, result.defer_seconds) == ("continue", fhir_server.retry_after)
    assert (await job_row(app, job_id))["status"] == "exporting"
    outcomes = await run_to_the_end(app, conf, job_id)
    assert outcomes[-1] == "finished"
    assert len(fhir_server.requests("GET", "/fhir/Patient/$export")) == 1
    assert (await job_row(app, job_id))["status"] == "succeeded"


@pytest.mark.parametrize(
    ("mode", "code", "params"),
    [
        ("kickoff_error", "health_bulk_kickoff_refused", {"status": 500}),
        ("export_error", "health_bulk_export_failed", {"status": 500}),
        ("missing_file", "health_bulk_download_failed", {"status": 404}),
    ],
)
async def test_a_server_answering_errors_fails_the_job_with_its_reason(
    health, fhir_server, settings, tmp_path, mode, code, params
):
    app = health
    fhir_server.mode = mode
    fhir_server.polls_before_done = 0
    conf = configured(settings, fhir_server, tmp_path)
    job_id = await start_bulk(app, conf)
    assert await run_to_the_end(app, conf, job_id) == ["finished"]
    job = await job_row(app, job_id)
    assert (job["status"], job["failure_code"], job["failure_params"]) == ("failed", code, params)
    assert job["finished_at"] is not None and job["lines"] == 0
    async with db.transaction(app.state.sessionmaker, None) as session:
        shown = await service.get_job(
            session, policy.system_actor(app.state.clock.now()), job_id, "en"
        )
    assert str(params["status"]) in shown.failure and "FHIR server" in shown.failure


async def test_a_server_that_never_finishes_fails_after_the_timeout_and_is_told_so(
    health, fhir_server, settings, tmp_path
):
    app = health
    fhir_server.mode = "never"
    conf = configured(settings, fhir_server, tmp_path, health_bulk_timeout_seconds=3)
    job_id = await start_bulk(app, conf)
    assert await run_to_the_end(app, conf, job_id) == ["finished"]
    job = await job_row(app, job_id)
    assert (job["status"], job["failure_code"]) == ("failed", "health_bulk_timeout")
    assert job["failure_params"] == {"seconds": 3}
    assert len(fhir_server.requests("DELETE", "/status/")) == 1  # the export cancelled
    assert 2 <= len(fhir_server.requests("GET", "/status/")) <= 5


async def test_an_unreachable_server_fails_the_job(health, settings, tmp_path):
    app = health
    conf = msgspec.structs.replace(
        settings,
        health_bulk_export_url="http://127.0.0.1:18699/fhir/Patient/$export",  # nobody there
        health_import_dir=str(tmp_path),
    )
    job_id = await start_bulk(app, conf)
    await run_to_the_end(app, conf, job_id)
    job = await job_row(app, job_id)
    assert (job["status"], job["failure_code"]) == ("failed", "health_bulk_unreachable")
    assert await job_errors(app, job_id) == []
