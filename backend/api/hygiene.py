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


def secure_headers(headers: RawHeaders, scope: Scope, *, trust_proxy: bool) -> RawHeaders:
    """The response's raw header list with the headers above added and `Server` removed."""
    kept: RawHeaders = []
    present: dict[bytes, bytes] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"server":
            continue
        present[lowered] = value
        kept.append((name, value))
    for name, value in _ALWAYS:
        if name not in present:
            kept.append((name, value))
    if _request_header(scope, b"authorization") is not None:
        cache = present.get(b"cache-control")
        if cache is None or b"no-store" not in cache.lower():
            kept = [(k, v) for k, v in kept if k.lower() != b"cache-control"]
            kept.append((b"cache-control", b"no-store"))
        vary = present.get(b"vary")
        if vary is None:
            kept.append((b"vary", b"Authorization"))
        elif b"authorization" not in vary.lower():
            kept = [(k, v) for k, v in kept if k.lower() != b"vary"]
            kept.append((b"vary", vary + b", Authorization"))
    if present.get(b"content-type", b"").lower().startswith(b"text/html"):
        if b"content-security-policy" not in present:
            kept.append((b"content-security-policy", HTML_CSP.encode()))
        if b"x-frame-options" not in present:
            kept.append((b"x-frame-options", b"DENY"))
    if b"strict-transport-security" not in present and over_https(scope, trust_proxy):
        kept.append((b"strict-transport-security", HSTS.encode()))
    return kept


def security_headers_hook(*, trust_proxy: bool) -> BeforeMessageSendHookHandler:
    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        start = cast(dict[str, Any], message)
        headers = list(start.get("headers") or [])
        start["headers"] = secure_headers(headers, scope, trust_proxy=trust_proxy)

    return hook
