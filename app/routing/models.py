"""Routing rules: which unit handles a category, city-wide or in one area."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, Index, SmallInteger, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk


class RoutingRule(Base):
    """category × area → unit. A rule without an area applies city-wide (a utility such
    as power or water). For one report the rule for its own area wins over a city-wide
    one; among equals the higher priority wins. No rule: the ward's People's Committee,
    then the city dispatcher."""

    __tablename__ = "routing_rules"

    id: Mapped[uuid.UUID] = uuid_pk()
    category_code: Mapped[str] = mapped_column(
        ForeignKey("categories.code", ondelete="CASCADE"), nullable=False
    )
    area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code", ondelete="CASCADE"))
    unit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), nullable=False, index=True
    )
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    note: Mapped[str | None] = mapped_column(Text)
    # who added it (the audit log has the details); no foreign key: rules outlive staff
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at = created_at()

    __table_args__ = (
        Index(
            "uq_routing_rules_category_area_unit",
            "category_code",
            text("coalesce(area_code, '')"),
            "unit_id",
            unique=True,
        ),
    )
