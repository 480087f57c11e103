"""Read hooks: what must also happen when records are read in bulk, declared by the packages
that care, so the record service needs to know none of them (backend/records imports nothing
from the packages built on it).

A hook runs inside the read's transaction, after the rows are fetched and before they are
returned; raising refuses the read (its transaction rolls back). The read budget is one
(backend/exports/read_hook.py, registered by backend/runtime.py's build_services).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext


@dataclass(frozen=True)
class BulkRead:
    """One bulk read by the caller of `ctx`: `rows` rows of `entity`, each with `fields`."""

    entity: str
    rows: int
    fields: tuple[str, ...]
    route: str  # "<channel>:<how>", e.g. "rest:list", "graphql:list_by", "sync:sync"


ReadHook = Callable[[RequestContext, AsyncConnection, BulkRead], Awaitable[None]]

# By name, so registering again (every build_services does) replaces rather than repeats.
_READ_HOOKS: dict[str, ReadHook] = {}


def register_read_hook(name: str, hook: ReadHook) -> None:
    _READ_HOOKS[name] = hook


def read_hook(name: str) -> ReadHook | None:
    return _READ_HOOKS.get(name)


async def after_bulk_read(ctx: RequestContext, conn: AsyncConnection, read: BulkRead) -> None:
    for hook in list(_READ_HOOKS.values()):
        await hook(ctx, conn, read)
