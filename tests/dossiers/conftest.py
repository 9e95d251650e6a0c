"""Fixtures for the dossiers' tests: an agency registered through the real admin
service with a signing secret, a signer written from the Standard Webhooks text (not our
``app/dossiers/signing.py``; ``test_ingest_signing`` checks it against the reference
package), and builders of native events.

Use::

    async def test_x(client, agency, ingest_clock):
        r = await agency.post_events([agency.upsert("H29-0001")])
        assert r.json()["results"][0]["result"] == "applied"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app import policy
from app.core import db
from app.core.calendar import TIMEZONE
from app.core.clock import FixedClock
from app.dossiers import agencies
from app.dossiers.ingest_schemas import AgencyIn, StatusCodeIn, StatusCodesIn
from app.places.models import Unit

_counter = itertools.count(1)
CLIENT_ADDRESS = "203.0.113.7"  # the test client's (tests/conftest.py)


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, the key being the
    base64 after ``whsec_`` (the Standard Webhooks specification, written out here)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(
    secrets_: list[str] | str,
    body: bytes,
    at: datetime,
    webhook_id: str | None = None,
) -> dict[str, str]:
    """The three headers, signed with each secret given (space-separated signatures)."""
    if isinstance(secrets_, str):
        secrets_ = [secrets_]
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(at.timestamp())
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": " ".join(sign(s, webhook_id, stamp, body) for s in secrets_),
    }


def hanoi(text: str) -> str:
    """A Hanoi wall-clock time as ISO 8601 with its offset."""
    return datetime.fromisoformat(text).replace(tzinfo=TIMEZONE).isoformat()


def new_dossier_code() -> str:
    return f"000.00.12.H29-{next(_counter):06d}-{secrets.token_hex(3).upper()}"


@dataclass
class SignedAgency:
    """An agency with one valid secret, and a client that posts for it."""

    app: Any
    client: Any
    id: uuid.UUID
    code: str
    unit_code: str
    secret: str
    secret_id: uuid.UUID
    sent: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        return self.app.state.clock.now()

    async def post(
        self,
        path: str,
        body: bytes | dict[str, Any],
        *,
        secret: str | list[str] | None = None,
        webhook_id: str | None = None,
        at: datetime | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """POST a body signed now (the app's clock) to ``/ingest/agencies/{code}/{path}``."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = signed_headers(secret or self.secret, raw, at or self.now(), webhook_id)
        signed.update(headers or {})
        self.sent.append(signed["webhook-id"])
        return await self.client.post(
            f"/api/v1/ingest/agencies/{code or self.code}/{path}", content=raw, headers=signed
        )

    async def post_events(self, events: list[dict[str, Any]], **kw: Any) -> Any:
        return await self.post("events", {"events": events}, **kw)

    async def post_portal(self, service: str, items: list[dict[str, Any]], **kw: Any) -> Any:
        return await self.post("portal", {"service": service, "data": items}, **kw)

    async def map_status_codes(self, mapping: dict[str, str]) -> None:
        """The agency's status-code table, set through the admin service."""
        async with db.transaction(self.app.state.sessionmaker, None) as session:
            await agencies.replace_status_codes(
                session,
                policy.system_actor(self.now()),
                self.code,
                StatusCodesIn(
                    codes=[StatusCodeIn(code=c, status=s) for c, s in mapping.items()]  # type: ignore[arg-type]
                ),
            )

    # ------------------------------------------------------------ event builders

    def upsert(
        self,
        dossier_code: str,
        *,
        at: datetime | str | None = None,
        seq: int = 0,
        status: str | None = None,
        event_id: str | None = None,
        citizen_id: str | None = "001099012345",
        **fields: Any,
    ) -> dict[str, Any]:
        """A native ``dossier.upsert`` with the fields a first upsert needs."""
        dossier: dict[str, Any] = {
            "procedure_code": "1.001234",
            "procedure_name": "Cấp phiếu lý lịch tư pháp",
            "field_code": "LLTP",
            "applicant": {"name": "Nguyễn Văn An", "kind": "person", "phone": "0912345678"},
            "summary": "Cấp phiếu lý lịch tư pháp số 1",
            "online": True,
            "handling_unit": "Phòng Hành chính tư pháp",
        }
        if citizen_id is not None:
            dossier["applicant"]["citizen_id"] = citizen_id
        dossier.update(fields)
        event: dict[str, Any] = {
            "id": event_id or f"evt-{uuid.uuid4().hex}",
            "type": "dossier.upsert",
            "dossier_code": dossier_code,
            "at": _at(at or self.now()),
            "seq": seq,
            "dossier": dossier,
        }
        if status is not None:
            event["status"] = status
        return event

    def progress(
        self,
        dossier_code: str,
        *,
        at: datetime | str | None = None,
        seq: int = 0,
        status: str | None = None,
        status_code: str | None = None,
        event_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": event_id or f"evt-{uuid.uuid4().hex}",
            "type": "dossier.progress",
            "dossier_code": dossier_code,
            "at": _at(at or self.now()),
            "seq": seq,
            "handler": "Trần Thị Bình",
            "content": "Chuyển phòng chuyên môn thẩm định",
        }
        if status is not None:
            event["status"] = status
        if status_code is not None:
            event["status_code"] = status_code
        event.update(extra)
        return event


def _at(value: datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


@pytest.fixture
async def ingest_clock(app):
    """The API's clock fixed at the real time (signatures are checked against it); tests
    move it with ``advance``/``set``. The failed sign-ins counted for the test client's
    address (every test calls from it) are cleared before and after."""

    async def clear() -> None:
        settings = app.state.settings
        await app.state.limiter.clear(
            settings.ingest_auth_failures_per_ip, "ingest-auth-ip", CLIENT_ADDRESS
        )

    real = app.state.clock
    fixed = FixedClock(datetime.now(UTC).replace(microsecond=0))
    app.state.clock = fixed
    await clear()
    yield fixed
    app.state.clock = real
    await clear()


async def register_agency(app, client, *, code: str | None = None) -> SignedAgency:
    """A new agency under a unit of the reference data, with one secret, registered
    through the real admin service (as the system, like the CLI)."""
    code = code or f"AG-{secrets.token_hex(4).upper()}"
    now = app.state.clock.now()
    async with db.transaction(app.state.sessionmaker, None) as session:
        unit_code = await session.scalar(select(Unit.code).order_by(Unit.code).limit(1))
        assert unit_code is not None
        actor = policy.system_actor(now)
        await agencies.create_agency(
            session,
            actor,
            AgencyIn(
                code=code, name_vi="Sở Tư pháp Hà Nội", name_en="Hanoi Justice", unit_code=unit_code
            ),
        )
        issued = await agencies.issue_secret(session, actor, code, timedelta(hours=24))
        agency_id = await session.scalar(
            select(agencies.Agency.id).where(agencies.Agency.code == code)
        )
    assert agency_id is not None
    return SignedAgency(app, client, agency_id, code, unit_code, issued.secret, issued.id)


@pytest.fixture
async def agency(app, client, ingest_clock) -> SignedAgency:
    """A registered agency with a secret; the app's clock is fixed (``ingest_clock``)."""
    return await register_agency(app, client)


@pytest.fixture
async def other_agency(app, client, ingest_clock) -> SignedAgency:
    return await register_agency(app, client)
