"""The agenda window: local days across DST changes, wall-clock and offset date-times,
one-sided windows, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.agenda.window import MAX_DAYS, agenda_window
from backend.errors import ValidationFailed

LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2027, 3, 14, 18, tzinfo=UTC)


def test_a_local_day_is_23_or_25_hours_across_dst() -> None:
    spring = agenda_window("2027-03-14", "2027-03-14", LA, NOW)
    assert spring.end - spring.start == timedelta(hours=23)
    autumn = agenda_window("2027-11-07", "2027-11-07", LA, NOW)
    assert autumn.end - autumn.start == timedelta(hours=25)
    # The default (today) is the local day too, and one day after a lone `from` is local.
    assert agenda_window(None, None, LA, NOW) == spring
    assert agenda_window("2027-03-14", None, LA, NOW) == spring


def test_date_times_with_and_without_an_offset() -> None:
    naive = agenda_window("2027-01-15T09:00", "2027-01-15T17:00", LA, NOW)
    assert naive.start == datetime(2027, 1, 15, 17, tzinfo=UTC)  # 09:00 in Los Angeles
    offset = agenda_window("2027-01-15T09:00+01:00", None, LA, NOW)
    assert offset.start == datetime(2027, 1, 15, 8, tzinfo=UTC)
    assert offset.end - offset.start == timedelta(days=1)
    only_to = agenda_window(None, "2027-01-15", LA, NOW)  # the day up to the end of the 15th
    assert only_to.local(only_to.start) == datetime(2027, 1, 15, tzinfo=LA)


@pytest.mark.parametrize(
    ("raw_from", "raw_to", "field", "code"),
    [
        ("2027-02-30", None, "from", "invalid_datetime"),
        (None, "noon", "to", "invalid_datetime"),
        ("9999-12-31", None, "from", "invalid_datetime"),
        ("2027-01-02", "2027-01-01", "to", "window_reversed"),
        ("2027-01-01", "2027-06-30", "to", "window_too_long"),
    ],
)
def test_refusals_name_the_parameter(
    raw_from: str | None, raw_to: str | None, field: str, code: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        agenda_window(raw_from, raw_to, LA, NOW)
    assert (refused.value.field, refused.value.code) == (field, code)


def test_the_longest_window() -> None:
    longest = agenda_window("2027-01-01", "2027-04-01", ZoneInfo("UTC"), NOW)
    assert longest.end - longest.start == timedelta(days=MAX_DAYS - 1)  # Jan 1 through Apr 1
    start = datetime(2027, 1, 1, tzinfo=UTC)
    exact = agenda_window(start.isoformat(), (start + timedelta(MAX_DAYS)).isoformat(), LA, NOW)
    assert exact.end - exact.start == timedelta(days=MAX_DAYS)
