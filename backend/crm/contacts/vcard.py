"""One contact as a vCard 4.0 (RFC 6350), from a masked record: withheld fields are left out."""

from __future__ import annotations

from typing import Any

from backend.calendar.text import document, escape_text, utc_stamp


def _structured(*parts: Any) -> str:
    """A structured value (N, ADR): components separated by unescaped semicolons."""
    return ";".join(escape_text(str(p)) if p else "" for p in parts)


def vcard(record: dict[str, Any]) -> str:
    first, last = record.get("first_name"), record.get("last_name")
    full = " ".join(p for p in (first, last) if p) or "Contact"
    lines = [
        "BEGIN:VCARD",
        "VERSION:4.0",
        f"UID:urn:uuid:{record['id']}",
        f"FN:{escape_text(full)}",
        f"N:{_structured(last, first, '', '', '')}",
        f"REV:{utc_stamp(record['updated_at'])}",
    ]
    if record.get("title"):
        lines.append(f"TITLE:{escape_text(record['title'])}")
    if record.get("email"):
        lines.append(f"EMAIL;TYPE=work:{escape_text(record['email'])}")
    if record.get("phone"):
        lines.append(f"TEL;VALUE=text;TYPE=work,voice:{escape_text(record['phone'])}")
    if record.get("mobile_phone"):
        lines.append(f"TEL;VALUE=text;TYPE=cell:{escape_text(record['mobile_phone'])}")
    address = [
        record.get(f)
        for f in ("address_line1", "address_line2", "city", "region", "postal_code", "country")
    ]
    if any(address):
        street = "\n".join(p for p in address[:2] if p)
        lines.append(f"ADR;TYPE=work:{_structured('', '', street, *address[2:])}")
    if record.get("notes"):
        lines.append(f"NOTE:{escape_text(record['notes'])}")
    if record.get("tags"):
        lines.append(f"CATEGORIES:{','.join(escape_text(t) for t in record['tags'])}")
    return document([*lines, "END:VCARD"])
