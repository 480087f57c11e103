"""Deciding queued exports (another admin approves or denies) and the tenant's export rules."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import Principal, RequestContext
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.exports.produce import ExportFiles
from backend.exports.request import entity_service
from backend.exports.rows import export_key, exports_table, public_view
from backend.exports.rules import RuleSet, load_rules, save_rules
from backend.history.events import EventType, record_event
from backend.policy.admin import admin_policy


class ExportApprovals(ExportFiles):
    """Approve or deny a pending export; read and change the tenant's export rules."""

    async def approve(self, ctx: RequestContext, export_id: uuid.UUID | str) -> dict[str, Any]:
        key = export_key(export_id)
        async with ctx.session.transaction() as conn:
            row = await self._pending(conn, ctx, key)
            requester = RequestContext(
                principal=Principal(user_id=row["requested_by"], tenant_id=ctx.tenant_id),
                db=ctx.db,
                channel=ctx.channel,
                request_id=ctx.request_id,
            )
            service = entity_service(row["entity"])
            rules = await load_rules(conn, ctx.tenant_id)
            await self._generate(requester, conn, service, key, rules)
            await conn.execute(
                update(exports_table)
                .where(exports_table.c.tenant_id == ctx.tenant_id, exports_table.c.id == key)
                .values(decided_by=ctx.user_id, decided_at=func.now(), reason="approved")
            )
            await self._decided(conn, ctx, row, EventType.EXPORT_APPROVED, "approved", None)
            return public_view(await self._row(conn, key))

    async def deny(
        self, ctx: RequestContext, export_id: uuid.UUID | str, reason: str | None
    ) -> dict[str, Any]:
        key = export_key(export_id)
        if reason is not None and len(reason) > 500:
            raise ValidationFailed.one("reason", "too_long", "at most 500 characters")
        async with ctx.session.transaction() as conn:
            row = await self._pending(conn, ctx, key)
            await conn.execute(
                update(exports_table)
                .where(exports_table.c.tenant_id == ctx.tenant_id, exports_table.c.id == key)
                .values(
                    status="denied",
                    decided_by=ctx.user_id,
                    decided_at=func.now(),
                    reason=reason or "denied by an admin",
                )
            )
            await self._decided(conn, ctx, row, EventType.EXPORT_DENIED, "denied", reason)
            return public_view(await self._row(conn, key))

    async def _pending(
        self, conn: AsyncConnection, ctx: RequestContext, key: uuid.UUID
    ) -> dict[str, Any]:
        await admin_policy(conn, ctx)
        row = await self._find(conn, key, lock=True)
        if row is None:
            raise NotFound("export not found")
        if row["status"] != "pending":
            raise Conflict(f"the export is {row['status']}, not pending", code="not_pending")
        if row["requested_by"] == ctx.user_id:
            raise Forbidden(
                "an export needs another admin's approval", field="id", code="self_approval"
            )
        return row

    async def _decided(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        row: Mapping[str, Any],
        event: EventType,
        outcome: str,
        reason: str | None,
    ) -> None:
        await record_event(
            conn,
            ctx.tenant_id,
            event,
            **self._who(ctx),
            subject_user_id=row["requested_by"],
            details={**self._summary(row), "outcome": outcome, "reason": reason},
        )

    async def rules(self, ctx: RequestContext) -> RuleSet:
        async with ctx.session.transaction() as conn:
            await admin_policy(conn, ctx)
            return await load_rules(conn, ctx.tenant_id)

    async def set_rules(self, ctx: RequestContext, rules: RuleSet) -> RuleSet:
        async with ctx.session.transaction() as conn:
            await admin_policy(conn, ctx)
            await save_rules(conn, ctx.tenant_id, ctx.user_id, rules)
            await record_event(
                conn,
                ctx.tenant_id,
                EventType.EXPORT_RULES_CHANGED,
                **self._who(ctx),
                details={"outcome": "changed"},
            )
            return await load_rules(conn, ctx.tenant_id)
