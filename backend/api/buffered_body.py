"""Reading a request body in an ASGI middleware and handing it on to the app unchanged.

Both the boundary check and the Idempotency-Key middleware need the whole body before the app
runs; each buffers it once and replays it to what comes after."""

from __future__ import annotations

from typing import Any

from litestar.types import Receive

MAX_BUFFERED_BODY = 1_000_001  # above the app's body limit: the app refuses such a request


async def read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, buffered up to the app's limit; False when it was cut off there."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_BUFFERED_BODY:
            return b"".join(chunks), False


def replaying(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A receive that hands the buffered body to the app first, then the client's messages."""
    sent = False

    async def inner() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return inner
