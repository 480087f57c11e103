"""GraphQL: exports (request, approve, deny, link) and reading them. Thin over ExportService,
the same service as REST: decisions, rules and audit live there."""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.payloads import FieldError, payload_call
from backend.crm.registry import ENTITIES
from backend.errors import NotFound
from backend.exports.request import ExportRequest
from backend.exports.service import ExportService

GqlInfo = Info[GraphQLContext, None]
_CAMEL = re.compile(r"(?<!^)([A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


@strawberry.enum
class ExportFormat(Enum):
    CSV = "csv"
    XLSX = "xlsx"
    JSONL = "jsonl"


@strawberry.type
class Export:
    id: strawberry.ID
    entity: str
    format: ExportFormat
    fields: list[str]
    filter: JSON
    status: str = strawberry.field(description="pending, ready, denied, expired")
    reason: str | None = strawberry.field(description="Why it waits, or an admin's reason")
    row_count: int
    requested_by: strawberry.ID
    decided_by: strawberry.ID | None
    decided_at: datetime | None
    created_at: datetime
    expires_at: datetime | None
    downloads: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> Export:
        return cls(
            id=strawberry.ID(str(row["id"])),
            entity=row["entity"],
            format=ExportFormat(row["format"]),
            fields=list(row["fields"]),
            filter=row["filter"],
            status=row["status"],
            reason=row["reason"],
            row_count=row["row_count"],
            requested_by=strawberry.ID(str(row["requested_by"])),
            decided_by=strawberry.ID(str(row["decided_by"])) if row["decided_by"] else None,
            decided_at=row["decided_at"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            downloads=row["downloads"],
        )


# The list filters of every registered entity (a filter the entity lacks is refused there).
_FILTER_KEYS: dict[str, Any] = {
    "q": str | None,
    **{c: strawberry.ID | None for s in ENTITIES.values() for c in s.filter_columns},
    "updated_since": str | None,
}
ExportFilter: Any = strawberry.input(
    type(
        "ExportFilter",
        (),
        {"__module__": __name__, "__annotations__": _FILTER_KEYS, **dict.fromkeys(_FILTER_KEYS)},
    )
)


@strawberry.input
class CreateExportInput:
    entity: str = strawberry.field(description="contacts, accounts, opportunities")
    format: ExportFormat = ExportFormat.CSV
    fields: list[str] | None = strawberry.field(
        default=None, description="Field names; default: every field you may export"
    )
    filter: ExportFilter | None = None


@strawberry.type
class ExportPayload:
    export: Export | None
    errors: list[FieldError]


@strawberry.type
class ExportLink:
    url: str
    expires_at: datetime


def _service(info: GqlInfo) -> ExportService:
    return info.context.services.exports


def _filter(given: Any) -> dict[str, Any]:
    if given is None:
        return {}
    values = {key: getattr(given, key) for key in _FILTER_KEYS}
    return {k: str(v) for k, v in values.items() if v is not None}


@strawberry.type
class ExportQuery:
    @strawberry.field(description="Exports: yours, or all of the tenant's for admins")  # type: ignore[untyped-decorator]
    async def exports(self, info: GqlInfo, first: int = 50) -> list[Export]:
        rows = await _service(info).list(info.context.require(), first)
        return [Export.of(r) for r in rows]

    @strawberry.field
    async def export(self, info: GqlInfo, id: strawberry.ID) -> Export | None:
        try:
            return Export.of(await _service(info).get(info.context.require(), id))
        except NotFound:
            return None


@strawberry.type
class ExportMutation:
    @strawberry.mutation(description="Request an export: decided, audited; ready or pending")  # type: ignore[untyped-decorator]
    async def create_export(self, info: GqlInfo, input: CreateExportInput) -> ExportPayload:
        ctx = info.context.require()
        wanted = ExportRequest(
            entity=input.entity,
            format=input.format.value,
            fields=[snake(f) for f in input.fields] if input.fields is not None else None,
            filter=_filter(input.filter),
        )
        row, errors = await payload_call(info, lambda: _service(info).create(ctx, wanted))
        return ExportPayload(export=Export.of(row) if row else None, errors=errors)

    @strawberry.mutation(description="Approve a pending export (another tenant admin)")  # type: ignore[untyped-decorator]
    async def approve_export(self, info: GqlInfo, id: strawberry.ID) -> ExportPayload:
        ctx = info.context.require()
        row, errors = await payload_call(info, lambda: _service(info).approve(ctx, id))
        return ExportPayload(export=Export.of(row) if row else None, errors=errors)

    @strawberry.mutation(description="Deny a pending export (tenant admins)")  # type: ignore[untyped-decorator]
    async def deny_export(
        self, info: GqlInfo, id: strawberry.ID, reason: str | None = None
    ) -> ExportPayload:
        ctx = info.context.require()
        row, errors = await payload_call(info, lambda: _service(info).deny(ctx, id, reason))
        return ExportPayload(export=Export.of(row) if row else None, errors=errors)

    @strawberry.mutation(description="A short-lived, single-use download link (the requester)")  # type: ignore[untyped-decorator]
    async def create_export_link(self, info: GqlInfo, id: strawberry.ID) -> ExportLink:
        link = await _service(info).link(info.context.require(), id)
        return ExportLink(url=link["url"], expires_at=link["expires_at"])
