"""Where a sign-in request came from: recorded on device sessions and security events, and the
per-source key of the brute-force backoff. The address is the ASGI peer (no proxy headers are
trusted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_USER_AGENT = 300


@dataclass(frozen=True)
class Origin:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    channel: str = "rest"

    def event_fields(self) -> dict[str, Any]:
        return {"source_ip": self.ip, "request_id": self.request_id, "channel": self.channel}


def clean_user_agent(value: str | None) -> str | None:
    if not value:
        return None
    printable = "".join(ch for ch in value if ch.isprintable())
    return printable[:MAX_USER_AGENT] or None
