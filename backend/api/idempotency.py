"""Idempotency-Key on every POST (REST, and GraphQL: the same header, or
`extensions.idempotencyKey` in the request body).

A repeat of a request with the same key by the same user within 24 hours gets the original
status, body and the headers that matter (Location, ETag, Content-Type), marked
`Idempotent-Replayed: true`, and runs nothing. The same key on a different request (method,
path, query or body) is 422 `idempotency_key_reused`; a repeat while the first one is still
running is 409 `idempotency_in_progress`. A request without a valid bearer token passes
through untouched (the API answers it 401); so does a request without a key.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any, cast

import brotli
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.auth_header import bearer_token
from backend.api.buffered_body import read_body, replaying
from backend.context import Principal
from backend.errors import CaravanError
from backend.idempotency import inflight, store
from backend.runtime import Services

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
MAX_STORED_BODY = 2_000_000  # a larger answer is not kept: a retry runs again
_KEPT_HEADERS = ("content-type", "content-encoding", "location", "etag", "vary")
_NOT_FINAL = {408, 429}  # the client may retry these: they are not the request's answer
_GRAPHQL_RETRYABLE = (b'"INTERNAL_SERVER_ERROR"', b'"SERVICE_UNAVAILABLE"')


def _header(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key.decode("latin-1").lower() == name:
            return str(value.decode("latin-1"))
    return None


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(0x21 <= ord(c) <= 0x7E for c in key)


def _graphql_key(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply: the endpoint says so
        return None
    extensions = document.get("extensions") if isinstance(document, dict) else None
    key = extensions.get("idempotencyKey") if isinstance(extensions, dict) else None
    return key if isinstance(key, str) else None


def fingerprint(scope: Scope, body: bytes) -> str:
    http = cast(dict[str, Any], scope)
    digest = hashlib.sha256()
    for part in (http["method"].encode(), http["path"].encode(), http.get("query_string", b"")):
        digest.update(part + b"\x00")
    digest.update(body)
    return digest.hexdigest()


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _problem(
    send: Send, scope: Scope, status: int, code: str, title: str, detail: str
) -> None:
    if scope["path"] == "/graphql":
        # GraphQL clients read errors[].extensions, not problem+json.
        extensions = {"code": code.upper(), "reason": code, "field": "Idempotency-Key"}
        graphql = {"errors": [{"message": detail, "extensions": extensions}]}
        headers = {"content-type": "application/json"}
        await _send(send, status, headers, json.dumps(graphql).encode())
        return
    body = {
        "type": "about:blank",
        "status": status,
        "title": title,
        "detail": detail,
        "code": code,
        "field": "Idempotency-Key",
    }
    await _send(
        send, status, {"content-type": "application/problem+json"}, json.dumps(body).encode()
    )


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = cast(dict[str, Any], scope)
        if http["type"] != "http" or http["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, complete = await read_body(receive)
        replay_receive = replaying(body, complete, receive)
        key = _header(scope, HEADER)
        if key is None and scope["path"] == "/graphql":
            key = _graphql_key(body)
        principal = await self._principal(scope) if key is not None and complete else None
        if key is None or principal is None:
            await self.app(scope, replay_receive, send)
            return
        if not _valid_key(key):
            await _problem(
                send,
                scope,
                400,
                "invalid_idempotency_key",
                "Bad request",
                f"Idempotency-Key: 1-{MAX_KEY_LENGTH} visible ASCII characters",
            )
            return
        db = self.services.db
        claim = await store.claim(db, principal, key, fingerprint(scope, body))
        if claim.state is store.ClaimState.REUSED:
            detail = "this Idempotency-Key was used for a different request; use a new key"
            await _problem(send, scope, 422, "idempotency_key_reused", "Unprocessable", detail)
            return
        if claim.state is store.ClaimState.IN_PROGRESS:
            detail = "a request with this Idempotency-Key is still running; retry shortly"
            await _problem(send, scope, 409, "idempotency_in_progress", "Conflict", detail)
            return
        if claim.state is store.ClaimState.LOST:
            detail = (
                "the request with this Idempotency-Key was carried out but its answer was lost"
                " (the server stopped); read the result instead of retrying"
            )
            await _problem(send, scope, 409, "idempotency_answer_lost", "Conflict", detail)
            return
        if claim.state is store.ClaimState.REPLAY:
            assert claim.response is not None
            await self._replay(scope, send, claim.response)
            return
        await self._run(scope, replay_receive, send, principal, key)

    async def _principal(self, scope: Scope) -> Principal | None:
        try:
            token = bearer_token(_header(scope, "authorization"))
            return await self.services.tokens.authenticate(token)
        except CaravanError:
            return None

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal, key: str
    ) -> None:
        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    lowered = name.decode("latin-1").lower()
                    if lowered in _KEPT_HEADERS:
                        headers[lowered] = value.decode("latin-1")
            elif message["type"] == "http.response.body" and size <= MAX_STORED_BODY:
                chunk = message.get("body", b"")
                size += len(chunk)
                chunks.append(chunk)
            await send(message)

        db = self.services.db
        running = inflight.current.set(
            inflight.InFlight(principal.tenant_id, principal.user_id, key)
        )
        try:
            await self.app(scope, receive, capture)
        except BaseException:
            inflight.current.reset(running)
            await store.release(db, principal, key)
            raise
        inflight.current.reset(running)
        response = _identity(store.StoredResponse(status, headers, b"".join(chunks)))
        if _final(scope, response) and size <= MAX_STORED_BODY:
            await store.complete(db, principal, key, response)
        else:
            await store.release(db, principal, key, response if size <= MAX_STORED_BODY else None)

    async def _replay(self, scope: Scope, send: Send, stored: store.StoredResponse) -> None:
        headers = dict(stored.headers)
        headers["idempotent-replayed"] = "true"
        await _send(send, stored.status, headers, stored.body)


def _identity(response: store.StoredResponse) -> store.StoredResponse:
    """The answer without its content coding (gzip or brotli): stored and replayed as is, so
    a retry that accepts a different coding than the first request still reads it."""
    headers = dict(response.headers)
    coding = headers.pop("content-encoding", None)
    if coding == "gzip":
        return store.StoredResponse(response.status, headers, gzip.decompress(response.body))
    if coding == "br":
        return store.StoredResponse(response.status, headers, brotli.decompress(response.body))
    return response


def _final(scope: Scope, response: store.StoredResponse) -> bool:
    """Whether the answer is the request's own (to replay), not a failure a retry may fix:
    5xx, 408 and 429 are not; nor is a GraphQL answer (HTTP 200) with an internal error."""
    if not 0 < response.status < 500 or response.status in _NOT_FINAL:
        return False
    if cast(dict[str, Any], scope)["path"] != "/graphql":
        return True
    return not any(code in response.body for code in _GRAPHQL_RETRYABLE)
