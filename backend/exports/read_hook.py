"""The read budget as a record-service read hook: every bulk read through RecordService
(REST list pages, GraphQL connections and nested loaders, delta sync) is charged to the
caller's budget (backend/exports/budget.py). Exports charge it themselves."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.exports.budget import charge_bulk_read
from backend.records.hooks import BulkRead, register_read_hook

READ_BUDGET = "read_budget"


async def charge_read_budget(ctx: RequestContext, conn: AsyncConnection, read: BulkRead) -> None:
    await charge_bulk_read(ctx, conn, read.entity, read.rows, read.fields, read.route)


def install_read_budget() -> None:
    """Called by build_services, so the server, the CLI and the tests all charge it."""
    register_read_hook(READ_BUDGET, charge_read_budget)
