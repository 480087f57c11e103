"""When an activity happens, and when it reminds: one rule, in SQL (to select the caller's
rows) and in Python (to place each record as the caller may read it).

A task happens when it is due (else when it starts); anything else when it starts (else when
it is due). Its reminder comes `remind_minutes_before` that."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, case, func, literal_column

from backend.crm.activities.service import activities
from backend.records.service import WITHHELD, Record

AGENDA_KINDS = ("meeting", "call", "task")
_a = activities.table

scheduled_at: ColumnElement[Any] = case(
    (_a.c.kind == "task", func.coalesce(_a.c.due_at, _a.c.starts_at)),
    else_=func.coalesce(_a.c.starts_at, _a.c.due_at),
)
_lead = func.make_interval(
    *(literal_column("0") for _ in range(5)),  # years, months, weeks, days, hours
    _a.c.remind_minutes_before,
    type_=Interval,
)
remind_time: ColumnElement[Any] = scheduled_at - _lead


def withheld(record: Record, name: str) -> bool:
    return name in record.get(WITHHELD, ())


def happens_at(record: Record) -> datetime | None:
    """As the caller may read it: a time decided by a withheld field is not known (placing the
    record would reveal the hidden value)."""
    if withheld(record, "kind"):
        return None
    first, second = (
        ("due_at", "starts_at") if record.get("kind") == "task" else ("starts_at", "due_at")
    )
    for name in (first, second):
        if withheld(record, name):
            return None
        moment = record.get(name)
        if isinstance(moment, datetime):
            return moment
    return None


def is_open(record: Record) -> bool:
    """Not done, as far as the caller may tell (a withheld completed_at is not open)."""
    return not withheld(record, "completed_at") and record.get("completed_at") is None


def reminds_at(record: Record) -> datetime | None:
    at, minutes = happens_at(record), record.get("remind_minutes_before")
    if at is None or withheld(record, "remind_minutes_before") or not isinstance(minutes, int):
        return None
    return at - timedelta(minutes=minutes)
