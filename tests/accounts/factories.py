"""Test data for the accounts context: residents signed in through the real OTP flow,
staff created through the real service."""

from __future__ import annotations

import logging
import random
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service
from app.core import db

STAFF_PASSWORD = "correct horse battery staple"


def new_phone() -> str:
    """A valid, unique-enough Vietnamese mobile number in local form (09x...)."""
    return "091" + f"{random.randrange(10**7):07d}"


def sent_code(caplog, phone_e164: str) -> str:
    """The code from the last SMS the log sender wrote for this phone."""
    from app.accounts.sms import mask_phone

    for record in reversed(caplog.records):
        if record.name == "city.sms" and getattr(record, "to", None) == mask_phone(phone_e164):
            return record.text.split("la ")[1][:6]
    raise AssertionError(f"no SMS logged for {phone_e164}")


async def sign_in_resident(client, caplog, phone: str | None = None) -> dict:
    phone = phone or new_phone()
    caplog.set_level(logging.INFO, logger="city.sms")
    sent = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert sent.status_code == 202, sent.text
    e164 = sent.json()["phone"]
    code = sent_code(caplog, e164)
    verified = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": code})
    assert verified.status_code == 200, verified.text
    tokens = verified.json()
    tokens["phone"] = e164
    tokens["headers"] = {"Authorization": f"Bearer {tokens['access_token']}"}
    return tokens


async def create_staff(app, roles: list[tuple[str, str | None]], email: str | None = None) -> str:
    email = email or f"staff-{uuid.uuid4().hex[:8]}@city.test"
    async with db.transaction(app.state.sessionmaker, None) as session:
        session: AsyncSession
        await service.create_staff(session, email, "Cán bộ thử", STAFF_PASSWORD, roles)
    return email


async def sign_in_staff(client, app, roles: list[tuple[str, str | None]]) -> dict:
    email = await create_staff(app, roles)
    response = await client.post(
        "/api/v1/auth/staff/login", json={"email": email, "password": STAFF_PASSWORD}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    tokens["email"] = email
    tokens["headers"] = {"Authorization": f"Bearer {tokens['access_token']}"}
    return tokens
