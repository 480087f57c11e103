"""Reading change history and security events, through the same policy as records.

A history value is shown only to a caller who may `read_history` that field; others see that
the field changed, not what to or from. Per-record history follows the record's scope (a
deleted record's last owner decides); the tenant-wide history lists only entities whose history
the caller may read tenant-wide. Every read of history is itself a security event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, literal, select
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.registry import ENTITIES, SERVICES
from backend.db.base import table_of
from backend.errors import BadRequest, Forbidden, NotFound
from backend.history.changes import RecordChange
from backend.history.events import EventType, SecurityEvent, record_event
from backend.policy.access import SYSTEM_FIELDS, EntityAccess, entity_access
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.engine import policies
from backend.policy.record_scope import owner_scope
from backend.policy.scopes import require_scope
from backend.records.listing import MAX_LIMIT, decode_cursor, encode_cursor

_history, _events = table_of(RecordChange), table_of(SecurityEvent)
AUDIT_READERS = (TENANT_ADMIN, "auditor")
NEWEST_FIRST = "-id"


@dataclass(frozen=True)
class HistoryFilter:
    entity: str | None = None
    record_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    field: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _limit(limit: int | None) -> int:
    limit = 50 if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            f"limit: must be between 1 and {MAX_LIMIT}", field="limit", code="out_of_range"
        )
    return limit


def _mask_entry(row: dict[str, Any], access: EntityAccess) -> dict[str, Any]:
    """One history row as the caller may see it."""
    allowed = access.fields.get("read_history", frozenset())
    hidden = {"tenant_id", "txid", "value_salt", "old_digest", "new_digest"}
    entry = {k: v for k, v in row.items() if k not in hidden}
    entry["values_withheld"] = False
    if row["field"] is not None:
        if row["field"] not in allowed:
            entry.update(old_value=None, new_value=None, values_withheld=True)
        return entry
    for key in ("old_value", "new_value"):  # a whole record (create / delete)
        if isinstance(row[key], dict):
            whole = row[key]
            entry[key] = {
                k: v
                for k, v in whole.items()
                if k != "custom" and (k in SYSTEM_FIELDS or k in allowed)
            }
            entry["values_withheld"] |= len(entry[key]) < len(whole) - ("custom" in whole)
            custom = whole.get("custom")
            if isinstance(custom, dict):  # each custom value by its own field's permission
                shown = {k: v for k, v in custom.items() if f"custom.{k}" in allowed}
                entry[key]["custom"] = shown
                entry["values_withheld"] |= len(shown) < len(custom)
    return entry


async def _owner_in_scope(
    conn: AsyncConnection, ctx: RequestContext, scope: str, owner: Any
) -> bool:
    """Whether a (deleted) record's last owner is within the caller's scope: the same rule
    the record service applies to live records."""
    if scope == "tenant":
        return True
    if owner is None:
        return False
    owner_id = literal(uuid.UUID(str(owner)), PG_UUID(as_uuid=True))
    found = await conn.execute(select(literal(1)).where(owner_scope(owner_id, ctx, scope)))
    return found.first() is not None


async def _newest_first(
    conn: AsyncConnection,
    table: Table,
    conditions: list[ColumnElement[bool]],
    after: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of an append-only log, newest first, by id (UUIDv7) keyset."""
    stmt = select(table).where(*conditions)
    if after:
        stmt = stmt.where(table.c.id < decode_cursor(after, NEWEST_FIRST).last_id)
    stmt = stmt.order_by(table.c.id.desc()).limit(limit + 1)
    rows = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(NEWEST_FIRST, None, rows[-1]["id"])
    for row in rows:
        row.pop("tenant_id", None)
        row.pop("txid", None)  # the sealer's ordering, not the reader's business
    return rows, next_cursor


async def _audit_read(conn: AsyncConnection, ctx: RequestContext, **details: Any) -> None:
    await record_event(
        conn,
        ctx.tenant_id,
        EventType.HISTORY_READ,
        actor_user_id=ctx.user_id,
        actor_client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
        channel=ctx.channel,
        details={k: str(v) for k, v in details.items() if v is not None},
    )


async def record_history(
    ctx: RequestContext,
    entity: str,
    record_id: uuid.UUID | str,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> HistoryPage:
    """The history of one record, newest first: 404 when the record (or, once deleted, its
    last owner) is outside the caller's read_history scope, exactly like a missing record."""
    size = _limit(limit)
    async with ctx.session.transaction() as conn:
        key, access = await _record_history_access(conn, ctx, entity, record_id)
        rows, next_cursor = await _newest_first(
            conn,
            _history,
            [_history.c.entity == entity, _history.c.record_id == key],
            after,
            size,
        )
        await _audit_read(conn, ctx, entity=entity, record_id=key)
    return HistoryPage([_mask_entry(r, access) for r in rows], next_cursor)


async def _record_history_access(
    conn: AsyncConnection, ctx: RequestContext, entity: str, record_id: uuid.UUID | str
) -> tuple[uuid.UUID, EntityAccess]:
    """The caller's access to one record's history; 404 when it is out of scope or unknown."""
    service = SERVICES[entity]
    key = service.parse_id(record_id)
    access = await service.access(ctx, conn, "read_history")
    current = await service.fetch(conn, service.visible(ctx, access, "read_history"), key)
    if current is None:
        deleted = (
            await conn.execute(
                select(_history.c.old_value)
                .where(
                    _history.c.entity == entity,
                    _history.c.record_id == key,
                    _history.c.event == "delete",
                )
                .order_by(_history.c.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        last_owner = deleted.get("owner_id") if isinstance(deleted, dict) else None
        scope = access.scopes.get("read_history", "own")
        if deleted is None or not await _owner_in_scope(conn, ctx, scope, last_owner):
            raise NotFound(f"{entity} not found")
    return key, access


async def changes_before(
    ctx: RequestContext, entity: str, record_id: uuid.UUID | str, change_id: uuid.UUID | str
) -> list[dict[str, Any]]:
    """A record's history up to (not including) one change, oldest first, as the caller may
    see it: what a whole-record revert replays."""
    async with ctx.session.transaction() as conn:
        key, access = await _record_history_access(conn, ctx, entity, record_id)
        try:
            change_key = uuid.UUID(str(change_id))
        except ValueError:
            raise NotFound("change not found", field="change_id") from None
        of_record = and_(_history.c.entity == entity, _history.c.record_id == key)
        found = await conn.execute(
            select(_history.c.id).where(of_record, _history.c.id == change_key)
        )
        if found.first() is None:
            raise NotFound("change not found", field="change_id")
        rows = (
            (
                await conn.execute(
                    select(_history)
                    .where(of_record, _history.c.id < change_key)
                    .order_by(_history.c.id)
                )
            )
            .mappings()
            .all()
        )
        await _audit_read(conn, ctx, entity=entity, record_id=key, change_id=change_key)
    return [_mask_entry(dict(row), access) for row in rows]


async def one_change(
    ctx: RequestContext, entity: str, record_id: uuid.UUID | str, change_id: uuid.UUID | str
) -> dict[str, Any]:
    """One history entry of a record, as the caller may see it."""
    async with ctx.session.transaction() as conn:
        key, access = await _record_history_access(conn, ctx, entity, record_id)
        try:
            change_key = uuid.UUID(str(change_id))
        except ValueError:
            raise NotFound("change not found", field="change_id") from None
        row = (
            (
                await conn.execute(
                    select(_history).where(
                        _history.c.entity == entity,
                        _history.c.record_id == key,
                        _history.c.id == change_key,
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("change not found", field="change_id")
        await _audit_read(conn, ctx, entity=entity, record_id=key, change_id=change_key)
    return _mask_entry(dict(row), access)


async def tenant_history(
    ctx: RequestContext,
    filters: HistoryFilter,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> HistoryPage:
    """History across records, newest first, of the entities whose history the caller may read
    tenant-wide (auditors, admins)."""
    if filters.entity is not None and filters.entity not in ENTITIES:
        raise BadRequest(f"no entity {filters.entity!r}", field="entity", code="unknown_entity")
    size = _limit(limit)
    async with ctx.session.transaction() as conn:
        require_scope(ctx, "read_history")
        readable: dict[str, EntityAccess] = {}
        for name, spec in ENTITIES.items():
            access = await entity_access(ctx, conn, spec)
            if access.may("read_history") and access.scopes.get("read_history") == "tenant":
                readable[name] = access
        wanted = [filters.entity] if filters.entity else list(readable)
        if not wanted or any(e not in readable for e in wanted):
            raise Forbidden(
                "reading history across records needs tenant-wide read_history",
                field="entity",
                code="action_forbidden",
            )
        conditions: list[ColumnElement[bool]] = [_history.c.entity.in_(wanted)]
        for column, value in (
            ("record_id", filters.record_id),
            ("actor_user_id", filters.actor_user_id),
            ("field", filters.field),
            ("channel", filters.channel),
        ):
            if value is not None:
                conditions.append(_history.c[column] == value)
        if filters.since is not None:
            conditions.append(_history.c.occurred_at >= filters.since)
        if filters.until is not None:
            conditions.append(_history.c.occurred_at < filters.until)
        rows, next_cursor = await _newest_first(conn, _history, conditions, after, size)
        await _audit_read(conn, ctx, entity=filters.entity, record_id=filters.record_id)
    return HistoryPage([_mask_entry(r, readable[r["entity"]]) for r in rows], next_cursor)


async def audit_events(
    ctx: RequestContext,
    *,
    event_type: str | None = None,
    actor_user_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> HistoryPage:
    """Security events, newest first: for tenant admins and auditors only."""
    size = _limit(limit)
    async with ctx.session.transaction() as conn:
        require_scope(ctx, "read_history")
        policy = await policies.get(conn, ctx.tenant_id)
        readers = {policy.builtin_roles.get(name) for name in AUDIT_READERS}
        if not readers & policy.roles_of(ctx.user_id):
            raise Forbidden("only tenant admins and auditors read audit events", code="forbidden")
        conditions: list[ColumnElement[bool]] = []
        if event_type is not None:
            conditions.append(_events.c.type == event_type)
        if actor_user_id is not None:
            conditions.append(_events.c.actor_user_id == actor_user_id)
        if since is not None:
            conditions.append(_events.c.occurred_at >= since)
        if until is not None:
            conditions.append(_events.c.occurred_at < until)
        rows, next_cursor = await _newest_first(conn, _events, conditions, after, size)
    return HistoryPage(rows, next_cursor)
