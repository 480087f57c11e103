"""Delta sync, writing side: a batch of offline edits, each applied on its own.

Every change goes through the record service (policy, validation, history) with channel
"sync", in its own transaction together with its stored outcome: a refused change (policy,
validation, a stale version) rolls back alone and is reported, the others still apply, and a
replayed change (same device, same client_id) returns the stored outcome and changes nothing.

Statuses: `applied` (the server had not changed the record since the phone's base version),
`merged` (it had: the phone's other fields applied, and any field both sides changed resolved
by the rule - server_wins keeps the server's value, client_wins writes the phone's), `conflict`
(nothing written: the rule is `reject` and fields conflict, or a delete of a record the server
changed since, unless client_wins), `refused` (policy, validation, not found; `code` says why).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.custom_fields.values import clean_value, split_custom
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import BadRequest, CaravanError, ValidationFailed
from backend.history.changes import UNTRACKED, to_json
from backend.records.fields import validate_changes
from backend.records.service import Record, RecordService
from backend.sync.devices import check_device_id, touch_device
from backend.sync.entities import synced
from backend.sync.merge import FieldConflict, Resolution, fields_changed_since, plan_update
from backend.sync.models import SyncOutcome

MAX_CHANGES = 500
Op = Literal["create", "update", "delete"]
Status = Literal["applied", "merged", "conflict", "refused"]
_outcomes = table_of(SyncOutcome)
_NOT_FIELDS = UNTRACKED | {"tenant_id", "id"}


@dataclass(frozen=True)
class PushedChange:
    client_id: str
    entity: str
    op: Op
    id: str | None = None
    base_version: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushBatch:
    device_id: str
    resolution: Resolution
    changes: list[PushedChange]


@dataclass(frozen=True)
class ChangeResult:
    client_id: str
    id: str | None
    status: Status
    version: int | None = None
    conflicts: list[FieldConflict] = field(default_factory=list)
    reason: str | None = None
    code: str | None = None
    field: str | None = None  # the field at fault, for a refused change

    def as_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "id": self.id,
            "status": self.status,
            "version": self.version,
            "conflicts": [c.as_json() for c in self.conflicts],
            "reason": self.reason,
            "code": self.code,
            "field": self.field,
        }


class _Replayed(Exception):
    """Another request stored this change's outcome first: return that one."""


def _check(batch: PushBatch) -> None:
    check_device_id(batch.device_id)
    if len(batch.changes) > MAX_CHANGES:
        raise BadRequest(
            f"changes: at most {MAX_CHANGES} per batch", field="changes", code="too_many_changes"
        )
    seen: set[str] = set()
    for index, change in enumerate(batch.changes):
        if not 1 <= len(change.client_id) <= 128:
            raise BadRequest(
                "client_id: 1-128 characters",
                field=f"changes[{index}].client_id",
                code="invalid_client_id",
            )
        if change.client_id in seen:
            raise BadRequest(
                f"client_id {change.client_id!r} appears twice in the batch",
                field=f"changes[{index}].client_id",
                code="duplicate_client_id",
            )
        seen.add(change.client_id)


def _sync_context(ctx: RequestContext) -> RequestContext:
    """The caller, on channel "sync", with a session of its own (one transaction per change,
    independent of any transaction the calling skin holds)."""
    return RequestContext(
        principal=ctx.principal, db=ctx.db, channel="sync", request_id=ctx.request_id
    )


async def push_changes(ctx: RequestContext, batch: PushBatch) -> list[ChangeResult]:
    _check(batch)
    async with _sync_context(ctx).session.transaction() as conn:
        device = await touch_device(ctx, conn, batch.device_id, pushed=True)
    return [await _push_one(ctx, device, change, batch.resolution) for change in batch.changes]


async def _push_one(
    ctx: RequestContext, device: uuid.UUID, change: PushedChange, resolution: Resolution
) -> ChangeResult:
    stored = await _stored(_sync_context(ctx), device, change.client_id)
    if stored is not None:
        return stored
    sync_ctx = _sync_context(ctx)
    try:
        async with sync_ctx.session.request_scope() as session:
            result = await _apply(sync_ctx, change, resolution)
            async with session.transaction() as conn:
                await _store(conn, sync_ctx, device, change.client_id, result)
        return result
    except _Replayed:
        pass
    except CaravanError as refused:
        result = ChangeResult(
            change.client_id,
            change.id,
            "refused",
            reason=refused.detail,
            code=refused.code,
            field=refused.field,
        )
        try:
            async with _sync_context(ctx).session.transaction() as conn:
                await _store(conn, sync_ctx, device, change.client_id, result)
            return result
        except _Replayed:
            pass
    replayed = await _stored(_sync_context(ctx), device, change.client_id)
    assert replayed is not None
    return replayed


async def _apply(ctx: RequestContext, change: PushedChange, resolution: Resolution) -> ChangeResult:
    service = synced().get(change.entity)
    if service is None:
        raise BadRequest(f"{change.entity!r} does not sync", field="entity", code="unknown_entity")
    if change.op == "create":
        record = await service.create(ctx, change.fields)
        return _result(change, record, "applied", [])
    if change.id is None:
        raise BadRequest(f"{change.op} needs the record id", field="id", code="required")
    if change.base_version is None:
        raise BadRequest(
            f"{change.op} needs the version it was based on",
            field="base_version",
            code="required",
        )
    current = await service.get(ctx, change.id)
    if change.op == "update":
        # A field the caller may not write is refused, naming it, whatever the merge would
        # have done with it (it must never be merged away in silence), and before its value
        # is validated (as the record service does).
        await _require_writable(ctx, service, change.fields)
    if change.base_version > current["version"]:
        raise BadRequest(
            f"base_version is ahead of the record (version {current['version']})",
            field="base_version",
            code="invalid_base_version",
        )
    async with ctx.session.transaction() as conn:
        server_fields = await fields_changed_since(
            conn,
            ctx.tenant_id,
            service.spec.name,
            current["id"],
            current["version"] - change.base_version,
            every=[c.name for c in service.table.c if c.name not in _NOT_FIELDS],
        )
    if change.op == "delete":
        return await _delete(ctx, service, change, current, server_fields, resolution)
    # Custom values merge per key, as `custom.<key>` fields (history names them so too).
    builtin, custom = split_custom(change.fields)
    sent = {**builtin, **{f"custom.{k}": v for k, v in (custom or {}).items()}}
    clean = validate_changes(service.spec.fields, builtin, creating=False)
    clean.update(await _clean_custom(ctx, service, custom or {}))
    shown = {**current, **{f"custom.{k}": v for k, v in current.get("custom", {}).items()}}
    plan = plan_update(sent, clean, shown, server_fields, resolution)
    status: Status = "merged" if plan.server_changed else "applied"
    if plan.rejected:
        return _result(change, current, "conflict", plan.conflicts)
    if not plan.write:
        return _result(change, current, status, plan.conflicts)
    record = await service.update(ctx, current["id"], plan.write, current["version"])
    return _result(change, record, status, plan.conflicts)


async def _require_writable(
    ctx: RequestContext, service: RecordService, fields: dict[str, Any]
) -> None:
    builtin, custom = split_custom(fields)
    async with ctx.session.transaction() as conn:
        access = await service.access(ctx, conn, "update")
        access.require_fields("update", set(builtin) | {f"custom.{k}" for k in custom or {}})


async def _clean_custom(
    ctx: RequestContext, service: RecordService, custom: dict[str, Any]
) -> dict[str, Any]:
    """The phone's custom values as stored (so equal values compare equal), by field name."""
    async with ctx.session.transaction() as conn:
        access = await service.access(ctx, conn, "update")
    clean: dict[str, Any] = {}
    for key, value in custom.items():
        definition = access.custom.get(key)
        if definition is None:
            raise ValidationFailed.one(
                f"custom.{key}", "unknown_field", "is not a custom field here"
            )
        stored, problem = (None, None) if value is None else clean_value(definition, value)
        if problem is not None:
            raise ValidationFailed.of([problem])
        clean[definition.name] = stored
    return clean


async def _delete(
    ctx: RequestContext,
    service: RecordService,
    change: PushedChange,
    current: Record,
    server_fields: set[str],
    resolution: Resolution,
) -> ChangeResult:
    """A delete of a record the server changed since its base version is a conflict, whatever
    changed. Each changed field the caller may read is listed; a change the caller may not see
    (a field it cannot read) is said to exist, never which field or what value."""
    resolved: Literal["server", "client", "none"] = (
        "client"
        if resolution == "client_wins"
        else "server"
        if resolution == "server_wins"
        else "none"
    )
    # `current` is masked: only fields the caller may read are in it (custom ones by name).
    shown = {**current, **{f"custom.{k}": v for k, v in current.get("custom", {}).items()}}
    conflicts = [
        FieldConflict(name, None, to_json(shown.get(name)), resolved)
        for name in sorted(server_fields)
        if name in shown and name != "custom"
    ]
    assert change.base_version is not None
    changed = current["version"] > change.base_version
    unseen = changed and (not conflicts or bool(server_fields - set(shown)))
    code = reason = None
    if unseen:
        code = "changed_unseen"
        reason = (
            f"the record changed since version {change.base_version} in fields you may not read"
        )
    if changed and resolution != "client_wins":
        return ChangeResult(
            change.client_id,
            str(current["id"]),
            "conflict",
            current["version"],
            conflicts,
            reason=reason,
            code=code,
        )
    await service.delete(ctx, current["id"], current["version"])
    status: Status = "merged" if changed else "applied"
    return ChangeResult(
        change.client_id, str(current["id"]), status, None, conflicts, reason=reason, code=code
    )


def _result(
    change: PushedChange, record: Record, status: Status, conflicts: list[FieldConflict]
) -> ChangeResult:
    return ChangeResult(
        change.client_id, str(record["id"]), status, record.get("version"), conflicts
    )


async def _store(
    conn: AsyncConnection,
    ctx: RequestContext,
    device: uuid.UUID,
    client_id: str,
    result: ChangeResult,
) -> None:
    stmt = (
        insert(_outcomes)
        .values(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            device_pk=device,
            client_id=client_id,
            result=result.as_json(),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "device_pk", "client_id"])
        .returning(_outcomes.c.id)
    )
    if (await conn.execute(stmt)).first() is None:
        raise _Replayed


async def _stored(ctx: RequestContext, device: uuid.UUID, client_id: str) -> ChangeResult | None:
    async with ctx.session.transaction() as conn:
        raw = (
            await conn.execute(
                select(_outcomes.c.result).where(
                    _outcomes.c.device_pk == device, _outcomes.c.client_id == client_id
                )
            )
        ).scalar_one_or_none()
    if raw is None:
        return None
    return ChangeResult(
        client_id=raw["client_id"],
        id=raw["id"],
        status=raw["status"],
        version=raw["version"],
        conflicts=[FieldConflict(**c) for c in raw["conflicts"]],
        reason=raw["reason"],
        code=raw["code"],
        field=raw.get("field"),
    )
