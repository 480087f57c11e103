"""A user's meetings (VEVENT) and tasks (VTODO) as an iCalendar document, with reminders as
VALARMs. Input records are already masked: a withheld field is simply left out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from backend.calendar.text import document, escape_text, utc_stamp

PRODID = "-//Caravan CRM//Calendar feed//EN"
UID_DOMAIN = "caravan-crm"


def _alarm(minutes: int, *, related_end: bool) -> list[str]:
    # A task has no start: its reminder is relative to DUE (RFC 5545 3.8.6.3, RELATED=END).
    related = ";RELATED=END" if related_end else ""
    return [
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        f"TRIGGER{related}:-PT{minutes}M",
        "END:VALARM",
    ]


def _common(record: dict[str, Any], now: datetime) -> list[str]:
    lines = [
        f"UID:{record['id']}@{UID_DOMAIN}",
        f"DTSTAMP:{utc_stamp(now)}",
        f"LAST-MODIFIED:{utc_stamp(record['updated_at'])}",
        f"SEQUENCE:{record['version']}",
        f"SUMMARY:{escape_text(record.get('subject') or 'Busy')}",
    ]
    if record.get("notes"):
        lines.append(f"DESCRIPTION:{escape_text(record['notes'])}")
    return lines


def _event(record: dict[str, Any], now: datetime) -> list[str]:
    lines = ["BEGIN:VEVENT", *_common(record, now), f"DTSTART:{utc_stamp(record['starts_at'])}"]
    if record.get("ends_at") and record["ends_at"] > record["starts_at"]:
        lines.append(f"DTEND:{utc_stamp(record['ends_at'])}")
    if record.get("remind_minutes_before") is not None:
        lines.extend(_alarm(record["remind_minutes_before"], related_end=False))
    return [*lines, "END:VEVENT"]


def _todo(record: dict[str, Any], now: datetime) -> list[str]:
    lines = ["BEGIN:VTODO", *_common(record, now)]
    if record.get("starts_at"):
        lines.append(f"DTSTART:{utc_stamp(record['starts_at'])}")
    if record.get("due_at"):
        lines.append(f"DUE:{utc_stamp(record['due_at'])}")
    if record.get("completed_at"):
        lines += ["STATUS:COMPLETED", f"COMPLETED:{utc_stamp(record['completed_at'])}"]
    else:
        lines.append("STATUS:NEEDS-ACTION")
    minutes = record.get("remind_minutes_before")
    if minutes is not None and (record.get("due_at") or record.get("starts_at")):
        lines.extend(_alarm(minutes, related_end=bool(record.get("due_at"))))
    return [*lines, "END:VTODO"]


def calendar(records: Iterable[dict[str, Any]], now: datetime, name: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    for record in records:
        if record.get("kind") == "meeting" and record.get("starts_at"):
            lines.extend(_event(record, now))
        elif record.get("kind") == "task":
            lines.extend(_todo(record, now))
    lines.append("END:VCALENDAR")
    return document(lines)
