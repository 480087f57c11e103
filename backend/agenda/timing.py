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

# The fields a record's placement reads: when the caller's roles withhold one, the record is
# left out (placing it would reveal the hidden value).
PLACEMENT_FIELDS = frozenset({"kind", "starts_at", "due_at", "completed_at"})
REMINDER_FIELDS = PLACEMENT_FIELDS | {"remind_minutes_before"}


def readable(record: Record, fields: frozenset[str]) -> bool:
    return not fields & set(record.get(WITHHELD, ()))


def happens_at(record: Record) -> datetime | None:
    first, second = (
        ("due_at", "starts_at") if record.get("kind") == "task" else ("starts_at", "due_at")
    )
    moment = record.get(first) or record.get(second)
    return moment if isinstance(moment, datetime) else None


def reminds_at(record: Record) -> datetime | None:
    at, minutes = happens_at(record), record.get("remind_minutes_before")
    if at is None or not isinstance(minutes, int):
        return None
    return at - timedelta(minutes=minutes)
