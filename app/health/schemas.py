"""Bodies of the health book's APIs: the resident's summary, section lists and access
log; the admin's import jobs (counts, errors, duration: never anyone's record)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from app.core.schemas import Input

# ---------------------------------------------------------------- the resident's book

Section = Literal[
    "allergies",
    "conditions",
    "medications",
    "immunizations",
    "procedures",
    "vital_signs",
    "results",
    "reports",
    "encounters",
]


class Entry(msgspec.Struct, omit_defaults=True):
    """One item of a section (an allergy, a visit, a measurement …)."""

    type: str  # the FHIR resource type
    id: str  # its id in the health system
    display: str | None = None
    code: str | None = None
    code_system: str | None = None
    status: str | None = None
    active: bool = False
    effective_at: datetime | None = None
    value: float | None = None
    value_text: str | None = None
    unit: str | None = None
    performer: str | None = None  # the practitioner's or organisation's name
    detail: dict[str, Any] | None = None


class Person(msgspec.Struct):
    full_name: str | None
    birth_date: str | None
    sex: str | None
    citizen_id_last4: str


class Summary(msgspec.Struct):
    """The health book at a glance (sổ sức khỏe điện tử)."""

    person: Person
    blood_type: str | None
    allergies: list[Entry]
    active_conditions: list[Entry]
    immunizations: list[Entry]
    recent_encounters: list[Entry]
    latest_vital_signs: list[Entry]
    current_medications: list[Entry]


class SectionPage(msgspec.Struct):
    section: str
    items: list[Entry]
    next_cursor: str | None  # pass as ?cursor= for the next (older) page; None at the end


class AccessLogEntry(msgspec.Struct):
    at: datetime
    section: str
    by_me: bool  # read by the account asking (today the only one who may)
    session_id: uuid.UUID | None
    device: str | None
    ip: str | None


class AccessLogPage(msgspec.Struct):
    items: list[AccessLogEntry]
    next_cursor: str | None


# ---------------------------------------------------------------- admin: import jobs


class BulkImportIn(Input):
    """Start pulling a Bulk Data export from the configured health system server."""

    kind: Literal["bulk"] = "bulk"


class ImportFileOut(msgspec.Struct):
    position: int
    name: str
    format: str
    done: bool
    lines: int
    imported: int
    unchanged: int
    skipped: int
    duplicates: int
    errors: int


class ImportJobOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    status: str
    source: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    runs: int
    failure_code: str | None
    failure: str | None  # the failure's reason in the caller's language
    lines: int
    imported: int
    unchanged: int
    skipped: int
    duplicates: int
    errors: int
    files: list[ImportFileOut] = []


class ImportJobPage(msgspec.Struct):
    items: list[ImportJobOut]
    next_cursor: str | None


class ImportErrorOut(msgspec.Struct):
    file: str | None  # the file's name; None: the job as a whole
    line: int | None
    code: str
    field: str | None
    reason: str  # the code's text in the caller's language


class ImportErrorPage(msgspec.Struct):
    items: list[ImportErrorOut]
    next_cursor: str | None
