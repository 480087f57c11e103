"""The one mutation wrapper: which errors become payload errors, for every GraphQL mutation.

A mutation answers a payload `{<record>, record, errors {field code message}}`. Problems with the
input itself go into `errors`, named by the field at fault (camelCase), and the operation's
transaction is rolled back (backend/api/gql/transaction.py):
  - ValidationFailed (a field's value),
  - Conflict (the input collides with current state: a duplicate, a referenced row in use),
  - PreconditionFailed (the `version` given is no longer current).
Everything else is a top-level GraphQL error with extensions.code: not signed in, forbidden,
not found, throttled, and unexpected errors (masked). Both skins agree: REST answers the same
exceptions with 422, 409 and 412 problems."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.errors import payload_problems
from backend.errors import Conflict, FieldProblem, PreconditionFailed, ValidationFailed

GqlInfo = Info[GraphQLContext, None]
T = TypeVar("T")
PAYLOAD_ERRORS = (ValidationFailed, Conflict, PreconditionFailed)


@strawberry.type
class FieldError:
    field: str
    code: str
    message: str

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> list[FieldError]:
        return [cls(field=p.field, code=p.code, message=p.message) for p in problems]


async def payload_call(
    info: GqlInfo, write: Callable[[], Awaitable[T]]
) -> tuple[T | None, list[FieldError]]:
    """Run one mutation's write: its result and no errors, or None and the payload errors."""
    try:
        return await write(), []
    except PAYLOAD_ERRORS as exc:
        info.context.require().session.rollback_only = True
        return None, FieldError.of(payload_problems(exc))
