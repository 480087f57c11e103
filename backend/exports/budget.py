"""One exfiltration budget per user: rows (and rows x fields) read in bulk per window.

Every bulk read charges it — REST list pages, GraphQL connections and nested loaders (through
RecordService), exports, and delta sync — with ONE statement: an upsert that returns the new
totals and the tenant's limits. Past a limit the read is refused (429 with Retry-After, code
BULK_READ_THROTTLED) and one audit event is written per throttle episode (user and window),
not one per refused request. Single-record gets are not charged.

The counter is kept in slots, one per database connection slot (the backend's pid modulo
SLOTS): the upsert locks only this connection's row until COMMIT, so one user's concurrent
pages on other connections do not queue behind it (one row per user made them wait for each
other's whole transaction). The total is this slot plus the other slots' committed counts, so
reads in flight at the same moment on other connections are not yet seen: the budget can be
overrun by at most what one user has in flight at once (one page per pooled connection).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.errors import CaravanError
from backend.exports.rules import BulkReadBudget
from backend.history.events import EventType, record_event

_DEFAULT = BulkReadBudget()

# The tenant's budget (or the defaults), the current fixed window, and the charge, in one go.
# {durability}: a list page is otherwise a read-only transaction, whose commit needs no WAL
# flush; making it wait for one just for a counter would double the cost of a page. So the
# charge commits asynchronously (a crash may forget the last moments of read counts, never a
# record or an audit event) — except for exports, whose transaction writes audit rows.
_CHARGE_SQL = """
    WITH durability AS (
        SELECT {durability} AS setting
    ), cfg AS (
        SELECT coalesce((r.rules->'bulk_read'->>'window_seconds')::int, :dw) AS w,
               coalesce((r.rules->'bulk_read'->>'rows')::bigint, :drows) AS max_rows,
               coalesce((r.rules->'bulk_read'->>'cells')::bigint, :dcells) AS max_cells
        FROM (SELECT 1) AS one
        LEFT JOIN export_rules AS r ON r.tenant_id = :tenant_id
    ), win AS (
        SELECT to_timestamp(floor(extract(epoch FROM now()) / w) * w) AS start, * FROM cfg
    ), slot AS (
        SELECT (pg_backend_pid() % {slots})::smallint AS n
    ), charged AS (
        INSERT INTO bulk_read_usage AS u (tenant_id, user_id, slot, window_start, rows, cells)
        SELECT :tenant_id, :user_id, slot.n, win.start, :rows, :cells FROM win, slot
        ON CONFLICT (tenant_id, user_id, slot) DO UPDATE SET
            rows = CASE WHEN u.window_start = excluded.window_start
                        THEN u.rows + excluded.rows ELSE excluded.rows END,
            cells = CASE WHEN u.window_start = excluded.window_start
                         THEN u.cells + excluded.cells ELSE excluded.cells END,
            window_start = excluded.window_start
        RETURNING u.rows, u.cells, u.window_start
    ), others AS (
        SELECT coalesce(sum(o.rows), 0)::bigint AS rows, coalesce(sum(o.cells), 0)::bigint AS cells
        FROM bulk_read_usage AS o, win, slot
        WHERE o.tenant_id = :tenant_id AND o.user_id = :user_id
          AND o.slot <> slot.n AND o.window_start = win.start
    )
    SELECT charged.rows + others.rows AS rows, charged.cells + others.cells AS cells,
           charged.window_start, win.w, win.max_rows, win.max_cells
    FROM charged, others, win, durability
"""
SLOTS = 64  # more than a server's pool holds, so two busy connections rarely share a slot
_CHARGE = text(
    _CHARGE_SQL.format(durability="set_config('synchronous_commit', 'off', true)", slots=SLOTS)
)
_CHARGE_DURABLE = text(_CHARGE_SQL.format(durability="NULL", slots=SLOTS))
DURABLE_ROUTES = frozenset({"export"})

# One event per (user, window): serialised per user, skipped when the window has one.
_EPISODE_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_EPISODE_SEEN = text(
    """
    SELECT 1 FROM security_events
    WHERE tenant_id = :tenant_id AND type = :type AND actor_user_id = :user_id
      AND details->>'window_start' = :window_start
    LIMIT 1
    """
)


class BulkReadThrottled(CaravanError):
    status = 429
    code = "BULK_READ_THROTTLED"
    title = "Too many records read"
    graphql_code = "BULK_READ_THROTTLED"

    def __init__(self, retry_after: int, route: str) -> None:
        super().__init__(
            f"you have read more records than your tenant allows in this period ({route}); "
            f"try again in {retry_after} seconds",
            field="limit",
        )
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
        self.extra = {"retry_after": retry_after}


async def charge_bulk_read(
    ctx: RequestContext,
    conn: AsyncConnection,
    entity: str,
    rows: int,
    fields: Sequence[str],
    route: str,
) -> None:
    """Charge `rows` rows of `entity` (with `fields` each) read through `route` to the caller's
    budget, in the caller's transaction; BulkReadThrottled when it is spent (that read's
    transaction rolls back, so a refused read is not charged).

    Inside a GraphQL operation (one transaction that an error anywhere rolls back while the
    fields that resolved are still returned) an allowed charge is replayed after a rollback,
    so a failing sibling field cannot make reads free. Both that and the throttle's audit
    event wait until the request's connection is back in the pool."""
    if rows <= 0:
        return
    params = {
        "tenant_id": ctx.tenant_id,
        "user_id": ctx.user_id,
        "rows": rows,
        "cells": rows * max(1, len(fields)),
        "dw": _DEFAULT.window_seconds,
        "drows": _DEFAULT.rows,
        "dcells": _DEFAULT.cells,
    }
    statement = _CHARGE_DURABLE if route in DURABLE_ROUTES else _CHARGE
    usage = (await conn.execute(statement, params)).one()
    if usage.rows <= usage.max_rows and usage.cells <= usage.max_cells:
        if ctx.session.in_request_scope:

            async def replay(rolled_back: bool) -> None:
                if rolled_back:
                    async with ctx.db.tenant_transaction(ctx.tenant_id) as own:
                        await own.execute(statement, params)

            ctx.session.after_release(replay)
        return
    window_end = usage.window_start.timestamp() + usage.w
    retry_after = max(1, math.ceil(window_end - datetime.now(UTC).timestamp()))

    async def audit(_: bool) -> None:
        await _record_episode(ctx, entity, route, rows, fields, usage)

    if not ctx.session.after_release(audit):
        await audit(True)  # called outside this context's own transactions
    raise BulkReadThrottled(retry_after, route)


async def _record_episode(
    ctx: RequestContext,
    entity: str,
    route: str,
    rows: int,
    fields: Sequence[str],
    usage: Row[Any],
) -> None:
    """The audit event for this throttle episode, in its own transaction (the refused read
    rolls back), unless this user's current window already has one."""
    window_start = usage.window_start.isoformat()
    async with ctx.db.tenant_transaction(ctx.tenant_id) as conn:
        await conn.execute(_EPISODE_LOCK, {"key": f"bulk-read:{ctx.tenant_id}:{ctx.user_id}"})
        seen = await conn.execute(
            _EPISODE_SEEN,
            {
                "tenant_id": ctx.tenant_id,
                "type": str(EventType.BULK_READ_THROTTLED),
                "user_id": ctx.user_id,
                "window_start": window_start,
            },
        )
        if seen.first() is not None:
            return
        await record_event(
            conn,
            ctx.tenant_id,
            EventType.BULK_READ_THROTTLED,
            outcome="denied",
            actor_user_id=ctx.user_id,
            actor_client_id=ctx.principal.client_id,
            request_id=ctx.request_id,
            channel=ctx.channel,
            details={
                "entity": entity,
                "route": route,
                "rows": rows,
                "fields": len(fields),
                "window_start": window_start,
                "rows_in_window": usage.rows,
                "max_rows": usage.max_rows,
                "outcome": "throttled",
            },
        )
