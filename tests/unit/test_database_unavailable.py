"""Which errors mean "the database cannot be reached right now" (503, retry) rather than a
bug (500), including the shape Litestar gives a dependency's error."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError

from backend.db.unavailable import database_unavailable


def _driver_error() -> DBAPIError:
    """What SQLAlchemy raises when connecting to a server that is starting up: a DBAPIError
    whose `orig` is the dialect's adapted error, itself raised from asyncpg's."""
    adapted = RuntimeError("the database system is starting up")
    adapted.__cause__ = asyncpg.exceptions.CannotConnectNowError("starting up")
    try:
        raise DBAPIError("connect", None, adapted) from adapted
    except DBAPIError as error:
        return error


def test_a_dependency_error_re_raised_from_its_task_group_is_recognised() -> None:
    error = _driver_error()
    group = ExceptionGroup("unhandled errors in a TaskGroup", [error])
    # Litestar: `raise excgroup.exceptions[0] from excgroup` (the cause now points back).
    try:
        try:
            raise group
        except ExceptionGroup as caught:
            raise caught.exceptions[0] from caught
    except DBAPIError as reraised:
        assert reraised.__cause__ is group
        assert database_unavailable(reraised)
        assert database_unavailable(group)


def test_a_cycle_of_causes_ends_and_a_plain_bug_is_not_unavailable() -> None:
    first, second = ValueError("a"), KeyError("b")
    first.__cause__, second.__cause__ = second, first
    assert not database_unavailable(first)
    group = ExceptionGroup("g", [first])
    first.__context__ = group
    assert not database_unavailable(group)
