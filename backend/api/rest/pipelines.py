"""REST for pipelines (/api/v1/pipelines), an opportunity's stage history
(/api/v1/opportunities/{id}/stages) and the forecast (/api/v1/forecast).
Parse -> call backend/crm/pipelines and backend/crm/opportunities -> shape."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from backend.context import RequestContext
from backend.crm.opportunities.forecast import forecast
from backend.crm.opportunities.stage_history import stage_history
from backend.crm.pipelines import service

Ctx = NamedDependency[RequestContext]


class StageBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str | None = None  # an existing stage of the pipeline (kept); none: a new stage
    name: Any = None
    probability: Any = None  # the default chance of winning, 0-100
    kind: str = "open"  # open, won or lost
    position: int | None = (
        None  # ignored: the list's order is the stages' order (a GET round-trips)
    )


class PipelineCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Any = None
    is_default: bool = False
    stages: list[StageBody] | None = None


class PipelineUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Any = UNSET
    is_default: bool | UnsetType = UNSET
    stages: list[StageBody] | UnsetType = UNSET


def _sent(data: msgspec.Struct) -> dict[str, Any]:
    return {
        k: msgspec.to_builtins(v) for k, v in msgspec.structs.asdict(data).items() if v is not UNSET
    }


class PipelinesController(Controller):
    path = "/api/v1/pipelines"
    tags = ["pipelines"]

    @get("/", summary="The tenant's pipelines, each with its stages in order")
    async def list_pipelines(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": await service.list_pipelines(ctx), "next": None}

    @get("/{pipeline_id:uuid}", summary="One pipeline with its stages")
    async def get_pipeline(self, ctx: Ctx, pipeline_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        return await service.get_pipeline(ctx, pipeline_id)

    @post("/", summary="Create a pipeline with its stages (admins, managers)", status_code=201)
    async def create_pipeline(self, ctx: Ctx, data: JSONBody[PipelineCreate]) -> dict[str, Any]:
        return await service.create_pipeline(ctx, _sent(data))

    @patch(
        "/{pipeline_id:uuid}",
        summary="Rename, make default, or rewrite the stages (listed ids kept, others removed)",
    )
    async def update_pipeline(
        self, ctx: Ctx, pipeline_id: FromPath[uuid.UUID], data: JSONBody[PipelineUpdate]
    ) -> dict[str, Any]:
        return await service.update_pipeline(ctx, pipeline_id, _sent(data))

    @delete(
        "/{pipeline_id:uuid}",
        summary="Delete a pipeline no opportunity follows (not the default)",
        status_code=204,
    )
    async def delete_pipeline(self, ctx: Ctx, pipeline_id: FromPath[uuid.UUID]) -> None:
        await service.delete_pipeline(ctx, pipeline_id)


class SalesController(Controller):
    path = "/api/v1"
    tags = ["opportunities"]

    @get(
        "/opportunities/{record_id:str}/stages",
        summary="An opportunity's stage history, oldest first, with the time in each stage",
    )
    async def opportunity_stages(self, ctx: Ctx, record_id: FromPath[str]) -> dict[str, Any]:
        return {"items": await stage_history(ctx, record_id), "next": None}

    @get("/forecast", summary="Open opportunities closing in a period, weighted, per group")
    async def get_forecast(
        self,
        ctx: Ctx,
        period: Annotated[
            str | None, QueryParameter(description="a quarter (2026-Q1) or a month (2026-03)")
        ] = None,
        group_by: Annotated[str | None, QueryParameter(description="owner, team or stage")] = None,
    ) -> dict[str, Any]:
        return await forecast(ctx, period, group_by)
