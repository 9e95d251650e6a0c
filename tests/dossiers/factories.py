"""Dossiers for the residents' and the public's tests, written straight into the tables
(as the ingest leaves them: the applicant's citizen ID only as the accounts' keyed hash
plus its last four digits), and level-2 accounts bound to a citizen ID."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import insert, select, text, update

from app.accounts.models import User
from app.core import db
from app.core.security import keyed_hash
from app.dossiers.models import Agency, Dossier, DossierEvent, DossierSupplement
from app.places.models import Unit

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 in Hanoi


def new_citizen_id() -> str:
    """12 digits, as a CCCD (a province code, a century-and-sex digit, the rest random)."""
    return "001" + "0" + "".join(secrets.choice("0123456789") for _ in range(8))


def new_code(prefix: str = "000.00.12.H29") -> str:
    return f"{prefix}-{secrets.randbelow(10**6):06d}-{secrets.token_hex(3).upper()}"


@dataclass
class Made:
    id: uuid.UUID
    code: str
    agency_id: uuid.UUID
    agency_code: str
    citizen_id: str | None
    extra: dict[str, Any] = field(default_factory=dict)


async def make_agency(app, code: str | None = None) -> tuple[uuid.UUID, str]:
    code = code or f"AG-{secrets.token_hex(4).upper()}"
    async with db.transaction(app.state.sessionmaker, None) as session:
        unit_id = await session.scalar(select(Unit.id).order_by(Unit.code).limit(1))
        agency_id = await session.scalar(
            insert(Agency)
            .values(
                code=code,
                name_vi="Sở Tư pháp Hà Nội",
                name_en="Hanoi Department of Justice",
                unit_id=unit_id,
            )
            .returning(Agency.id)
        )
    assert agency_id is not None
    return agency_id, code


async def make_dossier(
    app,
    agency: tuple[uuid.UUID, str],
    *,
    citizen_id: str | None = None,
    code: str | None = None,
    status: str = "processing",
    applicant_name: str = "Nguyễn Văn An",
    phone: str | None = "+84912345678",
    email: str | None = "an.nguyen@example.vn",
    received_at: datetime = T0,
    due_at: datetime | None = T0 + timedelta(days=10),
    finished_on_time: bool | None = None,
    fees: list[dict[str, Any]] | None = None,
    results: list[dict[str, Any]] | None = None,
    result_pickup: str | None = "Bộ phận một cửa, 1 Tràng Thi",
    events: list[dict[str, Any]] | None = None,
    supplements: list[dict[str, Any]] | None = None,
    procedure_name: str = "Cấp phiếu lý lịch tư pháp",
    settings=None,
) -> Made:
    """A dossier of ``agency`` filed under ``citizen_id`` (None: without one, as a
    business's), with its timeline (``events``) and supplements."""
    settings = settings or app.state.settings
    code = code or new_code()
    completed = status in ("completed", "returned")
    async with db.transaction(app.state.sessionmaker, None) as session:
        dossier_id = await session.scalar(
            insert(Dossier)
            .values(
                code=code,
                agency_id=agency[0],
                procedure_code="1.001234",
                procedure_name=procedure_name,
                field_code="LLTP",
                applicant_name=applicant_name,
                applicant_kind="person",
                applicant_id_hash=keyed_hash(settings.citizen_id_hash_key, citizen_id)
                if citizen_id
                else None,
                applicant_id_last4=citizen_id[-4:] if citizen_id else None,
                applicant_phone=phone,
                applicant_email=email,
                summary="Xin cấp phiếu lý lịch tư pháp số 1",
                handling_unit_name="Phòng Lý lịch tư pháp",
                online=True,
                status=status,
                received_at=received_at,
                due_at=due_at,
                completed_at=received_at + timedelta(days=3) if completed else None,
                returned_at=received_at + timedelta(days=4) if status == "returned" else None,
                closed_at=received_at + timedelta(days=4)
                if status in ("returned", "refused", "withdrawn")
                else None,
                finished_on_time=finished_on_time,
                fees=fees
                if fees is not None
                else [{"name": "Lệ phí", "amount": 200000, "paid": True}],
                results=results
                if results is not None
                else [{"name": "Phiếu lý lịch tư pháp số 1", "number": "LL-123"}],
                result_pickup=result_pickup,
                status_at=received_at,
            )
            .returning(Dossier.id)
        )
        assert dossier_id is not None
        for n, event in enumerate(events or ()):
            await session.execute(
                insert(DossierEvent).values(
                    dossier_id=dossier_id,
                    agency_id=agency[0],
                    event_id=event.get("event_id", f"{code}-e{n}"),
                    at=event["at"],
                    seq=event.get("seq", n),
                    kind=event.get("kind", "progress"),
                    from_status=event.get("from_status"),
                    to_status=event.get("to_status"),
                    handler=event.get("handler"),
                    content=event.get("content"),
                    received_at=event["at"],
                )
            )
        for n, supplement in enumerate(supplements or ()):
            await session.execute(
                insert(DossierSupplement).values(
                    dossier_id=dossier_id, source_id=f"s{n}", **supplement
                )
            )
    return Made(dossier_id, code, agency[0], agency[1], citizen_id)


async def make_level2(app, user_id: uuid.UUID | str, citizen_id: str, level: int = 2) -> None:
    """Bind the account to a citizen ID as VNeID's level-2 verification leaves it."""
    settings = app.state.settings
    async with db.transaction(app.state.sessionmaker, None) as session:
        await session.execute(
            update(User)
            .where(User.id == uuid.UUID(str(user_id)))
            .values(
                identity_level=level,
                citizen_id_hash=keyed_hash(settings.citizen_id_hash_key, citizen_id),
                citizen_id_last4=citizen_id[-4:],
            )
        )


async def set_status(app, dossier_id: uuid.UUID, status: str) -> None:
    async with db.transaction(app.state.sessionmaker, None) as session:
        await session.execute(update(Dossier).where(Dossier.id == dossier_id).values(status=status))


async def fetch(app, sql: str, **params: Any) -> list[Any]:
    async with app.state.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


def decode(body: bytes) -> Any:
    return msgspec.json.decode(body)


CLIENT_IP = "203.0.113.7"  # the test client's address (tests/conftest.py)


@pytest.fixture
async def dossier_limits(app):
    """The rate limits of the dossier endpoints, their counters for the test client's
    address cleared before and after (every test of the run shares that address); a test
    may tighten a rule with ``tighten(name=rule)``."""
    original = app.state.settings

    async def clear() -> None:
        s = app.state.settings
        for rule, name in (
            (s.dossier_link_rate_per_ip, "dossier-link-ip"),
            (s.dossier_lookup_rate_per_ip, "dossier-lookup"),
        ):
            await app.state.limiter.clear(rule, name, CLIENT_IP)

    def tighten(**rules: str) -> None:
        app.state.settings = msgspec.structs.replace(app.state.settings, **rules)

    await clear()
    yield tighten
    await clear()
    app.state.settings = original
    await clear()
