"""Several record-service calls that commit together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from asyncpg.exceptions import DeadlockDetectedError
from sqlalchemy.exc import DBAPIError

from backend.context import RequestContext
from backend.records.service import write_conflict


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


@contextmanager
def deadlock_as_conflict() -> Iterator[None]:
    """Statements outside the record service's writes (locks, re-pointing links): a deadlock
    PostgreSQL broke by aborting this transaction is a 409 `write_conflict` to retry, not a
    server error."""
    try:
        yield
    except DBAPIError as exc:
        if isinstance(getattr(exc.orig, "__cause__", None), DeadlockDetectedError):
            raise write_conflict() from None
        raise
