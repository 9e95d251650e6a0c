"""The resident's lookup (issue 20 items 4–5): the summary checked against what was
imported from third-party files, the sections page by page, the FHIR IPS Bundle and the
download, the access log written with every read, and the one 404 for everyone else."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import text

from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.health.conftest import cccd, extra_lines, generate, import_paths, write_ndjson


async def imported(app, data_dir, settings, count=4, seed=21):
    generated = generate(data_dir, settings, count=count, seed=seed)
    write_ndjson(data_dir / "extra.ndjson", extra_lines(generated.patients[0]["id"]))
    await import_paths(app, [data_dir])
    return generated


async def access_rows(app, user_id: str) -> list:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT section, session_id, device, host(ip) AS ip FROM health_access_log"
                " WHERE user_id = :u ORDER BY id"
            ),
            {"u": user_id},
        )
        return rows.all()


def codes(items, key="code"):
    return sorted(i.get(key) for i in items)


async def test_the_summary_is_what_was_imported(health, client, data_dir, settings, caplog):
    app = health
    generated = await imported(app, data_dir, settings)
    patient = generated.patients[0]
    me = await verified_resident_for(client, app, caplog, 1)
    response = await client.get("/api/v1/me/health", headers=me["headers"])
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert body["person"]["birth_date"] == patient["birthDate"]
    assert body["person"]["sex"] == patient["gender"]
    assert body["person"]["citizen_id_last4"] == cccd(1)[-4:]
    assert body["person"]["full_name"].startswith(patient["name"][0]["family"])
    assert body["blood_type"] == "O Rh+"  # the hand-written 882-1 observation

    allergies = [
        a
        for a in generated.of_patient("AllergyIntolerance", patient["id"])
        if a["clinicalStatus"]["coding"][0]["code"] == "active"
    ]
    assert codes(body["allergies"]) == codes(a["code"]["coding"][0] for a in allergies)
    conditions = generated.of_patient("Condition", patient["id"])
    assert codes(body["active_conditions"]) == codes(c["code"]["coding"][0] for c in conditions)
    medications = [
        m
        for m in generated.of_patient("MedicationRequest", patient["id"])
        if m["status"] == "active"
    ]
    assert len(body["current_medications"]) == len(medications) + 1  # + the statement
    encounters = generated.of_patient("Encounter", patient["id"])
    assert len(body["recent_encounters"]) == min(5, len(encounters))
    assert [i["display"] for i in body["immunizations"]] == ["Hepatitis B vaccine"]
    assert body["immunizations"][0]["performer"] == "Bệnh viện Bạch Mai"

    # the latest value of each vital sign, as the generator wrote it
    vitals = [
        o
        for o in generated.of_patient("Observation", patient["id"])
        if any(c["coding"][0]["code"] == "vital-signs" for c in o["category"])
    ]
    latest: dict[str, dict] = {}
    for o in sorted(vitals, key=lambda o: o["effectiveDateTime"]):
        latest[o["code"]["coding"][0]["code"]] = o
    shown = {v["code"]: v for v in body["latest_vital_signs"]}
    assert set(shown) == set(latest)
    for code, o in latest.items():
        if "valueQuantity" in o:
            assert shown[code]["value"] == o["valueQuantity"]["value"]
        else:  # blood pressure: its components
            assert [c["value"] for c in shown[code]["detail"]["components"]] == [
                c["valueQuantity"]["value"] for c in o["component"]
            ]

    # the read is in the access log, with the session and the device
    [row] = await access_rows(app, me["user_id"])
    assert row.section == "summary"
    assert row.device == "CityApp/2.1 (Android 14; Pixel 7)"
    assert row.session_id is not None and row.ip


async def test_sections_page_by_page_newest_first(health, client, data_dir, settings, caplog):
    app = health
    generated = await imported(app, data_dir, settings)
    patient = generated.patients[0]
    me = await verified_resident_for(client, app, caplog, 1)
    expected = [
        o
        for o in generated.of_patient("Observation", patient["id"])
        if not any(c["coding"][0]["code"] == "vital-signs" for c in o["category"])
    ]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = await client.get(
            "/api/v1/me/health/sections/results", params=params, headers=me["headers"]
        )
        assert page.status_code == 200, page.text
        pages += 1
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(expected) + 1  # + the blood type
    assert len({i["id"] for i in seen}) == len(seen)
    stamps = [datetime.fromisoformat(i["effective_at"]) for i in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert pages == -(-len(seen) // 7)
    logged = [r.section for r in await access_rows(app, me["user_id"])]
    assert logged == ["results"] * pages
    bad = await client.get("/api/v1/me/health/sections/secrets", headers=me["headers"])
    assert bad.status_code == 400
    bad = await client.get(
        "/api/v1/me/health/sections/results", params={"cursor": "!!"}, headers=me["headers"]
    )
    assert bad.status_code == 400 and bad.json()["code"] == "health_cursor_invalid"


async def test_the_fhir_bundle_and_the_download(health, client, data_dir, settings, caplog):
    app = health
    generated = await imported(app, data_dir, settings)
    patient = generated.patients[0]
    me = await verified_resident_for(client, app, caplog, 1)
    response = await client.get("/api/v1/me/health/fhir", headers=me["headers"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "document")
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for section in composition["section"]:
        for ref in section.get("entry", []):
            assert ref["reference"] in urls
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    mine = sum(
        len(generated.of_patient(k, patient["id"]))
        for k in ("Condition", "Observation", "Encounter", "MedicationRequest", "DiagnosticReport")
    ) + len(generated.of_patient("AllergyIntolerance", patient["id"]))
    assert len(kinds) == 2 + mine + 4  # composition, patient, generated, hand-written
    download = await client.get("/api/v1/me/health/download", headers=me["headers"])
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment; filename=")
    assert "no-store" in download.headers["cache-control"]
    logged = [r.section for r in await access_rows(app, me["user_id"])]
    assert logged == ["fhir", "download"]

    log = await client.get("/api/v1/me/health/access-log", headers=me["headers"])
    assert log.status_code == 200
    items = log.json()["items"]
    assert [i["section"] for i in items] == ["download", "fhir"]
    assert all(i["by_me"] and i["device"].startswith("CityApp") for i in items)
    assert [r.section for r in await access_rows(app, me["user_id"])] == ["fhir", "download"]


async def test_everyone_else_gets_the_same_404_and_nothing_is_logged(
    health, client, data_dir, settings, caplog
):
    app = health
    await imported(app, data_dir, settings)
    owner = await verified_resident_for(client, app, caplog, 1)
    level_1 = await sign_in_resident(client, caplog)  # signed in by OTP only: level 1
    other = await verified_resident_for(client, app, caplog, 2)  # another person's record
    no_record = await verified_resident_for(client, app, caplog, 999)  # verified, no book
    admin = await sign_in_staff(client, app, [("admin", None)])
    dispatcher = await sign_in_staff(client, app, [("dispatcher", None)])
    paths = [
        "/api/v1/me/health",
        "/api/v1/me/health/sections/conditions",
        "/api/v1/me/health/fhir",
        "/api/v1/me/health/download",
        "/api/v1/me/health/access-log",
    ]
    bodies = set()
    for who in (level_1, no_record, admin, dispatcher):
        for path in paths:
            response = await client.get(path, headers=who["headers"])
            assert response.status_code == 404, (path, response.text)
            body = response.json()
            assert body["code"] == "health_record_not_found"
            assert "no-store" in response.headers["cache-control"]
            bodies.add(body["detail"])
    assert len(bodies) == 1  # nothing tells one refusal from another
    for path in paths:
        assert (await client.get(path)).status_code == 401
    # the other person reads their own book, not the owner's
    theirs = await client.get("/api/v1/me/health", headers=other["headers"])
    assert theirs.json()["person"]["citizen_id_last4"] == cccd(2)[-4:]
    async with app.state.engine.connect() as conn:
        logged = await conn.execute(text("SELECT user_id FROM health_access_log"))
        assert {str(r.user_id) for r in logged} == {other["user_id"]}
    assert owner["user_id"] != other["user_id"]


async def test_an_account_that_lost_its_level_is_refused(
    health, client, data_dir, settings, caplog
):
    """The token may still say level 2; the account as stored decides."""
    app = health
    await imported(app, data_dir, settings, count=1)
    me = await verified_resident_for(client, app, caplog, 1)
    assert (await client.get("/api/v1/me/health", headers=me["headers"])).status_code == 200
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET identity_level = 1 WHERE id = :u"), {"u": me["user_id"]}
        )
    refused = await client.get("/api/v1/me/health", headers=me["headers"])
    assert refused.status_code == 404


async def test_no_health_data_in_logs_or_error_bodies(health, client, data_dir, settings, caplog):
    app = health
    caplog.set_level(logging.DEBUG)
    generated = await imported(app, data_dir, settings, count=2)
    me = await verified_resident_for(client, app, caplog, 1)
    for path in ("/api/v1/me/health", "/api/v1/me/health/fhir", "/api/v1/me/health/access-log"):
        assert (await client.get(path, headers=me["headers"])).status_code == 200
    patient = generated.patients[0]
    secrets = {cccd(1), patient["name"][0]["family"], patient["birthDate"], "O Rh+"}
    secrets |= {
        c["code"]["coding"][0]["display"] for c in generated.of_patient("Condition", patient["id"])
    }
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    leaked = [s for s in secrets if s and s in logged]
    assert leaked == []


async def verified_resident_for(client, app, caplog, n: int) -> dict:
    from tests.health.conftest import verified_resident

    return await verified_resident(client, app, caplog, cccd(n))
