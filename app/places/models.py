"""Administrative areas, the units that serve them, and report categories."""

from __future__ import annotations

import uuid
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk


class Area(Base):
    """A commune or ward (xã / phường) after the 1 July 2025 reform, with its boundary."""

    __tablename__ = "areas"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)  # official ward code
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # ward | commune
    province_code: Mapped[str] = mapped_column(String(10), nullable=False)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)
    # True when the boundary was generated (e.g. Voronoi around the real ward centre)
    synthetic: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at = created_at()

    __table_args__ = (Index("ix_areas_geom", "geom", postgresql_using="gist"),)


class Unit(Base):
    """A responsible unit (đơn vị xử lý): ward People's Committee, department, utility."""

    __tablename__ = "units"

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name_vi: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str] = mapped_column(Text, nullable=False)
    # ward_committee | department | utility | dispatcher
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    area_code: Mapped[str | None] = mapped_column(
        ForeignKey("areas.code", ondelete="RESTRICT"), index=True
    )
    created_at = created_at()


class Category(Base):
    """A kind of problem residents report, with its working-day deadline."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_vi: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str] = mapped_column(Text, nullable=False)
    deadline_working_days: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at = created_at()


ATTRIBUTE_DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
"""GeoReport v2's attribute datatypes (a service definition's ``datatype``)."""


class CategoryAttribute(Base):
    """An extra question a category asks when a report is filed (Open311's service
    attribute): a street light's pole number, a pothole's size. ``values`` lists the
    choices of a single/multi value list as ``{"key", "name_vi", "name_en"}``; the
    answers are kept on the report (``reports.attributes``, keyed by ``code``)."""

    __tablename__ = "category_attributes"

    category_code: Mapped[str] = mapped_column(
        ForeignKey("categories.code", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    datatype: Mapped[str] = mapped_column(Text, nullable=False)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False)
    description_vi: Mapped[str] = mapped_column(Text, nullable=False)
    description_en: Mapped[str] = mapped_column(Text, nullable=False)
    datatype_description_vi: Mapped[str | None] = mapped_column(Text)
    datatype_description_en: Mapped[str | None] = mapped_column(Text)
    values: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))

    __table_args__ = (CheckConstraint(f"datatype IN {ATTRIBUTE_DATATYPES!r}", name="datatype"),)


class AddressPlace(Base):
    """A place an address may name (issue 22 item 7, ``app.places.addresses``): a current
    ward, or an old (pre-2025) ward with its old district and a current ward it went to.
    Names are folded (lower case, no diacritics) for accent-free matching."""

    __tablename__ = "address_places"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    area_code: Mapped[str] = mapped_column(String(10), nullable=False)
    old_name: Mapped[str | None] = mapped_column(Text)  # "Phường Phúc Xá, Quận Ba Đình"
    ward_key: Mapped[str] = mapped_column(Text, nullable=False)  # "phuc xa"
    district_key: Mapped[str | None] = mapped_column(Text)  # "ba dinh"
