"""Fixtures of the health book's tests.

Third-party data: the FHIR R4 files come from ``carebundle`` (PyPI, a generator of US
Core 6.1.0 conformant synthetic data, not written by this project), generated at test
time: ``to_ndjson(generate_cohort(count=N, seed=S))`` gives one NDJSON stream per
resource type (Patient, Practitioner, Encounter, Condition, AllergyIntolerance,
Observation, DiagnosticReport, MedicationRequest), and ``generate_bundle`` a transaction
Bundle with ``urn:uuid:`` references. The generator cannot give a Vietnamese citizen ID,
so the fixture adds one identifier (``HEALTH_CITIZEN_ID_SYSTEM``, 12 digits) to each
Patient line and changes nothing else. carebundle makes no Immunization, Procedure,
MedicationStatement, Organization or blood-type Observation: ``extra_lines`` writes those
by hand (said so where they are used).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from carebundle import generate_bundle, generate_cohort, to_json, to_ndjson

from app import policy
from app.accounts import service as accounts
from app.core import db
from app.health import runner, service
from tests.accounts.factories import sign_in_resident

CCCD_PREFIX = "0012"


def cccd(n: int) -> str:
    return f"{CCCD_PREFIX}{n:08d}"


@dataclass
class Generated:
    directory: Path
    files: dict[str, Path]
    counts: Counter  # resource type -> lines
    patients: list[dict]  # the Patient resources as written (with their citizen ID)
    by_type: dict[str, list[dict]] = field(default_factory=dict)

    def of_patient(self, kind: str, patient_id: str) -> list[dict]:
        ref = f"Patient/{patient_id}"
        key = "patient" if kind in ("AllergyIntolerance", "Immunization") else "subject"
        return [r for r in self.by_type.get(kind, []) if r.get(key, {}).get("reference") == ref]


def with_citizen_id(resource: dict, system: str, number: str) -> dict:
    resource = dict(resource)
    resource["identifier"] = [
        *resource.get("identifier", []),
        {"system": system, "value": number},
    ]
    return resource


def generate(directory: Path, settings, count: int, seed: int, first_cccd: int = 1) -> Generated:
    """carebundle's NDJSON export of ``count`` patients, a citizen ID added to each."""
    directory.mkdir(parents=True, exist_ok=True)
    streams = to_ndjson(generate_cohort(count=count, seed=seed))
    files, counts, by_type = {}, Counter(), {}
    patients = []
    for kind, text in streams.items():
        lines = text.splitlines()
        resources = [json.loads(line) for line in lines]
        if kind == "Patient":
            resources = [
                with_citizen_id(r, settings.health_citizen_id_system, cccd(first_cccd + n))
                for n, r in enumerate(resources)
            ]
            patients = resources
            lines = [json.dumps(r, ensure_ascii=False) for r in resources]
        path = directory / f"{kind}.ndjson"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files[kind] = path
        counts[kind] = len(lines)
        by_type[kind] = resources
    return Generated(directory, files, counts, patients, by_type)


def transaction_bundle(settings, seed: int, number: str, profile: str = "hypertension") -> dict:
    """carebundle's transaction Bundle (resources without ids, ``urn:uuid:`` references),
    the citizen ID added to its Patient."""
    bundle = json.loads(to_json(generate_bundle(profile=profile, seed=seed)))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"] = with_citizen_id(
                entry["resource"], settings.health_citizen_id_system, number
            )
    return bundle


def extra_lines(patient_id: str) -> list[dict]:
    """Written by hand (carebundle has none of these): an organisation, an immunization,
    a procedure, a medication statement and a blood-type observation for one patient."""
    subject = {"reference": f"Patient/{patient_id}"}
    tag = uuid.uuid4().hex[:8]
    return [
        {"resourceType": "Organization", "id": f"org-{tag}", "name": "Bệnh viện Bạch Mai"},
        {
            "resourceType": "Immunization",
            "id": f"imm-{tag}",
            "status": "completed",
            "vaccineCode": {
                "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "08"}],
                "text": "Hepatitis B vaccine",
            },
            "patient": subject,
            "occurrenceDateTime": "2025-03-04",
            "performer": [{"actor": {"reference": f"Organization/org-{tag}"}}],
        },
        {
            "resourceType": "Procedure",
            "id": f"proc-{tag}",
            "status": "completed",
            "code": {"text": "Appendectomy"},
            "subject": subject,
            "performedDateTime": "2019-07-20T10:00:00+07:00",
        },
        {
            "resourceType": "MedicationStatement",
            "id": f"ms-{tag}",
            "status": "active",
            "medicationCodeableConcept": {"text": "Vitamin D3 1000 IU"},
            "subject": subject,
            "effectiveDateTime": "2025-01",
            "dosage": [{"text": "1 viên mỗi sáng"}],
        },
        {
            "resourceType": "Observation",
            "id": f"abo-{tag}",
            "status": "final",
            "category": [{"coding": [{"code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "882-1"}]},
            "subject": subject,
            "effectiveDateTime": "2010-05-01",
            "valueCodeableConcept": {"text": "O Rh+"},
        },
    ]


def write_ndjson(path: Path, items: list[dict | str]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            line = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            handle.write(line + "\n")
    return path


async def import_paths(app, paths: list[Path | str], settings=None) -> uuid.UUID:
    """Create a job for the files (as the CLI does) and run it here to the end."""
    settings = settings or app.state.settings
    async with db.transaction(app.state.sessionmaker, None) as session:
        job_id = await service.create_file_job(
            session, policy.system_actor(app.state.clock.now()), [str(p) for p in paths]
        )
    for _ in range(1000):
        result = await runner.run_job(app.state.engine, settings, job_id)
        if result.outcome in ("finished", "gone"):
            return job_id
    raise AssertionError("the import never finished")


async def job_row(app, job_id: uuid.UUID) -> dict:
    async with app.state.engine.connect() as conn:
        from sqlalchemy import text

        row = (
            (
                await conn.execute(
                    text("SELECT * FROM health_import_jobs WHERE id = :id"), {"id": job_id}
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def job_errors(app, job_id: uuid.UUID) -> list[tuple]:
    """(file name, line, code, field) of every error, in order."""
    from sqlalchemy import text

    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT f.name, e.line, e.code, e.field FROM health_import_errors e"
                " LEFT JOIN health_import_files f"
                "   ON f.job_id = e.job_id AND f.position = e.position"
                " WHERE e.job_id = :id ORDER BY e.id"
            ),
            {"id": job_id},
        )
        return [tuple(r) for r in rows]


async def empty_health_tables(app) -> None:
    from sqlalchemy import text

    async with app.state.engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE health_patients, health_parties, health_import_jobs,"
                " health_access_log, health_resources CASCADE"
            )
        )


@pytest.fixture
async def health(app, client):
    """Empty health tables (and user tables: ``client``)."""
    await empty_health_tables(app)
    yield app


async def verified_resident(client, app, caplog, citizen_id: str) -> dict:
    """A resident signed in with OTP whose account the real service raised to level 2
    with this citizen ID (what the VNeID flow ends with), holding a refreshed token."""
    tokens = await sign_in_resident(client, caplog)
    me = await client.get("/api/v1/me", headers=tokens["headers"])
    async with db.transaction(app.state.sessionmaker, None) as session:
        await accounts.bind_citizen_identity(
            session,
            app.state.settings,
            uuid.UUID(me.json()["id"]),
            citizen_id,
            f"vneid-{citizen_id}",
            None,
            "127.0.0.1",
        )
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    body["headers"] = {
        "Authorization": f"Bearer {body['access_token']}",
        "User-Agent": "CityApp/2.1 (Android 14; Pixel 7)",
    }
    body["user_id"] = me.json()["id"]
    return body


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "fhir"
    path.mkdir()
    return path


__all__ = ["os"]
