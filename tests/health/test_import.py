"""The FHIR R4 import (issue 20 items 1–3) on third-party data (carebundle, see conftest)
and on files with defects injected by hand: counts, per-line errors, idempotence, the
newer ``meta.lastUpdated`` winning, Bundles with ``urn:uuid:`` references, and memory
that does not grow with the file."""

from __future__ import annotations

import json
import tracemalloc

from sqlalchemy import text

from app.core.security import keyed_hash
from tests.health.conftest import (
    cccd,
    extra_lines,
    generate,
    import_paths,
    job_errors,
    job_row,
    transaction_bundle,
    write_ndjson,
)

KEPT_COLUMNS = (
    "resource_type, source_id, patient_id, section, active, code, display, status,"
    " effective_at, value_num, value_text, unit, detail, last_updated, content_hash, imported_at"
)


async def resources(app) -> dict:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT {KEPT_COLUMNS} FROM health_resources"))
        return {(r.resource_type, r.source_id): r for r in rows}


async def count_by_type(app) -> dict:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT resource_type, count(*) FROM health_resources GROUP BY 1")
        )
        counts = dict(rows.all())
        counts["Patient"] = await conn.scalar(text("SELECT count(*) FROM health_patients"))
        counts["Practitioner"] = await conn.scalar(
            text("SELECT count(*) FROM health_parties WHERE resource_type = 'Practitioner'")
        )
    return counts


async def test_a_third_party_export_imports_whole_and_twice_changes_nothing(
    health, data_dir, settings
):
    app = health
    generated = generate(data_dir, settings, count=12, seed=42)
    assert set(generated.counts) >= {"Patient", "Observation", "Condition", "Encounter"}
    job_id = await import_paths(app, [data_dir])
    job = await job_row(app, job_id)
    total = sum(generated.counts.values())
    assert job["status"] == "succeeded", job
    assert (job["lines"], job["imported"], job["errors"], job["skipped"]) == (total, total, 0, 0)
    assert await job_errors(app, job_id) == []
    assert await count_by_type(app) == dict(generated.counts)

    # the patient is matched by the keyed hash of the citizen ID: never the number itself
    first = generated.patients[0]
    async with app.state.engine.connect() as conn:
        stored = (
            (
                await conn.execute(
                    text("SELECT * FROM health_patients WHERE source_id = :id"), {"id": first["id"]}
                )
            )
            .mappings()
            .one()
        )
    assert stored["citizen_id_hash"] == keyed_hash(settings.citizen_id_hash_key, cccd(1))
    assert stored["citizen_id_last4"] == cccd(1)[-4:]
    assert cccd(1) not in repr(dict(stored))
    family = first["name"][0]["family"]
    assert stored["full_name"].startswith(family)  # Vietnamese order: family name first
    assert (stored["birth_date"], stored["sex"]) == (first["birthDate"], first["gender"])

    # a vital sign as the generator wrote it
    bp = next(
        o for o in generated.by_type["Observation"] if o["code"]["coding"][0]["code"] == "85354-9"
    )
    before = await resources(app)
    row = before[("Observation", bp["id"])]
    assert row.section == "vital_signs"
    assert [c["value"] for c in row.detail["components"]] == [
        c["valueQuantity"]["value"] for c in bp["component"]
    ]
    lab = next(o for o in generated.by_type["Observation"] if "valueQuantity" in o)
    assert before[("Observation", lab["id"])].value_num == lab["valueQuantity"]["value"]

    # the same files again: every line read, nothing written
    again = await import_paths(app, [data_dir])
    job = await job_row(app, again)
    assert (job["lines"], job["imported"], job["unchanged"]) == (total, 0, total)
    assert await resources(app) == before


async def test_defects_are_reported_per_line_and_the_rest_is_imported(health, data_dir, settings):
    app = health
    generated = generate(data_dir / "clean", settings, count=3, seed=7)
    [alice, bob, carol] = generated.patients
    obs = generated.of_patient("Observation", alice["id"])[:3]
    no_id = dict(bob, id="no-cccd")
    no_id["identifier"] = [
        i for i in bob["identifier"] if i["system"] != settings.health_citizen_id_system
    ]
    bad_id = json.loads(json.dumps(carol))
    bad_id["id"] = "bad-cccd"
    bad_id["identifier"][-1]["value"] = "12345"
    clash = dict(carol, id="same-cccd-other-id")  # carol's citizen ID under another id
    orphan = dict(obs[0], id="orphan", subject={"reference": "Patient/nobody"})
    older = dict(obs[1], meta={"lastUpdated": "2026-01-01T00:00:00Z"}, valueQuantity={"value": 1})
    newer = dict(obs[1], meta={"lastUpdated": "2026-02-01T00:00:00Z"}, valueQuantity={"value": 2})
    lines: list[dict | str] = [
        alice,  # 1
        carol,  # 2
        "{not json",  # 3
        no_id,  # 4
        bad_id,  # 5
        {"resourceType": "Claim", "id": "c1"},  # 6: a type the book does not keep
        {"id": "x"},  # 7: no resourceType
        {"resourceType": "Observation", "status": "final"},  # 8: no id
        {"resourceType": "Patient", "id": "p", "gender": 5},  # 9: a field of the wrong type
        orphan,  # 10
        newer,  # 11
        older,  # 12: the same resource, older: the newer one is kept
        obs[2],  # 13
        clash,  # 14
        "",  # 15: blank lines are no lines
        dict(obs[0], subject=None),  # 16: no patient at all
    ]
    path = write_ndjson(data_dir / "defects.ndjson", lines)
    # a truncated file: the last line cut in the middle
    whole = json.dumps(obs[0])
    path.write_text(path.read_text(encoding="utf-8") + whole[: len(whole) // 2], encoding="utf-8")
    job_id = await import_paths(app, [path])
    errors = [(line, code, field) for _, line, code, field in await job_errors(app, job_id)]
    assert sorted(errors) == sorted(
        [
            (3, "health_line_malformed", None),
            (4, "health_patient_without_citizen_id", None),
            (5, "health_citizen_id_invalid", "$.identifier"),
            (7, "health_resource_type_missing", None),
            (8, "health_resource_invalid", "$.id"),
            (9, "health_resource_invalid", "$.gender"),
            (10, "health_unknown_patient", None),
            (12, "health_duplicate_resource", None),
            (14, "health_citizen_id_conflict", None),
            (16, "health_patient_reference_missing", None),
            (17, "health_line_malformed", None),
        ]
    )
    job = await job_row(app, job_id)
    assert job["status"] == "succeeded"
    assert job["lines"] == 16  # 17 lines, one blank
    assert (job["skipped"], job["duplicates"], job["errors"]) == (1, 1, 10)
    assert job["imported"] == 4  # alice, carol, the newer observation, obs[2]
    rows = await resources(app)
    assert rows[("Observation", obs[1]["id"])].value_num == 2
    assert ("Observation", "orphan") not in rows

    # a later import of the older version changes nothing; a newer one wins
    write_ndjson(data_dir / "older.ndjson", [older])
    await import_paths(app, [data_dir / "older.ndjson"])
    assert (await resources(app))[("Observation", obs[1]["id"])].value_num == 2
    newest = dict(newer, meta={"lastUpdated": "2026-03-01T00:00:00Z"}, valueQuantity={"value": 3})
    write_ndjson(data_dir / "newest.ndjson", [newest])
    await import_paths(app, [data_dir / "newest.ndjson"])
    assert (await resources(app))[("Observation", obs[1]["id"])].value_num == 3


async def test_the_resources_carebundle_does_not_make_are_kept_too(health, data_dir, settings):
    """Immunization, Procedure, MedicationStatement, Organization and a blood type:
    lines written by hand (see conftest) beside a third-party patient."""
    app = health
    generated = generate(data_dir, settings, count=1, seed=3)
    patient = generated.patients[0]
    write_ndjson(data_dir / "extra.ndjson", extra_lines(patient["id"]))
    job_id = await import_paths(app, [data_dir])
    assert await job_errors(app, job_id) == []
    rows = await resources(app)
    by_type = {k[0]: v for k, v in rows.items()}
    assert by_type["Immunization"].section == "immunizations"
    assert by_type["Procedure"].section == "procedures"
    assert by_type["MedicationStatement"].active is True
    assert by_type["MedicationStatement"].detail == {
        "dosage": "1 viên mỗi sáng",
        "kind": "statement",
    }
    blood = next(v for k, v in rows.items() if k[1].startswith("abo-"))
    assert (blood.section, blood.value_text) == ("results", "O Rh+")


async def test_a_transaction_bundle_with_urn_uuid_references(health, data_dir, settings):
    app = health
    bundle = transaction_bundle(settings, seed=5, number=cccd(77))
    entries = bundle["entry"]
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in entries)
    assert all("id" not in e["resource"] for e in entries)  # the server would assign them
    # the Patient last: references are resolved whatever the order
    bundle["entry"] = entries[1:] + entries[:1]
    path = data_dir / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    job_id = await import_paths(app, [path])
    assert await job_errors(app, job_id) == []
    job = await job_row(app, job_id)
    assert job["imported"] == len(entries)
    patient_url = next(e["fullUrl"] for e in entries if e["resource"]["resourceType"] == "Patient")
    async with app.state.engine.connect() as conn:
        patient_id = await conn.scalar(
            text("SELECT id FROM health_patients WHERE source_id = :s"),
            {"s": patient_url.removeprefix("urn:uuid:")},
        )
        owned = await conn.scalar(
            text("SELECT count(*) FROM health_resources WHERE patient_id = :p"), {"p": patient_id}
        )
    clinical = [
        e for e in entries if e["resource"]["resourceType"] not in ("Patient", "Practitioner")
    ]
    assert owned == len(clinical)
    # a collection Bundle of another type refused as a whole, the job goes on
    (data_dir / "searchset.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "history", "entry": []})
    )
    (data_dir / "broken.json").write_text('{"resourceType": "Bundle", "entry": [')
    job_id = await import_paths(app, [data_dir / "searchset.json", data_dir / "broken.json"])
    codes = [(name, code) for name, _, code, _ in await job_errors(app, job_id)]
    assert codes == [
        ("broken.json", "health_bundle_malformed"),
        ("searchset.json", "health_bundle_type_unsupported"),
    ] or codes == [
        ("searchset.json", "health_bundle_type_unsupported"),
        ("broken.json", "health_bundle_malformed"),
    ]


async def test_peak_memory_does_not_grow_with_the_file(health, data_dir, settings):
    """Bounded memory: the same batch size over a file four times as long."""
    app = health
    generated = generate(data_dir / "src", settings, count=10, seed=11)
    observations = generated.files["Observation"].read_text().splitlines()
    small = data_dir / "small"
    large = data_dir / "large"
    for directory, copies in ((small, 1), (large, 4)):
        directory.mkdir()
        (directory / "Patient.ndjson").write_text(generated.files["Patient"].read_text())
        lines = []
        for n in range(copies):  # the same observations under other ids
            lines += [line.replace('"id":"', f'"id":"c{n}-', 1) for line in observations]
        (directory / "Observation.ndjson").write_text("\n".join(lines) + "\n")
    settings_small_batches = type(settings)(
        **{
            **{f: getattr(settings, f) for f in settings.__struct_fields__},
            "health_import_batch_lines": 100,
        }
    )
    peaks = []
    for directory in (small, large):
        tracemalloc.start()
        job_id = await import_paths(app, [directory], settings_small_batches)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert (await job_row(app, job_id))["errors"] == 0
    assert len(observations) * 4 > 1000
    assert peaks[1] < peaks[0] * 1.5, peaks
