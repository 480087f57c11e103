"""Turning a request's Authorization header into a RequestContext (shared by both skins)."""

from __future__ import annotations

import re

from backend.context import Channel, RequestContext
from backend.errors import Unauthenticated
from backend.runtime import Services

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("an access token is required", code="unauthenticated")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use 'Authorization: Bearer <token>'", code="invalid_token")
    return token.strip()


async def authenticate(
    services: Services,
    authorization: str | None,
    channel: Channel,
    request_id: str | None = None,
) -> RequestContext:
    # Async: a token signed by a key another process just rotated in reloads the key ring.
    principal = await services.tokens.authenticate(bearer_token(authorization))
    ctx = RequestContext(principal=principal, db=services.db, channel=channel)
    if request_id and _REQUEST_ID.match(request_id):
        ctx.request_id = request_id
    return ctx
