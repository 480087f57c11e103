"""Per-field merge of one offline edit against the server's record.

The phone says which version its edit was based on. The fields the server changed since then
come from the change history: the record's last (current version - base version) updating
transactions, counted since it was last created or restored. A transaction that bumped the
version without changing a field leaves no history row; then an older change is counted in,
which can only report a conflict too many, never one too few.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db.base import table_of
from backend.history.changes import RecordChange, to_json

Resolution = Literal["server_wins", "client_wins", "reject"]
RESOLUTIONS: tuple[Resolution, ...] = ("server_wins", "client_wins", "reject")
_history = table_of(RecordChange)


@dataclass(frozen=True)
class FieldConflict:
    field: str
    client_value: Any  # as the phone sent it (None: the phone deleted the record)
    server_value: Any  # the server's current value, as JSON
    resolved: Literal["server", "client", "none"]

    def as_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "client_value": self.client_value,
            "server_value": self.server_value,
            "resolved": self.resolved,
        }


@dataclass(frozen=True)
class MergePlan:
    write: dict[str, Any]  # the fields to write (possibly none)
    conflicts: list[FieldConflict]
    server_changed: bool  # the server changed the record since the phone's base version
    rejected: bool  # conflicts and the rule is `reject`: write nothing


async def fields_changed_since(
    conn: AsyncConnection, tenant_id: uuid.UUID, entity: str, record_id: uuid.UUID, updates: int
) -> set[str]:
    """The fields written by the record's last `updates` updating transactions."""
    if updates <= 0:
        return set()
    h = _history
    # PostgreSQL has no max(uuid); a uuid's text sorts as its bytes do.
    row_order = cast(h.c.id, Text)
    this_record = (h.c.tenant_id == tenant_id, h.c.entity == entity, h.c.record_id == record_id)
    born = (
        select(func.max(row_order))
        .where(*this_record, h.c.event.in_(("create", "restore")))
        .scalar_subquery()
    )
    recent = (
        select(h.c.txid)
        .where(*this_record, h.c.event == "update", row_order > func.coalesce(born, ""))
        .group_by(h.c.txid)
        # Row ids are uuid7, made after the row lock was taken: the record's own order.
        .order_by(func.max(row_order).desc())
        .limit(updates)
        .subquery()
    )
    stmt = (
        select(h.c.field)
        .distinct()
        .where(*this_record, h.c.event == "update", h.c.txid.in_(select(recent.c.txid)))
    )
    return {name for name in (await conn.execute(stmt)).scalars() if name is not None}


def plan_update(
    sent: Mapping[str, Any],
    clean: Mapping[str, Any],
    current: Mapping[str, Any],
    server_fields: set[str],
    resolution: Resolution,
) -> MergePlan:
    """`sent`: the fields as the phone sent them; `clean`: the same, validated (typed), so
    that 10 and "10.00" compare equal; `current`: the server's record now."""
    conflicts: list[FieldConflict] = []
    write: dict[str, Any] = {}
    resolved: Literal["server", "client", "none"] = {
        "server_wins": "server",
        "client_wins": "client",
        "reject": "none",
    }[resolution]  # type: ignore[assignment]
    for name, value in sent.items():
        both = name in server_fields and clean.get(name) != current.get(name)
        if both:
            conflicts.append(FieldConflict(name, value, to_json(current.get(name)), resolved))
            if resolution != "client_wins":
                continue
        write[name] = value
    rejected = resolution == "reject" and bool(conflicts)
    return MergePlan(
        write={} if rejected else write,
        conflicts=conflicts,
        server_changed=bool(server_fields),
        rejected=rejected,
    )
