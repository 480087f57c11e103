"""GraphQL for opportunities (the pipeline): type, list arguments, queries and mutations.
Resolve -> call the record service -> shape; nested accounts and contacts come from loaders."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import strawberry
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.history import RevertChangeInput, RevertRecordInput
from backend.api.gql.inputs import create_input, update_input
from backend.api.gql.loaders import children_of, record_by_id
from backend.api.gql.pagination import Connection, SortDirection, sort_key, to_connection
from backend.api.gql.resolvers import GqlInfo, get_or_none, payload_call
from backend.api.gql.types import (
    Account,
    Contact,
    DeleteInput,
    DeletePayload,
    FieldError,
    UpdateInput,
    node_values,
    provided,
)
from backend.crm.accounts.service import accounts
from backend.crm.contacts.service import contacts
from backend.crm.opportunities.service import OPPORTUNITY, opportunities
from backend.history.revert import revert_change, revert_record
from backend.records.listing import build_list_query
from backend.records.service import Record


@strawberry.type
class Opportunity:
    id: strawberry.ID
    version: int
    name: str | None
    stage: str | None
    amount: Decimal | None
    currency: str | None
    probability: int | None
    close_date: date | None
    account_id: strawberry.ID | None
    contact_id: strawberry.ID | None
    competitor: str | None
    budget: Decimal | None
    cost: Decimal | None
    next_step: str | None
    description: str | None
    tags: list[str] | None
    owner_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    withheld_fields: list[str] = strawberry.field(
        description="Fields your roles may not read: they are null here."
    )

    @classmethod
    def from_record(cls, record: Record) -> Opportunity:
        return cls(**node_values(cls, record))

    @strawberry.field(description="This record's change history, newest first.")  # type: ignore[untyped-decorator]
    async def history(
        self, info: Info[GraphQLContext, None], first: int = 50, after: str | None = None
    ) -> Connection[Annotated[HistoryEntry, strawberry.lazy("backend.api.gql.history")]]:
        from backend.api.gql.history import record_history_connection

        return await record_history_connection(info, "opportunity", self.id, first, after)

    @strawberry.field(description="The account this opportunity is with, if any.")  # type: ignore[untyped-decorator]
    async def account(self, info: Info[GraphQLContext, None]) -> Account | None:
        if self.account_id is None:
            return None
        return await record_by_id(
            info.context, accounts, uuid.UUID(self.account_id), Account.from_record
        )

    @strawberry.field(description="The contact this opportunity is with, if any.")  # type: ignore[untyped-decorator]
    async def contact(self, info: Info[GraphQLContext, None]) -> Contact | None:
        if self.contact_id is None:
            return None
        return await record_by_id(
            info.context, contacts, uuid.UUID(self.contact_id), Contact.from_record
        )

    @strawberry.field(description="The first activities about this opportunity, by id.")  # type: ignore[untyped-decorator]
    async def activities(
        self, info: Info[GraphQLContext, None], first: int = 20
    ) -> Connection[Annotated[Activity, strawberry.lazy("backend.api.gql.activities")]]:
        from backend.api.gql.activities import activities_of

        return await activities_of(info.context, "opportunity_id", self.id, first)


async def opportunities_of(
    context: GraphQLContext, column: str, parent_id: str, first: int
) -> Connection[Opportunity]:
    """An account's or a contact's first opportunities (by id), batched across the page."""
    return await children_of(
        context, opportunities, column, uuid.UUID(parent_id), first, Opportunity.from_record
    )


@strawberry.enum
class OpportunityOrderField(Enum):
    ID = "id"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"


@strawberry.input
class OpportunityOrder:
    field: OpportunityOrderField
    direction: SortDirection = SortDirection.ASC


@strawberry.input
class OpportunityFilter:
    q: str | None = None
    owner_id: strawberry.ID | None = None
    account_id: strawberry.ID | None = None
    contact_id: strawberry.ID | None = None
    updated_since: datetime | None = None


@strawberry.type
class OpportunityPayload:
    opportunity: Opportunity | None
    errors: list[FieldError]


if TYPE_CHECKING:
    from backend.api.gql.activities import Activity
    from backend.api.gql.history import HistoryEntry

    CreateOpportunityInput: TypeAlias = object
    UpdateOpportunityInput: TypeAlias = UpdateInput
else:  # generated from the field specs: see backend/api/gql/inputs.py
    CreateOpportunityInput = create_input(OPPORTUNITY, "Opportunity")
    UpdateOpportunityInput = update_input(OPPORTUNITY, "Opportunity")


def _payload(record: Record | None, errors: list[FieldError]) -> OpportunityPayload:
    return OpportunityPayload(
        opportunity=Opportunity.from_record(record) if record else None, errors=errors
    )


@strawberry.type
class OpportunityQuery:
    @strawberry.field
    async def opportunity(self, info: GqlInfo, id: strawberry.ID) -> Opportunity | None:
        ctx = info.context.require()
        record = await get_or_none(lambda: opportunities.get(ctx, id))
        return Opportunity.from_record(record) if record else None

    @strawberry.field
    async def opportunities(
        self,
        info: GqlInfo,
        first: int = 50,
        after: str | None = None,
        filter: OpportunityFilter | None = None,
        order_by: OpportunityOrder | None = None,
    ) -> Connection[Opportunity]:
        ctx = info.context.require()
        f = filter or OpportunityFilter()
        filters: dict[str, Any] = {
            "owner_id": f.owner_id,
            "account_id": f.account_id,
            "contact_id": f.contact_id,
        }
        query = build_list_query(
            opportunities.spec,
            limit=first,
            after=after,
            search=f.q,
            filters=filters,
            updated_since=f.updated_since,
            sort=sort_key(order_by.field, order_by.direction) if order_by else None,
        )
        page = await opportunities.list(ctx, query)
        return to_connection(page, query, Opportunity.from_record, after is not None)


@strawberry.type
class OpportunityMutation:
    @strawberry.mutation
    async def create_opportunity(
        self, info: GqlInfo, input: CreateOpportunityInput
    ) -> OpportunityPayload:
        ctx = info.context.require()
        return _payload(
            *await payload_call(info, lambda: opportunities.create(ctx, provided(input)))
        )

    @strawberry.mutation
    async def update_opportunity(
        self, info: GqlInfo, input: UpdateOpportunityInput
    ) -> OpportunityPayload:
        ctx = info.context.require()
        return _payload(
            *await payload_call(
                info, lambda: opportunities.update(ctx, input.id, provided(input), input.version)
            )
        )

    @strawberry.mutation
    async def delete_opportunity(self, info: GqlInfo, input: DeleteInput) -> DeletePayload:
        ctx = info.context.require()
        _, errors = await payload_call(
            info, lambda: opportunities.delete(ctx, input.id, input.version)
        )
        return DeletePayload(deleted_id=None if errors else input.id, errors=errors)

    @strawberry.mutation(description="Undo one change of an opportunity (a delete: undelete)")  # type: ignore[untyped-decorator]
    async def revert_opportunity_change(
        self, info: GqlInfo, input: RevertChangeInput
    ) -> OpportunityPayload:
        ctx = info.context.require()
        return _payload(
            *await payload_call(
                info,
                lambda: revert_change(
                    ctx, "opportunity", input.record_id, input.change_id, input.version
                ),
            )
        )

    @strawberry.mutation(description="Put a whole opportunity back as it was before a change")  # type: ignore[untyped-decorator]
    async def revert_opportunity(
        self, info: GqlInfo, input: RevertRecordInput
    ) -> OpportunityPayload:
        ctx = info.context.require()
        return _payload(
            *await payload_call(
                info,
                lambda: revert_record(
                    ctx, "opportunity", input.record_id, input.before_change_id, input.version
                ),
            )
        )
