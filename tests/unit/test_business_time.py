"""Business time (backend/crm/cases/business_time.py): deadlines count only opening hours, in
the tenant's zone, skipping weekends and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from backend.crm.cases.business_time import add_business_minutes, parse_hours

BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_FIVE = {day: (time(9), time(17)) for day in ("mon", "tue", "wed", "thu", "fri")}


def _berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def test_within_one_working_day() -> None:
    # Monday 2027-01-11 10:00 + 2 h = 12:00 the same day.
    due = add_business_minutes(_berlin(2027, 1, 11, 10), 120, NINE_TO_FIVE, set(), BERLIN)
    assert due == _berlin(2027, 1, 11, 12)
    assert due.tzinfo == UTC


def test_before_opening_starts_at_opening() -> None:
    due = add_business_minutes(_berlin(2027, 1, 11, 6, 30), 30, NINE_TO_FIVE, set(), BERLIN)
    assert due == _berlin(2027, 1, 11, 9, 30)


def test_carries_over_the_evening() -> None:
    # Monday 16:00 + 2 h: one hour Monday, one hour Tuesday from 09:00.
    due = add_business_minutes(_berlin(2027, 1, 11, 16), 120, NINE_TO_FIVE, set(), BERLIN)
    assert due == _berlin(2027, 1, 12, 10)


def test_across_a_weekend() -> None:
    # Friday 2027-01-15 15:00 + 4 h: 2 h Friday, nothing Saturday/Sunday, 2 h Monday.
    due = add_business_minutes(_berlin(2027, 1, 15, 15), 240, NINE_TO_FIVE, set(), BERLIN)
    assert due == _berlin(2027, 1, 18, 11)


def test_started_on_a_weekend() -> None:
    due = add_business_minutes(_berlin(2027, 1, 16, 12), 60, NINE_TO_FIVE, set(), BERLIN)
    assert due == _berlin(2027, 1, 18, 10)


def test_across_a_weekend_and_a_holiday() -> None:
    # Friday 16:00 + 3 h; Monday 2027-01-18 is a holiday: 1 h Friday, 2 h Tuesday.
    holidays = {date(2027, 1, 18)}
    due = add_business_minutes(_berlin(2027, 1, 15, 16), 180, NINE_TO_FIVE, holidays, BERLIN)
    assert due == _berlin(2027, 1, 19, 11)


def test_holidays_are_local_dates() -> None:
    # 23:30 UTC on Sunday is already Monday in Berlin: that Monday's hours count, unless a
    # holiday; the holiday named by its Berlin date.
    start = datetime(2027, 1, 17, 23, 30, tzinfo=UTC)
    assert add_business_minutes(start, 60, NINE_TO_FIVE, set(), BERLIN) == _berlin(2027, 1, 18, 10)
    holiday = {date(2027, 1, 18)}
    assert add_business_minutes(start, 60, NINE_TO_FIVE, holiday, BERLIN) == _berlin(
        2027, 1, 19, 10
    )


def test_wall_clock_hours_across_a_dst_change() -> None:
    # Europe/Berlin springs forward on 2027-03-28 (a Sunday): Monday 09:00 is then UTC+2.
    due = add_business_minutes(_berlin(2027, 3, 26, 16), 120, NINE_TO_FIVE, set(), BERLIN)
    assert due == _berlin(2027, 3, 29, 10)
    assert due == datetime(2027, 3, 29, 8, tzinfo=UTC)


def test_no_business_hours_ahead_is_an_error() -> None:
    every_day = {
        date(2027, 1, 1).fromordinal(date(2027, 1, 1).toordinal() + i) for i in range(4000)
    }
    with pytest.raises(ValueError, match="no business hours"):
        add_business_minutes(_berlin(2027, 1, 1, 9), 60, NINE_TO_FIVE, every_day, BERLIN)


@pytest.mark.parametrize(
    ("hours", "where"),
    [
        ({"mon": ["25:00", "26:00"]}, "business_hours.mon"),
        ({"mon": ["09:00", "08:00"]}, "business_hours.mon"),
        ({"mon": ["9:00", "17:00"]}, "business_hours.mon"),
        ({"funday": ["09:00", "17:00"]}, "business_hours.funday"),
        ({"mon": ["09:00"]}, "business_hours.mon"),
        ({}, "business_hours"),
    ],
)
def test_impossible_hours_are_refused_naming_the_day(hours: object, where: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_hours(hours)
    assert str(refused.value).split("|")[0] == where


def test_hours_until_midnight() -> None:
    assert parse_hours({"sat": ["10:00", "24:00"]})["sat"] == (time(10), time.max)
