"""Bodies of the residents' and the public's dossier views (issue 19 items 5 and 6).

Texts a person reads (a status's name, the agency's name) come in the request's language
(Accept-Language: vi by default, en); codes stay codes so the app can switch on them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.core.schemas import Input

Status = Literal[
    "received",
    "processing",
    "supplement_requested",
    "completed",
    "returned",
    "refused",
    "withdrawn",
]
Rating = Literal["satisfied", "accept", "not_satisfied"]
# as the agency issued it (mã hồ sơ); the service checks the characters, and a code that
# cannot exist is answered like one that does not (no oracle)
DossierCode = Annotated[str, Meta(min_length=1, max_length=64)]
CitizenId = Annotated[
    str, Meta(pattern=r"^[0-9]{12}$", description="The applicant's citizen ID (CCCD): 12 digits")
]


class AgencyRef(msgspec.Struct):
    code: str
    name: str  # in the request's language


# ---------------------------------------------------------------- residents


class DossierSummary(msgspec.Struct):
    """One of my dossiers in the list."""

    code: str
    status: Status
    status_name: str
    agency: AgencyRef
    procedure_code: str
    procedure_name: str
    received_at: datetime
    due_at: datetime | None
    returned_at: datetime | None
    overdue: bool  # open past its due date, or finished after it
    # how I see it: the verified applicant (level 2, my citizen ID) or linked by code + ID
    relation: Literal["applicant", "linked"]
    linked: bool  # I linked it (I may unlink it)


class DossierPage(msgspec.Struct):
    items: list[DossierSummary]
    next_cursor: str | None  # pass as ?cursor= for the next (older) page; None at the end


class TimelineEntry(msgspec.Struct):
    at: datetime
    kind: str  # upsert | progress
    from_status: Status | None
    to_status: Status | None
    to_status_name: str | None
    handler: str | None  # NguoiXuLy, as the agency sent it
    content: str | None  # NoiDungXuLy


class SupplementOut(msgspec.Struct):
    """More documents requested (yêu cầu bổ sung): what is needed and by when."""

    requested_at: datetime
    needed: str
    supply_by: datetime | None
    old_due_at: datetime | None
    new_due_at: datetime | None
    supplied_at: datetime | None


class FeeOut(msgspec.Struct):
    """A fee or charge (lệ phí) as the agency listed it."""

    name: str
    amount: float | None = None  # VND
    paid: bool | None = None


class ResultOut(msgspec.Struct):
    """A document the procedure results in (giấy tờ kết quả)."""

    name: str
    number: str | None = None


class Applicant(msgspec.Struct):
    """Who filed it. The full name, phone and e-mail only to the verified applicant;
    anyone else who linked it sees the name masked and no contact."""

    kind: Literal["person", "business"]
    name: str
    name_masked: bool
    citizen_id_last4: str | None
    phone: str | None
    email: str | None


class DossierDetail(msgspec.Struct):
    code: str
    status: Status
    status_name: str
    agency: AgencyRef
    procedure_code: str
    procedure_name: str
    field_code: str | None
    summary: str | None
    handling_unit: str | None
    online: bool  # toàn trình
    received_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    returned_at: datetime | None
    overdue: bool
    refused_reason: str | None
    applicant: Applicant
    timeline: list[TimelineEntry]
    supplements: list[SupplementOut]
    fees: list[FeeOut]
    results: list[ResultOut]
    result_pickup: str | None  # where and how the result is collected
    rating: Rating | None
    rated_at: datetime | None
    relation: Literal["applicant", "linked"]
    linked: bool
    allowed_actions: list[str]  # rate, unlink


class LinkIn(Input):
    """Follow a dossier by its code and the applicant's citizen ID."""

    code: DossierCode
    citizen_id: CitizenId


class RatingIn(Input):
    rating: Rating


class RatingOut(msgspec.Struct):
    code: str
    rating: Rating
    rated_at: datetime


# ---------------------------------------------------------------- the public lookup


class PublicStep(msgspec.Struct):
    at: datetime
    status: Status
    status_name: str


class PublicDossier(msgspec.Struct):
    """What anyone may see by the code (tra cứu hồ sơ): no personal data — the
    applicant's name masked, no ID digits, no phone or e-mail, no handler names."""

    code: str
    status: Status
    status_name: str
    agency: AgencyRef
    procedure_code: str
    procedure_name: str
    applicant_masked: str
    online: bool
    received_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    returned_at: datetime | None
    overdue: bool
    timeline: list[PublicStep]
