"""The record as a FHIR R4 document Bundle shaped like the International Patient Summary
(IPS): a Composition with one section per kind of entry (LOINC section codes), the
Patient, and one resource per entry rebuilt from the fields kept. References inside the
Bundle are ``urn:uuid:`` fullUrls (stable: uuid5 of the health system's type and id).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.health.schemas import Entry

_NS = uuid.UUID("6f0e8d4e-2c0b-5d1a-9a57-6b7c3b1d2e10")

# (LOINC code, title) of each section; encounters and reports are outside the IPS core
SECTION_CODES: dict[str, tuple[str, str]] = {
    "allergies": ("48765-2", "Allergies and adverse reactions"),
    "conditions": ("11450-4", "Problem list"),
    "medications": ("10160-0", "History of medication use"),
    "immunizations": ("11369-6", "History of immunizations"),
    "procedures": ("47519-4", "History of procedures"),
    "vital_signs": ("8716-3", "Vital signs"),
    "results": ("30954-2", "Relevant diagnostic tests/laboratory data"),
    "reports": ("30954-2", "Diagnostic reports"),
    "encounters": ("46240-8", "History of encounters"),
}


def _urn(kind: str, ident: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, f'{kind}/{ident}')}"


def _concept(e: Entry) -> dict[str, Any]:
    coding = {k: v for k, v in (("system", e.code_system), ("code", e.code)) if v}
    if coding and e.display:
        coding["display"] = e.display
    concept: dict[str, Any] = {"coding": [coding]} if coding else {}
    if e.display:
        concept["text"] = e.display
    return concept


def _when(e: Entry) -> str | None:
    return e.effective_at.isoformat() if e.effective_at else None


def _status_concept(system: str, code: str | None) -> dict[str, Any] | None:
    return {"coding": [{"system": system, "code": code}]} if code else None


def _resource(e: Entry, patient: str) -> dict[str, Any]:  # noqa: C901 (one branch per type)
    subject = {"reference": patient}
    r: dict[str, Any] = {"resourceType": e.type, "id": e.id}
    when = _when(e)
    detail = e.detail or {}
    if e.type == "Condition":
        r |= {
            "clinicalStatus": _status_concept(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", e.status
            ),
            "code": _concept(e),
            "subject": subject,
            "onsetDateTime": when,
        }
    elif e.type == "AllergyIntolerance":
        r |= {
            "clinicalStatus": _status_concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", e.status
            ),
            "code": _concept(e),
            "patient": subject,
            "criticality": detail.get("criticality"),
            "recordedDate": when,
        }
    elif e.type == "Immunization":
        r |= {
            "status": e.status or "completed",
            "vaccineCode": _concept(e),
            "patient": subject,
            "occurrenceDateTime": when,
        }
    elif e.type == "Observation":
        r |= {"status": e.status or "final", "code": _concept(e), "subject": subject}
        r["effectiveDateTime"] = when
        if e.value is not None:
            r["valueQuantity"] = {"value": e.value, "unit": e.unit}
        elif e.value_text is not None:
            r["valueString"] = e.value_text
        components = [
            {
                "code": {"coding": [{"code": c.get("code"), "display": c.get("display")}]},
                "valueQuantity": {"value": c.get("value"), "unit": c.get("unit")},
            }
            for c in detail.get("components", [])
        ]
        if components:
            r["component"] = components
    elif e.type == "DiagnosticReport":
        r |= {
            "status": e.status or "final",
            "code": _concept(e),
            "subject": subject,
            "effectiveDateTime": when,
            "conclusion": detail.get("conclusion"),
        }
    elif e.type in ("MedicationRequest", "MedicationStatement"):
        r |= {
            "status": e.status or "unknown",
            "medicationCodeableConcept": _concept(e),
            "subject": subject,
        }
        dosage = detail.get("dosage")
        if e.type == "MedicationRequest":
            r |= {"intent": "order", "authoredOn": when}
            if dosage:
                r["dosageInstruction"] = [{"text": dosage}]
        else:
            r["effectiveDateTime"] = when
            if dosage:
                r["dosage"] = [{"text": dosage}]
    elif e.type == "Procedure":
        r |= {
            "status": e.status or "completed",
            "code": _concept(e),
            "subject": subject,
            "performedDateTime": when,
        }
    elif e.type == "Encounter":
        r |= {
            "status": e.status or "finished",
            "class": {"display": detail.get("class")} if detail.get("class") else None,
            "type": [{"text": e.display}] if e.display else None,
            "subject": subject,
            "period": {"start": when, "end": detail.get("ended")},
        }
    return {k: v for k, v in r.items() if v not in (None, {}, [])}


def bundle(
    person: dict[str, Any], sections: dict[str, list[Entry]], now: datetime
) -> dict[str, Any]:
    """The IPS-shaped document Bundle of one person's record."""
    patient_url = _urn("Patient", person["source_id"])
    patient: dict[str, Any] = {"resourceType": "Patient", "id": person["source_id"]}
    if person.get("full_name"):
        patient["name"] = [{"text": person["full_name"]}]
    if person.get("sex"):
        patient["gender"] = person["sex"]
    if person.get("birth_date"):
        patient["birthDate"] = person["birth_date"]
    entries: list[dict[str, Any]] = [{"fullUrl": patient_url, "resource": patient}]
    composition_sections = []
    for name, (code, title) in SECTION_CODES.items():
        items = sections.get(name, [])
        urls = []
        for e in items:
            url = _urn(e.type, e.id)
            urls.append({"reference": url})
            entries.append({"fullUrl": url, "resource": _resource(e, patient_url)})
        section: dict[str, Any] = {
            "title": title,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        }
        if urls:
            section["entry"] = urls
        else:
            section["emptyReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                        "code": "unavailable",
                    }
                ]
            }
        composition_sections.append(section)
    stamp = now.isoformat()
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "60591-5"}]},
        "subject": {"reference": patient_url},
        "date": stamp,
        "title": "International Patient Summary",
        "author": [{"display": "City app health book"}],
        "section": composition_sections,
    }
    composition_url = _urn("Composition", f"{person['source_id']}/{stamp}")
    return {
        "resourceType": "Bundle",
        "type": "document",
        "timestamp": stamp,
        "identifier": {"system": "urn:ietf:rfc:3986", "value": composition_url},
        "entry": [{"fullUrl": composition_url, "resource": composition}, *entries],
    }
