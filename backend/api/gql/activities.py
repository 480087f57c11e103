"""GraphQL for activities (calls, meetings, tasks, emails, notes): type, list arguments,
queries and mutations. Resolve -> call the record service -> shape; links come from loaders."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import strawberry
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.history import RevertChangeInput, RevertRecordInput
from backend.api.gql.inputs import create_input, update_input
from backend.api.gql.loaders import children_of, record_by_id
from backend.api.gql.opportunities import Opportunity
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
from backend.crm.activities.service import ACTIVITY, activities
from backend.crm.contacts.service import contacts
from backend.crm.opportunities.service import opportunities
from backend.history.revert import revert_change, revert_record
from backend.records.listing import build_list_query
from backend.records.service import Record


@strawberry.type
class Activity:
    id: strawberry.ID
    version: int
    kind: str | None
    subject: str | None
    notes: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    due_at: datetime | None
    remind_minutes_before: int | None
    completed_at: datetime | None
    account_id: strawberry.ID | None
    contact_id: strawberry.ID | None
    opportunity_id: strawberry.ID | None
    tags: list[str] | None
    owner_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    withheld_fields: list[str] = strawberry.field(
        description="Fields your roles may not read: they are null here."
    )

    @classmethod
    def from_record(cls, record: Record) -> Activity:
        return cls(**node_values(cls, record))

    @strawberry.field(description="This record's change history, newest first.")  # type: ignore[untyped-decorator]
    async def history(
        self, info: Info[GraphQLContext, None], first: int = 50, after: str | None = None
    ) -> Connection[Annotated[HistoryEntry, strawberry.lazy("backend.api.gql.history")]]:
        from backend.api.gql.history import record_history_connection

        return await record_history_connection(info, "activity", self.id, first, after)

    @strawberry.field(description="The account this activity is with, if any.")  # type: ignore[untyped-decorator]
    async def account(self, info: Info[GraphQLContext, None]) -> Account | None:
        if self.account_id is None:
            return None
        return await record_by_id(
            info.context, accounts, uuid.UUID(self.account_id), Account.from_record
        )

    @strawberry.field(description="The contact this activity is with, if any.")  # type: ignore[untyped-decorator]
    async def contact(self, info: Info[GraphQLContext, None]) -> Contact | None:
        if self.contact_id is None:
            return None
        return await record_by_id(
            info.context, contacts, uuid.UUID(self.contact_id), Contact.from_record
        )

    @strawberry.field(description="The opportunity this activity is about, if any.")  # type: ignore[untyped-decorator]
    async def opportunity(self, info: Info[GraphQLContext, None]) -> Opportunity | None:
        if self.opportunity_id is None:
            return None
        return await record_by_id(
            info.context, opportunities, uuid.UUID(self.opportunity_id), Opportunity.from_record
        )


async def activities_of(
    context: GraphQLContext, column: str, parent_id: str, first: int
) -> Connection[Activity]:
    """An account's or a contact's first activities (by id), batched across the page."""
    return await children_of(
        context, activities, column, uuid.UUID(parent_id), first, Activity.from_record
    )


@strawberry.enum
class ActivityOrderField(Enum):
    ID = "id"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


@strawberry.input
class ActivityOrder:
    field: ActivityOrderField
    direction: SortDirection = SortDirection.ASC


@strawberry.input
class ActivityFilter:
    q: str | None = None
    owner_id: strawberry.ID | None = None
    account_id: strawberry.ID | None = None
    contact_id: strawberry.ID | None = None
    opportunity_id: strawberry.ID | None = None
    updated_since: datetime | None = None


@strawberry.type
class ActivityPayload:
    activity: Activity | None
    errors: list[FieldError]


if TYPE_CHECKING:
    from backend.api.gql.history import HistoryEntry

    CreateActivityInput: TypeAlias = object
    UpdateActivityInput: TypeAlias = UpdateInput
else:  # generated from the field specs: see backend/api/gql/inputs.py
    CreateActivityInput = create_input(ACTIVITY, "Activity")
    UpdateActivityInput = update_input(ACTIVITY, "Activity")


def _payload(record: Record | None, errors: list[FieldError]) -> ActivityPayload:
    return ActivityPayload(activity=Activity.from_record(record) if record else None, errors=errors)


@strawberry.type
class ActivityQuery:
    @strawberry.field
    async def activity(self, info: GqlInfo, id: strawberry.ID) -> Activity | None:
        ctx = info.context.require()
        record = await get_or_none(lambda: activities.get(ctx, id))
        return Activity.from_record(record) if record else None

    @strawberry.field
    async def activities(
        self,
        info: GqlInfo,
        first: int = 50,
        after: str | None = None,
        filter: ActivityFilter | None = None,
        order_by: ActivityOrder | None = None,
    ) -> Connection[Activity]:
        ctx = info.context.require()
        f = filter or ActivityFilter()
        filters: dict[str, Any] = {
            "owner_id": f.owner_id,
            "account_id": f.account_id,
            "contact_id": f.contact_id,
            "opportunity_id": f.opportunity_id,
        }
        query = build_list_query(
            activities.spec,
            limit=first,
            after=after,
            search=f.q,
            filters=filters,
            updated_since=f.updated_since,
            sort=sort_key(order_by.field, order_by.direction) if order_by else None,
        )
        page = await activities.list(ctx, query)
        return to_connection(page, query, Activity.from_record, after is not None)


@strawberry.type
class ActivityMutation:
    @strawberry.mutation
    async def create_activity(self, info: GqlInfo, input: CreateActivityInput) -> ActivityPayload:
        ctx = info.context.require()
        return _payload(*await payload_call(info, lambda: activities.create(ctx, provided(input))))

    @strawberry.mutation
    async def update_activity(self, info: GqlInfo, input: UpdateActivityInput) -> ActivityPayload:
        ctx = info.context.require()
        return _payload(
            *await payload_call(
                info, lambda: activities.update(ctx, input.id, provided(input), input.version)
            )
        )

    @strawberry.mutation
    async def delete_activity(self, info: GqlInfo, input: DeleteInput) -> DeletePayload:
        ctx = info.context.require()
        _, errors = await payload_call(
            info, lambda: activities.delete(ctx, input.id, input.version)
        )
        return DeletePayload(deleted_id=None if errors else input.id, errors=errors)

    @strawberry.mutation(description="Undo one change of an activity (a delete: undelete)")  # type: ignore[untyped-decorator]
    async def revert_activity_change(
        self, info: GqlInfo, input: RevertChangeInput
    ) -> ActivityPayload:
        ctx = info.context.require()
        return _payload(
            *await payload_call(
                info,
                lambda: revert_change(
                    ctx, "activity", input.record_id, input.change_id, input.version
                ),
            )
        )

    @strawberry.mutation(description="Put a whole activity back as it was before a change")  # type: ignore[untyped-decorator]
    async def revert_activity(self, info: GqlInfo, input: RevertRecordInput) -> ActivityPayload:
        ctx = info.context.require()
        return _payload(
            *await payload_call(
                info,
                lambda: revert_record(
                    ctx, "activity", input.record_id, input.before_change_id, input.version
                ),
            )
        )
