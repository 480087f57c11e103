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
    """Walks everything the error came from: causes, contexts, the driver's original error
    and a task group's members (Litestar re-raises a dependency's error `from` its task group,
    replacing the error's own cause: the driver's error is then only in its context)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
        if isinstance(current, BaseExceptionGroup):  # dependencies resolved in a task group
            todo.extend(current.exceptions)
        origin = current.orig if isinstance(current, DBAPIError) else None
        todo.extend(
            e
            for e in (current.__cause__, current.__context__, origin)
            if isinstance(e, BaseException)
        )
    return False
