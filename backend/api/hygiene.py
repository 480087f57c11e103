"""Response headers every answer gets, set once for the whole app (a `before_send` hook, so
404s, 405s and answers written by middleware get them too):

- `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on all;
- `Cache-Control: no-store` and `Vary: Authorization` on every answer to a request that
  carried credentials (an ETag stays: a client may still revalidate what it kept itself);
- a restrictive Content-Security-Policy (only 'self') and `X-Frame-Options: DENY` on HTML
  pages that do not set their own;
- `Strict-Transport-Security` when the request came over HTTPS, or, with CARAVAN_TRUST_PROXY
  on, when the proxy in front says so in `X-Forwarded-Proto`;
- no `Server` header (uvicorn's is turned off where it is started: backend/cli.py).
"""

from __future__ import annotations

from typing import Any, cast

from litestar.types import BeforeMessageSendHookHandler, Message, Scope

HSTS = "max-age=31536000"
HTML_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))

RawHeaders = list[tuple[bytes, bytes]]


def _get(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _set(headers: RawHeaders, name: bytes, value: bytes) -> None:
    headers[:] = [(k, v) for k, v in headers if k.lower() != name]
    headers.append((name, value))


def _request_header(scope: Scope, name: bytes) -> bytes | None:
    return _get(cast(RawHeaders, scope.get("headers", [])), name)


def over_https(scope: Scope, trust_proxy: bool) -> bool:
    if cast(dict[str, Any], scope).get("scheme") == "https":
        return True
    if not trust_proxy:
        return False
    forwarded = _request_header(scope, b"x-forwarded-proto")
    # The first entry is what the client used (each proxy appends its own).
    return forwarded is not None and forwarded.split(b",")[0].strip().lower() == b"https"


def _no_store(headers: RawHeaders) -> None:
    current = _get(headers, b"cache-control")
    if current is None or b"no-store" not in current.lower():
        _set(headers, b"cache-control", b"no-store")
    vary = _get(headers, b"vary")
    if vary is None:
        _set(headers, b"vary", b"Authorization")
    elif b"authorization" not in vary.lower():
        _set(headers, b"vary", vary + b", Authorization")


def secure_headers(headers: RawHeaders, scope: Scope, *, trust_proxy: bool) -> None:
    """Adds and removes the headers above in a response's raw header list."""
    headers[:] = [(k, v) for k, v in headers if k.lower() != b"server"]
    for name, value in _ALWAYS:
        if _get(headers, name) is None:
            headers.append((name, value))
    if _request_header(scope, b"authorization") is not None:
        _no_store(headers)
    content_type = _get(headers, b"content-type") or b""
    if content_type.lower().startswith(b"text/html"):
        if _get(headers, b"content-security-policy") is None:
            headers.append((b"content-security-policy", HTML_CSP.encode()))
        if _get(headers, b"x-frame-options") is None:
            headers.append((b"x-frame-options", b"DENY"))
    if over_https(scope, trust_proxy) and _get(headers, b"strict-transport-security") is None:
        headers.append((b"strict-transport-security", HSTS.encode()))


def security_headers_hook(*, trust_proxy: bool) -> BeforeMessageSendHookHandler:
    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        start = cast(dict[str, Any], message)
        headers = list(start.get("headers") or [])
        secure_headers(headers, scope, trust_proxy=trust_proxy)
        start["headers"] = headers

    return hook
