"""Business time: a deadline `minutes` of working time after a start, counting only the opening
hours of each weekday in a time zone and skipping holidays. Pure (no database), so it is
tested on its own (tests/unit/test_business_time.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
# A policy that opens on no day at all (or only on holidays) has no deadline: give up after
# this many calendar days instead of looping for ever.
MAX_DAYS = 3660

Hours = Mapping[str, tuple[time, time]]  # weekday -> (opens, closes), local wall-clock


def _instant(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (the later one in a DST fold; a time in a DST
    gap is read with the offset before it, as zoneinfo does)."""
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def add_business_minutes(
    start: datetime,
    minutes: int,
    hours: Hours,
    holidays: Collection[date],
    zone: ZoneInfo,
) -> datetime:
    """The instant (UTC) when `minutes` of business time have passed since `start` (an aware
    datetime). Business time runs only inside each weekday's hours, on days that are not
    holidays (local dates). Zero minutes: the start itself if it is inside business hours,
    else the next opening. ValueError if no business time lies ahead within MAX_DAYS."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    cursor = start.astimezone(UTC)
    remaining = timedelta(minutes=minutes)
    day = cursor.astimezone(zone).date()
    for _ in range(MAX_DAYS):
        window = hours.get(WEEKDAYS[day.weekday()])
        if window is not None and day not in holidays:
            opens, closes = (_instant(day, t, zone) for t in window)
            begin = max(cursor, opens)
            if begin < closes:
                if begin + remaining <= closes:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
    raise ValueError("no business hours ahead")


def parse_hours(raw: object, field: str = "business_hours") -> dict[str, tuple[time, time]]:
    """{"mon": ["09:00", "17:00"], ...} checked: known weekdays, HH:MM times, opens < closes.
    Raises ValueError with the offending key path (e.g. "business_hours.mon")."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(
            f"{field}|must name at least one weekday, e.g. {{'mon': ['09:00', '17:00']}}"
        )
    out: dict[str, tuple[time, time]] = {}
    for key, span in raw.items():
        where = f"{field}.{key}"
        if key not in WEEKDAYS:
            raise ValueError(f"{where}|is not a weekday ({', '.join(WEEKDAYS)})")
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise ValueError(f"{where}|must be [opens, closes], e.g. ['09:00', '17:00']")
        opens, closes = (_clock(where, value) for value in span)
        if opens >= closes:
            raise ValueError(f"{where}|must open before it closes")
        out[key] = (opens, closes)
    return out


def _clock(where: str, value: object) -> time:
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        hh, mm = value[:2], value[3:]
        if hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60:
            return time(int(hh), int(mm))
        if value == "24:00":
            return time.max  # the end of the day
    raise ValueError(f"{where}|must hold times as HH:MM, 00:00 to 24:00")
