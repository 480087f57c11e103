"""Whether an error means the database cannot be reached right now (restarting, down, the
connection cut): the request may succeed on a retry, so it is a 503, not a server bug."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError

# Class 08 (connection exceptions) and 57P01-57P03 (admin shutdown, crash shutdown, cannot
# connect now); not 57014 (a cancelled query is the request's own doing).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted (not any OSError: a full disk is not this)
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


def database_unavailable(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):  # dependencies resolved in a task group
            return any(database_unavailable(inner) for inner in current.exceptions)
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
