"""FHIR R4 resources in the fields we keep, as msgspec Structs (not a full object model):
one tagged union decoded per NDJSON line, unknown fields ignored by the decoder.

``rows_of`` turns one decoded resource into the row the importer copies into its staging
table. Everything else a resource carries is dropped here; nothing of a line is logged.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Union

import msgspec

# the dates FHIR gives without a zone are Hanoi's (the health system's own clock)
HANOI = timezone(timedelta(hours=7))
NEG_INFINITY = datetime(1, 1, 1, tzinfo=UTC)  # stands for -infinity in sort_at

# ---------------------------------------------------------------- data types


class Coding(msgspec.Struct):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(msgspec.Struct):
    coding: list[Coding] = []
    text: str | None = None

    def first(self) -> tuple[str | None, str | None, str | None]:
        """(code, system, display) of the first coding, the display falling back on text."""
        if self.coding:
            c = self.coding[0]
            return c.code, c.system, c.display or self.text
        return None, None, self.text

    def label(self) -> str | None:
        return self.text or next((c.display for c in self.coding if c.display), None)


class Reference(msgspec.Struct):
    reference: str | None = None
    display: str | None = None


class Meta(msgspec.Struct):
    lastUpdated: str | None = None  # noqa: N815 (FHIR's names)


class Identifier(msgspec.Struct):
    system: str | None = None
    value: str | None = None


class HumanName(msgspec.Struct):
    use: str | None = None
    text: str | None = None
    family: str | None = None
    given: list[str] = []


class Quantity(msgspec.Struct):
    value: float | None = None
    unit: str | None = None
    code: str | None = None


class Period(msgspec.Struct):
    start: str | None = None
    end: str | None = None


class Annotation(msgspec.Struct):
    text: str | None = None


class Dosage(msgspec.Struct):
    text: str | None = None


class ObservationComponent(msgspec.Struct):
    code: CodeableConcept | None = None
    valueQuantity: Quantity | None = None  # noqa: N815
    valueCodeableConcept: CodeableConcept | None = None  # noqa: N815
    valueString: str | None = None  # noqa: N815


class Reaction(msgspec.Struct):
    manifestation: list[CodeableConcept] = []


class Performer(msgspec.Struct):
    actor: Reference | None = None


# ---------------------------------------------------------------- resources


class _Resource(msgspec.Struct, tag_field="resourceType", kw_only=True):
    # required in NDJSON; a transaction Bundle's entries may leave it to their fullUrl
    id: str | None = None
    meta: Meta | None = None


class Patient(_Resource, tag="Patient"):
    identifier: list[Identifier] = []
    name: list[HumanName] = []
    gender: str | None = None
    birthDate: str | None = None  # noqa: N815


class Practitioner(_Resource, tag="Practitioner"):
    name: list[HumanName] = []


class Organization(_Resource, tag="Organization"):
    name: str | None = None


class Encounter(_Resource, tag="Encounter"):
    status: str | None = None
    # "class" is a Python keyword: renamed on the wire
    class_: Coding | None = msgspec.field(default=None, name="class")
    type: list[CodeableConcept] = []
    subject: Reference | None = None
    period: Period | None = None
    reasonCode: list[CodeableConcept] = []  # noqa: N815
    serviceProvider: Reference | None = None  # noqa: N815


class Condition(_Resource, tag="Condition"):
    clinicalStatus: CodeableConcept | None = None  # noqa: N815
    verificationStatus: CodeableConcept | None = None  # noqa: N815
    code: CodeableConcept | None = None
    subject: Reference | None = None
    onsetDateTime: str | None = None  # noqa: N815
    recordedDate: str | None = None  # noqa: N815
    abatementDateTime: str | None = None  # noqa: N815
    asserter: Reference | None = None


class AllergyIntolerance(_Resource, tag="AllergyIntolerance"):
    clinicalStatus: CodeableConcept | None = None  # noqa: N815
    code: CodeableConcept | None = None
    patient: Reference | None = None
    criticality: str | None = None
    recordedDate: str | None = None  # noqa: N815
    onsetDateTime: str | None = None  # noqa: N815
    reaction: list[Reaction] = []


class Immunization(_Resource, tag="Immunization"):
    status: str | None = None
    vaccineCode: CodeableConcept | None = None  # noqa: N815
    patient: Reference | None = None
    occurrenceDateTime: str | None = None  # noqa: N815
    lotNumber: str | None = None  # noqa: N815
    performer: list[Performer] = []


class Observation(_Resource, tag="Observation"):
    status: str | None = None
    category: list[CodeableConcept] = []
    code: CodeableConcept | None = None
    subject: Reference | None = None
    effectiveDateTime: str | None = None  # noqa: N815
    effectivePeriod: Period | None = None  # noqa: N815
    issued: str | None = None
    performer: list[Reference] = []
    valueQuantity: Quantity | None = None  # noqa: N815
    valueCodeableConcept: CodeableConcept | None = None  # noqa: N815
    valueString: str | None = None  # noqa: N815
    interpretation: list[CodeableConcept] = []
    component: list[ObservationComponent] = []


class DiagnosticReport(_Resource, tag="DiagnosticReport"):
    status: str | None = None
    category: list[CodeableConcept] = []
    code: CodeableConcept | None = None
    subject: Reference | None = None
    effectiveDateTime: str | None = None  # noqa: N815
    issued: str | None = None
    performer: list[Reference] = []
    conclusion: str | None = None
    result: list[Reference] = []


class MedicationRequest(_Resource, tag="MedicationRequest"):
    status: str | None = None
    medicationCodeableConcept: CodeableConcept | None = None  # noqa: N815
    medicationReference: Reference | None = None  # noqa: N815
    subject: Reference | None = None
    authoredOn: str | None = None  # noqa: N815
    requester: Reference | None = None
    dosageInstruction: list[Dosage] = []  # noqa: N815


class MedicationStatement(_Resource, tag="MedicationStatement"):
    status: str | None = None
    medicationCodeableConcept: CodeableConcept | None = None  # noqa: N815
    medicationReference: Reference | None = None  # noqa: N815
    subject: Reference | None = None
    effectiveDateTime: str | None = None  # noqa: N815
    effectivePeriod: Period | None = None  # noqa: N815
    dateAsserted: str | None = None  # noqa: N815
    dosage: list[Dosage] = []


class Procedure(_Resource, tag="Procedure"):
    status: str | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    performedDateTime: str | None = None  # noqa: N815
    performedPeriod: Period | None = None  # noqa: N815
    performer: list[Performer] = []


AnyResource = Union[  # noqa: UP007 (msgspec takes the typing form)
    Patient,
    Practitioner,
    Organization,
    Encounter,
    Condition,
    AllergyIntolerance,
    Immunization,
    Observation,
    DiagnosticReport,
    MedicationRequest,
    MedicationStatement,
    Procedure,
]
KEPT_TYPES = frozenset(
    t.__struct_config__.tag
    for t in AnyResource.__args__  # type: ignore[attr-defined]
)
PARTY_TYPES = frozenset({"Practitioner", "Organization"})
decoder = msgspec.json.Decoder(AnyResource)


class _Head(msgspec.Struct):
    resourceType: Any = None  # noqa: N815


_head = msgspec.json.Decoder(_Head)


class Unreadable(Exception):
    """A line that is not a resource we keep: ``code`` is the catalogue key of the reason,
    ``field`` the JSON path or type it names (never a value)."""

    def __init__(self, code: str, field: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.field = field


class Skipped(Exception):
    """A resource of a type we do not keep: counted, not an error."""


def _path_of(message: str) -> str | None:
    """The JSON path in a msgspec validation message (`... - at `$.code.text``; a missing
    field's name is added to it). Never a value."""
    marker = message.rfind("at `$")
    path = message[marker + 4 :].rstrip("`") if marker >= 0 else None
    missing = "missing required field `"
    if missing in message:
        start = message.index(missing) + len(missing)
        name = message[start : message.index("`", start)]
        path = f"{path or '$'}.{name}"
    return path[:120] if path else None


def decode(line: bytes | str) -> AnyResource:
    """One line into its Struct; raises Unreadable (malformed, invalid) or Skipped."""
    try:
        return decoder.decode(line)
    except msgspec.DecodeError as exc:  # not JSON at all, or cut short
        if isinstance(exc, msgspec.ValidationError):
            return _invalid(line, exc)
        raise Unreadable("health_line_malformed") from None


def _invalid(line: bytes | str, exc: msgspec.ValidationError) -> AnyResource:
    path = _path_of(str(exc))
    if path == "$.resourceType" or path is None:
        try:
            head = _head.decode(line)
        except msgspec.DecodeError:
            raise Unreadable("health_line_malformed") from None
        kind = head.resourceType
        if not isinstance(kind, str) or not kind:
            raise Unreadable("health_resource_type_missing") from None
        if kind not in KEPT_TYPES:
            raise Skipped(kind) from None
    if path == "$":  # the line is JSON but no object (a number, a list)
        raise Unreadable("health_line_malformed") from None
    raise Unreadable("health_resource_invalid", path) from None


# ---------------------------------------------------------------- values


def instant(value: str | None) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (in the zone it was given
    in; PostgreSQL stores the instant); a partial date ("2024",
    "2024-05") is its first day; a date or a time without zone is Hanoi's.
    Raises ValueError for what is none of these. Exports repeat their instants (a
    lastUpdated per batch of the source, visit dates): the last few thousand are cached."""
    if not value:
        return None
    return _instant(value)


@lru_cache(maxsize=8192)
def _instant(value: str) -> datetime:
    n = len(value)
    if n == 4:
        return datetime(int(value), 1, 1, tzinfo=HANOI)
    if n == 7:
        return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=HANOI)
    if n == 10:
        return datetime.combine(date.fromisoformat(value), time(), HANOI)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=HANOI)
    return parsed


def local_ref(reference: Reference | None, resolve: dict[str, str] | None = None) -> str | None:
    """``Type/id`` of a reference: relative, absolute (the last two segments) or, in a
    Bundle, a ``urn:uuid:`` fullUrl resolved through ``resolve``."""
    if reference is None or not reference.reference:
        return None
    ref = reference.reference
    if ref.startswith("urn:"):
        return resolve.get(ref) if resolve else None
    if "/_history/" in ref:
        ref = ref.split("/_history/", 1)[0]
    parts = ref.rstrip("/").rsplit("/", 2)
    if len(parts) < 2:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def patient_of(reference: Reference | None, resolve: dict[str, str] | None) -> str | None:
    ref = local_ref(reference, resolve)
    if ref is None or not ref.startswith("Patient/"):
        return None
    return ref[8:]


def _display_name(names: list[HumanName]) -> str | None:
    if not names:
        return None
    chosen = next((n for n in names if n.use == "official"), names[0])
    if chosen.text:
        return chosen.text
    # Vietnamese order: family name first (Nguyễn Thị Hoa)
    parts = [chosen.family, *chosen.given]
    joined = " ".join(p for p in parts if p)
    return joined or None


def content_hash(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


# ---------------------------------------------------------------- rows

# staging rows: see STAGE_* in app/health/importer.py for the column order
PatientRow = tuple[Any, ...]
ResourceRow = tuple[Any, ...]
PartyRow = tuple[Any, ...]

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
ACTIVE_MEDICATION = frozenset({"active", "on-hold", "intended"})


def _status_code(concept: CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    return next((c.code for c in concept.coding if c.code), concept.text)


def _encode(detail: dict[str, Any]) -> str | None:
    cleaned = {k: v for k, v in detail.items() if v not in (None, [], "")}
    return msgspec.json.encode(cleaned).decode() if cleaned else None


def _first_instant(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def clinical_row(
    res: AnyResource, resolve: dict[str, str] | None
) -> tuple[str | None, tuple[Any, ...]]:
    """(patient source id, the resource's fields) of a clinical resource:
    (section, active, code, code_system, display, status, effective, value_num,
    value_text, unit, performer_ref, detail). Raises ValueError on a bad date."""
    detail: dict[str, Any]
    when: str | None
    klass: str | None
    match res:
        case Condition():
            code, system, display = (res.code or CodeableConcept()).first()
            status = _status_code(res.clinicalStatus)
            when = _first_instant(res.onsetDateTime, res.recordedDate)
            detail = {"abated": res.abatementDateTime}
            fields = (
                "conditions", status in ACTIVE_CLINICAL, code, system, display, status, when,
                None, None, None, local_ref(res.asserter, resolve), detail,
            )  # fmt: skip
            return patient_of(res.subject, resolve), fields
        case AllergyIntolerance():
            code, system, display = (res.code or CodeableConcept()).first()
            status = _status_code(res.clinicalStatus)
            reactions = [m.label() for r in res.reaction for m in r.manifestation]
            detail = {
                "criticality": res.criticality,
                "reactions": [r for r in reactions if r],
            }
            fields = (
                "allergies", status is None or status == "active", code, system, display,
                status, _first_instant(res.recordedDate, res.onsetDateTime), None, None, None,
                None, detail,
            )  # fmt: skip
            return patient_of(res.patient, resolve), fields
        case Immunization():
            code, system, display = (res.vaccineCode or CodeableConcept()).first()
            performer = next((local_ref(p.actor, resolve) for p in res.performer), None)
            fields = (
                "immunizations", res.status == "completed", code, system, display, res.status,
                res.occurrenceDateTime, None, None, None, performer, {"lot": res.lotNumber},
            )  # fmt: skip
            return patient_of(res.patient, resolve), fields
        case Observation():
            return patient_of(res.subject, resolve), _observation(res, resolve)
        case DiagnosticReport():
            code, system, display = (res.code or CodeableConcept()).first()
            category = res.category[0].first()[0] if res.category else None
            performer = next((local_ref(p, resolve) for p in res.performer), None)
            detail = {
                "category": category,
                "conclusion": res.conclusion,
                "results": len(res.result) or None,
            }
            fields = (
                "reports", False, code, system, display, res.status,
                _first_instant(res.effectiveDateTime, res.issued), None, None, None, performer,
                detail,
            )  # fmt: skip
            return patient_of(res.subject, resolve), fields
        case MedicationRequest() | MedicationStatement():
            concept = res.medicationCodeableConcept or CodeableConcept()
            code, system, display = concept.first()
            if display is None and res.medicationReference is not None:
                display = res.medicationReference.display
            if isinstance(res, MedicationRequest):
                when = res.authoredOn
                dosage = next((d.text for d in res.dosageInstruction if d.text), None)
                performer = local_ref(res.requester, resolve)
                kind = "request"
            else:
                period = res.effectivePeriod or Period()
                when = _first_instant(res.effectiveDateTime, period.start, res.dateAsserted)
                dosage = next((d.text for d in res.dosage if d.text), None)
                performer = None
                kind = "statement"
            fields = (
                "medications", res.status in ACTIVE_MEDICATION, code, system, display,
                res.status, when, None, None, None, performer, {"dosage": dosage, "kind": kind},
            )  # fmt: skip
            return patient_of(res.subject, resolve), fields
        case Procedure():
            code, system, display = (res.code or CodeableConcept()).first()
            period = res.performedPeriod or Period()
            performer = next((local_ref(p.actor, resolve) for p in res.performer), None)
            fields = (
                "procedures", False, code, system, display, res.status,
                _first_instant(res.performedDateTime, period.start), None, None, None,
                performer, {"ended": period.end},
            )  # fmt: skip
            return patient_of(res.subject, resolve), fields
        case Encounter():
            period = res.period or Period()
            visit_type = res.type[0].label() if res.type else None
            klass = res.class_.display or res.class_.code if res.class_ else None
            reasons = [r.label() for r in res.reasonCode]
            detail = {
                "class": klass,
                "ended": period.end,
                "reasons": [r for r in reasons if r],
            }
            fields = (
                "encounters", res.status in ("in-progress", "arrived", "onleave"), None, None,
                visit_type, res.status, period.start, None, None, None,
                local_ref(res.serviceProvider, resolve), detail,
            )  # fmt: skip
            return patient_of(res.subject, resolve), fields
    raise TypeError(type(res).__name__)  # pragma: no cover (the union is closed)


VITAL_SIGNS = "vital-signs"


def _observation(res: Observation, resolve: dict[str, str] | None) -> tuple[Any, ...]:
    code, system, display = (res.code or CodeableConcept()).first()
    categories = {c.code for cat in res.category for c in cat.coding}
    section = "vital_signs" if VITAL_SIGNS in categories else "results"
    value_num = value_text = unit = None
    if res.valueQuantity is not None:
        value_num, unit = res.valueQuantity.value, res.valueQuantity.unit or res.valueQuantity.code
    elif res.valueCodeableConcept is not None:
        value_text = res.valueCodeableConcept.label()
    elif res.valueString is not None:
        value_text = res.valueString
    components = []
    for c in res.component:
        c_code, _, c_display = (c.code or CodeableConcept()).first()
        q = c.valueQuantity
        components.append(
            {
                "code": c_code,
                "display": c_display,
                "value": q.value if q else None,
                "unit": (q.unit or q.code) if q else None,
                "text": c.valueCodeableConcept.label() if c.valueCodeableConcept else c.valueString,
            }
        )
    period = res.effectivePeriod or Period()
    interpretation = res.interpretation[0].label() if res.interpretation else None
    performer = next((local_ref(p, resolve) for p in res.performer), None)
    detail = {
        "category": sorted(c for c in categories if c) or None,
        "components": components,
        "interpretation": interpretation,
    }
    return (
        section, False, code, system, display, res.status,
        _first_instant(res.effectiveDateTime, period.start, res.issued),
        value_num, value_text, unit, performer, detail,
    )  # fmt: skip


def citizen_id_of(patient: Patient, system: str) -> str | None:
    return next((i.value for i in patient.identifier if i.system == system and i.value), None)


def patient_fields(patient: Patient) -> tuple[str | None, str | None, str | None]:
    """(full name, birth date, sex)"""
    return _display_name(patient.name), patient.birthDate, patient.gender


def party_name(res: Practitioner | Organization) -> str | None:
    if isinstance(res, Organization):
        return res.name
    return _display_name(res.name)


def detail_json(detail: dict[str, Any]) -> str | None:
    return _encode(detail)
