"""Per-request DataLoaders: nested fields resolve in one query per level, not one per parent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from backend.api.gql.context import GraphQLContext
from backend.api.gql.pagination import Connection, Edge, connection
from backend.errors import BadRequest
from backend.records.listing import MAX_LIMIT, ListQuery, cursor_for
from backend.records.service import Record, RecordService

N = TypeVar("N")
_NESTED_QUERY = ListQuery(limit=1)  # nested lists are ordered by id; cursors follow that order


def _loader(context: GraphQLContext, name: str, build: Any) -> Any:
    if name not in context.loaders:
        context.loaders[name] = build()
    return context.loaders[name]


async def record_by_id(
    context: GraphQLContext,
    service: RecordService,
    record_id: uuid.UUID,
    shape: Callable[[Record], N],
) -> N | None:
    """One record of `service` the caller may see, batched with the others the page asks for."""
    ctx = context.require()

    async def load(keys: Sequence[uuid.UUID]) -> list[N | None]:
        found = await service.get_many(ctx, keys)
        return [shape(found[k]) if k in found else None for k in keys]

    loader: DataLoader[uuid.UUID, N | None] = _loader(
        context, f"{service.spec.name}_by_id", lambda: DataLoader(load_fn=load)
    )
    return await loader.load(record_id)


async def children_of(
    context: GraphQLContext,
    service: RecordService,
    column: str,
    parent_id: uuid.UUID,
    first: int,
    shape: Callable[[Record], N],
) -> Connection[N]:
    """The first `first` records of `service` whose `column` names `parent_id` (by id), batched:
    one query per (entity, column) for every parent on the page, not one per parent."""
    if not 1 <= first <= MAX_LIMIT:
        raise BadRequest(
            f"first must be between 1 and {MAX_LIMIT}", field="limit", code="out_of_range"
        )
    ctx = context.require()

    async def load(keys: Sequence[tuple[uuid.UUID, int]]) -> list[Connection[N]]:
        limit = max(n for _, n in keys) + 1  # one extra row tells whether there is a next page
        grouped = await service.list_by(ctx, column, [k for k, _ in keys], limit)
        result = []
        for key, n in keys:
            rows = grouped.get(key, [])
            edges = [Edge(node=shape(r), cursor=cursor_for(_NESTED_QUERY, r)) for r in rows[:n]]
            result.append(connection(edges, len(rows) > n, has_previous=False))
        return result

    name = f"{service.spec.name}_by_{column}"
    loader: DataLoader[tuple[uuid.UUID, int], Connection[N]] = _loader(
        context, name, lambda: DataLoader(load_fn=load)
    )
    return await loader.load((parent_id, first))
