"""The agenda's window: `from` and `to` as ISO dates or date-times, read in the user's zone.

A date means that local day: `from=2027-01-15` starts at 00:00 of the 15th, `to=2027-01-15`
ends at 24:00 of the 15th (so `from=D&to=D` is the one day D). A date-time with an offset is that
instant; one without is local wall-clock time. With neither, the window is today, 00:00-24:00
local; with one, the window is one day from (or to) it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.errors import ValidationFailed

MAX_DAYS = 92
YEARS = range(1900, 3000)  # far from datetime's limits, so shifting a day never overflows
_MAX_PARAM = 40  # longer than any ISO 8601 date-time Python reads


@dataclass(frozen=True)
class Window:
    # In UTC: Python compares and subtracts datetimes sharing one tzinfo by wall clock, which
    # is wrong across a DST change.
    start: datetime  # inclusive
    end: datetime  # exclusive
    zone: ZoneInfo

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _shift_days(moment: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The same wall-clock time `days` later, in `zone` (a day is 23 or 25 hours across DST)."""
    local = moment.astimezone(zone).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=zone).astimezone(UTC)


def _bound(raw: str, param: str, zone: ZoneInfo, *, end: bool) -> datetime:
    text = raw.strip()
    problem = ValidationFailed.one(
        param, "invalid_datetime", "must be an ISO 8601 date (2027-01-15) or date-time"
    )
    if not text or len(text) > _MAX_PARAM:
        raise problem
    try:
        if "T" not in text.upper() and " " not in text:  # a calendar date: that local day
            day = date.fromisoformat(text)
            if day.year not in YEARS:
                raise ValueError
            return _midnight(day + timedelta(days=1) if end else day, zone).astimezone(UTC)
        moment = datetime.fromisoformat(text)
        if moment.year not in YEARS:
            raise ValueError
        local = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise problem from None


def agenda_window(
    raw_from: str | None, raw_to: str | None, zone: ZoneInfo, now: datetime
) -> Window:
    start = None if raw_from is None else _bound(raw_from, "from", zone, end=False)
    end = None if raw_to is None else _bound(raw_to, "to", zone, end=True)
    if start is None and end is None:
        start = _midnight(now.astimezone(zone).date(), zone).astimezone(UTC)
    if start is None:
        assert end is not None
        start = _shift_days(end, -1, zone)
    if end is None:
        end = _shift_days(start, 1, zone)
    if end <= start:
        raise ValidationFailed.one("to", "window_reversed", "must be after from")
    if end - start > timedelta(days=MAX_DAYS):
        raise ValidationFailed.one(
            "to", "window_too_long", f"the window may span at most {MAX_DAYS} days"
        )
    return Window(start=start, end=end, zone=zone)
