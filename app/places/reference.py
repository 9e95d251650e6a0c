"""Reference data held in each process: categories, units (with their tree) and areas.

They change only by an admin's action, yet nearly every request reads them (the public
lists, names on pages and notices, the unit hierarchy of the authorization policy). Each
process keeps one immutable ``Snapshot`` and reloads it when PostgreSQL says a table
changed: a trigger (migration 0015) runs ``pg_notify('reference_data', table)`` in the
changing transaction, and ``app.core.listen.Listener`` marks the snapshot stale. While
that listener is down a snapshot is trusted for two seconds only. A unit or
category asked for by a key the snapshot lacks triggers one reload too, so a row created
a moment ago is never reported missing.

Reads are SQLAlchemy Core selects of the columns used, straight into frozen Structs: no
ORM instances (measured: an ORM instance per row cost ten times the query).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterable

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.listen import Listener
from app.places.models import Area, Category, Unit
from app.places.schemas import AreaOut, CategoryOut, UnitOut

CHANNEL = "reference_data"
# while the listener is down, a snapshot is trusted this long (seconds)
UNLISTENED_TTL = 2.0


class CategoryRef(msgspec.Struct, frozen=True):
    code: str
    name_vi: str
    name_en: str
    deadline_working_days: int
    active: bool

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi


class UnitRef(msgspec.Struct, frozen=True):
    id: uuid.UUID
    code: str
    name_vi: str
    name_en: str
    kind: str
    parent_id: uuid.UUID | None
    area_code: str | None

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi


class Snapshot:
    """One consistent copy of the reference tables; never mutated once built."""

    def __init__(
        self,
        categories: Iterable[CategoryRef],
        units: Iterable[UnitRef],
        areas: Iterable[AreaOut],
    ) -> None:
        self.categories = {c.code: c for c in categories}  # ordered by code
        self.units = {u.id: u for u in units}  # ordered by code
        self.units_by_code = {u.code: u for u in self.units.values()}
        self.areas = {a.code: a for a in areas}  # ordered by name
        children: dict[uuid.UUID, list[uuid.UUID]] = {}
        for unit in self.units.values():
            if unit.parent_id is not None:
                children.setdefault(unit.parent_id, []).append(unit.id)
        self._children = children
        self._descendants: dict[uuid.UUID, frozenset[uuid.UUID]] = {}
        self._category_lists = {
            locale: [
                CategoryOut(
                    code=c.code, name=c.name(locale), deadline_working_days=c.deadline_working_days
                )
                for c in self.categories.values()
                if c.active
            ]
            for locale in ("vi", "en")
        }
        # what the snapshot holds, as one digest: the same in every process that loaded
        # the same rows, so it versions the public lists' ETags (app/places/api.py)
        self.version = hashlib.blake2b(
            msgspec.json.encode(
                (
                    list(self.categories.values()),
                    list(self.units.values()),
                    list(self.areas.values()),
                )
            ),
            digest_size=9,
        ).hexdigest()
        self._unit_lists = {
            locale: [
                UnitOut(
                    id=u.id,
                    code=u.code,
                    name=u.name(locale),
                    kind=u.kind,
                    parent_code=self.units[u.parent_id].code if u.parent_id in self.units else None,
                    area_code=u.area_code,
                )
                for u in self.units.values()
            ]
            for locale in ("vi", "en")
        }

    def etag(self, *what: str) -> str:
        """A strong ETag for a list served from this snapshot (``what`` names the list
        and whatever else shapes it, e.g. the locale): no hashing per request."""
        return '"ref-' + "-".join((self.version, *what)) + '"'

    def category_list(self, locale: str) -> list[CategoryOut]:
        return self._category_lists["en" if locale == "en" else "vi"]

    def unit_list(self, locale: str) -> list[UnitOut]:
        return self._unit_lists["en" if locale == "en" else "vi"]

    def area_list(self, query: str | None = None) -> list[AreaOut]:
        if not query:
            return list(self.areas.values())
        needle = query.casefold()
        return [a for a in self.areas.values() if needle in a.name.casefold()]

    def with_descendants(self, unit_ids: Iterable[uuid.UUID]) -> frozenset[uuid.UUID]:
        """The units and every unit below them in the tree."""
        found: set[uuid.UUID] = set()
        for unit_id in unit_ids:
            found |= self._subtree(unit_id)
        return frozenset(found)

    def _subtree(self, unit_id: uuid.UUID) -> frozenset[uuid.UUID]:
        cached = self._descendants.get(unit_id)
        if cached is None:
            seen = {unit_id}
            todo = [unit_id]
            while todo:  # iterative, and safe against a cycle someone wrote by hand
                for child in self._children.get(todo.pop(), ()):
                    if child not in seen:
                        seen.add(child)
                        todo.append(child)
            cached = self._descendants[unit_id] = frozenset(seen)
        return cached


async def load_snapshot(session: AsyncSession) -> Snapshot:
    categories = await session.execute(
        select(
            Category.code,
            Category.name_vi,
            Category.name_en,
            Category.deadline_working_days,
            Category.active,
        ).order_by(Category.code)
    )
    units = await session.execute(
        select(
            Unit.id,
            Unit.code,
            Unit.name_vi,
            Unit.name_en,
            Unit.kind,
            Unit.parent_id,
            Unit.area_code,
        ).order_by(Unit.code)
    )
    areas = await session.execute(
        select(Area.code, Area.name, Area.kind, Area.province_code, Area.synthetic).order_by(
            Area.name
        )
    )
    return Snapshot(
        (CategoryRef(*row) for row in categories),
        (UnitRef(*row) for row in units),
        (
            AreaOut(
                code=code, name=name, kind=kind, province_code=province, synthetic_boundary=synth
            )
            for code, name, kind, province, synth in areas
        ),
    )


class ReferenceData:
    """The process's snapshot, reloaded when PostgreSQL says it changed."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], database_url: str) -> None:
        self._sessionmaker = sessionmaker
        self._listener = Listener(database_url, CHANNEL, self.invalidate)
        self._snapshot: Snapshot | None = None
        self._loaded_generation = -1
        self._generation = 0
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def start(self) -> None:
        self._listener.start()

    async def close(self) -> None:
        await self._listener.close()

    def invalidate(self) -> None:
        self._generation += 1

    def _fresh(self, generation: int) -> bool:
        if self._snapshot is None or self._loaded_generation < generation:
            return False
        # nobody can tell this process of a change while the listener is down
        return self._listener.live or time.monotonic() - self._loaded_at < UNLISTENED_TTL

    async def current(self) -> Snapshot:
        if self._fresh(self._generation):
            return self._snapshot  # type: ignore[return-value]
        wanted = self._generation
        async with self._lock:  # one reload at a time; the others wait and share it
            if not self._fresh(wanted):
                generation = self._generation
                async with self._sessionmaker() as session:
                    snapshot = await load_snapshot(session)
                self._snapshot, self._loaded_generation = snapshot, generation
                self._loaded_at = time.monotonic()
            return self._snapshot  # type: ignore[return-value]

    async def unit(self, unit_id: uuid.UUID) -> UnitRef | None:
        snapshot = await self.current()
        if unit_id not in snapshot.units:
            self.invalidate()
            snapshot = await self.current()
        return snapshot.units.get(unit_id)

    async def with_descendants(self, unit_ids: Iterable[uuid.UUID]) -> frozenset[uuid.UUID]:
        ids = tuple(unit_ids)
        snapshot = await self.current()
        if any(unit_id not in snapshot.units for unit_id in ids):
            self.invalidate()
            snapshot = await self.current()
        return snapshot.with_descendants(ids)
