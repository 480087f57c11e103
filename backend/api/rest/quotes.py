"""POST /api/v1/quotes/{id}/accept: the order made from a quote (backend/crm/quotes/accept.py)."""

from __future__ import annotations

from typing import Any

from litestar import Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from backend.api.rest.records import etag
from backend.context import RequestContext
from backend.crm.quotes.accept import accept_quote


@post(
    "/api/v1/quotes/{quote_id:str}/accept",
    summary="Accept a quote: the order made from it (lines copied), in one transaction",
    tags=["quotes"],
    status_code=201,
)
async def accept(ctx: NamedDependency[RequestContext], quote_id: FromPath[str]) -> Response[Any]:
    order = await accept_quote(ctx, quote_id)
    return Response(
        order,
        status_code=201,
        headers={"ETag": etag(order), "Location": f"/api/v1/orders/{order['id']}"},
    )
