"""REST for mobile sync: pull changes (`GET /api/v1/sync`), push offline edits
(`POST /api/v1/sync`), and sync devices. Parse -> service (backend/sync) -> shape."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.context import RequestContext
from backend.sync import devices
from backend.sync.push import MAX_CHANGES, PushBatch, PushedChange, push_changes
from backend.sync.service import DeviceInfo, SyncPage, pull_changes

Ctx = NamedDependency[RequestContext]
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class PushChangeBody(msgspec.Struct, forbid_unknown_fields=True):
    client_id: ClientId
    entity: str
    op: Literal["create", "update", "delete"]
    id: str | None = None
    base_version: int | None = None
    fields: dict[str, Any] = {}


class PushBody(msgspec.Struct, forbid_unknown_fields=True):
    device_id: str
    changes: Annotated[list[PushChangeBody], msgspec.Meta(max_length=MAX_CHANGES)]
    resolution: Literal["server_wins", "client_wins", "reject"] = "server_wins"


def page_body(page: SyncPage) -> dict[str, Any]:
    return {
        "changes": [
            {
                "entity": c.entity,
                "id": c.id,
                "op": c.op,
                "version": c.version,
                "record": c.record,
            }
            for c in page.changes
        ],
        "cursor": page.cursor,
        "has_more": page.has_more,
        "reset": page.reset,
    }


def _query(description: str) -> Any:
    return QueryParameter(description=description)


class SyncController(Controller):
    path = "/api/v1/sync"
    tags = ["sync"]

    @get("/", summary="Changes and tombstones since a cursor (no cursor: my working set)")
    async def pull(
        self,
        ctx: Ctx,
        cursor: Annotated[str | None, _query("the cursor of the previous answer")] = None,
        entities: Annotated[str | None, _query("e.g. contacts,accounts (default: all)")] = None,
        limit: Annotated[int | None, _query("changes per page, 1-1000 (default 500)")] = None,
        device_id: Annotated[str | None, _query("this device's id: records its sync state")] = None,
        device_name: Annotated[str | None, _query("shown in the device list")] = None,
        platform: Annotated[str | None, _query("e.g. ios, android")] = None,
    ) -> dict[str, Any]:
        device = None if device_id is None else DeviceInfo(device_id, device_name, platform)
        page = await pull_changes(ctx, cursor=cursor, entities=entities, limit=limit, device=device)
        return page_body(page)

    @post("/", summary="Push offline edits: per-change and per-field results", status_code=200)
    async def push(self, ctx: Ctx, data: JSONBody[PushBody]) -> dict[str, Any]:
        batch = PushBatch(
            device_id=data.device_id,
            resolution=data.resolution,
            changes=[
                PushedChange(c.client_id, c.entity, c.op, c.id, c.base_version, dict(c.fields))
                for c in data.changes
            ],
        )
        results = await push_changes(ctx, batch)
        return {"device_id": data.device_id, "results": [r.as_json() for r in results]}


class SyncDevicesController(Controller):
    path = "/api/v1/devices"
    tags = ["sync"]

    @get("/", summary="My syncing devices: last cursor, last pull and push")
    async def mine(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": [asdict(d) for d in await devices.my_sync_devices(ctx)]}

    @delete("/{device:uuid}", summary="Forget one of my syncing devices", status_code=204)
    async def forget(self, ctx: Ctx, device: FromPath[uuid.UUID]) -> None:
        await devices.forget_device(ctx, device)


class UserSyncDevicesController(Controller):
    path = "/api/v1/users/{user_id:uuid}/devices"
    tags = ["sync"]

    @get("/", summary="A user's syncing devices (admins)")
    async def of_user(self, ctx: Ctx, user_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        return {"items": [asdict(d) for d in await devices.user_sync_devices(ctx, user_id)]}


SYNC_CONTROLLERS = [SyncController, SyncDevicesController, UserSyncDevicesController]
