"""Accepting a quote: the order made from it (its lines copied) and the quote marked accepted,
in one transaction. A quote accepts once: again is a 409 (the quote row is locked first, so
two accepts at once make one order)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import select

from backend.context import RequestContext
from backend.crm.opportunities.service import OPPORTUNITY
from backend.crm.orders.service import orders
from backend.crm.quotes.service import ACCEPTING, QUOTE_LINE, quotes
from backend.errors import Conflict, NotFound
from backend.records.service import Record


@asynccontextmanager
async def _one_transaction(ctx: RequestContext) -> AsyncIterator[None]:
    """The service calls below share one transaction (a GraphQL operation already does)."""
    if ctx.session.in_request_scope:
        yield
        return
    async with ctx.session.request_scope():
        yield


async def accept_quote(ctx: RequestContext, quote_id: uuid.UUID | str) -> Record:
    key = quotes.parse_id(quote_id)
    async with _one_transaction(ctx):
        async with ctx.session.transaction() as conn:
            access = await quotes.access(ctx, conn, "update")
            quote = await quotes.fetch(conn, quotes.visible(ctx, access, "update"), key, lock=True)
            if quote is None:
                raise NotFound("quote not found")
            if quote["status"] in ("accepted", "rejected"):
                raise Conflict(
                    f"the quote is {quote['status']}; it cannot be accepted",
                    field="status",
                    code="already_accepted" if quote["status"] == "accepted" else "quote_rejected",
                )
            opportunities, lines = OPPORTUNITY.table, QUOTE_LINE.table
            deal = (
                (
                    await conn.execute(
                        select(opportunities.c.account_id, opportunities.c.contact_id).where(
                            opportunities.c.tenant_id == ctx.tenant_id,
                            opportunities.c.id == quote["opportunity_id"],
                        )
                    )
                )
                .mappings()
                .first()
            )
            copied = (
                await conn.execute(
                    select(
                        lines.c.product_id,
                        lines.c.quantity,
                        lines.c.unit_price,
                        lines.c.discount_percent,
                    )
                    .where(lines.c.tenant_id == ctx.tenant_id, lines.c.quote_id == key)
                    .order_by(lines.c.id)
                )
            ).mappings()
            # The quoted prices hold; each line's unit_cost comes from its product.
            order_lines = [{k: v for k, v in line.items() if v is not None} for line in copied]
        order = await orders.create(
            ctx,
            {
                "account_id": deal["account_id"] if deal else None,
                "contact_id": deal["contact_id"] if deal else None,
                "opportunity_id": quote["opportunity_id"],
                "quote_id": key,
                "ordered_at": datetime.now(UTC),
                "status": "open",
                "currency": quote["currency"],
                "lines": order_lines,
            },
        )
        token = ACCEPTING.set(True)
        try:
            await quotes.update(ctx, key, {"status": "accepted"}, quote["version"])
        finally:
            ACCEPTING.reset(token)
    return order
