"""Content lines shared by iCalendar (RFC 5545) and vCard (RFC 6350): escaping of TEXT values
and folding of long lines, so hostile values (commas, semicolons, newlines, backslashes) stay
inside their property."""

from __future__ import annotations

from datetime import UTC, datetime

MAX_OCTETS = 75


def escape_text(value: str) -> str:
    """TEXT escaping: backslash first, then ; , and line breaks (CR dropped, LF -> \\n)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line at 75 octets (never inside a UTF-8 character): CRLF + one space."""
    parts: list[str] = []
    current, size = "", 0
    limit = MAX_OCTETS
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
            limit = MAX_OCTETS - 1  # continuation lines start with a space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def utc_stamp(moment: datetime) -> str:
    """A DATE-TIME in UTC form: 20270115T083000Z."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def document(lines: list[str]) -> str:
    return "".join(fold(line) + "\r\n" for line in lines)
