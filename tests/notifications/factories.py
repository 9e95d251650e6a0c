"""Test data for notifications: followers of a ward written straight to the database
(hundreds of residents through the OTP flow would take minutes), with devices; the
wards and their committees from the reference data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import text


@dataclass
class Followers:
    area: str
    user_ids: list[uuid.UUID] = field(default_factory=list)
    tokens: dict[uuid.UUID, list[str]] = field(default_factory=dict)  # user → device tokens
    english: set[uuid.UUID] = field(default_factory=set)

    @property
    def all_tokens(self) -> list[str]:
        return [t for tokens in self.tokens.values() for t in tokens]


async def wards(session, count: int = 2) -> list[str]:
    """Codes of wards that have a People's Committee (reference data)."""
    rows = await session.scalars(
        text(
            "SELECT area_code FROM units WHERE kind = 'ward_committee'"
            " AND area_code IS NOT NULL ORDER BY code LIMIT :n"
        ),
        {"n": count},
    )
    return list(rows)


async def seed_followers(
    session,
    area: str,
    count: int,
    *,
    devices: int = 1,
    without_device_every: int = 0,
    english_every: int = 0,
    follow_explicitly: bool = False,
) -> Followers:
    """``count`` active residents of ``area`` (home ward), or following it explicitly
    (home elsewhere: none) with ``follow_explicitly``. Each has ``devices`` Android
    devices, except every ``without_device_every``-th; every ``english_every``-th reads
    English. Committed."""
    out = Followers(area)
    users, device_rows = [], []
    for i in range(count):
        user_id = uuid.uuid4()
        english = bool(english_every) and i % english_every == 0
        users.append(
            {
                "id": user_id,
                "locale": "en" if english else "vi",
                "home": None if follow_explicitly else area,
            }
        )
        out.user_ids.append(user_id)
        if english:
            out.english.add(user_id)
        if without_device_every and i % without_device_every == 0:
            out.tokens[user_id] = []
            continue
        tokens = [f"fcm-{user_id.hex}-{d}-{uuid.uuid4().hex}" for d in range(devices)]
        out.tokens[user_id] = tokens
        device_rows += [{"user_id": user_id, "token": t} for t in tokens]
    await session.execute(
        text(
            "INSERT INTO users (id, kind, locale, home_area_code, identity_level)"
            " VALUES (:id, 'resident', :locale, :home, 1)"
        ),
        users,
    )
    if follow_explicitly:
        await session.execute(
            text(
                "INSERT INTO area_follows (user_id, area_code, following, created_at)"
                " VALUES (:id, :area, true, now())"
            ),
            [{"id": u, "area": area} for u in out.user_ids],
        )
    if device_rows:
        await session.execute(
            text(
                "INSERT INTO devices (id, user_id, token, platform)"
                " VALUES (gen_random_uuid(), :user_id, :token, 'android')"
            ),
            device_rows,
        )
    await session.commit()
    return out
