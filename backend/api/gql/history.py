"""GraphQL: record history, history across records, the audit log, and the inputs of the
revert mutations (generated per entity: backend/api/gql/entities). The same services as REST
(backend/history)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.pagination import Connection, Edge, connection
from backend.history import reading
from backend.records.listing import encode_cursor, parse_uuid

GqlInfo = Info[GraphQLContext, None]


def ident(value: Any) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type
class HistoryEntry:
    id: strawberry.ID
    occurred_at: datetime
    entity: str
    record_id: strawberry.ID
    event: str
    field: str | None
    old_value: JSON | None
    new_value: JSON | None
    values_withheld: bool = strawberry.field(
        description="True when your roles may not read the history of this field: values are null"
    )
    actor_user_id: strawberry.ID | None
    actor_client_id: strawberry.ID | None
    request_id: str | None
    channel: str

    @classmethod
    def of(cls, entry: dict[str, Any]) -> HistoryEntry:
        return cls(
            id=strawberry.ID(str(entry["id"])),
            occurred_at=entry["occurred_at"],
            entity=entry["entity"],
            record_id=strawberry.ID(str(entry["record_id"])),
            event=entry["event"],
            field=entry["field"],
            old_value=entry["old_value"],
            new_value=entry["new_value"],
            values_withheld=entry["values_withheld"],
            actor_user_id=ident(entry["actor_user_id"]),
            actor_client_id=ident(entry["actor_client_id"]),
            request_id=entry["request_id"],
            channel=entry["channel"],
        )


@strawberry.type
class AuditEvent:
    id: strawberry.ID
    occurred_at: datetime
    type: str
    outcome: str
    actor_user_id: strawberry.ID | None
    actor_client_id: strawberry.ID | None
    subject_user_id: strawberry.ID | None
    request_id: str | None
    channel: str | None
    source_ip: str | None
    details: JSON


def _connection(page: reading.HistoryPage, node: Any, has_previous: bool) -> Connection[Any]:
    edges = [
        Edge(node=node(item), cursor=encode_cursor(reading.NEWEST_FIRST, None, item["id"]))
        for item in page.items
    ]
    return connection(edges, page.next_cursor is not None, has_previous)


def _audit_event(row: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        id=strawberry.ID(str(row["id"])),
        occurred_at=row["occurred_at"],
        type=row["type"],
        outcome=row["outcome"],
        actor_user_id=ident(row["actor_user_id"]),
        actor_client_id=ident(row["actor_client_id"]),
        subject_user_id=ident(row["subject_user_id"]),
        request_id=row["request_id"],
        channel=row["channel"],
        source_ip=row["source_ip"],
        details=row["details"],
    )


async def record_history_connection(
    info: GqlInfo, entity: str, record_id: str, first: int, after: str | None
) -> Connection[HistoryEntry]:
    page = await reading.record_history(
        info.context.require(), entity, record_id, after=after, limit=first
    )
    return _connection(page, HistoryEntry.of, after is not None)


@strawberry.input
class HistoryFilter:
    entity: str | None = None
    record_id: strawberry.ID | None = None
    actor_user_id: strawberry.ID | None = None
    field: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else parse_uuid("filter", str(value))


@strawberry.type
class HistoryQuery:
    @strawberry.field(description="Change history across records, newest first (auditors)")  # type: ignore[untyped-decorator]
    async def history(
        self,
        info: GqlInfo,
        first: int = 50,
        after: str | None = None,
        filter: HistoryFilter | None = None,
    ) -> Connection[HistoryEntry]:
        f = filter or HistoryFilter()
        filters = reading.HistoryFilter(
            entity=f.entity,
            record_id=_uuid(f.record_id),
            actor_user_id=_uuid(f.actor_user_id),
            field=f.field,
            channel=f.channel,
            since=f.since,
            until=f.until,
        )
        page = await reading.tenant_history(
            info.context.require(), filters, after=after, limit=first
        )
        return _connection(page, HistoryEntry.of, after is not None)

    @strawberry.field(description="Security events, newest first (admins, auditors)")  # type: ignore[untyped-decorator]
    async def audit_events(
        self, info: GqlInfo, first: int = 50, after: str | None = None, type: str | None = None
    ) -> Connection[AuditEvent]:
        page = await reading.audit_events(
            info.context.require(), event_type=type, after=after, limit=first
        )
        return _connection(page, _audit_event, after is not None)


@strawberry.input
class RevertChangeInput:
    record_id: strawberry.ID
    change_id: strawberry.ID
    version: int | None = strawberry.field(
        default=None, description="The record version you saw (optional)"
    )


@strawberry.input
class RevertRecordInput:
    record_id: strawberry.ID
    before_change_id: strawberry.ID = strawberry.field(
        description="The record goes back to how it was just before this change"
    )
    version: int | None = None
