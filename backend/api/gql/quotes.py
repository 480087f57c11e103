"""`acceptQuote`: the order made from a quote (backend/crm/quotes/accept.py), as an order
payload. Accepting twice is a payload error (`status`, code already_accepted)."""

from __future__ import annotations

from typing import Any

import strawberry

from backend.api.gql.entities import entity_types
from backend.api.gql.entities.objects import GqlInfo
from backend.api.gql.entities.roots import root_type
from backend.api.gql.payloads import payload_call
from backend.crm.quotes.accept import accept_quote

_ORDER = entity_types("order")


@strawberry.input
class AcceptQuoteInput:
    id: strawberry.ID


async def _accept(info: GqlInfo, input: AcceptQuoteInput) -> Any:
    ctx = info.context.require()
    record, errors = await payload_call(info, lambda: accept_quote(ctx, input.id))
    node = _ORDER.node(record) if record is not None else None
    return _ORDER.payload(order=node, errors=errors)


QuoteMutation = root_type(
    "QuoteMutation",
    {
        "accept_quote": strawberry.mutation(
            resolver=_accept,
            graphql_type=_ORDER.payload,
            description="Accept a quote: the order made from it (its lines copied), in one "
            "transaction. A quote is accepted once.",
        )
    },
)
