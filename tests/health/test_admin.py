"""Admins' view of the import jobs (issue 20 item 6): counts, per-line errors and
duration, in the caller's language; no one else; no record is browsable there."""

from __future__ import annotations

import json

import msgspec

from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.health.conftest import generate, import_paths, write_ndjson


async def test_admins_read_jobs_counts_errors_and_duration(
    health, client, data_dir, settings, caplog
):
    app = health
    generated = generate(data_dir, settings, count=2, seed=1)
    bad = dict(generated.patients[0], id="no-id", identifier=[])
    write_ndjson(data_dir / "Patient-extra.ndjson", [bad, "not json"])
    job_id = await import_paths(app, [data_dir])
    admin = await sign_in_staff(client, app, [("admin", None)])
    listed = await client.get("/api/v1/admin/health/imports", headers=admin["headers"])
    assert listed.status_code == 200, listed.text
    [job] = listed.json()["items"]
    assert job["id"] == str(job_id) and job["status"] == "succeeded"
    assert job["errors"] == 2 and job["lines"] == sum(generated.counts.values()) + 2
    assert job["duration_seconds"] is not None and job["duration_seconds"] >= 0
    one = await client.get(f"/api/v1/admin/health/imports/{job_id}", headers=admin["headers"])
    files = {f["name"]: f for f in one.json()["files"]}
    assert files["Patient-extra.ndjson"]["errors"] == 2
    assert files["Patient.ndjson"]["imported"] == 2
    errors = await client.get(
        f"/api/v1/admin/health/imports/{job_id}/errors",
        params={"limit": 1},
        headers=admin["headers"] | {"Accept-Language": "en"},
    )
    assert errors.status_code == 200
    first = errors.json()
    assert first["items"] == [
        {
            "file": "Patient-extra.ndjson",
            "line": 1,
            "code": "health_patient_without_citizen_id",
            "field": None,
            "reason": "The patient has no citizen ID: not imported.",
        }
    ]
    second = await client.get(
        f"/api/v1/admin/health/imports/{job_id}/errors",
        params={"cursor": first["next_cursor"]},
        headers=admin["headers"],
    )
    assert [(e["line"], e["code"]) for e in second.json()["items"]] == [
        (2, "health_line_malformed")
    ]
    assert second.json()["next_cursor"] is None
    # nothing of a patient in what admins see
    text = json.dumps([listed.json(), one.json(), first, second.json()])
    assert generated.patients[0]["name"][0]["family"] not in text
    assert generated.patients[0]["birthDate"] not in text


async def test_only_admins_and_a_bulk_pull_needs_a_server(health, client, caplog):
    app = health
    manager = await sign_in_staff(client, app, [("dispatcher", None)])
    resident = await sign_in_resident(client, caplog)
    for who, status in ((manager, 403), (resident, 403)):
        listed = await client.get("/api/v1/admin/health/imports", headers=who["headers"])
        assert listed.status_code == status
        started = await client.post(
            "/api/v1/admin/health/imports", json={"kind": "bulk"}, headers=who["headers"]
        )
        assert started.status_code == status
    admin = await sign_in_staff(client, app, [("admin", None)])
    refused = await client.post(
        "/api/v1/admin/health/imports", json={"kind": "bulk"}, headers=admin["headers"]
    )
    assert refused.status_code == 409 and refused.json()["code"] == "health_bulk_not_configured"
    unknown = await client.get(
        "/api/v1/admin/health/imports/00000000-0000-0000-0000-000000000000",
        headers=admin["headers"],
    )
    assert unknown.status_code == 404
    odd = await client.post(
        "/api/v1/admin/health/imports", json={"kind": "bulk", "x": 1}, headers=admin["headers"]
    )
    assert odd.status_code == 400


async def test_an_admin_starts_a_bulk_pull(health, client, settings, caplog):
    """With a server configured, the job is created queued, audited, and its run queued."""
    from app.main import create_app
    from tests.conftest import running

    app = create_app(
        msgspec.structs.replace(
            settings, health_bulk_export_url="http://127.0.0.1:18698/fhir/Patient/$export"
        )
    )
    async with running(app) as configured:
        admin = await sign_in_staff(configured, app, [("admin", None)])
        started = await configured.post(
            "/api/v1/admin/health/imports", json={"kind": "bulk"}, headers=admin["headers"]
        )
        assert started.status_code == 202, started.text
        job = started.json()
        assert (job["kind"], job["status"]) == ("bulk", "queued")
        queued = await app.state.redis.queued_jobs(queue_name=settings.queue_name)
        assert any(j.function == "run_health_import" and j.args == (job["id"],) for j in queued)
        async with app.state.engine.connect() as conn:
            from sqlalchemy import text

            audited = await conn.scalar(
                text("SELECT count(*) FROM audit_log WHERE object_id = :j AND action = :a"),
                {"j": job["id"], "a": "health.import_started"},
            )
        assert audited == 1
        for j in queued:  # leave no job of this test to another test's worker
            if j.function == "run_health_import" and j.job_id:
                await app.state.redis.zrem(settings.queue_name, j.job_id)
