"""Every error leaves the REST API as application/problem+json (RFC 9457) with a `code`, and a
`field` where one field is at fault. Unexpected errors are logged and answered with a bare 500."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from backend.db.unavailable import database_unavailable
from backend.errors import CaravanError

log = logging.getLogger("caravan.api")
PROBLEM_JSON = "application/problem+json"
_MSGSPEC_PATH = re.compile(r"at `\$\.([A-Za-z0-9_]+)")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_BODY_PARAMETER = "data"  # the handlers' request-body parameter: the client knows it as the body


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    field: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        **(extra or {}),
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


def bearer_challenge(request: Request[Any, Any, Any], status: int) -> str | None:
    """The RFC 6750 challenge for a 401 or 403: `Bearer` alone when no access token was sent
    (e.g. a failed sign-in), `error="invalid_token"` when the one sent was refused, and
    `error="insufficient_scope"` when a valid token does not allow the request."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    sent = scheme.lower() == "bearer" and bool(token.strip())
    if status == 401:
        return 'Bearer error="invalid_token"' if sent else "Bearer"
    if status == 403 and sent:
        return 'Bearer error="insufficient_scope"'
    return None


def handle_domain_error(
    request: Request[Any, Any, Any], exc: CaravanError
) -> Response[dict[str, Any]]:
    errors = [{"field": p.field, "code": p.code, "message": p.message} for p in exc.problems]
    # Extension members and headers some errors carry (e.g. mfa_token; Retry-After on a 429).
    headers: dict[str, str] = dict(getattr(exc, "headers", None) or {})
    challenge = bearer_challenge(request, exc.status)
    if challenge is not None:
        headers["WWW-Authenticate"] = challenge
    extra = getattr(exc, "extra", None)
    return problem(
        exc.status, exc.code, exc.title, exc.detail, exc.field, errors, headers or None, extra
    )


def _field_of(message: str, key: Any) -> str | None:
    unknown = _UNKNOWN_FIELD.search(message) or _MISSING_FIELD.search(message)
    if unknown:
        return unknown.group(1)
    path = _MSGSPEC_PATH.search(message)
    if path:
        return path.group(1)
    if not key or key == _BODY_PARAMETER:
        return None
    return re.split(r"[.\[]", str(key))[0]  # `tags[1]` -> the field `tags`


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
        if _MISSING_FIELD.search(message):
            code = "required"
        if item.get("key") == _BODY_PARAMETER and message == repr(_BODY_PARAMETER):
            # No body at all (Litestar reports the missing parameter by its name).
            code, message = "missing_body", "a JSON object body is required"
        errors.append({"field": field or "body", "code": code, "message": message})
    if not errors:
        detail = str(exc.detail)
        if "JSON" in detail or "decode" in detail.lower() or "malformed" in detail.lower():
            return malformed_json()
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


def handle_http_error(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
    }
    headers = {k: v for k, v in (exc.headers or {}).items()}
    challenge = bearer_challenge(request, exc.status_code)
    if challenge is not None:
        headers.setdefault("WWW-Authenticate", challenge)
    if isinstance(exc.__cause__, SerializationException):
        return malformed_json()  # Litestar could not decode the body
    return problem(
        exc.status_code,
        code.get(exc.status_code, "http_error"),
        str(exc.detail) if exc.status_code < 500 else "Server error",
        str(exc.detail),
        field="body" if exc.status_code == 413 else None,
        headers=headers or None,
    )


def malformed_json(*_: Any) -> Response[dict[str, Any]]:
    return problem(400, "malformed_json", "Bad request", "the body is not valid JSON", "body")


def handle_recursion(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """msgspec gives up on absurdly nested JSON with a RecursionError: a bad body, not a bug."""
    if "deserializing" in str(exc) or "decoding" in str(exc):
        return problem(
            400, "nested_too_deeply", "Bad request", "the JSON body is nested too deeply", "body"
        )
    return handle_unexpected(request, exc)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if database_unavailable(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return problem(
            503,
            "database_unavailable",
            "Service unavailable",
            "the database cannot be reached right now; retry shortly",
            headers={"Retry-After": "2"},
        )
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
    # Litestar decodes a JSON body as UTF-8 without catching this: invalid bytes are a bad body.
    UnicodeDecodeError: malformed_json,
    RecursionError: handle_recursion,
    Exception: handle_unexpected,
}
