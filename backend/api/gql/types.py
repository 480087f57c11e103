"""GraphQL object and input types for accounts and contacts (camelCase on the wire)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeAlias

import strawberry
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.errors import camel
from backend.api.gql.inputs import create_input, update_input
from backend.api.gql.loaders import children_of, record_by_id
from backend.api.gql.pagination import Connection, SortDirection
from backend.crm.accounts.service import ACCOUNT, accounts
from backend.crm.contacts.service import CONTACT, contacts
from backend.errors import FieldProblem
from backend.records.service import WITHHELD, Record


def node_values(cls: type, record: Record) -> dict[str, Any]:
    """Field values from a (masked) record: withheld fields are null, named in camelCase."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name == "withheld_fields":  # resolver fields are computed
            continue
        value = record.get(f.name)
        values[f.name] = str(value) if isinstance(value, uuid.UUID) else value
    values["withheld_fields"] = [camel(name) for name in record.get(WITHHELD, [])]
    return values


def provided(data: object) -> dict[str, Any]:
    """An input's fields the client actually sent (others stay UNSET)."""
    return {
        f.name: getattr(data, f.name)
        for f in dataclasses.fields(data)  # type: ignore[arg-type]
        if getattr(data, f.name) is not strawberry.UNSET and f.name not in ("id", "version")
    }


@strawberry.type
class FieldError:
    field: str
    code: str
    message: str

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> list[FieldError]:
        return [cls(field=p.field, code=p.code, message=p.message) for p in problems]


@strawberry.type
class Account:
    id: strawberry.ID
    version: int
    name: str | None
    industry: str | None
    website: str | None
    phone: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None
    tags: list[str] | None
    owner_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    withheld_fields: list[str] = strawberry.field(
        description="Fields your roles may not read: they are null here."
    )

    @classmethod
    def from_record(cls, record: Record) -> Account:
        return cls(**node_values(cls, record))

    @strawberry.field(description="This record's change history, newest first.")  # type: ignore[untyped-decorator]
    async def history(
        self, info: Info[GraphQLContext, None], first: int = 50, after: str | None = None
    ) -> Connection[Annotated[HistoryEntry, strawberry.lazy("backend.api.gql.history")]]:
        from backend.api.gql.history import record_history_connection

        return await record_history_connection(info, "account", self.id, first, after)

    @strawberry.field(description="The first contacts of this account, by id.")  # type: ignore[untyped-decorator]
    async def contacts(
        self, info: Info[GraphQLContext, None], first: int = 20
    ) -> Connection[Annotated[Contact, strawberry.lazy("backend.api.gql.types")]]:
        return await children_of(
            info.context, contacts, "account_id", uuid.UUID(self.id), first, Contact.from_record
        )

    @strawberry.field(description="The first opportunities of this account, by id.")  # type: ignore[untyped-decorator]
    async def opportunities(
        self, info: Info[GraphQLContext, None], first: int = 20
    ) -> Connection[Annotated[Opportunity, strawberry.lazy("backend.api.gql.opportunities")]]:
        from backend.api.gql.opportunities import opportunities_of

        return await opportunities_of(info.context, "account_id", self.id, first)

    @strawberry.field(description="The first activities of this account, by id.")  # type: ignore[untyped-decorator]
    async def activities(
        self, info: Info[GraphQLContext, None], first: int = 20
    ) -> Connection[Annotated[Activity, strawberry.lazy("backend.api.gql.activities")]]:
        from backend.api.gql.activities import activities_of

        return await activities_of(info.context, "account_id", self.id, first)


@strawberry.type
class Contact:
    id: strawberry.ID
    version: int
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    mobile_phone: str | None
    title: str | None
    account_id: strawberry.ID | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None
    notes: str | None
    tags: list[str] | None
    owner_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    withheld_fields: list[str] = strawberry.field(
        description="Fields your roles may not read: they are null here."
    )

    @classmethod
    def from_record(cls, record: Record) -> Contact:
        return cls(**node_values(cls, record))

    @strawberry.field(description="This record's change history, newest first.")  # type: ignore[untyped-decorator]
    async def history(
        self, info: Info[GraphQLContext, None], first: int = 50, after: str | None = None
    ) -> Connection[Annotated[HistoryEntry, strawberry.lazy("backend.api.gql.history")]]:
        from backend.api.gql.history import record_history_connection

        return await record_history_connection(info, "contact", self.id, first, after)

    @strawberry.field(description="The account this contact belongs to, if any.")  # type: ignore[untyped-decorator]
    async def account(self, info: Info[GraphQLContext, None]) -> Account | None:
        if self.account_id is None:
            return None
        return await record_by_id(
            info.context, accounts, uuid.UUID(self.account_id), Account.from_record
        )

    @strawberry.field(description="The first opportunities of this contact, by id.")  # type: ignore[untyped-decorator]
    async def opportunities(
        self, info: Info[GraphQLContext, None], first: int = 20
    ) -> Connection[Annotated[Opportunity, strawberry.lazy("backend.api.gql.opportunities")]]:
        from backend.api.gql.opportunities import opportunities_of

        return await opportunities_of(info.context, "contact_id", self.id, first)

    @strawberry.field(description="The first activities of this contact, by id.")  # type: ignore[untyped-decorator]
    async def activities(
        self, info: Info[GraphQLContext, None], first: int = 20
    ) -> Connection[Annotated[Activity, strawberry.lazy("backend.api.gql.activities")]]:
        from backend.api.gql.activities import activities_of

        return await activities_of(info.context, "contact_id", self.id, first)


# -- list arguments ----------------------------------------------------------------------
@strawberry.enum
class AccountOrderField(Enum):
    ID = "id"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"


@strawberry.enum
class ContactOrderField(Enum):
    ID = "id"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    LAST_NAME = "last_name"


@strawberry.input
class AccountOrder:
    field: AccountOrderField
    direction: SortDirection = SortDirection.ASC


@strawberry.input
class ContactOrder:
    field: ContactOrderField
    direction: SortDirection = SortDirection.ASC


@strawberry.input
class AccountFilter:
    q: str | None = None
    owner_id: strawberry.ID | None = None
    updated_since: datetime | None = None


@strawberry.input
class ContactFilter:
    q: str | None = None
    owner_id: strawberry.ID | None = None
    account_id: strawberry.ID | None = None
    updated_since: datetime | None = None


# -- mutation inputs and payloads ----------------------------------------------------------
class UpdateInput(Protocol):
    """What resolvers read of a generated update input; the other fields go to the service."""

    id: strawberry.ID
    version: int


if TYPE_CHECKING:
    from backend.api.gql.activities import Activity
    from backend.api.gql.history import HistoryEntry
    from backend.api.gql.opportunities import Opportunity

    CreateAccountInput: TypeAlias = object
    CreateContactInput: TypeAlias = object
    UpdateAccountInput: TypeAlias = UpdateInput
    UpdateContactInput: TypeAlias = UpdateInput
else:  # generated from the field specs: see backend/api/gql/inputs.py
    CreateAccountInput = create_input(ACCOUNT, "Account")
    UpdateAccountInput = update_input(ACCOUNT, "Account")
    CreateContactInput = create_input(CONTACT, "Contact")
    UpdateContactInput = update_input(CONTACT, "Contact")


@strawberry.input
class DeleteInput:
    id: strawberry.ID
    version: int | None = strawberry.field(
        default=None, description="When given, the delete applies only at this version."
    )


@strawberry.type
class AccountPayload:
    account: Account | None
    errors: list[FieldError]


@strawberry.type
class ContactPayload:
    contact: Contact | None
    errors: list[FieldError]


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None
    errors: list[FieldError]
