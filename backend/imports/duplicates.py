"""Duplicate detection for imports, generic per entity: an entity's duplicate keys are its
fields of kind email (compared lower-cased and trimmed) and phone (compared in E.164, read in
the tenant's default region). Any entity with such fields gets it (contacts, accounts' phone,
leads once they exist); an entity without has no duplicates.

Existing records are those the importing user may read (their read scope): a record they
cannot see is never reported (its id would leak) and never matched."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.lookup.phones import to_e164
from backend.policy.access import EntityAccess
from backend.records.service import RecordService


def duplicate_fields(service: RecordService) -> dict[str, str]:
    """The entity's duplicate keys: field name -> kind ("email" or "phone")."""
    return {n: f.kind for n, f in service.spec.fields.items() if f.kind in ("email", "phone")}


def normalise(kind: str, value: Any, region: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    if kind == "email":
        return value.strip().lower()
    return to_e164(value.strip(), region)


@dataclass
class Known:
    """A record a duplicate may point at: one that exists, or one an earlier row made."""

    record_id: uuid.UUID | None  # None: made by an earlier row of a dry run (not written)
    version: int
    first_row: int | None = None  # the row that made it, for duplicates within the file


@dataclass
class DuplicateIndex:
    """Normalised key value -> record, for every duplicate field kind. Phones of all phone
    fields share one space (a number in `phone` matches the same number in `mobile_phone`)."""

    fields: dict[str, str]
    region: str
    keys: dict[tuple[str, str], Known] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any], known: Known) -> None:
        for name, kind in self.fields.items():
            key = normalise(kind, record.get(name), self.region)
            if key is not None:
                self.keys.setdefault((kind, key), known)

    def find(self, data: Mapping[str, Any]) -> tuple[str, Known] | None:
        """The first duplicate key of a row: (field, the record it duplicates)."""
        for name, kind in self.fields.items():
            key = normalise(kind, data.get(name), self.region)
            if key is not None and (found := self.keys.get((kind, key))) is not None:
                return name, found
        return None


async def load_index(
    conn: AsyncConnection,
    ctx: RequestContext,
    service: RecordService,
    access: EntityAccess,
    region: str,
) -> DuplicateIndex:
    """Every readable record's duplicate keys, read once at the start of the import (an
    internal read: nothing of it reaches the caller but the ids of duplicates, so it is not
    charged to the read budget). Keys only a field the caller may not read holds are not
    compared: a hidden email must not reveal itself by matching."""
    readable = access.readable("read")
    fields = {n: k for n, k in duplicate_fields(service).items() if n in readable}
    index = DuplicateIndex(fields, region)
    if not fields or not access.may("read"):
        return index
    table = service.table
    stmt = select(table.c.id, table.c.version, *(table.c[n] for n in fields)).where(
        service.visible(ctx, access, "read"), or_(*(table.c[n].is_not(None) for n in fields))
    )
    result = await conn.stream(stmt.execution_options(yield_per=2000))
    async for row in result.mappings():
        index.add(dict(row), Known(row["id"], row["version"]))
    return index
