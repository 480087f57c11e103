"""REST admin API for tenant custom field definitions: /api/v1/custom-fields (tenant admins).
Parse -> call backend/custom_fields/service.py -> shape."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from backend.context import RequestContext
from backend.custom_fields import service

Ctx = NamedDependency[RequestContext]


class CustomFieldCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    entity: str
    key: str
    label: str
    type: str
    required: bool = False
    choices: list[str] | None = None
    max_length: int | None = None
    help_text: str | None = None
    target: str | None = None  # type "reference": the entity it points at


class CustomFieldUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    label: str | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    choices: list[str] | UnsetType | None = UNSET
    max_length: int | UnsetType | None = UNSET
    help_text: str | UnsetType | None = UNSET


def _sent(data: msgspec.Struct) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(data).items() if v is not UNSET}


class CustomFieldsController(Controller):
    path = "/api/v1/custom-fields"
    tags = ["custom fields"]

    @get("/", summary="List the tenant's custom fields (admins), optionally of one entity")
    async def list_fields(
        self,
        ctx: Ctx,
        entity: Annotated[str | None, QueryParameter(description="e.g. contact")] = None,
    ) -> dict[str, Any]:
        return {"items": await service.list_fields(ctx, entity), "next": None}

    @get("/{field_id:uuid}", summary="One custom field definition")
    async def get_field(self, ctx: Ctx, field_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        return await service.get_field(ctx, field_id)

    @post("/", summary="Define a custom field on an entity", status_code=201)
    async def create_field(self, ctx: Ctx, data: JSONBody[CustomFieldCreate]) -> dict[str, Any]:
        return await service.create_field(ctx, msgspec.structs.asdict(data))

    @patch(
        "/{field_id:uuid}",
        summary="Change a custom field's label, help text, required, choices or max length",
    )
    async def update_field(
        self, ctx: Ctx, field_id: FromPath[uuid.UUID], data: JSONBody[CustomFieldUpdate]
    ) -> dict[str, Any]:
        return await service.update_field(ctx, field_id, _sent(data))

    @delete(
        "/{field_id:uuid}",
        summary="Remove a custom field: its values are hidden, their history kept",
        status_code=204,
    )
    async def delete_field(self, ctx: Ctx, field_id: FromPath[uuid.UUID]) -> None:
        await service.delete_field(ctx, field_id)
