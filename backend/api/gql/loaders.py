"""Per-request DataLoaders: nested fields resolve in one query per level, not one per parent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from backend.api.gql.pagination import Connection, Edge, PageInfo
from backend.crm.accounts.service import accounts
from backend.crm.contacts.service import contacts
from backend.errors import BadRequest
from backend.records.listing import MAX_LIMIT, ListQuery, cursor_for

if TYPE_CHECKING:
    from backend.api.gql.context import GraphQLContext
    from backend.api.gql.types import Account, Contact

_NESTED_QUERY = ListQuery(limit=1)  # nested lists are ordered by id; cursors follow that order


def _loader(context: GraphQLContext, name: str, build: Any) -> Any:
    if name not in context.loaders:
        context.loaders[name] = build()
    return context.loaders[name]


async def account_by_id(context: GraphQLContext, account_id: uuid.UUID) -> Account | None:
    from backend.api.gql.types import Account

    ctx = context.require()

    async def load(keys: Sequence[uuid.UUID]) -> list[Account | None]:
        found = await accounts.get_many(ctx, keys)
        return [Account.from_record(found[k]) if k in found else None for k in keys]

    loader: DataLoader[uuid.UUID, Account | None] = _loader(
        context, "account_by_id", lambda: DataLoader(load_fn=load)
    )
    return await loader.load(account_id)


async def contacts_of_account(
    context: GraphQLContext, account_id: uuid.UUID, first: int
) -> Connection[Contact]:
    from backend.api.gql.types import Contact

    if not 1 <= first <= MAX_LIMIT:
        raise BadRequest(
            f"first must be between 1 and {MAX_LIMIT}", field="limit", code="out_of_range"
        )
    ctx = context.require()

    async def load(keys: Sequence[tuple[uuid.UUID, int]]) -> list[Connection[Contact]]:
        limit = max(n for _, n in keys) + 1  # one extra row tells whether there is a next page
        grouped = await contacts.list_by(ctx, "account_id", [k for k, _ in keys], limit)
        result = []
        for key, n in keys:
            rows = grouped.get(key, [])
            edges = [
                Edge(node=Contact.from_record(r), cursor=cursor_for(_NESTED_QUERY, r))
                for r in rows[:n]
            ]
            result.append(
                Connection(
                    edges=edges,
                    page_info=PageInfo(
                        has_next_page=len(rows) > n,
                        has_previous_page=False,
                        start_cursor=edges[0].cursor if edges else None,
                        end_cursor=edges[-1].cursor if edges else None,
                    ),
                )
            )
        return result

    loader: DataLoader[tuple[uuid.UUID, int], Connection[Contact]] = _loader(
        context, "contacts_of_account", lambda: DataLoader(load_fn=load)
    )
    return await loader.load((account_id, first))
