"""GraphQL for tenant custom field definitions (tenant admins): `customFields(entity)` and
`createCustomField` / `updateCustomField` / `deleteCustomField`. Resolve -> call
backend/custom_fields/service.py. Values on records are not here: see the README."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry

from backend.api.gql.payloads import FieldError, GqlInfo, payload_call
from backend.custom_fields import service
from backend.errors import NotFound


@strawberry.type(description="A field a tenant admin added to an entity")
class CustomFieldDefinition:
    id: strawberry.ID
    entity: str
    key: str
    label: str
    type: str
    required: bool
    choices: list[str]
    max_length: int | None
    help_text: str | None
    target: str | None
    policy_object: str = strawberry.field(description="e.g. contact.cf_region_code")
    version: int

    @classmethod
    def of(cls, view: dict[str, Any]) -> CustomFieldDefinition:
        return cls(
            id=strawberry.ID(str(view["id"])),
            **{k: view[k] for k in ("entity", "key", "label", "type", "required", "choices")},
            **{k: view[k] for k in ("max_length", "help_text", "target", "policy_object")},
            version=view["version"],
        )


@strawberry.input
class CreateCustomFieldInput:
    entity: str
    key: str
    label: str
    type: str
    required: bool = False
    choices: list[str] | None = None
    max_length: int | None = None
    help_text: str | None = None
    target: str | None = None


@strawberry.input
class UpdateCustomFieldInput:
    id: strawberry.ID
    label: str | None = strawberry.UNSET
    required: bool | None = strawberry.UNSET
    choices: list[str] | None = strawberry.UNSET
    max_length: int | None = strawberry.UNSET
    help_text: str | None = strawberry.UNSET


@strawberry.type
class CustomFieldPayload:
    custom_field: CustomFieldDefinition | None
    errors: list[FieldError]


@strawberry.type
class DeleteCustomFieldPayload:
    deleted_id: strawberry.ID | None
    errors: list[FieldError]


def _id(raw: strawberry.ID) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("custom field not found", field="id") from None


@strawberry.type
class CustomFieldQuery:
    @strawberry.field(
        description="The tenant's custom fields (tenant admins), of one entity or all"
    )  # type: ignore[untyped-decorator]
    async def custom_fields(
        self, info: GqlInfo, entity: str | None = None
    ) -> list[CustomFieldDefinition]:
        views = await service.list_fields(info.context.require(), entity)
        return [CustomFieldDefinition.of(v) for v in views]


@strawberry.type
class CustomFieldMutation:
    @strawberry.mutation(description="Define a custom field on an entity (tenant admins)")  # type: ignore[untyped-decorator]
    async def create_custom_field(
        self, info: GqlInfo, input: CreateCustomFieldInput
    ) -> CustomFieldPayload:
        data = {k: getattr(input, k) for k in CreateCustomFieldInput.__annotations__}
        view, errors = await payload_call(
            info, lambda: service.create_field(info.context.require(), data)
        )
        return CustomFieldPayload(
            custom_field=CustomFieldDefinition.of(view) if view else None, errors=errors
        )

    @strawberry.mutation(
        description="Change a custom field's label, help text, required, choices or max length"
    )  # type: ignore[untyped-decorator]
    async def update_custom_field(
        self, info: GqlInfo, input: UpdateCustomFieldInput
    ) -> CustomFieldPayload:
        names = ("label", "required", "choices", "max_length", "help_text")
        data = {k: getattr(input, k) for k in names if getattr(input, k) is not strawberry.UNSET}
        key = _id(input.id)
        view, errors = await payload_call(
            info, lambda: service.update_field(info.context.require(), key, data)
        )
        return CustomFieldPayload(
            custom_field=CustomFieldDefinition.of(view) if view else None, errors=errors
        )

    @strawberry.mutation(description="Remove a custom field: values hidden, history kept")  # type: ignore[untyped-decorator]
    async def delete_custom_field(
        self, info: GqlInfo, id: strawberry.ID
    ) -> DeleteCustomFieldPayload:
        await service.delete_field(info.context.require(), _id(id))
        return DeleteCustomFieldPayload(deleted_id=id, errors=[])
