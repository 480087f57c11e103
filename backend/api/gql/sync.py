"""GraphQL for mobile sync: `sync` (changes and tombstones since a cursor), `pushChanges`
(offline edits with per-field results) and `syncDevices`. The same services as REST
(backend/sync). Records and pushed fields are JSON objects shaped as REST shows them
(snake_case field names), so a phone can mix both skins."""

from __future__ import annotations

import enum
from dataclasses import asdict
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.errors import BadRequest
from backend.history.changes import to_json
from backend.sync import devices
from backend.sync.push import ChangeResult, PushBatch, PushedChange, push_changes
from backend.sync.service import DeviceInfo, pull_changes

GqlInfo = Info[GraphQLContext, None]


@strawberry.enum
class SyncOp(enum.Enum):
    UPSERT = "upsert"
    DELETE = "delete"


@strawberry.enum
class ChangeOp(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@strawberry.enum
class SyncResolution(enum.Enum):
    SERVER_WINS = "server_wins"
    CLIENT_WINS = "client_wins"
    REJECT = "reject"


@strawberry.enum
class ChangeStatus(enum.Enum):
    APPLIED = "applied"
    MERGED = "merged"
    CONFLICT = "conflict"
    REFUSED = "refused"


@strawberry.type
class SyncChange:
    entity: str = strawberry.field(description="The collection, e.g. contacts")
    id: strawberry.ID
    op: SyncOp
    version: int | None
    record: JSON | None = strawberry.field(
        description="The record as you may see it (masked); null for a tombstone"
    )


@strawberry.type
class SyncPage:
    changes: list[SyncChange]
    cursor: str = strawberry.field(description="Pass it back for the next page or sync")
    has_more: bool
    reset: bool = strawberry.field(
        description="A new working set follows: drop the local copy before applying changes"
    )


@strawberry.type
class FieldConflict:
    field: str
    client_value: JSON | None
    server_value: JSON | None
    resolved: str = strawberry.field(description="server, client, or none (rejected)")


@strawberry.type
class PushChangeResult:
    client_id: str
    id: strawberry.ID | None
    status: ChangeStatus
    version: int | None
    conflicts: list[FieldConflict]
    reason: str | None
    code: str | None
    field: str | None

    @classmethod
    def of(cls, result: ChangeResult) -> PushChangeResult:
        return cls(
            client_id=result.client_id,
            id=None if result.id is None else strawberry.ID(result.id),
            status=ChangeStatus(result.status),
            version=result.version,
            conflicts=[FieldConflict(**c.as_json()) for c in result.conflicts],
            reason=result.reason,
            code=result.code,
            field=result.field,
        )


@strawberry.type
class PushChangesPayload:
    device_id: str
    results: list[PushChangeResult]


@strawberry.input
class PushChangeInput:
    client_id: str
    entity: str
    op: ChangeOp
    id: strawberry.ID | None = None
    base_version: int | None = None
    fields: JSON | None = None


@strawberry.input
class PushChangesInput:
    device_id: str
    changes: list[PushChangeInput]
    resolution: SyncResolution = SyncResolution.SERVER_WINS


@strawberry.type
class SyncDevice:
    id: strawberry.ID
    device_id: str
    user_id: strawberry.ID
    name: str | None
    platform: str | None
    session_id: strawberry.ID | None
    cursor: str | None
    last_pull_at: datetime | None
    last_push_at: datetime | None
    last_seen_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, state: devices.DeviceState) -> SyncDevice:
        values = asdict(state)
        for key in ("id", "user_id", "session_id"):
            values[key] = None if values[key] is None else strawberry.ID(str(values[key]))
        return cls(**values)


@strawberry.type
class SyncQuery:
    @strawberry.field(description="Changes and tombstones since `cursor` (none: working set)")  # type: ignore[untyped-decorator]
    async def sync(
        self,
        info: GqlInfo,
        cursor: str | None = None,
        entities: list[str] | None = None,
        first: int | None = None,
        device_id: str | None = None,
    ) -> SyncPage:
        ctx = info.context.require()
        page = await pull_changes(
            ctx,
            cursor=cursor,
            entities=None if entities is None else ",".join(entities) or None,
            limit=first,
            device=None if device_id is None else DeviceInfo(device_id),
        )
        return SyncPage(
            changes=[
                SyncChange(
                    entity=c.entity,
                    id=strawberry.ID(str(c.id)),
                    op=SyncOp(c.op),
                    version=c.version,
                    record=None if c.record is None else to_json(c.record),
                )
                for c in page.changes
            ],
            cursor=page.cursor,
            has_more=page.has_more,
            reset=page.reset,
        )

    @strawberry.field(description="My syncing devices")  # type: ignore[untyped-decorator]
    async def sync_devices(self, info: GqlInfo) -> list[SyncDevice]:
        ctx = info.context.require()
        return [SyncDevice.of(d) for d in await devices.my_sync_devices(ctx)]


@strawberry.type
class SyncMutation:
    @strawberry.mutation(description="Push offline edits; per-change and per-field results")  # type: ignore[untyped-decorator]
    async def push_changes(self, info: GqlInfo, input: PushChangesInput) -> PushChangesPayload:
        ctx = info.context.require()
        # Each change commits on its own (see backend/sync/push.py), so it cannot share the
        # document's all-or-nothing transaction with other mutations.
        if len(info.operation.selection_set.selections) > 1:
            raise BadRequest(
                "pushChanges must be the only mutation in its document",
                field="pushChanges",
                code="push_not_alone",
            )
        batch = PushBatch(
            device_id=input.device_id,
            resolution=input.resolution.value,
            changes=[
                PushedChange(
                    client_id=c.client_id,
                    entity=c.entity,
                    op=c.op.value,
                    id=None if c.id is None else str(c.id),
                    base_version=c.base_version,
                    fields=_fields(c.fields),
                )
                for c in input.changes
            ],
        )
        results = await push_changes(ctx, batch)
        return PushChangesPayload(
            device_id=input.device_id, results=[PushChangeResult.of(r) for r in results]
        )


def _fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("fields must be an object", field="fields", code="invalid_fields")
    return dict(value)
