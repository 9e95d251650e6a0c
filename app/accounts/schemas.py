"""Request and response bodies of the accounts context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.complaints.schemas import ExportedReports
from app.core.schemas import Input

Phone = Annotated[str, Meta(min_length=6, max_length=20, examples=["0912345678"])]
OtpCode = Annotated[str, Meta(pattern=r"^\d{6}$", examples=["123456"])]
Email = Annotated[
    str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["an@hanoi.gov.vn"])
]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
RefreshTokenStr = Annotated[str, Meta(min_length=20, max_length=200)]
FullName = Annotated[str, Meta(min_length=1, max_length=120)]
Locale = Literal["vi", "en"]
Platform = Literal["android", "ios", "web"]
# FCM registration tokens: URL-safe base64 with ':' separators, ~150-250 characters
DeviceToken = Annotated[str, Meta(min_length=32, max_length=4096, pattern=r"^[A-Za-z0-9_:\-]+$")]
AreaCode = Annotated[str, Meta(min_length=1, max_length=10, pattern=r"^[0-9]+$")]


class OtpRequest(Input):
    phone: Phone


class OtpRequested(msgspec.Struct):
    phone: str  # normalised, E.164
    expires_in: int
    code_length: int = 6


class OtpVerify(Input):
    phone: Phone
    code: OtpCode


class StaffLogin(Input):
    email: Email
    password: Password


class RefreshRequest(Input):
    refresh_token: RefreshTokenStr


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user_id: uuid.UUID


class RoleOut(msgspec.Struct):
    role: str
    unit_id: uuid.UUID | None
    unit_code: str | None


class Profile(msgspec.Struct):
    id: uuid.UUID
    kind: str
    phone: str | None
    email: str | None
    full_name: str | None
    locale: str
    identity_level: int
    citizen_id_last4: str | None
    home_area_code: str | None
    created_at: datetime
    roles: list[RoleOut]


class ProfileUpdate(Input):
    full_name: FullName | None | msgspec.UnsetType = msgspec.UNSET
    locale: Locale | msgspec.UnsetType = msgspec.UNSET
    home_area_code: AreaCode | None | msgspec.UnsetType = msgspec.UNSET


class DeviceIn(Input):
    token: DeviceToken
    platform: Platform


class DeviceOut(msgspec.Struct):
    id: uuid.UUID
    platform: str
    token_suffix: str
    created_at: datetime
    last_seen_at: datetime
    active: bool


class SessionOut(msgspec.Struct):
    family_id: uuid.UUID
    started_at: datetime
    last_refreshed_at: datetime
    user_agent: str | None
    revoked: bool


class AuditOut(msgspec.Struct):
    at: datetime
    action: str
    object_type: str | None
    object_id: str | None


class DataExport(msgspec.Struct):
    """Everything the city holds about the caller (Decree 13/2023, right of access)."""

    generated_at: datetime
    profile: Profile
    devices: list[DeviceOut]
    sessions: list[SessionOut]
    activity: list[AuditOut]
    reports: ExportedReports


class VneidStart(msgspec.Struct):
    authorization_url: str
    state: str


class VneidComplete(Input):
    state: Annotated[str, Meta(min_length=16, max_length=128)]
    code: Annotated[str, Meta(min_length=1, max_length=2048)]


class StaffMember(msgspec.Struct):
    id: uuid.UUID
    email: str | None
    full_name: str | None
    role: str
    status: str


class UnitIn(Input):
    code: Annotated[str, Meta(min_length=2, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    name_vi: Annotated[str, Meta(min_length=2, max_length=200)]
    name_en: Annotated[str, Meta(min_length=2, max_length=200)]
    kind: Literal["ward_committee", "department", "utility", "dispatcher"]
    parent_code: Annotated[str, Meta(max_length=40)] | None = None
    area_code: AreaCode | None = None


class AuditEntryOut(msgspec.Struct):
    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_kind: str
    action: str
    object_type: str | None
    object_id: str | None
    ip: str | None
    request_id: str | None
