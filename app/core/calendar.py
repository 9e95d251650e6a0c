"""Working days (ngày làm việc) in Asia/Ho_Chi_Minh: Monday–Friday minus Vietnam's
public holidays, Tết included, from the maintained ``holidays`` package (its calendar
follows each year's government decision, so no hand-kept list here).

The rules every deadline in the system follows:

- A report is *received* on the day it arrives if that is a working day and it arrives
  before the office closes; otherwise on the next working day.
- A deadline of N working days ends when the office closes on the N-th working day
  after the day of receipt.
- Time allowed is counted in office hours, so "75 % of the time allowed" and "handled
  in 2.4 working days" mean the same thing on every calendar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import holidays

if TYPE_CHECKING:
    from app.settings import Settings

TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")


class DateOutOfRange(ValueError):
    """A working-day computation would pass the last date Python can hold (9999-12-31).
    Callers validate input dates first (a bounded extension); this keeps a date that
    slipped through from becoming an OverflowError deep in the calendar."""


class WorkingCalendar:
    def __init__(self, opens: time = time(8, 0), closes: time = time(17, 0)) -> None:
        if closes <= opens:
            raise ValueError("the office must close after it opens")
        self.opens = opens
        self.closes = closes
        # years are added on first lookup of a date (expand=True)
        self._holidays = holidays.country_holidays("VN")
        self._office_seconds = (
            datetime.combine(date.min, closes) - datetime.combine(date.min, opens)
        ).total_seconds()

    # ------------------------------------------------------------------ days

    def is_working_day(self, day: date) -> bool:
        return self._holidays.is_working_day(day)

    def holiday_name(self, day: date) -> str | None:
        return self._holidays.get(day)

    def nth_working_day(self, day: date, n: int) -> date:
        """The n-th working day after ``day`` (n = 0: ``day`` itself if it is a working
        day, else the next one). ``DateOutOfRange`` if that is past ``date.max``."""
        try:
            return self._holidays.get_nth_working_day(day, n)
        except (OverflowError, ValueError) as exc:  # "year 10000 is out of range"
            raise DateOutOfRange(f"{n} working days after {day} is past {date.max}") from exc

    def working_days_count(self, after: date, until: date) -> int:
        """Working days in (after, until]."""
        count = 0
        for offset in range(1, (until - after).days + 1):  # never steps past ``until``
            count += self.is_working_day(after + timedelta(days=offset))
        return count

    def local(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError("aware datetimes only")
        return at.astimezone(TIMEZONE)

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, TIMEZONE).astimezone(UTC)

    def close_of(self, day: date) -> datetime:
        return self._at(day, self.closes)

    # ------------------------------------------------------------------ deadlines

    def received_day(self, at: datetime) -> date:
        local = self.local(at)
        day = local.date()
        if self.is_working_day(day) and local.time() < self.closes:
            return day
        return self.nth_working_day(day, 1)

    def due_at(self, received: datetime, working_days: int) -> datetime:
        """When the office closes on the ``working_days``-th working day after receipt."""
        if working_days < 1:
            raise ValueError("a deadline is at least one working day")
        return self.close_of(self.nth_working_day(self.received_day(received), working_days))

    def point_in_allowed_time(
        self, received: datetime, working_days: int, share: float
    ) -> datetime:
        """The instant when ``share`` (0 < share ≤ 1) of the time allowed has passed,
        counting office hours from the close of the day of receipt."""
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        start = self.received_day(received)
        elapsed = working_days * share
        whole = math.floor(elapsed + 1e-9)
        fraction = elapsed - whole
        if fraction < 1e-9:
            return self.close_of(self.nth_working_day(start, whole))
        day = self.nth_working_day(start, whole + 1)
        return self._at(day, self.opens) + timedelta(seconds=fraction * self._office_seconds)

    def after_working_days(self, at: datetime, working_days: int) -> datetime:
        """Office close on the ``working_days``-th working day after the day of ``at``
        (how long an overdue item may wait before it is escalated)."""
        return self.close_of(self.nth_working_day(self.local(at).date(), working_days))

    # ------------------------------------------------------------------ durations

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """Office hours between two instants, in working days (2 decimals)."""
        if end <= start:
            return 0.0
        seconds = 0.0
        day = self.local(start).date()
        last = self.local(end).date()
        while day <= last:
            if self.is_working_day(day):
                opens, closes = self._at(day, self.opens), self._at(day, self.closes)
                overlap = (min(closes, end) - max(opens, start)).total_seconds()
                if overlap > 0:
                    seconds += overlap
            day += timedelta(days=1)
        return round(seconds / self._office_seconds, 2)


@lru_cache(maxsize=4)
def working_calendar(opens: str = "08:00", closes: str = "17:00") -> WorkingCalendar:
    return WorkingCalendar(time.fromisoformat(opens), time.fromisoformat(closes))


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The deadline policy: calendar, reminder share, escalation delay, and how far one
    extension may move a deadline (0: as far as the category's own allowance)."""

    calendar: WorkingCalendar
    reminder_share: float
    escalate_after_working_days: int
    max_extension_working_days: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Deadlines:
        return cls(
            working_calendar(settings.office_opens, settings.office_closes),
            settings.reminder_share,
            settings.escalate_after_working_days,
            settings.max_extension_working_days,
        )

    def for_received(
        self, received: datetime, working_days: int
    ) -> tuple[datetime, datetime, datetime]:
        """(due, remind, escalate) for a report received at ``received``."""
        due = self.calendar.due_at(received, working_days)
        remind = self.calendar.point_in_allowed_time(received, working_days, self.reminder_share)
        return due, remind, self.escalate_at(due)

    def escalate_at(self, due: datetime) -> datetime:
        return self.calendar.after_working_days(due, self.escalate_after_working_days)

    def extension_allowance(self, category_working_days: int) -> int:
        """How many working days one extension may add to a deadline."""
        return self.max_extension_working_days or category_working_days
