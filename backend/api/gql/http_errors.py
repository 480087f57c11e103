"""Request errors at /graphql as GraphQL clients read them: a JSON body
`{"errors": [{"message", "extensions": {"code"}}]}` with a sensible HTTP status (400 for a
malformed request, 405 for a method, 413, 415), never text/plain or problem+json."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException as LitestarHTTPException
from litestar.exceptions import SerializationException

from backend.db.unavailable import database_unavailable

log = logging.getLogger("caravan.graphql")

ALLOWED_METHODS = "POST"
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def request_error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    if code is None:
        code = CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_SERVER_ERROR")
    if status == 405:
        headers = {**(headers or {}), "Allow": ALLOWED_METHODS}
    return Response(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def handle_http_error(
    _: Request[Any, Any, Any], exc: LitestarHTTPException
) -> Response[dict[str, Any]]:
    """Litestar's own refusals inside the endpoint (e.g. a body over the size limit)."""
    if isinstance(exc.__cause__, SerializationException):
        return request_error(400, "Unable to parse request body as JSON")
    if exc.status_code >= 500:
        return handle_unexpected(_, exc)
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "retry-after"}
    return request_error(exc.status_code, str(exc.detail), headers=headers or None)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if database_unavailable(exc):  # before execution, e.g. checking the token's revocation
        log.warning("database unavailable before GraphQL ran: %s", exc)
        return request_error(
            503,
            "the database cannot be reached right now; retry shortly",
            "SERVICE_UNAVAILABLE",
            headers={"Retry-After": "2"},
        )
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return request_error(500, "Internal server error")


def handle_undecodable(_: Request[Any, Any, Any], __: UnicodeDecodeError) -> Response[Any]:
    return request_error(400, "Unable to parse request body as JSON")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    LitestarHTTPException: handle_http_error,
    UnicodeDecodeError: handle_undecodable,  # a body that is not UTF-8
    Exception: handle_unexpected,
}
