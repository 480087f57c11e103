"""Every error leaves the REST API as application/problem+json (RFC 9457) with a `code`, and a
`field` where one field is at fault. Unexpected errors are logged and answered with a bare 500."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from backend.errors import CaravanError

log = logging.getLogger("caravan.api")
PROBLEM_JSON = "application/problem+json"
_MSGSPEC_PATH = re.compile(r"at `\$\.([A-Za-z0-9_]+)")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    field: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "status": status,
        "title": title,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def handle_domain_error(_: Request[Any, Any, Any], exc: CaravanError) -> Response[dict[str, Any]]:
    errors = [{"field": p.field, "code": p.code, "message": p.message} for p in exc.problems]
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.code, exc.title, exc.detail, exc.field, errors, headers)


def _field_of(message: str, key: Any) -> str | None:
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        return unknown.group(1)
    path = _MSGSPEC_PATH.search(message)
    if path:
        return path.group(1)
    return str(key) if key else None


def handle_validation_error(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Litestar's own decoding errors: malformed JSON, wrong types, unknown fields, bad params."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        field = _field_of(message, item.get("key"))
        code = "unknown_field" if "unknown field" in message else "invalid_value"
        if "Expected" in message:
            code = "invalid_type"
        errors.append({"field": field or "body", "code": code, "message": message})
    if not errors:
        detail = str(exc.detail)
        if "JSON" in detail or "decode" in detail.lower() or "malformed" in detail.lower():
            return problem(
                400, "malformed_json", "Bad request", "the body is not valid JSON", "body"
            )
        errors.append({"field": "body", "code": "invalid_value", "message": detail})
    first = errors[0]
    return problem(
        400,
        first["code"],
        "Bad request",
        "; ".join(e["message"] for e in errors),
        first["field"],
        errors,
    )


def handle_http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
    }
    headers = {k: v for k, v in (exc.headers or {}).items()}
    return problem(
        exc.status_code,
        code.get(exc.status_code, "http_error"),
        str(exc.detail) if exc.status_code < 500 else "Server error",
        str(exc.detail),
        headers=headers or None,
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal_error",
        "Server error",
        "the server could not complete the request",
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    CaravanError: handle_domain_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
