"""The daily open-data files (issue 22 item 4): one row per published day and format."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.complaints.models import Report
from app.core.models import Base


class OpenDataFile(Base):
    """A day's file in storage: the reports filed or changed on that local day."""

    __tablename__ = "open_data_files"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    format: Mapped[str] = mapped_column(String(8), primary_key=True)  # csv | geojson
    storage_key: Mapped[str] = mapped_column(Text, nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


# The open-data query by area or by unit over a period (issue 22 item 4): the filter's
# equality, then the page's order (filed, code), so a page is one index range read in
# order (without them a month's query read every report of the month: ~90 ms at 1 M)
Index("ix_reports_area_created", Report.area_code, Report.created_at, Report.code)
Index("ix_reports_unit_created", Report.unit_id, Report.created_at, Report.code)
