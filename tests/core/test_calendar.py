"""Working days in Asia/Ho_Chi_Minh from the `holidays` package's Vietnamese calendar."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from app.core.calendar import TIMEZONE, WorkingCalendar

cal = WorkingCalendar()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TIMEZONE)


def test_weekends_and_public_holidays_are_not_working_days():
    assert cal.is_working_day(date(2026, 11, 25))  # a Wednesday
    assert not cal.is_working_day(date(2026, 11, 28))  # Saturday
    assert not cal.is_working_day(date(2026, 9, 2))  # National Day
    assert not cal.is_working_day(date(2026, 11, 24))  # Vietnam Cultural Day (new in 2025)
    # Tết 2027: the calendar package knows the lunar dates, no hand-kept list
    assert [d for d in range(3, 12) if not cal.is_working_day(date(2027, 2, d))] == [
        4,
        5,
        6,
        7,
        8,
        9,
        10,
    ]


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        ("2026-11-25 10:00", 5, "2026-12-02 17:00"),  # Wed + 5 working days
        ("2026-11-25 16:59", 3, "2026-11-30 17:00"),  # before close: counts today
        ("2026-11-25 17:00", 3, "2026-12-01 17:00"),  # at close: from the next working day
        ("2026-11-27 18:30", 3, "2026-12-03 17:00"),  # Friday evening → Monday
        ("2026-11-28 09:00", 1, "2026-12-01 17:00"),  # Saturday → received Monday
        ("2026-11-25 06:30", 1, "2026-11-26 17:00"),  # before opening still counts the day
        ("2027-02-03 09:00", 3, "2027-02-15 17:00"),  # across Tết 2027 (4–10 Feb)
        ("2027-02-03 18:00", 3, "2027-02-16 17:00"),  # evening before Tết → received 11 Feb
    ],
)
def test_due_is_office_close_on_the_nth_working_day_after_receipt(received, days, due):
    assert cal.due_at(local(received), days) == local(due)


def test_a_utc_timestamp_is_judged_in_hanoi_time():
    # 10:30 UTC on a Wednesday is 17:30 in Hanoi: after hours
    assert cal.received_day(datetime.fromisoformat("2026-11-25T10:30:00+00:00")) == date(
        2026, 11, 26
    )


@pytest.mark.parametrize(
    ("received", "days", "share", "at"),
    [
        ("2026-11-25 10:00", 3, 0.75, "2026-11-30 10:15"),  # 2.25 days: 2 h 15 min into day 3
        ("2026-11-25 10:00", 4, 0.75, "2026-11-30 17:00"),  # exactly 3 days: close of day 3
        ("2026-11-25 10:00", 1, 0.75, "2026-11-26 14:45"),
        ("2027-02-03 09:00", 3, 0.75, "2027-02-15 10:15"),  # Tết skipped
    ],
)
def test_share_of_the_time_allowed_counts_office_hours(received, days, share, at):
    assert cal.point_in_allowed_time(local(received), days, share) == local(at)


def test_working_days_between_counts_office_hours_only():
    # Friday 15:00 → Monday 12:00: 2 h Friday + 4 h Monday = 6 of 9 office hours
    assert cal.working_days_between(local("2026-11-27 15:00"), local("2026-11-30 12:00")) == 0.67
    # a whole Tết week costs nothing
    assert cal.working_days_between(local("2027-02-03 17:00"), local("2027-02-11 08:00")) == 0
    assert cal.working_days_between(local("2026-11-30 12:00"), local("2026-11-27 15:00")) == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        cal.due_at(local("2026-11-25 10:00"), 0)
    with pytest.raises(ValueError):
        cal.received_day(datetime(2026, 11, 25, 10))  # naive
    with pytest.raises(ValueError):
        cal.point_in_allowed_time(local("2026-11-25 10:00"), 3, 1.5)
