"""GraphQL for pipelines (`pipelines`, `pipeline(id)`, `createPipeline` / `updatePipeline` /
`deletePipeline`), an opportunity's stage history (`opportunityStages(id)`) and the forecast
(`forecast(period, groupBy)`). Resolve -> call backend/crm/pipelines and
backend/crm/opportunities, as the REST skin does."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry

from backend.api.gql.payloads import FieldError, GqlInfo, payload_call
from backend.crm.opportunities.forecast import forecast
from backend.crm.opportunities.stage_history import stage_history
from backend.crm.pipelines import service
from backend.errors import NotFound


@strawberry.type(description="One step of a pipeline")
class PipelineStage:
    id: strawberry.ID
    name: str
    position: int
    probability: int = strawberry.field(description="The default chance of winning, 0-100")
    kind: str = strawberry.field(description="open, won or lost")


@strawberry.type(description="A sales process: its stages in order")
class Pipeline:
    id: strawberry.ID
    name: str
    is_default: bool
    version: int
    stages: list[PipelineStage]

    @classmethod
    def of(cls, view: dict[str, Any]) -> Pipeline:
        return cls(
            id=strawberry.ID(str(view["id"])),
            name=view["name"],
            is_default=view["is_default"],
            version=view["version"],
            stages=[
                PipelineStage(
                    id=strawberry.ID(str(s["id"])),
                    **{k: s[k] for k in ("name", "position", "probability", "kind")},
                )
                for s in view["stages"]
            ],
        )


@strawberry.input
class PipelineStageInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="An existing stage (kept); none: a new stage"
    )
    name: str
    probability: int
    kind: str = "open"


@strawberry.input
class CreatePipelineInput:
    name: str
    stages: list[PipelineStageInput]
    is_default: bool = False


@strawberry.input
class UpdatePipelineInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    is_default: bool | None = strawberry.UNSET
    stages: list[PipelineStageInput] | None = strawberry.field(
        default=strawberry.UNSET, description="The whole new list: ids not listed are removed"
    )


@strawberry.type
class PipelinePayload:
    pipeline: Pipeline | None
    errors: list[FieldError]


@strawberry.type
class DeletePipelinePayload:
    deleted_id: strawberry.ID | None
    errors: list[FieldError]


@strawberry.type(description="One stay of an opportunity in a stage")
class StageStay:
    id: strawberry.ID
    stage_id: strawberry.ID
    stage_name: str
    kind: str
    entered_at: datetime
    left_at: datetime | None
    moved_by: strawberry.ID | None
    seconds_in_stage: float = strawberry.field(description="Until it left, or until now")


@strawberry.type
class ForecastFigures:
    count: int
    amount: Decimal
    weighted_amount: Decimal


@strawberry.type
class ForecastRow(ForecastFigures):
    key: strawberry.ID | None = strawberry.field(
        description="The owner, team or stage id (null: owners in no team)"
    )


@strawberry.type(description="Open opportunities closing in a period, weighted by probability")
class Forecast:
    period: str
    group_by: str
    first_day: date
    last_day: date
    rows: list[ForecastRow]
    total: ForecastFigures


def _id(raw: strawberry.ID) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("pipeline not found", field="id") from None


def _stages(stages: list[PipelineStageInput]) -> list[dict[str, Any]]:
    return [
        {"id": s.id, "name": s.name, "probability": s.probability, "kind": s.kind} for s in stages
    ]


def _figures(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "count": raw["count"],
        "amount": Decimal(raw["amount"]),
        "weighted_amount": Decimal(raw["weighted_amount"]),
    }


@strawberry.type
class SalesQuery:
    @strawberry.field(description="The tenant's pipelines, each with its stages in order")  # type: ignore[untyped-decorator]
    async def pipelines(self, info: GqlInfo) -> list[Pipeline]:
        return [Pipeline.of(v) for v in await service.list_pipelines(info.context.require())]

    @strawberry.field(description="One pipeline; null when there is none with this id")  # type: ignore[untyped-decorator]
    async def pipeline(self, info: GqlInfo, id: strawberry.ID) -> Pipeline | None:
        try:
            return Pipeline.of(await service.get_pipeline(info.context.require(), _id(id)))
        except NotFound:
            return None

    @strawberry.field(description="An opportunity's stage history, oldest first")  # type: ignore[untyped-decorator]
    async def opportunity_stages(self, info: GqlInfo, id: strawberry.ID) -> list[StageStay]:
        items = await stage_history(info.context.require(), str(id))
        return [
            StageStay(
                id=strawberry.ID(str(i["id"])),
                stage_id=strawberry.ID(str(i["stage_id"])),
                stage_name=i["stage_name"],
                kind=i["kind"],
                entered_at=i["entered_at"],
                left_at=i["left_at"],
                moved_by=strawberry.ID(str(i["moved_by"])) if i["moved_by"] else None,
                seconds_in_stage=i["seconds_in_stage"],
            )
            for i in items
        ]

    @strawberry.field(
        description="Open opportunities closing in `period` (2026-Q1 or 2026-03), per owner, "
        "team or stage, in your record scope"
    )  # type: ignore[untyped-decorator]
    async def forecast(self, info: GqlInfo, period: str, group_by: str) -> Forecast:
        raw = await forecast(info.context.require(), period, group_by)
        return Forecast(
            period=raw["period"],
            group_by=raw["group_by"],
            first_day=raw["from"],
            last_day=raw["to"],
            rows=[
                ForecastRow(key=strawberry.ID(r["key"]) if r["key"] else None, **_figures(r))
                for r in raw["rows"]
            ],
            total=ForecastFigures(**_figures(raw["total"])),
        )


@strawberry.type
class SalesMutation:
    @strawberry.mutation(description="Create a pipeline with its stages (admins, managers)")  # type: ignore[untyped-decorator]
    async def create_pipeline(self, info: GqlInfo, input: CreatePipelineInput) -> PipelinePayload:
        data = {"name": input.name, "is_default": input.is_default, "stages": _stages(input.stages)}
        view, errors = await payload_call(
            info, lambda: service.create_pipeline(info.context.require(), data)
        )
        return PipelinePayload(pipeline=Pipeline.of(view) if view else None, errors=errors)

    @strawberry.mutation(description="Rename, make default, or rewrite a pipeline's stages")  # type: ignore[untyped-decorator]
    async def update_pipeline(self, info: GqlInfo, input: UpdatePipelineInput) -> PipelinePayload:
        data: dict[str, Any] = {
            k: getattr(input, k)
            for k in ("name", "is_default")
            if getattr(input, k) is not strawberry.UNSET
        }
        if input.stages is not strawberry.UNSET:
            data["stages"] = _stages(input.stages) if input.stages is not None else None
        key = _id(input.id)
        view, errors = await payload_call(
            info, lambda: service.update_pipeline(info.context.require(), key, data)
        )
        return PipelinePayload(pipeline=Pipeline.of(view) if view else None, errors=errors)

    @strawberry.mutation(description="Delete a pipeline no opportunity follows (not the default)")  # type: ignore[untyped-decorator]
    async def delete_pipeline(self, info: GqlInfo, id: strawberry.ID) -> DeletePipelinePayload:
        key = _id(id)
        _, errors = await payload_call(
            info, lambda: service.delete_pipeline(info.context.require(), key)
        )
        return DeletePipelinePayload(deleted_id=None if errors else id, errors=errors)
