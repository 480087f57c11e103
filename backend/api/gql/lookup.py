"""GraphQL caller lookup: the same service as GET /api/v1/lookup/phone/{number}."""

from __future__ import annotations

import strawberry

from backend.api.gql.activities import Activity
from backend.api.gql.resolvers import GqlInfo
from backend.api.gql.types import Account, Contact
from backend.errors import NotFound
from backend.lookup.service import lookup_phone


@strawberry.type
class CallerCard:
    number: str = strawberry.field(description="The number in E.164, as it was matched.")
    contact: Contact | None
    account: Account | None
    activities: list[Activity] = strawberry.field(
        description="The record's latest activities, newest first."
    )


@strawberry.type
class LookupQuery:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Who is calling: the contact (or account) with this number in your scope, "
        "or null. Numbers without a country code are read in the tenant's default region."
    )
    async def caller_lookup(self, info: GqlInfo, number: str) -> CallerCard | None:
        ctx = info.context.require()
        try:
            found = await lookup_phone(ctx, number)
        except NotFound:
            return None
        record = found["record"]
        return CallerCard(
            number=found["number"],
            contact=Contact.from_record(record) if found["entity"] == "contact" else None,
            account=Account.from_record(record) if found["entity"] == "account" else None,
            activities=[Activity.from_record(a) for a in found["activities"]],
        )
