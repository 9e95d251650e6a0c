# ruff: noqa: UP031, E501 (JSON templates: %-format keeps the braces readable)
"""Seed FHIR R4 NDJSON at Hanoi's scale for the health book's benchmark (issue 20).

    python -m bench.health_seed OUT_DIR --patients 2500000 [--per-patient 5] [--seed 1]

Writes one file per resource type, as a Bulk Data export would: ``Patient.ndjson`` (with
the citizen-ID identifier of ``HEALTH_CITIZEN_ID_SYSTEM``: patient n has citizen ID
``bench_cccd(n)``), then per patient ``--per-patient`` resources: an Encounter, a
Condition, vital-sign Observations (blood pressure with components, body weight, heart
rate, temperature), a MedicationRequest, an AllergyIntolerance, an Immunization, in the
shapes US Core gives them (meta.lastUpdated, profile, coded
concepts, relative references). Lines are built from templates (the third-party
generator used by the tests makes ~1,000 resources/s, too slow for 2.5 M patients).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from app.settings import get_settings

CONDITIONS = [
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("E78.5", "Hyperlipidemia, unspecified"),
]
ALLERGENS = [("723", "amoxicillin"), ("7980", "penicillin G"), ("1191", "aspirin")]
DRUGS = [("314076", "lisinopril 10 MG Oral Tablet"), ("860975", "metformin 500 MG Oral Tablet")]
VACCINES = [("08", "Hepatitis B vaccine"), ("140", "Influenza vaccine"), ("213", "COVID-19")]
META = '"meta":{"lastUpdated":"2026-11-%02dT08:00:00+07:00","profile":["%s"]}'
US = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"


def bench_cccd(n: int) -> str:
    return f"0790{n:08d}"


def patient(n: int, system: str) -> str:
    sex = "female" if n % 2 else "male"
    return (
        '{"resourceType":"Patient","id":"p%d",%s,"identifier":[{"system":"%s","value":"%s"}],'
        '"name":[{"use":"official","family":"Nguyễn","given":["Văn","An%d"]}],'
        '"gender":"%s","birthDate":"%04d-%02d-%02d"}'
        % (
            n, META % (1 + n % 28, US + "patient"), system, bench_cccd(n), n, sex,
            1940 + n % 80, 1 + n % 12, 1 + n % 28,
        )
    )  # fmt: skip


def encounter(n: int, day: int) -> str:
    return (
        '{"resourceType":"Encounter","id":"e%d",%s,"status":"finished","class":{"system":'
        '"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB","display":"ambulatory"},'
        '"type":[{"text":"Khám ngoại trú"}],"subject":{"reference":"Patient/p%d"},'
        '"period":{"start":"2026-%02d-%02dT09:00:00+07:00","end":"2026-%02d-%02dT09:30:00+07:00"}}'
        % (n, META % (day, US + "encounter"), n, 1 + n % 11, day, 1 + n % 11, day)
    )  # fmt: skip


def condition(n: int, rng: random.Random) -> str:
    code, text = rng.choice(CONDITIONS)
    return (
        '{"resourceType":"Condition","id":"c%d",%s,"clinicalStatus":{"coding":[{"system":'
        '"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},'
        '"category":[{"coding":[{"code":"problem-list-item"}]}],"code":{"coding":[{"system":'
        '"http://hl7.org/fhir/sid/icd-10-cm","code":"%s","display":"%s"}],"text":"%s"},'
        '"subject":{"reference":"Patient/p%d"},"onsetDateTime":"20%02d-03-02"}'
        % (n, META % (2, US + "condition-problems-health-concerns"), code, text, text, n,
           10 + n % 16)
    )  # fmt: skip


def allergy(n: int, rng: random.Random) -> str:
    code, text = rng.choice(ALLERGENS)
    return (
        '{"resourceType":"AllergyIntolerance","id":"a%d",%s,"clinicalStatus":{"coding":[{"system":'
        '"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},'
        '"code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"%s",'
        '"display":"%s"}]},"patient":{"reference":"Patient/p%d"},"recordedDate":"2025-01-01"}'
        % (n, META % (3, US + "allergyintolerance"), code, text, n)
    )  # fmt: skip


VITALS = [
    ("29463-7", "Body weight", "kg", 45, 95),
    ("8867-4", "Heart rate", "/min", 55, 110),
    ("8310-5", "Body temperature", "Cel", 36, 38),
]


def vital(n: int, k: int, rng: random.Random) -> str:
    category = (
        '"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/'
        'observation-category","code":"vital-signs"}]}]'
    )
    when = "2026-%02d-%02dT09:%02d:00+07:00" % (1 + n % 11, 1 + k % 28, k % 60)
    if k == 0:
        return (
            '{"resourceType":"Observation","id":"o%d-%d",%s,"status":"final",%s,"code":{"coding":'
            '[{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel"}]},'
            '"subject":{"reference":"Patient/p%d"},"effectiveDateTime":"%s","component":['
            '{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},'
            '"valueQuantity":{"value":%d,"unit":"mm[Hg]"}},'
            '{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},'
            '"valueQuantity":{"value":%d,"unit":"mm[Hg]"}}]}'
            % (n, k, META % (4, US + "blood-pressure"), category, n, when,
               rng.randint(105, 165), rng.randint(60, 100))
        )  # fmt: skip
    code, text, unit, low, high = VITALS[(k - 1) % len(VITALS)]
    return (
        '{"resourceType":"Observation","id":"o%d-%d",%s,"status":"final",%s,"code":{"coding":'
        '[{"system":"http://loinc.org","code":"%s","display":"%s"}]},'
        '"subject":{"reference":"Patient/p%d"},"effectiveDateTime":"%s",'
        '"valueQuantity":{"value":%.1f,"unit":"%s"}}'
        % (n, k, META % (4, US + "vital-signs"), category, code, text, n, when,
           rng.uniform(low, high), unit)
    )  # fmt: skip


def medication(n: int, rng: random.Random) -> str:
    code, text = rng.choice(DRUGS)
    return (
        '{"resourceType":"MedicationRequest","id":"m%d",%s,"status":"active","intent":"order",'
        '"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/'
        'rxnorm","code":"%s","display":"%s"}]},"subject":{"reference":"Patient/p%d"},'
        '"authoredOn":"2026-10-01","dosageInstruction":[{"text":"1 viên mỗi sáng"}]}'
        % (n, META % (5, US + "medicationrequest"), code, text, n)
    )  # fmt: skip


def immunization(n: int, rng: random.Random) -> str:
    code, text = rng.choice(VACCINES)
    return (
        '{"resourceType":"Immunization","id":"i%d",%s,"status":"completed","vaccineCode":'
        '{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"%s"}],"text":"%s"},'
        '"patient":{"reference":"Patient/p%d"},"occurrenceDateTime":"2024-05-06"}'
        % (n, META % (6, US + "immunization"), code, text, n)
    )  # fmt: skip


def seed(out: str, patients: int, per_patient: int, seed_value: int = 1) -> dict[str, int]:
    """Write the files; return lines per type. ``per_patient`` resources besides the
    Patient: an encounter, a condition, two vital signs, a medication, an allergy, a
    vaccine, then more vital signs, in that order."""
    os.makedirs(out, exist_ok=True)
    system = get_settings().health_citizen_id_system
    rng = random.Random(seed_value)
    order = [
        "Encounter", "Condition", "Observation", "Observation", "MedicationRequest",
        "AllergyIntolerance", "Immunization",
    ]  # fmt: skip
    plan = (order + ["Observation"] * max(0, per_patient - len(order)))[:per_patient]
    handles = {
        k: open(os.path.join(out, f"{k}.ndjson"), "w", encoding="utf-8", buffering=1 << 20)
        for k in ["Patient", *dict.fromkeys(plan)]
    }
    counts = dict.fromkeys(handles, 0)
    try:
        for n in range(1, patients + 1):
            handles["Patient"].write(patient(n, system) + "\n")
            counts["Patient"] += 1
            observation = 0
            for kind in plan:
                if kind == "Encounter":
                    line = encounter(n, 1 + n % 28)
                elif kind == "Condition":
                    line = condition(n, rng)
                elif kind == "AllergyIntolerance":
                    line = allergy(n, rng)
                elif kind == "Observation":
                    line = vital(n, observation, rng)
                    observation += 1
                elif kind == "MedicationRequest":
                    line = medication(n, rng)
                else:
                    line = immunization(n, rng)
                handles[kind].write(line + "\n")
                counts[kind] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.health_seed")
    parser.add_argument("out")
    parser.add_argument("--patients", type=int, default=2_500_000)
    parser.add_argument("--per-patient", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = seed(args.out, args.patients, args.per_patient, args.seed)
    took = time.perf_counter() - started
    total = sum(counts.values())
    print(f"wrote {total:,} lines in {took:.1f} s: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
