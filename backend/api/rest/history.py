"""REST: history across records, and the security event log (for auditors and admins)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from backend.context import RequestContext
from backend.history import reading
from backend.records.listing import parse_datetime, parse_uuid

Ctx = NamedDependency[RequestContext]
Query = Annotated[str | None, QueryParameter()]


class HistoryController(Controller):
    tags = ["history and audit"]

    @get("/api/v1/history", summary="Change history across records, newest first")
    async def history(
        self,
        ctx: Ctx,
        entity: Query = None,
        record_id: Query = None,
        actor: Query = None,
        field: Query = None,
        channel: Query = None,
        since: Query = None,
        until: Query = None,
        limit: Annotated[int | None, QueryParameter()] = None,
        after: Query = None,
    ) -> dict[str, Any]:
        filters = reading.HistoryFilter(
            entity=entity,
            record_id=parse_uuid("record_id", record_id) if record_id else None,
            actor_user_id=parse_uuid("actor", actor) if actor else None,
            field=field,
            channel=channel,
            since=parse_datetime("since", since) if since else None,
            until=parse_datetime("until", until) if until else None,
        )
        page = await reading.tenant_history(ctx, filters, after=after, limit=limit)
        return {"items": page.items, "next": page.next_cursor}

    @get("/api/v1/audit-events", summary="Security events, newest first (admins, auditors)")
    async def audit_events(
        self,
        ctx: Ctx,
        type: Query = None,
        actor: Query = None,
        since: Query = None,
        until: Query = None,
        limit: Annotated[int | None, QueryParameter()] = None,
        after: Query = None,
    ) -> dict[str, Any]:
        page = await reading.audit_events(
            ctx,
            event_type=type,
            actor_user_id=parse_uuid("actor", actor) if actor else None,
            since=parse_datetime("since", since) if since else None,
            until=parse_datetime("until", until) if until else None,
            after=after,
            limit=limit,
        )
        return {"items": page.items, "next": page.next_cursor}
