"""Reading an opportunity's stage history: each stay in a stage with its time in stage.
Whoever may read the opportunity (in scope) and its stage may read its stage history."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from backend.context import RequestContext
from backend.crm.opportunities.service import opportunities
from backend.crm.pipelines.models import PipelineStage, StageEntry
from backend.db.base import table_of
from backend.errors import NotFound

_stages, _entries = table_of(PipelineStage), table_of(StageEntry)


async def stage_history(ctx: RequestContext, record_id: uuid.UUID | str) -> list[dict[str, Any]]:
    key = opportunities.parse_id(record_id)
    async with ctx.session.transaction() as conn:
        access = await opportunities.access(ctx, conn, "read")
        if await opportunities.fetch(conn, opportunities.visible(ctx, access, "read"), key) is None:
            raise NotFound("opportunity not found")
        access.require_fields("read", {"stage", "stage_id"})
        until = func.coalesce(_entries.c.left_at, func.now())
        stmt = (
            select(
                _entries.c.id,
                _entries.c.stage_id,
                _stages.c.name.label("stage_name"),
                _stages.c.kind,
                _entries.c.entered_at,
                _entries.c.left_at,
                _entries.c.moved_by,
                func.extract("epoch", until - _entries.c.entered_at).label("seconds"),
            )
            .join(
                _stages,
                (_stages.c.tenant_id == _entries.c.tenant_id)
                & (_stages.c.id == _entries.c.stage_id),
            )
            .where(_entries.c.tenant_id == ctx.tenant_id, _entries.c.opportunity_id == key)
            .order_by(_entries.c.entered_at, _entries.c.id)
        )
        rows = (await conn.execute(stmt)).mappings().all()
    return [
        {
            **{k: row[k] for k in ("id", "stage_id", "stage_name", "kind", "entered_at")},
            "left_at": row["left_at"],
            "moved_by": row["moved_by"],
            # Until it left, or until now while it is still there.
            "seconds_in_stage": round(float(row["seconds"]), 3),
        }
        for row in rows
    ]
