"""Query and Mutation roots: resolve -> call a service -> shape. No database, no access rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.errors import payload_problems
from backend.api.gql.pagination import Connection, sort_key, to_connection
from backend.api.gql.types import (
    Account,
    AccountFilter,
    AccountOrder,
    AccountPayload,
    Contact,
    ContactFilter,
    ContactOrder,
    ContactPayload,
    CreateAccountInput,
    CreateContactInput,
    DeleteInput,
    DeletePayload,
    FieldError,
    UpdateAccountInput,
    UpdateContactInput,
    provided,
)
from backend.crm.accounts.service import accounts
from backend.crm.contacts.service import contacts
from backend.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from backend.records.listing import build_list_query
from backend.records.service import Record

GqlInfo = Info[GraphQLContext, None]
T = TypeVar("T")
# Problems with the input itself go into the payload's `errors`; the rest are top-level errors.
_PAYLOAD_ERRORS = (ValidationFailed, Conflict, PreconditionFailed)


async def payload_call(
    info: GqlInfo, write: Callable[[], Awaitable[T]]
) -> tuple[T | None, list[FieldError]]:
    try:
        return await write(), []
    except _PAYLOAD_ERRORS as exc:
        info.context.require().session.rollback_only = True
        return None, FieldError.of(payload_problems(exc))


async def get_or_none(getter: Callable[[], Awaitable[Record]]) -> Record | None:
    try:
        return await getter()
    except NotFound:
        return None  # "does not exist" and "not yours" look the same: null


@strawberry.type
class RecordQuery:
    @strawberry.field
    async def account(self, info: GqlInfo, id: strawberry.ID) -> Account | None:
        ctx = info.context.require()
        record = await get_or_none(lambda: accounts.get(ctx, id))
        return Account.from_record(record) if record else None

    @strawberry.field
    async def accounts(
        self,
        info: GqlInfo,
        first: int = 50,
        after: str | None = None,
        filter: AccountFilter | None = None,
        order_by: AccountOrder | None = None,
    ) -> Connection[Account]:
        ctx = info.context.require()
        f = filter or AccountFilter()
        query = build_list_query(
            accounts.spec,
            limit=first,
            after=after,
            search=f.q,
            filters={"owner_id": f.owner_id},
            updated_since=f.updated_since,
            sort=sort_key(order_by.field, order_by.direction) if order_by else None,
        )
        page = await accounts.list(ctx, query)
        return to_connection(page, query, Account.from_record, after is not None)

    @strawberry.field
    async def contact(self, info: GqlInfo, id: strawberry.ID) -> Contact | None:
        ctx = info.context.require()
        record = await get_or_none(lambda: contacts.get(ctx, id))
        return Contact.from_record(record) if record else None

    @strawberry.field
    async def contacts(
        self,
        info: GqlInfo,
        first: int = 50,
        after: str | None = None,
        filter: ContactFilter | None = None,
        order_by: ContactOrder | None = None,
    ) -> Connection[Contact]:
        ctx = info.context.require()
        f = filter or ContactFilter()
        query = build_list_query(
            contacts.spec,
            limit=first,
            after=after,
            search=f.q,
            filters={"owner_id": f.owner_id, "account_id": f.account_id},
            updated_since=f.updated_since,
            sort=sort_key(order_by.field, order_by.direction) if order_by else None,
        )
        page = await contacts.list(ctx, query)
        return to_connection(page, query, Contact.from_record, after is not None)


@strawberry.type
class RecordMutation:
    @strawberry.mutation
    async def create_account(self, info: GqlInfo, input: CreateAccountInput) -> AccountPayload:
        ctx = info.context.require()
        record, errors = await payload_call(info, lambda: accounts.create(ctx, provided(input)))
        return AccountPayload(
            account=Account.from_record(record) if record else None, errors=errors
        )

    @strawberry.mutation
    async def update_account(self, info: GqlInfo, input: UpdateAccountInput) -> AccountPayload:
        ctx = info.context.require()
        record, errors = await payload_call(
            info, lambda: accounts.update(ctx, input.id, provided(input), input.version)
        )
        return AccountPayload(
            account=Account.from_record(record) if record else None, errors=errors
        )

    @strawberry.mutation
    async def delete_account(self, info: GqlInfo, input: DeleteInput) -> DeletePayload:
        ctx = info.context.require()
        _, errors = await payload_call(info, lambda: accounts.delete(ctx, input.id, input.version))
        return DeletePayload(deleted_id=None if errors else input.id, errors=errors)

    @strawberry.mutation
    async def create_contact(self, info: GqlInfo, input: CreateContactInput) -> ContactPayload:
        ctx = info.context.require()
        record, errors = await payload_call(info, lambda: contacts.create(ctx, provided(input)))
        return ContactPayload(
            contact=Contact.from_record(record) if record else None, errors=errors
        )

    @strawberry.mutation
    async def update_contact(self, info: GqlInfo, input: UpdateContactInput) -> ContactPayload:
        ctx = info.context.require()
        record, errors = await payload_call(
            info, lambda: contacts.update(ctx, input.id, provided(input), input.version)
        )
        return ContactPayload(
            contact=Contact.from_record(record) if record else None, errors=errors
        )

    @strawberry.mutation
    async def delete_contact(self, info: GqlInfo, input: DeleteInput) -> DeletePayload:
        ctx = info.context.require()
        _, errors = await payload_call(info, lambda: contacts.delete(ctx, input.id, input.version))
        return DeletePayload(deleted_id=None if errors else input.id, errors=errors)
