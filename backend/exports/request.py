"""Requesting exports (decided at once: generated, queued for approval, or refused) and
reading them back. Every attempt, allowed or not, is an audit event naming who, what entity,
filter, fields, row count, format, outcome and reason."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.registry import SERVICES
from backend.db.ids import uuid7
from backend.errors import CaravanError, Forbidden, InsufficientStorage, NotFound, ValidationFailed
from backend.exports.budget import BulkReadThrottled
from backend.exports.decide import choose_fields, decide
from backend.exports.generate import count_rows, parse_filter, selection
from backend.exports.produce import ExportFiles
from backend.exports.rows import PUBLIC, export_key, exports_table, public_view
from backend.exports.rules import load_rules
from backend.exports.writers import FORMATS
from backend.history.events import EventType, record_event, record_event_now
from backend.records.service import RecordService


@dataclass(frozen=True)
class ExportRequest:
    entity: str
    format: str
    fields: Sequence[str] | None
    filter: Mapping[str, Any]


def entity_service(name: str) -> RecordService:
    for service in SERVICES.values():
        if name in (service.spec.name, service.spec.plural):
            return service
    raise ValidationFailed.one("entity", "unknown_entity", f"{name!r} is not an entity")


class ExportRequests(ExportFiles):
    """Request an export (`create`) and read exports back (`get`, `list`)."""

    async def create(self, ctx: RequestContext, request: ExportRequest) -> dict[str, Any]:
        attempt: dict[str, Any] = {
            "entity": request.entity,
            "format": request.format,
            "fields": list(request.fields) if request.fields is not None else None,
            "filter": dict(request.filter),
            "row_count": None,
        }
        try:
            service = entity_service(request.entity)
            attempt["entity"] = service.spec.name
            if request.format not in FORMATS:
                choices = ", ".join(FORMATS)
                raise ValidationFailed.one("format", "invalid_choice", f"one of {choices}")
            query = parse_filter(service, request.filter)
            async with ctx.session.transaction() as conn:
                rules = await load_rules(conn, ctx.tenant_id)
                access = await service.access(ctx, conn, "export")
                fields = choose_fields(access, rules, request.fields)
                attempt["fields"] = fields
                where = selection(service, ctx, access, query)
                row_count = attempt["row_count"] = await count_rows(conn, service, where)
                decision = decide(
                    rules,
                    await self._role_names(conn, ctx),
                    row_count,
                    await self._exported_today(conn, ctx),
                )
                export_id = uuid7()
                await conn.execute(
                    insert(exports_table).values(
                        tenant_id=ctx.tenant_id,
                        id=export_id,
                        requested_by=ctx.user_id,
                        entity=service.spec.name,
                        format=request.format,
                        fields=fields,
                        filter=attempt["filter"],
                        status=decision.status,
                        reason=decision.reason,
                        row_count=row_count,
                    )
                )
                if decision.status == "ready":
                    await self._generate(ctx, conn, service, export_id, rules)
                event = (
                    EventType.EXPORT_REQUESTED
                    if decision.status == "ready"
                    else EventType.EXPORT_PENDING
                )
                await record_event(
                    conn,
                    ctx.tenant_id,
                    event,
                    **self._who(ctx),
                    details={
                        **attempt,
                        "export_id": str(export_id),
                        "outcome": "allowed" if decision.status == "ready" else "pending",
                        "reason": decision.reason,
                    },
                )
                return public_view(await self._row(conn, export_id))
        except CaravanError as refused:
            # Every attempt is on the record: refused by policy or rules, throttled, or invalid.
            outcome = "invalid"
            if isinstance(refused, BulkReadThrottled):
                outcome = "throttled"
            elif isinstance(refused, InsufficientStorage):
                outcome = "failed"
            elif isinstance(refused, Forbidden):
                outcome = "blocked"
            details = {
                **attempt,
                "outcome": outcome,
                "reason": refused.code,
                "field": refused.field,
                "detail": refused.detail,
            }

            async def audit(_: bool) -> None:
                await record_event_now(
                    self.db,
                    ctx.tenant_id,
                    EventType.EXPORT_BLOCKED,
                    outcome="denied",
                    **self._who(ctx),
                    details=details,
                )

            # In its own transaction (this one rolls back), once the connection is released.
            if not ctx.session.after_release(audit):
                await audit(True)
            raise

    async def get(self, ctx: RequestContext, export_id: uuid.UUID | str) -> dict[str, Any]:
        key = export_key(export_id)
        async with ctx.session.transaction() as conn:
            row = await self._find(conn, key)
            if row is None or not (
                row["requested_by"] == ctx.user_id or await self._is_admin(conn, ctx)
            ):
                raise NotFound("export not found")
            return public_view(row)

    async def list(self, ctx: RequestContext, limit: int = 50) -> list[dict[str, Any]]:
        if not 1 <= limit <= 200:
            raise ValidationFailed.one("limit", "out_of_range", "must be between 1 and 200")
        async with ctx.session.transaction() as conn:
            stmt = select(*(exports_table.c[k] for k in PUBLIC)).where(
                exports_table.c.tenant_id == ctx.tenant_id
            )
            if not await self._is_admin(conn, ctx):
                stmt = stmt.where(exports_table.c.requested_by == ctx.user_id)
            stmt = stmt.order_by(exports_table.c.id.desc()).limit(limit)
            return [public_view(dict(r)) for r in (await conn.execute(stmt)).mappings().all()]

    async def _exported_today(self, conn: AsyncConnection, ctx: RequestContext) -> int:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        stmt = select(func.coalesce(func.sum(exports_table.c.row_count), 0)).where(
            exports_table.c.tenant_id == ctx.tenant_id,
            exports_table.c.requested_by == ctx.user_id,
            exports_table.c.created_at >= midnight,
            exports_table.c.status.in_(("ready", "pending", "expired")),
        )
        return int((await conn.execute(stmt)).scalar_one())
