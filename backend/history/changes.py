"""Change history: one row per changed field of every tenant record, plus create and delete
events carrying the whole record. Written by the record service in the same transaction as the
change, so a change and its history commit or roll back together, whatever path made it.

Each row also stores SHA-256 digests of its old and new values (salted per row, so equal
values do not give equal digests): the tamper-evident chain covers the digests, so values can
later be redacted for privacy erasure without breaking the chain.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    String,
    distinct,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from backend.context import RequestContext
from backend.db.base import Base, table_of
from backend.db.ids import uuid7
from backend.history import pending

# Never part of field history: they change with every write and say nothing new.
UNTRACKED = frozenset({"version", "created_at", "updated_at"})


class RecordChange(Base):
    __tablename__ = "record_history"
    __table_args__ = (
        Index(None, "tenant_id", "entity", "record_id", "id"),
        Index(None, "tenant_id", "actor_user_id", "id"),
        Index(None, "tenant_id", "txid"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    entity: Mapped[str] = mapped_column(String(64), nullable=False)
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # create | update | delete | restore
    event: Mapped[str] = mapped_column(String(16), nullable=False)
    field: Mapped[str | None] = mapped_column(String(64))  # None for create / delete
    old_value: Mapped[Any | None] = mapped_column(JSONB)
    new_value: Mapped[Any | None] = mapped_column(JSONB)
    value_salt: Mapped[str] = mapped_column(String(32), nullable=False)
    old_digest: Mapped[str | None] = mapped_column(String(64))
    new_digest: Mapped[str | None] = mapped_column(String(64))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_client_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    # The writing transaction's id: the audit sealer (backend/history/sealer.py) takes rows in
    # the order their transactions became final. Set by the database, never by callers.
    txid: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text("(pg_current_xact_id()::text)::bigint")
    )


_history = table_of(RecordChange)


def to_json(value: Any) -> Any:
    """A record value as JSON (UUIDs, times and decimals as strings), for history rows."""
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def value_digest(salt: str, value: Any) -> str | None:
    if value is None:
        return None
    return hashlib.sha256(salt.encode() + b"\x00" + canonical(value)).hexdigest()


def _row(
    ctx: RequestContext,
    entity: str,
    record_id: uuid.UUID,
    event: str,
    field: str | None,
    old: Any,
    new: Any,
) -> dict[str, Any]:
    salt = secrets.token_hex(16)
    old_json, new_json = to_json(old), to_json(new)
    return {
        "tenant_id": ctx.tenant_id,
        "id": uuid7(),
        "entity": entity,
        "record_id": record_id,
        "event": event,
        "field": field,
        "old_value": old_json,
        "new_value": new_json,
        "value_salt": salt,
        "old_digest": value_digest(salt, old_json),
        "new_digest": value_digest(salt, new_json),
        "actor_user_id": ctx.principal.user_id,
        "actor_client_id": ctx.principal.client_id,
        "request_id": ctx.request_id,
        "channel": ctx.channel,
    }


def _tracked(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in UNTRACKED and k != "tenant_id"}


async def record_created(
    conn: AsyncConnection,
    ctx: RequestContext,
    entity: str,
    record: Mapping[str, Any],
    event: str = "create",
) -> None:
    """A new record (or, with event "restore", an undeleted one), whole."""
    pending.mark(ctx.principal.tenant_id)
    await conn.execute(
        insert(_history).values(
            _row(ctx, entity, record["id"], event, None, None, _tracked(record))
        )
    )


async def record_updated(
    conn: AsyncConnection,
    ctx: RequestContext,
    entity: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    rows = [
        _row(ctx, entity, after["id"], "update", name, before.get(name), value)
        for name, value in _tracked(after).items()
        if name != "custom" and to_json(before.get(name)) != to_json(value)
    ]
    # Custom values: one row per changed key, named `custom.<key>` like built-in fields.
    old_custom, new_custom = before.get("custom") or {}, after.get("custom") or {}
    rows.extend(
        _row(ctx, entity, after["id"], "update", f"custom.{key}", old_custom.get(key), value)
        for key in sorted(set(old_custom) | set(new_custom))
        if to_json(old_custom.get(key)) != to_json(value := new_custom.get(key))
    )
    if rows:
        pending.mark(ctx.principal.tenant_id)
        await conn.execute(insert(_history), rows)


async def record_deleted(
    conn: AsyncConnection, ctx: RequestContext, entity: str, record: Mapping[str, Any]
) -> None:
    """A deleted record, whole, with the version it had: an undelete continues from there
    (see `last_version`), so a version never repeats for a record id."""
    snapshot = _tracked(record)
    if "version" in record:
        snapshot["version"] = record["version"]
    pending.mark(ctx.principal.tenant_id)
    await conn.execute(
        insert(_history).values(_row(ctx, entity, record["id"], "delete", None, snapshot, None))
    )


async def last_version(
    conn: AsyncConnection, tenant_id: uuid.UUID, entity: str, record_id: uuid.UUID
) -> int:
    """The highest version a (deleted) record ever had, from its history: the version kept
    with each delete event; for delete events written before versions were kept there, the
    number of transactions that created, updated or restored it (each bumped the version by
    one, or restarted it at 1)."""
    h = _history
    this_record = (h.c.tenant_id == tenant_id, h.c.entity == entity, h.c.record_id == record_id)
    kept = select(func.max(h.c.old_value["version"].as_integer())).where(
        *this_record, h.c.event == "delete"
    )
    writes = select(func.count(distinct(h.c.txid))).where(
        *this_record, h.c.event.in_(("create", "update", "restore"))
    )
    stmt = select(func.greatest(func.coalesce(kept.scalar_subquery(), 0), writes.scalar_subquery()))
    return int((await conn.execute(stmt)).scalar_one())
