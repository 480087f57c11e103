"""Per-field merge of one offline edit against the server's record.

The phone says which version its edit was based on. The fields the server changed since then
come from the change history: the record's last (current version - base version) transactions
that gave it a new version, i.e. updated or restored it (a restore continues the version past
the one the record was deleted at, see RecordService.restore). A restore in that window counts
as a change of every field of the restored record: the phone's base may predate the delete.
Counting goes by transactions, so an older change may be counted in, which can only report a
conflict too many, never one too few.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
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
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    entity: str,
    record_id: uuid.UUID,
    updates: int,
    every: Collection[str] = (),
) -> set[str]:
    """The fields written by the record's last `updates` transactions that gave it a new
    version (updates and restores); a restore among them: every field of the record."""
    if updates <= 0:
        return set()
    h = _history
    # PostgreSQL has no max(uuid); a uuid's text sorts as its bytes do.
    row_order = cast(h.c.id, Text)
    this_record = (h.c.tenant_id == tenant_id, h.c.entity == entity, h.c.record_id == record_id)
    versioned = h.c.event.in_(("update", "restore"))
    recent = (
        select(h.c.txid)
        .where(*this_record, versioned)
        .group_by(h.c.txid)
        # Row ids are uuid7, made after the row lock was taken: the record's own order.
        .order_by(func.max(row_order).desc())
        .limit(updates)
        .subquery()
    )
    stmt = select(h.c.event, h.c.field, h.c.new_value).where(
        *this_record, versioned, h.c.txid.in_(select(recent.c.txid))
    )
    changed: set[str] = set()
    for event, name, value in (await conn.execute(stmt)).all():
        if event == "restore":
            # The whole record came back (its values erased for privacy: its columns).
            restored = value if isinstance(value, dict) else dict.fromkeys(every)
            changed |= {key for key in restored if key not in ("id", "custom")}
            custom = restored.get("custom")
            changed |= {f"custom.{k}" for k in (custom if isinstance(custom, dict) else {})}
        elif name is not None:
            changed.add(name)
    return changed


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
