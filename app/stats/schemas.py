"""Bodies of the service index (Bộ chỉ số phục vụ). Counts and rates only: never who
reported, never a report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

Percent = Annotated[
    float | None,
    msgspec.Meta(description="0-100, one decimal; null when the denominator is 0"),
]


class ChannelFigures(msgspec.Struct):
    """One channel's figures for a unit and period."""

    received: int  # reports received (not withdrawn, not duplicates)
    resolved: int  # resolved at least once
    resolved_on_time: int  # first resolution within the deadline
    on_time_pct: Percent  # resolved_on_time / resolved
    open_overdue: int  # still open and past their deadline
    median_handling_working_days: float | None  # over the resolved ones
    rated: int  # resolved and rated for their latest resolution
    satisfied: int
    accepted: int
    not_satisfied: int
    not_rated: int  # closed when the rating window lapsed
    reopened: int  # reopened by the reporter after a resolution (not satisfied)
    satisfaction_pct: Percent  # (satisfied + accepted) / rated
    rating_coverage_pct: Percent  # rated / resolved


class PeriodFigures(msgspec.Struct):
    """A period's figures: reports filed by residents, and apart, those staff filed on a
    resident's behalf (phone, counter) and those third-party apps filed (Open311)."""

    period: str  # 'all', 'last-30-days' or a month 'YYYY-MM' (local time)
    resident: ChannelFigures
    staff_filed: ChannelFigures
    third_party: ChannelFigures  # filed by third-party apps through Open311


class UnitServiceIndex(msgspec.Struct):
    """A unit's figures for one period, as published."""

    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    period: str
    refreshed_at: datetime
    resident: ChannelFigures
    staff_filed: ChannelFigures
    third_party: ChannelFigures  # filed by third-party apps through Open311


class UnitServiceTrend(msgspec.Struct):
    """One unit over time: all time, the last 30 days, and month by month (oldest first)."""

    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    refreshed_at: datetime | None  # None: no figures for this unit (no reports, or not built)
    all: PeriodFigures
    last_30_days: PeriodFigures
    months: list[PeriodFigures]
