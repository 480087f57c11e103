"""Pipelines and their stages: list and read (everyone who may read `pipeline`), create,
change and delete (roles allowing it on `pipeline`: admins and managers). A pipeline is
written with its whole ordered list of stages; the list's order is the stages' position."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from asyncpg.exceptions import ForeignKeyViolationError, UniqueViolationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.opportunities.models import Opportunity
from backend.crm.pipelines.models import (
    DEFAULT_PIPELINE,
    DEFAULT_STAGES,
    KINDS,
    MAX_STAGES,
    Pipeline,
    PipelineStage,
)
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.history.changes import record_updated
from backend.policy.engine import policies, user_subject
from backend.policy.scopes import require_scope

_pipelines, _stages = table_of(Pipeline), table_of(PipelineStage)
_opportunities = table_of(Opportunity)
POLICY_OBJECT = "pipeline"
_STAGE_COLUMNS = ("id", "name", "position", "probability", "kind")


async def seed_default_pipeline(conn: AsyncConnection, tenant_id: uuid.UUID) -> uuid.UUID:
    """A new tenant's default pipeline, with the six stages opportunities always had."""
    pipeline_id = uuid7()
    await conn.execute(
        insert(_pipelines).values(
            tenant_id=tenant_id, id=pipeline_id, name=DEFAULT_PIPELINE, is_default=True
        )
    )
    await conn.execute(
        insert(_stages),
        [
            dict(
                tenant_id=tenant_id,
                id=uuid7(),
                pipeline_id=pipeline_id,
                name=name,
                position=position,
                probability=probability,
                kind=kind,
            )
            for position, (name, probability, kind) in enumerate(DEFAULT_STAGES)
        ],
    )
    return pipeline_id


async def require(ctx: RequestContext, conn: AsyncConnection, action: str) -> None:
    require_scope(ctx, action)
    policy = await policies.get(conn, ctx.tenant_id)
    if not policy.allows(user_subject(ctx.user_id), POLICY_OBJECT, action):
        raise Forbidden(
            f"your roles do not allow {action} on {POLICY_OBJECT}",
            field=POLICY_OBJECT,
            code="action_forbidden",
        )


async def _views(
    conn: AsyncConnection, tenant_id: uuid.UUID, pipeline_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    stmt = select(_pipelines).where(_pipelines.c.tenant_id == tenant_id)
    if pipeline_id is not None:
        stmt = stmt.where(_pipelines.c.id == pipeline_id)
    rows = (await conn.execute(stmt.order_by(_pipelines.c.id))).mappings().all()
    stages = (
        (
            await conn.execute(
                select(_stages)
                .where(
                    _stages.c.tenant_id == tenant_id,
                    _stages.c.pipeline_id.in_([r["id"] for r in rows]),
                )
                .order_by(_stages.c.position)
            )
        )
        .mappings()
        .all()
    )
    return [
        {
            **{k: row[k] for k in ("id", "name", "is_default", "version")},
            "stages": [
                {k: s[k] for k in _STAGE_COLUMNS} for s in stages if s["pipeline_id"] == row["id"]
            ],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        for row in rows
    ]


async def list_pipelines(ctx: RequestContext) -> list[dict[str, Any]]:
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "read")
        return await _views(conn, ctx.tenant_id)


async def get_pipeline(ctx: RequestContext, pipeline_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "read")
        return await _one(conn, ctx, pipeline_id)


async def _one(
    conn: AsyncConnection, ctx: RequestContext, pipeline_id: uuid.UUID
) -> dict[str, Any]:
    views = await _views(conn, ctx.tenant_id, pipeline_id)
    if not views:
        raise NotFound("pipeline not found", field="id")
    return views[0]


def _name(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.one(field, "required", "must be a non-blank string")
    if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationFailed.one(field, "invalid_value", f"1-{limit} printable characters")
    return value.strip()


def _checked_stages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STAGES:
        raise ValidationFailed.one("stages", "invalid_stages", f"a list of 1-{MAX_STAGES} stages")
    stages: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"stages[{i}]"
        if not isinstance(item, Mapping):
            raise ValidationFailed.one(where, "invalid_type", "must be an object")
        probability = item.get("probability")
        if isinstance(probability, bool) or not isinstance(probability, int):
            raise ValidationFailed.one(f"{where}.probability", "invalid_type", "an integer 0-100")
        if not 0 <= probability <= 100:
            raise ValidationFailed.one(f"{where}.probability", "out_of_range", "must be 0-100")
        kind = item.get("kind") or "open"
        if kind not in KINDS:
            raise ValidationFailed.one(f"{where}.kind", "invalid_choice", "open, won or lost")
        stage_id = item.get("id")
        if stage_id is not None:
            try:
                stage_id = uuid.UUID(str(stage_id))
            except ValueError:
                raise ValidationFailed.one(
                    f"{where}.id", "invalid_uuid", "must be a UUID"
                ) from None
        name = _name(item.get("name"), f"{where}.name", 60)
        stages.append(dict(id=stage_id, name=name, position=i, probability=probability, kind=kind))
    if len({s["name"] for s in stages}) != len(stages):
        raise ValidationFailed.one("stages", "duplicate_stage", "stage names must differ")
    if not any(s["kind"] == "open" for s in stages):
        raise ValidationFailed.one("stages", "no_open_stage", "needs at least one open stage")
    return stages


async def _write_stages(
    conn: AsyncConnection,
    ctx: RequestContext,
    pipeline_id: uuid.UUID,
    stages: Sequence[dict[str, Any]],
) -> None:
    """Replace the pipeline's stages: listed ids are kept (renamed, moved), new ones added,
    the others removed (refused while an opportunity is in one)."""
    where = (_stages.c.tenant_id == ctx.tenant_id, _stages.c.pipeline_id == pipeline_id)
    existing = set((await conn.execute(select(_stages.c.id).where(*where))).scalars())
    for stage in stages:
        if stage["id"] is not None and stage["id"] not in existing:
            raise ValidationFailed.one("stages", "unknown_stage", "names no stage of this pipeline")
    kept = {s["id"] for s in stages if s["id"] is not None}
    # Positions and names are unique only at the end: clear the kept ones first.
    await conn.execute(delete(_stages).where(*where, _stages.c.id.not_in(kept)))
    await conn.execute(update(_stages).where(*where).values(name=func.concat("~", _stages.c.id)))
    for stage in stages:
        values = {k: stage[k] for k in ("name", "position", "probability", "kind")}
        if stage["id"] is None:
            await conn.execute(
                insert(_stages).values(
                    tenant_id=ctx.tenant_id, id=uuid7(), pipeline_id=pipeline_id, **values
                )
            )
        else:
            await conn.execute(
                update(_stages)
                .where(*where, _stages.c.id == stage["id"])
                .values(**values, version=_stages.c.version + 1, updated_at=func.now())
            )
    await _relabel_opportunities(conn, ctx, pipeline_id)


async def _relabel_opportunities(
    conn: AsyncConnection, ctx: RequestContext, pipeline_id: uuid.UUID
) -> None:
    """An opportunity's `stage` string follows its stage's name and kind: each one rewritten
    gets a new version and a change-history entry (so delta sync sees it)."""
    label = (
        select(func.opportunity_stage_label(_stages.c.name, _stages.c.kind))
        .where(_stages.c.tenant_id == ctx.tenant_id, _stages.c.id == _opportunities.c.stage_id)
        .scalar_subquery()
    )
    stale = (
        _opportunities.c.tenant_id == ctx.tenant_id,
        _opportunities.c.pipeline_id == pipeline_id,
        _opportunities.c.stage != label,
    )
    columns = [c for c in _opportunities.c if c.name != "tenant_id"]
    locked = await conn.execute(select(*columns).where(*stale).with_for_update())
    before = {row["id"]: dict(row) for row in locked.mappings()}
    if not before:
        return
    written = await conn.execute(
        update(_opportunities)
        .where(*stale)
        .values(stage=label, version=_opportunities.c.version + 1, updated_at=func.now())
        .returning(*columns)
    )
    for row in written.mappings():
        await record_updated(conn, ctx, "opportunity", before[row["id"]], dict(row))


async def _guarded(conn: AsyncConnection, work: Any) -> None:
    try:
        await work
    except DBAPIError as exc:
        cause = getattr(exc.orig, "__cause__", None)
        if isinstance(cause, UniqueViolationError):
            raise Conflict(
                "a pipeline of this name exists", field="name", code="duplicate"
            ) from None
        if isinstance(cause, ForeignKeyViolationError):
            raise Conflict(
                "opportunities are in a stage being removed: move them first",
                field="stages",
                code="stage_in_use",
            ) from None
        raise


async def _clear_default(conn: AsyncConnection, ctx: RequestContext) -> None:
    await conn.execute(
        update(_pipelines)
        .where(_pipelines.c.tenant_id == ctx.tenant_id, _pipelines.c.is_default)
        .values(is_default=False, version=_pipelines.c.version + 1, updated_at=func.now())
    )


async def create_pipeline(ctx: RequestContext, data: Mapping[str, Any]) -> dict[str, Any]:
    name = _name(data.get("name"), "name", 100)
    stages = _checked_stages(data.get("stages"))
    if any(s["id"] is not None for s in stages):
        raise ValidationFailed.one("stages", "unknown_stage", "a new pipeline's stages have no id")
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "create")
        pipeline_id = uuid7()
        if data.get("is_default"):
            await _clear_default(conn, ctx)

        async def work() -> None:
            await conn.execute(
                insert(_pipelines).values(
                    tenant_id=ctx.tenant_id,
                    id=pipeline_id,
                    name=name,
                    is_default=bool(data.get("is_default")),
                )
            )
            await _write_stages(conn, ctx, pipeline_id, stages)

        await _guarded(conn, work())
        return await _one(conn, ctx, pipeline_id)


async def update_pipeline(
    ctx: RequestContext, pipeline_id: uuid.UUID, data: Mapping[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in data:
        values["name"] = _name(data["name"], "name", 100)
    if "is_default" in data:
        if data["is_default"] is not True:
            raise ValidationFailed.one(
                "is_default", "invalid_value", "only true: make another pipeline the default"
            )
        values["is_default"] = True
    stages = _checked_stages(data["stages"]) if "stages" in data else None
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "update")
        await _one(conn, ctx, pipeline_id)
        if values.get("is_default"):
            await _clear_default(conn, ctx)

        async def work() -> None:
            await conn.execute(
                update(_pipelines)
                .where(_pipelines.c.tenant_id == ctx.tenant_id, _pipelines.c.id == pipeline_id)
                .values(**values, version=_pipelines.c.version + 1, updated_at=func.now())
            )
            if stages is not None:
                await _write_stages(conn, ctx, pipeline_id, stages)

        await _guarded(conn, work())
        return await _one(conn, ctx, pipeline_id)


async def delete_pipeline(ctx: RequestContext, pipeline_id: uuid.UUID) -> None:
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "delete")
        view = await _one(conn, ctx, pipeline_id)
        if view["is_default"]:
            raise Conflict(
                "the default pipeline cannot be deleted",
                field="is_default",
                code="default_pipeline",
            )
        stmt = delete(_pipelines).where(
            _pipelines.c.tenant_id == ctx.tenant_id, _pipelines.c.id == pipeline_id
        )
        try:
            await conn.execute(stmt)
        except DBAPIError as exc:
            if isinstance(getattr(exc.orig, "__cause__", None), ForeignKeyViolationError):
                raise Conflict(
                    "opportunities are in this pipeline: move them first",
                    field="id",
                    code="pipeline_in_use",
                ) from None
            raise
