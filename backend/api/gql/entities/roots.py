"""Root fields of every entity: `x(id)`, `xs(first, after, filter, orderBy)`, and the mutations
`createX`, `updateX`, `deleteX`, `revertXChange`, `revertX`. Resolve -> call the record
service (or history's revert, which goes through it) -> shape. No database, no access rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import strawberry

from backend.api.gql.entities.objects import EntityTypes, GqlInfo
from backend.api.gql.history import RevertChangeInput, RevertRecordInput
from backend.api.gql.pagination import Connection, sort_key, to_connection
from backend.api.gql.payloads import FieldError, payload_call
from backend.errors import NotFound
from backend.history.revert import revert_change, revert_record
from backend.records.listing import build_list_query, choice_filters, range_params
from backend.records.service import Record


@strawberry.input
class DeleteInput:
    id: strawberry.ID
    version: int | None = strawberry.field(
        default=None, description="When given, the delete applies only at this version."
    )


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None
    errors: list[FieldError]


def provided(data: object) -> dict[str, Any]:
    """An input's fields the client actually sent (others stay UNSET); nested item inputs
    (an order's lines) as lists of their sent fields."""
    return {
        f.name: _plain(getattr(data, f.name))
        for f in dataclasses.fields(data)  # type: ignore[arg-type]
        if getattr(data, f.name) is not strawberry.UNSET and f.name not in ("id", "version")
    }


def _plain(value: Any) -> Any:
    if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        return [provided(item) for item in value]
    return value


def _typed(resolver: Callable[..., Any], **arguments: Any) -> Callable[..., Any]:
    """Give a resolver the types of its generated arguments (inputs made at import time)."""
    resolver.__annotations__.update(arguments)
    return resolver


def _one(entity: EntityTypes) -> Any:
    async def resolve(info: GqlInfo, id: strawberry.ID) -> Any:
        ctx = info.context.require()
        try:
            record = await entity.service.get(ctx, id)
        except NotFound:
            return None  # "does not exist" and "not yours" look the same: null
        return entity.node(record)

    return strawberry.field(resolver=resolve, graphql_type=entity.type | None)


def _page(entity: EntityTypes) -> Any:
    spec = entity.spec

    async def resolve(
        info: GqlInfo,
        first: int = 50,
        after: str | None = None,
        filter: Any = None,
        order_by: Any = None,
    ) -> Any:
        ctx = info.context.require()
        f = filter or entity.filter()
        query = build_list_query(
            spec,
            limit=first,
            after=after,
            search=f.q,
            filters={column: getattr(f, column) for column in spec.filter_columns},
            updated_since=f.updated_since,
            sort=sort_key(order_by.field, order_by.direction) if order_by else None,
            ranges={name: getattr(f, name) for name in range_params(spec)},
            choices={name: getattr(f, name) for name in choice_filters(spec)},
            entity_filters={name: getattr(f, name) for name in spec.list_filters},
        )
        page = await entity.service.list(ctx, query)
        return to_connection(page, query, entity.node, after is not None)

    typed = _typed(resolve, filter=entity.filter | None, order_by=entity.order | None)
    return strawberry.field(resolver=typed, graphql_type=Connection[entity.type])  # type: ignore[name-defined]


def _write(
    entity: EntityTypes,
    input_type: Any,
    write: Callable[[Any, Any], Awaitable[Record]],
    description: str | None = None,
) -> Any:
    """A mutation answering the entity's payload; `write(ctx, input)` does the change."""

    async def resolve(info: GqlInfo, input: Any) -> Any:
        ctx = info.context.require()
        record, errors = await payload_call(info, lambda: write(ctx, input))
        node = entity.node(record) if record is not None else None
        return entity.payload(**{entity.spec.name: node, "errors": errors})

    return strawberry.mutation(
        resolver=_typed(resolve, input=input_type),
        graphql_type=entity.payload,
        description=description,
    )


def _delete(entity: EntityTypes) -> Any:
    async def resolve(info: GqlInfo, input: DeleteInput) -> DeletePayload:
        ctx = info.context.require()
        _, errors = await payload_call(
            info, lambda: entity.service.delete(ctx, input.id, input.version)
        )
        return DeletePayload(deleted_id=None if errors else input.id, errors=errors)

    return strawberry.mutation(resolver=resolve)


def query_fields(entity: EntityTypes) -> dict[str, Any]:
    return {entity.spec.name: _one(entity), entity.spec.plural: _page(entity)}


def mutation_fields(entity: EntityTypes) -> dict[str, Any]:
    spec, service = entity.spec, entity.service
    name, label = spec.name, spec.label
    article = "an" if label[0] in "aeiou" else "a"
    return {
        f"create_{name}": _write(
            entity, entity.create_input, lambda ctx, i: service.create(ctx, provided(i))
        ),
        f"update_{name}": _write(
            entity,
            entity.update_input,
            lambda ctx, i: service.update(ctx, i.id, provided(i), i.version),
        ),
        f"delete_{name}": _delete(entity),
        f"revert_{name}_change": _write(
            entity,
            RevertChangeInput,
            lambda ctx, i: revert_change(ctx, name, i.record_id, i.change_id, i.version),
            f"Undo one change of {article} {label} (a delete: undelete)",
        ),
        f"revert_{name}": _write(
            entity,
            RevertRecordInput,
            lambda ctx, i: revert_record(ctx, name, i.record_id, i.before_change_id, i.version),
            f"Put a whole {label} back as it was before a change",
        ),
    }


def root_type(name: str, fields: Mapping[str, Any]) -> Any:
    """A root type (to merge into Query or Mutation) from a name and its fields."""
    cls = type(name, (), dict(fields))
    cls.__module__ = __name__
    return strawberry.type(cls)
