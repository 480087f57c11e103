"""Bandwidth for phones on REST: sparse fieldsets (`fields=a,b`) and list ETags.

Sparse fieldsets shape what the record service returned (already masked): a field the caller
may not read stays out even when asked for. `id` and `version` are always kept (a client needs
them to update), and `withheld_fields` names only the requested fields that were withheld.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from litestar.serialization import encode_json

from backend.errors import BadRequest
from backend.records.service import WITHHELD, Record
from backend.records.spec import EntitySpec

ALWAYS = ("id", "version")
SYSTEM = ("id", "version", "created_at", "updated_at")
MAX_FIELDS_PARAM = 2000
_CUSTOM_NAME = re.compile(r"^custom\.[a-z][a-z0-9_]{0,39}$")


def parse_fields(spec: EntitySpec, raw: str | None) -> frozenset[str] | None:
    """The requested field names, or None for all; an unknown name is a 400 naming `fields`."""
    if raw is None:
        return None
    if len(raw) > MAX_FIELDS_PARAM:
        raise BadRequest("fields is too long", field="fields", code="too_long")
    names = [n.strip() for n in raw.split(",") if n.strip()]
    known = set(spec.fields) | set(SYSTEM) | {"custom"}
    # `custom.<key>`: a key the tenant has not defined (or the caller may not read) is
    # simply absent from the answer, as a withheld built-in field is.
    unknown = sorted({n for n in names if n not in known and not _CUSTOM_NAME.match(n)})
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(unknown[:10])}", field="fields", code="unknown_field"
        )
    if not names:
        raise BadRequest("name at least one field", field="fields", code="invalid_fields")
    return frozenset(names)


def sparse(record: Record, fields: frozenset[str] | None) -> Record:
    if fields is None:
        return record
    wanted = fields | set(ALWAYS)
    shaped = {k: v for k, v in record.items() if k in wanted}
    keys = {n.removeprefix("custom.") for n in fields if n.startswith("custom.")}
    if keys and "custom" not in fields and "custom" in record:
        shaped["custom"] = {k: v for k, v in record["custom"].items() if k in keys}
    shaped[WITHHELD] = [
        f
        for f in record.get(WITHHELD, [])
        if f in fields or ("custom" in fields and f.startswith("custom."))
    ]
    return shaped


def encode_with_etag(body: Any) -> tuple[bytes, str]:
    """Compact JSON (no spaces) and a weak ETag of it: the same page, the same tag."""
    content = encode_json(body)
    return content, f'W/"{hashlib.sha256(content).hexdigest()[:32]}"'
