"""Delta sync as the skins call it: parse the request's cursor and entities, read one page of
changes in one tenant transaction, and record the device's sync state in the same one."""

from __future__ import annotations

from dataclasses import dataclass

from backend.context import RequestContext
from backend.errors import BadRequest
from backend.sync import cursor as cursors
from backend.sync.devices import check_device_id, touch_device
from backend.sync.entities import parse_entities
from backend.sync.pull import DEFAULT_LIMIT, MAX_LIMIT, Change, read_changes


@dataclass(frozen=True)
class SyncPage:
    changes: list[Change]
    cursor: str  # send it back as `cursor` for the next page (or the next sync)
    has_more: bool  # another page follows at once: ask again with the new cursor
    reset: bool  # a new working set follows: drop the local copy before applying


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    name: str | None = None
    platform: str | None = None


async def pull_changes(
    ctx: RequestContext,
    *,
    cursor: str | None,
    entities: str | None,
    limit: int | None,
    device: DeviceInfo | None = None,
) -> SyncPage:
    position = None if cursor is None else cursors.decode(cursor)
    names = parse_entities(entities)
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise BadRequest(f"limit: 1-{MAX_LIMIT}", field="limit", code="invalid_limit")
    if device is not None:
        check_device_id(device.device_id)
    async with ctx.session.transaction() as conn:
        page = await read_changes(ctx, conn, names, position, size)
        token = cursors.encode(page.cursor)
        if device is not None:
            await touch_device(
                ctx,
                conn,
                device.device_id,
                cursor=token,
                name=device.name,
                platform=device.platform,
            )
    return SyncPage(page.changes, token, page.has_more, page.reset)
