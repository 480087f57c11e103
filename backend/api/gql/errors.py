"""Domain errors as GraphQL errors: `extensions.code` (FORBIDDEN, NOT_FOUND, UNAUTHENTICATED,
BAD_USER_INPUT, ...) and `extensions.field`; unexpected errors are masked."""

from __future__ import annotations

import logging
import re

from graphql.error import GraphQLError

from backend.db.unavailable import database_unavailable
from backend.errors import CaravanError, FieldProblem

log = logging.getLogger("caravan.graphql")

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
# List parameters are named differently in the two skins.
_ARGUMENT_NAMES = {"limit": "first", "q": "filter.q", "updated_since": "filter.updatedSince"}


CUSTOM_PREFIX = "custom."


def camel(name: str) -> str:
    """A snake_case field name as GraphQL spells it. A custom field's key (`custom.<key>`) is
    the tenant's own and stays as defined: it is what `customField(key)` and `custom` take."""
    if name.startswith(CUSTOM_PREFIX):
        return name
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def graphql_field(name: str | None) -> str | None:
    if name is None:
        return None
    return _ARGUMENT_NAMES.get(name) or camel(name)


def payload_problems(exc: CaravanError) -> list[FieldProblem]:
    problems = exc.problems or [FieldProblem(exc.field or "input", exc.code, exc.detail)]
    return [FieldProblem(graphql_field(p.field) or "input", p.code, p.message) for p in problems]


def _convert(error: GraphQLError) -> GraphQLError:
    """One error as the client sees it: always with `extensions.code`, never a stack trace."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        # About the request itself: its syntax, its fit to the schema (depth, aliases, unknown
        # fields), or variables that do not fit it.
        if original is not None:
            code = "BAD_USER_INPUT"
        elif error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        extensions = {"code": code, **(error.extensions or {})}
        # No "Did you mean ...?" anywhere (Strawberry turns off only the field suggestions).
        message = _SUGGESTION.sub("", error.message)
    elif isinstance(original, CaravanError):
        extensions = {"code": original.graphql_code, "reason": original.code}
        retry_after = getattr(original, "retry_after", None)
        if isinstance(retry_after, int):  # throttled: when to come back (REST: Retry-After)
            extensions["retryAfter"] = retry_after
        field = graphql_field(original.field)
        if field is not None:
            extensions["field"] = field
        message = original.detail
    elif database_unavailable(original):  # a restart or an outage: retry, not a bug (REST: 503)
        log.warning("database unavailable in GraphQL: %s", original)
        extensions = {
            "code": "SERVICE_UNAVAILABLE",
            "reason": "database_unavailable",
            "retryAfter": 2,
        }
        message = "the database cannot be reached right now; retry shortly"
    else:
        log.error("unhandled GraphQL error", exc_info=original)
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
        message = "Internal server error"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def convert_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    return [_convert(e) for e in errors]
