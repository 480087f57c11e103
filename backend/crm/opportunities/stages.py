"""An opportunity's stage: the check that its stage belongs to its pipeline and matches its
`stage` string, and the stage history (one row per stay in a stage), both written inside the
opportunity's own write transaction by the record service's write hook."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.pipelines.models import PipelineStage, StageEntry
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import ValidationFailed
from backend.records.service import Record
from backend.records.spec import EntitySpec

_stages, _entries = table_of(PipelineStage), table_of(StageEntry)


async def follow_stage(
    conn: AsyncConnection,
    ctx: RequestContext,
    spec: EntitySpec,
    before: Record | None,
    after: Record | None,
) -> None:
    """Runs after the row is written (a database trigger has already matched `stage` and
    `stage_id`); raising here rolls the whole write back."""
    if after is None:  # deleted: its stage history goes with it (ON DELETE CASCADE)
        return
    stage = (
        (
            await conn.execute(
                select(
                    _stages.c.pipeline_id,
                    func.opportunity_stage_label(_stages.c.name, _stages.c.kind).label("label"),
                ).where(_stages.c.tenant_id == ctx.tenant_id, _stages.c.id == after["stage_id"])
            )
        )
        .mappings()
        .one()
    )
    moved = before is None or before["stage_id"] != after["stage_id"]
    if stage["pipeline_id"] != after["pipeline_id"]:
        field = "stage_id" if moved else "pipeline_id"
        raise ValidationFailed.one(
            field, "stage_not_in_pipeline", "the stage must belong to the opportunity's pipeline"
        )
    if stage["label"] != after["stage"]:
        raise ValidationFailed.one(
            "stage", "unknown_stage", "the opportunity's pipeline has no stage of that name"
        )
    if moved:
        await _record_move(conn, ctx, after)


async def _record_move(conn: AsyncConnection, ctx: RequestContext, after: Record) -> None:
    now = func.now()  # the transaction's time: the leaving and the entering coincide
    open_stay: Any = _entries.c.left_at.is_(None)
    await conn.execute(
        update(_entries)
        .where(
            _entries.c.tenant_id == ctx.tenant_id,
            _entries.c.opportunity_id == after["id"],
            open_stay,
        )
        .values(left_at=now, version=_entries.c.version + 1, updated_at=now)
    )
    await conn.execute(
        insert(_entries).values(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            opportunity_id=after["id"],
            stage_id=after["stage_id"],
            entered_at=now,
            moved_by=ctx.user_id,
        )
    )
