"""Several record-service calls that commit together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.context import RequestContext


@asynccontextmanager
async def all_or_nothing(ctx: RequestContext) -> AsyncIterator[None]:
    """One transaction for every service call inside (each still checks policy and writes
    history as usual); an error anywhere rolls all of them back. Inside a GraphQL operation
    (already one transaction) it adds nothing."""
    if ctx.session.in_request_scope:
        yield
        return
    async with ctx.session.request_scope():
        yield
