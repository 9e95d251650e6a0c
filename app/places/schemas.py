"""Bodies of the places context."""

from __future__ import annotations

import uuid

import msgspec


class AreaOut(msgspec.Struct):
    code: str
    name: str
    kind: str
    province_code: str
    synthetic_boundary: bool


class CategoryOut(msgspec.Struct):
    code: str
    name: str
    deadline_working_days: int


class UnitOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    parent_code: str | None
    area_code: str | None
