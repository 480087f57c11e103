"""RequestContext: who is calling, for which tenant, through which channel. Built once per
request by the API skins and passed to every service call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from backend.db.session import Database, TenantSession
from backend.errors import Forbidden

Channel = Literal["rest", "graphql", "sync", "import", "cli", "system"]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    # OAuth scopes the token carries; None for a first-party session (no scope limit).
    scopes: frozenset[str] | None = None
    # The OAuth client acting, for third-party tokens.
    client_id: uuid.UUID | None = None
    # The refresh-token family (device session) the token was issued under, if any.
    session_id: uuid.UUID | None = None


@dataclass
class RequestContext:
    principal: Principal
    db: Database
    channel: Channel
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    session: TenantSession = field(init=False)

    def __post_init__(self) -> None:
        self.session = TenantSession(self.db, self.principal.tenant_id, self._record_denial)

    async def _record_denial(self, denied: Forbidden) -> None:
        """Every refusal is a security event, written in its own transaction (the refused
        one rolled back)."""
        from backend.history.events import EventType, record_event_now

        await record_event_now(
            self.db,
            self.tenant_id,
            EventType.ACCESS_DENIED,
            outcome="denied",
            actor_user_id=self.principal.user_id,
            actor_client_id=self.principal.client_id,
            request_id=self.request_id,
            channel=self.channel,
            details={"code": denied.code, "field": denied.field, "detail": denied.detail},
        )

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.principal.tenant_id

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id
