"""The Origin (peer address, user agent, request id) of an HTTP request, for both skins. The
address is the ASGI peer: no forwarding header is trusted."""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request

from backend.auth.origin import Origin, clean_user_agent
from backend.context import RequestContext

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_origin(
    request: Request[Any, Any, Any] | None,
    channel: str = "rest",
    ctx: RequestContext | None = None,
) -> Origin:
    if request is None:
        return Origin(channel=channel, request_id=ctx.request_id if ctx else None)
    request_id = ctx.request_id if ctx is not None else request.headers.get("x-request-id")
    if not request_id or not _REQUEST_ID.match(request_id):
        request_id = uuid.uuid4().hex
    return Origin(
        ip=request.client.host if request.client else None,
        user_agent=clean_user_agent(request.headers.get("user-agent")),
        request_id=request_id,
        channel=channel,
    )
