"""Delta sync, reading side: the one function every sync read goes through (REST and GraphQL).

Changed records come from the change history (`record_history`, one row per changed field,
each carrying its transaction id) since the cursor. Each changed record the caller may see now
is sent whole, masked by the record service exactly as any other read; one it may not see is
a tombstone, whether it was deleted or moved out of the caller's scope (the same answer, so no
existence oracle). Tombstones are sent only for records that were in the caller's scope at
some point of the changes read (an owner in scope, or a tenant-wide scope): a phone never
learns the ids of records it could never have held.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import ColumnElement, column, func, or_, select, text, tuple_, values
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.history.changes import RecordChange
from backend.policy.access import entity_access
from backend.policy.record_scope import owner_scope
from backend.policy.scopes import require_scope
from backend.records.service import Record, RecordService
from backend.sync.cursor import SyncCursor, invalid_cursor
from backend.sync.entities import by_history_name, synced
from backend.sync.visibility import visibility_stamp

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
_history = table_of(RecordChange)
# When a round starts: the oldest running transaction, the time, and how long the tenant keeps
# change history (NULL: forever).
_ROUND_START = text(
    "select (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint,"
    " extract(epoch from now())::bigint,"
    " (select history_retention_days from tenants where id = :tenant_id)"
)
# A cursor this close to the retention is treated as past it (margin for clocks and sealing).
_RETENTION_MARGIN = 3600


@dataclass(frozen=True)
class Change:
    entity: str  # the collection name, e.g. "contacts"
    id: uuid.UUID
    op: Literal["upsert", "delete"]
    version: int | None
    record: Record | None  # masked; None for a tombstone


@dataclass(frozen=True)
class ChangeSet:
    changes: list[Change]
    cursor: SyncCursor
    has_more: bool
    # A new working set starts here: drop the local copy, then apply the changes.
    reset: bool = False


@dataclass(frozen=True)
class RoundStart:
    xmin: int  # the oldest transaction still running: every older one has committed
    now: int  # epoch seconds
    keep_days: int | None  # the tenant's history retention

    def outlived(self, cursor: SyncCursor) -> bool:
        """Whether history newer than the cursor may have been pruned since it was issued."""
        if self.keep_days is None:
            return False
        return self.now - cursor.issued > self.keep_days * 86400 - _RETENTION_MARGIN


async def round_start(ctx: RequestContext, conn: AsyncConnection) -> RoundStart:
    row = (await conn.execute(_ROUND_START, {"tenant_id": ctx.tenant_id})).one()
    return RoundStart(int(row[0]), int(row[1]), None if row[2] is None else int(row[2]))


async def read_changes(
    ctx: RequestContext,
    conn: AsyncConnection,
    entities: Sequence[str] | None,
    cursor: SyncCursor | None,
    limit: int,
) -> ChangeSet:
    """One page of changes since `cursor` (None: the first sync, the caller's working set).

    `entities` are collection names (None: every entity the caller may read; a named one the
    caller may not read is refused). Runs on the caller's transaction `conn`."""
    services = await _readable(ctx, conn, entities)
    stamp = await visibility_stamp(ctx, conn)
    reset = cursor is None or cursor.stamp != stamp
    start = None
    if not reset and cursor is not None and cursor.after_entity is None:
        # A new round: it will end at the transactions still running now.
        start = await round_start(ctx, conn)
        if cursor.since is not None and cursor.since > start.xmin:
            raise invalid_cursor("is ahead of this database; sync again without a cursor")
        reset = start.outlived(cursor)
        cursor = replace(cursor, until=start.xmin, issued=start.now)
    if cursor is None or reset:
        # A first sync; or what the caller may see changed without a record changing (roles,
        # field rules, scopes, teammates); or history since the cursor may have been pruned:
        # start over with the working set.
        start = start or await round_start(ctx, conn)
        cursor = SyncCursor(since=None, until=start.xmin, stamp=stamp, issued=start.now)
    if cursor.after_entity is not None and cursor.after_entity not in synced():
        raise invalid_cursor()
    if cursor.since is None:
        changes, position = await _working_set(ctx, conn, services, cursor, limit)
    else:
        changes, position = await _changes_since(ctx, conn, services, cursor, limit)
    if position is not None:
        return ChangeSet(changes, position, has_more=True, reset=reset)
    end = SyncCursor(since=cursor.until, until=cursor.until, stamp=stamp, issued=cursor.issued)
    return ChangeSet(changes, end, has_more=False, reset=reset)


async def _readable(
    ctx: RequestContext, conn: AsyncConnection, entities: Sequence[str] | None
) -> dict[str, RecordService]:
    known = synced()
    if entities is not None:
        for name in entities:
            await known[name].access(ctx, conn, "read")  # refused (403) when not readable
        return {name: known[name] for name in known if name in entities}
    require_scope(ctx, "read")
    readable: dict[str, RecordService] = {}
    for name, service in known.items():
        if (await entity_access(ctx, conn, service.spec)).may("read"):
            readable[name] = service
    return readable


async def _working_set(
    ctx: RequestContext,
    conn: AsyncConnection,
    services: dict[str, RecordService],
    cursor: SyncCursor,
    limit: int,
) -> tuple[list[Change], SyncCursor | None]:
    """Every record the caller may see, entity by entity, by id."""
    names = list(services)
    start = names.index(cursor.after_entity) if cursor.after_entity in services else 0
    changes: list[Change] = []
    for name in names[start:]:
        after = cursor.after_id if name == cursor.after_entity else None
        for record in await services[name].read_page(ctx, conn, after, limit + 1 - len(changes)):
            changes.append(Change(name, record["id"], "upsert", record["version"], record))
        if len(changes) > limit:
            last = changes[limit - 1]
            return changes[:limit], replace(cursor, after_entity=last.entity, after_id=last.id)
    return changes, None


async def _changes_since(
    ctx: RequestContext,
    conn: AsyncConnection,
    services: dict[str, RecordService],
    cursor: SyncCursor,
    limit: int,
) -> tuple[list[Change], SyncCursor | None]:
    """The records changed by transactions since the cursor, each once, by last change."""
    plural = by_history_name()
    singular = {p: s for s, p in plural.items()}
    h = _history
    last_txid = func.max(h.c.txid)
    stmt = (
        select(h.c.entity, h.c.record_id, last_txid.label("last_txid"))
        .where(
            h.c.tenant_id == ctx.tenant_id,
            h.c.txid >= cursor.since,
            h.c.entity.in_([singular[name] for name in services]),
        )
        .group_by(h.c.entity, h.c.record_id)
    )
    if cursor.after_entity is not None:
        stmt = stmt.having(
            tuple_(last_txid, h.c.entity, h.c.record_id)
            > tuple_(cursor.after_txid, singular[cursor.after_entity], cursor.after_id)
        )
    stmt = stmt.order_by(last_txid, h.c.entity, h.c.record_id).limit(limit + 1)
    rows = (await conn.execute(stmt)).all()
    position = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        position = replace(
            cursor,
            after_txid=int(last.last_txid),
            after_entity=plural[last.entity],
            after_id=last.record_id,
        )
    ids: dict[str, list[uuid.UUID]] = {}
    for row in rows:
        ids.setdefault(plural[row.entity], []).append(row.record_id)
    found: dict[str, dict[uuid.UUID, Record]] = {}
    gone: dict[str, set[uuid.UUID]] = {}
    for name, keys in ids.items():
        found[name] = await services[name].read_many(ctx, conn, keys, how="sync")
        missing = [k for k in keys if k not in found[name]]
        gone[name] = await _held(ctx, conn, services[name], cursor, missing)
    changes: list[Change] = []
    for row in rows:
        name = plural[row.entity]
        record = found[name].get(row.record_id)
        if record is not None:
            changes.append(Change(name, row.record_id, "upsert", record["version"], record))
        elif row.record_id in gone[name]:
            changes.append(Change(name, row.record_id, "delete", None, None))
    return changes, position


async def _held(
    ctx: RequestContext,
    conn: AsyncConnection,
    service: RecordService,
    cursor: SyncCursor,
    ids: list[uuid.UUID],
) -> set[uuid.UUID]:
    """Among records the caller cannot see now, those it may have held: their owner, in the
    changes read, was once in the caller's read scope (always so for a tenant-wide scope)."""
    if not ids:
        return set()
    access = await entity_access(ctx, conn, service.spec)
    scope = access.scopes.get("read", "own")
    if scope == "tenant" or "owner_id" not in service.table.c:
        return set(ids)
    h = _history
    rows = (
        await conn.execute(
            select(h.c.record_id, h.c.event, h.c.old_value, h.c.new_value).where(
                h.c.tenant_id == ctx.tenant_id,
                h.c.entity == service.spec.name,
                h.c.record_id.in_(ids),
                h.c.txid >= cursor.since,
                or_(h.c.field == "owner_id", h.c.field.is_(None)),
            )
        )
    ).all()
    owners: dict[uuid.UUID, set[uuid.UUID]] = {}
    for row in rows:
        for value in (row.old_value, row.new_value):
            owner = value.get("owner_id") if isinstance(value, dict) else value
            parsed = _uuid(owner)
            if parsed is not None:
                owners.setdefault(parsed, set()).add(row.record_id)
    if not owners:
        return set()
    candidates = values(column("owner", UUID(as_uuid=True)), name="candidates").data(
        [(owner,) for owner in owners]
    )
    in_scope: ColumnElement[Any] = candidates.c.owner
    allowed = (
        await conn.execute(select(in_scope).where(owner_scope(in_scope, ctx, scope)))
    ).scalars()
    return {record_id for owner in allowed for record_id in owners[owner]}


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
