"""The public map's cluster snapshot: report counts per grid cell and zoom, rebuilt from
``reports`` by one statement every minute (``app.complaints.clusters``). Derived data:
dropping both tables' rows loses nothing, the next refresh rebuilds them. No reporter
data: a cell knows counts, coordinate sums and one report code (shown only when the
cell holds a single report, as the live feed does)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Double, Index, Integer, SmallInteger, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.complaints.models import Report
from app.core.models import Base

# The live feed's ``since`` filter and its street view over a large bbox read reports by
# time: 1M reports, city-wide clusters of the last 7 days 460 -> 37 ms; points over the
# whole city 900 -> 2 ms. Declared here with the map's tables (it belongs to ``reports``,
# whose module another change owned; move it to models.py freely, the name is the same).
Index("ix_reports_created_at", Report.created_at)


class ReportMapCell(Base):
    """One grid cell at one zoom (cell side = 90 / 2**zoom degrees: four cells per map
    tile side), zooms 0..15: every public report in the cell (withdrawn ones never
    count). Narrow on purpose: an unfiltered view reads a few pages of it."""

    __tablename__ = "report_map_cells"

    zoom: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cx: Mapped[int] = mapped_column(Integer, primary_key=True)  # floor(lon / cell side)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)  # floor(lat / cell side)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    sum_lon: Mapped[float] = mapped_column(Double, nullable=False)
    sum_lat: Mapped[float] = mapped_column(Double, nullable=False)
    min_code: Mapped[str] = mapped_column(String(12), nullable=False)


class ReportMapFacets(Base):
    """The same cell split by facet, for filtered views: aligned arrays, one element per
    (category, status, kind) present, packed in a smallint as
    ``category << 6 | status << 2 | kind``, each the 1-based position of the value in
    the lists saved in ``report_map_state``."""

    __tablename__ = "report_map_facets"

    zoom: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cx: Mapped[int] = mapped_column(Integer, primary_key=True)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)
    facet: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger), nullable=False)
    facet_n: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False)
    facet_sum_lon: Mapped[list[float]] = mapped_column(ARRAY(Double), nullable=False)
    facet_sum_lat: Mapped[list[float]] = mapped_column(ARRAY(Double), nullable=False)
    facet_min_code: Mapped[list[str]] = mapped_column(ARRAY(String(12)), nullable=False)


class ReportMapState(Base):
    """The single row saying when the snapshot in ``report_map_cells`` and
    ``report_map_facets`` was taken (it holds every change committed before ``as_of``)
    and how to read its facets."""

    __tablename__ = "report_map_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(40)), nullable=False)
    statuses: Mapped[list[str]] = mapped_column(ARRAY(String(12)), nullable=False)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(String(12)), nullable=False)
    cells: Mapped[int] = mapped_column(Integer, nullable=False)
    reports: Mapped[int] = mapped_column(Integer, nullable=False)
    build_ms: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
